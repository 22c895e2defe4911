// `cairn ctl logs`: list, describe, find-tail, seal, trim, reconfigure, append and dump logs through
// any node's admin API. Same conventions as the other ctl commands (index.ts passes its helpers):
// --json prints the API's answer, failures exit with the documented codes.
import { Command } from "commander";
import type { components } from "../../../openapi/cairn.d.ts";
import { adminClient, call, type CtlGlobals } from "./client.ts";
import { table } from "./format.ts";

type Schemas = components["schemas"];

export interface CtlHelpers {
  action<O = Record<string, never>>(fn: (globals: CtlGlobals, args: string[], opts: O) => Promise<void>): (this: Command, ...args: unknown[]) => Promise<void>;
  print(globals: CtlGlobals, json: unknown, human: () => string): void;
  intArg(flag: string, value: string): number;
  usage(message: string): never;
}


function segmentRows(log: Schemas["LogInfo"]): Array<Array<string | number>> {
  return log.segments.map((s) => [
    s.index,
    s.kind,
    s.baseLsn,
    s.sealedTail ?? "open",
    s.sequencer,
    s.nodeset.join(","),
    s.replication,
    s.placement,
  ]);
}

function rereplicationText(l: Schemas["LogInfo"]): string {
  let out = `Under-replicated records: ${l.underReplicatedRecords}\n`;
  const r = l.rereplication;
  if (r !== null) {
    out += `Re-replication (this node): segment ${r.segment} → ${r.targets.join(",")}: ${r.state}, ${r.copiedRecords}/${r.records} records${r.error !== undefined ? ` (${r.error})` : ""}\n`;
  }
  return out;
}

function describeText(d: Schemas["LogDescription"]): string {
  const t = d.tail;
  return (
    `Log ${d.log.id}: tail LSN ${t.tailLsn}${t.sealed ? " (sealed: waiting for a reconfiguration)" : ""}, trim point ${d.log.trimPoint}\n` +
    (d.log.segments.length === 0
      ? "  no segment yet (the log controller adds the first one)\n"
      : table([["SEGMENT", "KIND", "BASE", "SEALED-TAIL", "SEQUENCER", "NODESET", "R", "PLACEMENT"], ...segmentRows(d.log)])) +
    rereplicationText(d.log)
  );
}

function tailText(t: Schemas["LogTailInfo"]): string {
  return `log ${t.log}: tail LSN ${t.tailLsn}${t.sealed ? ", sealed" : ""}, segment ${t.segment ?? "none"}, trim point ${t.trimPoint}\n`;
}

