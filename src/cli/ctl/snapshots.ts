// `cairn ctl snapshots create|list`: start a snapshot job and follow it (a live progress bar on a
// terminal, one line per finished partition otherwise) to a summary table; list the repository.
// Exits non-zero when a partition failed after its retries.
import { Command } from "commander";
import { SingleBar, Presets } from "cli-progress";
import type { components } from "../../../openapi/cairn.d.ts";
import { EXIT } from "../exit-codes.ts";
import { adminClient, call, CtlFailure, type CtlGlobals } from "./client.ts";
import { duration, table } from "./format.ts";
import type { CtlHelpers } from "./logs.ts";

type Job = components["schemas"]["SnapshotJob"];

/** How often a running job's progress is fetched. */
const POLL_INTERVAL_MS = 250;

function partitionList(h: CtlHelpers, values: string[] | undefined): number[] | undefined {
  if (values === undefined) return undefined;
  return values.flatMap((v) => v.split(",")).filter((v) => v !== "").map((v) => h.intArg("--partition", v));
}

export function bytes(n: number | null): string {
  if (n === null) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function finished(job: Job): number {
  return job.partitions.filter((p) => p.state === "succeeded" || p.state === "failed").length;
}

export function jobSummary(job: Job): string {
  const rows = job.partitions.map((p) => [
    p.partition,
    p.state,
    p.lsn ?? "-",
    bytes(p.sizeBytes),
    p.durationMs === null ? "-" : p.durationMs < 1000 ? `${p.durationMs}ms` : duration(p.durationMs),
    p.node ?? "-",
    p.attempts,
    p.uploaded === false ? "(already held)" : (p.error ?? ""),
  ]);
  const ok = job.partitions.filter((p) => p.state === "succeeded").length;
  const total = job.finishedAtMs === null ? "" : ` in ${duration(job.finishedAtMs - job.createdAtMs) === "0s" ? `${job.finishedAtMs - job.createdAtMs}ms` : duration(job.finishedAtMs - job.createdAtMs)}`;
  return (
    table([["PARTITION", "STATE", "LSN", "SIZE", "DURATION", "NODE", "ATTEMPTS", "NOTE"], ...rows]) +
    `\nJob ${job.id} ${job.state}: ${ok}/${job.partitions.length} partitions snapshotted${total}.\n`
  );
}

async function follow(g: CtlGlobals, first: Job): Promise<Job> {
  const client = adminClient(g);
  const tty = process.stderr.isTTY === true && !g.json;
  const bar = tty
    ? new SingleBar({ format: "snapshots [{bar}] {value}/{total} partitions | running {running} | failed {failed}", hideCursor: true, stream: process.stderr }, Presets.shades_classic)
    : undefined;
  bar?.start(first.partitions.length, finished(first), { running: 0, failed: 0 });
  const reported = new Set<number>();
  let job = first;
  try {
    for (;;) {
      const running = job.partitions.filter((p) => p.state === "running").length;
      const failed = job.partitions.filter((p) => p.state === "failed").length;
      bar?.update(finished(job), { running, failed });
      if (!tty && !g.json) {
        for (const p of job.partitions) {
          if ((p.state === "succeeded" || p.state === "failed") && !reported.has(p.partition)) {
            reported.add(p.partition);
            process.stderr.write(`partition ${p.partition}: ${p.state}${p.lsn !== null ? ` at LSN ${p.lsn}` : ""}${p.error ? ` (${p.error})` : ""}\n`);
          }
        }
      }
      if (job.state !== "running") return job;
      await Bun.sleep(POLL_INTERVAL_MS);
      const id = job.id;
      job = await call(g, () => client.GET("/v1/snapshots/jobs/{id}", { params: { path: { id } } }));
    }
  } finally {
    bar?.stop();
  }
}

export function snapshotsCommand(h: CtlHelpers): Command {
  const cmd = new Command("snapshots").description("Partition snapshots: create them (a parallel job) and list the repository");
  cmd
    .command("create")
    .description("Snapshot all partitions (or those given) on their leaders, in parallel; follow the job to its end")
    .option("-p, --partition <ids...>", "only these partitions (repeat or comma-separate)")
    .option("--no-wait", "print the job id and return without following it")
    .action(
      h.action<{ partition?: string[]; wait: boolean }>(async (g, _args, opts) => {
        const partitions = partitionList(h, opts.partition);
        const client = adminClient(g);
        const job = await call(g, () => client.POST("/v1/snapshots", { body: partitions === undefined ? {} : { partitions } }));
        if (!opts.wait) {
          h.print(g, job, () => `Snapshot job ${job.id} started for ${job.partitions.length} partitions (on ${job.controller}).\n`);
          return;
        }
        const done = await follow(g, job);
        h.print(g, done, () => jobSummary(done));
        if (done.state !== "succeeded") {
          throw new CtlFailure(EXIT.FAILURE, `snapshot job ${done.id} failed for partitions ${done.partitions.filter((p) => p.state !== "succeeded").map((p) => p.partition).join(", ")}`, { job: done });
        }
      }),
    );
  cmd
    .command("list")
    .description("Snapshots the repository holds, per partition, oldest first (* = what latest.json names)")
    .option("-p, --partition <id>", "only this partition")
    .action(
      h.action<{ partition?: string }>(async (g, _args, opts) => {
        const partition = opts.partition === undefined ? undefined : h.intArg("--partition", opts.partition);
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/snapshots", { params: { query: partition === undefined ? {} : { partition } } }));
        h.print(g, r, () =>
          r.snapshots.length === 0
            ? "No snapshots.\n"
            : table([
                ["PARTITION", "LSN", "ID", "SIZE", "CREATED", "NODE", "LATEST"],
                ...r.snapshots.map((s) => [s.partition, s.lsn, s.id, bytes(s.sizeBytes), new Date(s.createdAtMs).toISOString(), s.node, s.latest ? "*" : ""]),
              ]),
        );
      }),
    );
  return cmd;
}