export function logsCommand(h: CtlHelpers): Command {
  const logs = new Command("logs").description("Logs: chains of segments, their tails, seal, trim, reconfigure, records");
  const logArg = (text: string | undefined): string => {
    if (text === undefined || !/^(0|[1-9][0-9]{0,9})$/.test(text)) h.usage(`<log> must be a log id (a whole number), got '${text ?? ""}'`);
    return text;
  };

  logs
    .command("list")
    .description("Every log with its tail segment")
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/logs"));
        h.print(g, r, () => {
          const rows: Array<Array<string | number>> = [["LOG", "SEGMENTS", "KIND", "BASE", "SEQUENCER", "NODESET", "R", "TRIM", "STATE"]];
          for (const l of r.logs) {
            const s = l.segments[l.segments.length - 1];
            rows.push([
              l.id,
              l.segments.length,
              s?.kind ?? "-",
              s?.baseLsn ?? "-",
              s?.sequencer ?? "-",
              s?.nodeset.join(",") ?? "-",
              s?.replication ?? "-",
              l.trimPoint,
              s === undefined ? "no segment" : l.sealed ? "sealed" : "open",
            ]);
          }
          return table(rows) + `default replication ${r.defaultReplication}\n`;
        });
      }),
    );

  logs
    .command("describe <log>")
    .description("A log's chain of segments and its tail")
    .action(
      h.action(async (g, [log]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/logs/{log}", { params: { path: { log: logArg(log) } } }));
        h.print(g, r, () => describeText(r));
      }),
    );

  logs
    .command("find-tail <log>")
    .description("The first LSN not yet written, and whether the log is sealed")
    .action(
      h.action(async (g, [log]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/logs/{log}/tail", { params: { path: { log: logArg(log) } } }));
        h.print(g, r, () => tailText(r));
      }),
    );

  logs
    .command("seal <log>")
    .description("Seal the tail segment; appends wait until the log is reconfigured")
    .action(
      h.action(async (g, [log]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.POST("/v1/logs/{log}/seal", { params: { path: { log: logArg(log) } } }));
        h.print(g, r, () => `sealed: ${tailText(r)}run 'cairn ctl logs reconfigure ${r.log}' to continue the log in a new segment\n`);
      }),
    );

  logs
    .command("trim <log>")
    .description("Trim the log up to an LSN (inclusive; clipped below the tail)")
    .requiredOption("--to <lsn>", "last LSN to trim")
    .option("--force", "also cut records past the archived LSN (no snapshot covers them: they are lost for any processor that has not applied them)")
    .action(
      h.action<{ to: string; force?: boolean }>(async (g, [log], opts) => {
        const toLsn = h.intArg("--to", opts.to);
        const client = adminClient(g);
        const r = await call(g, () =>
          client.POST("/v1/logs/{log}/trim", { params: { path: { log: logArg(log) }, query: opts.force === true ? { force: true } : {} }, body: { toLsn } }),
        );
        h.print(
          g,
          r,
          () =>
            `log ${r.log}: trim point ${r.trimPoint}\n` +
            (r.discarded === null
              ? ""
              : `discarded LSNs ${r.discarded.fromLsn}..${r.discarded.toLsn} (${r.discarded.toLsn - r.discarded.fromLsn + 1} records) that no snapshot covered (archived LSN ${r.archivedLsn})\n`),
        );
      }),
    );

  logs
    .command("reconfigure <log>")
    .description("Seal the tail segment and continue the log in a new one (older segments stay readable)")
    .option("--replication <r>", "copies per record of the new segment")
    .option("--nodeset <nodes>", "log-servers of the new segment, e.g. N1,N2,N3 (a manual placement)")
    .option("--sequencer <node>", "node that sequences the new segment, e.g. N2")
    .option("--kind <kind>", "loglet kind of the new segment: replicated or local")
    .action(
      h.action<{ replication?: string; nodeset?: string; sequencer?: string; kind?: string }>(async (g, [log], opts) => {
        const body: Schemas["LogReconfigureRequest"] = {};
        if (opts.replication !== undefined) body.replication = h.intArg("--replication", opts.replication);
        if (opts.nodeset !== undefined) {
          const nodes = opts.nodeset.split(",").map((n) => n.trim()).filter((n) => n !== "");
          for (const n of nodes) if (!/^N[1-9][0-9]*$/.test(n)) h.usage(`--nodeset takes node ids like N1,N2; '${n}' is not one`);
          body.nodeset = nodes;
        }
        if (opts.sequencer !== undefined) {
          if (!/^N[1-9][0-9]*$/.test(opts.sequencer)) h.usage(`--sequencer takes a node id like N2, got '${opts.sequencer}'`);
          body.sequencer = opts.sequencer;
        }
        if (opts.kind !== undefined) {
          if (opts.kind !== "local" && opts.kind !== "replicated") h.usage(`--kind is local or replicated, got '${opts.kind}'`);
          body.kind = opts.kind;
        }
        const client = adminClient(g);
        const r = await call(g, () => client.POST("/v1/logs/{log}/reconfigure", { params: { path: { log: logArg(log) } }, body }));
        h.print(g, r, () => `reconfigured.\n${describeText(r)}`);
      }),
    );

  logs
    .command("rereplicate <log>")
    .description("Copy the log's under-replicated sealed segment onto more log-servers now (the controller also does it in the background)")
    .action(
      h.action(async (g, [log]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.POST("/v1/logs/{log}/rereplicate", { params: { path: { log: logArg(log) } } }));
        h.print(g, r, () => describeText(r));
      }),
    );

  logs
    .command("append <log> <records...>")
    .description("Append records (one batch, in order); prints their LSNs once durable")
    .option("--base64", "the records are base64-encoded bytes")
    .action(function (this: Command, log: string, records: string[]) {
      // The wrapper passes only plain string arguments on; the variadic list comes from here.
      return h.action<{ base64?: boolean }>(async (g, _args, opts) => {
        const client = adminClient(g);
        const r = await call(g, () =>
          client.POST("/v1/logs/{log}/records", {
            params: { path: { log: logArg(log) } },
            body: { records, ...(opts.base64 ? { encoding: "base64" as const } : {}) },
          }),
        );
        h.print(g, r, () => `log ${r.log}: appended ${r.count} record(s) at LSN ${r.firstLsn}${r.count > 1 ? `..${r.lastLsn}` : ""}\n`);
      }).call(this, log);
    });

  logs
    .command("dump <log>")
    .description("Print records from an LSN up to the tail (trim gaps are printed as such)")
    .option("--from <lsn>", "first LSN", "1")
    .option("--limit <n>", "most entries to print")
    .option("--base64", "print every record as base64")
    .action(
      h.action<{ from: string; limit?: string; base64?: boolean }>(async (g, [log], opts) => {
        const id = logArg(log);
        let from = h.intArg("--from", opts.from);
        const limit = opts.limit === undefined ? Number.POSITIVE_INFINITY : h.intArg("--limit", opts.limit);
        const client = adminClient(g);
        const entries: Schemas["LogRecords"]["entries"] = [];
        let tail = from;
        for (;;) {
          const want = Math.min(1000, limit - entries.length);
          if (want <= 0) break;
          const r = await call(g, () =>
            client.GET("/v1/logs/{log}/records", {
              params: { path: { log: id }, query: { from: String(from), limit: String(want), ...(opts.base64 ? { encoding: "base64" as const } : {}) } },
            }),
          );
          entries.push(...r.entries);
          tail = r.tailLsn;
          if (r.entries.length === 0 || r.nextLsn >= r.tailLsn) break;
          from = r.nextLsn;
        }
        h.print(g, { log: Number(id), entries, tailLsn: tail }, () =>
          entries
            .map((e) => (e.kind === "record" ? `${e.lsn}\t${e.encoding === "base64" ? `base64:${e.data}` : e.data}` : `${e.fromLsn}..${e.toLsn}\t(trimmed)`))
            .join("\n") + (entries.length > 0 ? "\n" : "") + `-- tail LSN ${tail}\n`,
        );
      }),
    );
  return logs;
}
