// One chaos run: start a cluster behind the fault proxy, run the workloads' clients, inject faults on a
// seeded schedule (warm-up without faults, then faults one at a time), heal everything, require every
// node to serve a write and a linearizable read again (liveness), keep the workload running through a
// quiet period, read everything back from every node, and check the history. On failure (or on
// request) the history, the nemesis timeline, the checkers' reports and every node's log are written to
// .chaos/<time>-seed<N>/. Every process is stopped by PID in a finally block.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHAOS_PARTITIONS, ChaosCluster, type ExpectedExit, type UnexpectedExit } from "./cluster.ts";
import { partitionOfObject } from "../../src/worker/key-hash.ts";
import { evenPartitionTable } from "../../src/worker/partition-table.ts";
import { request, keyPath } from "./client.ts";
import { History, pairOperations } from "./history.ts";
import { NEMESES, Nemesis, type NemesisKind, type TimelineEntry } from "./nemesis.ts";
import { REPO_ROOT } from "./node-process.ts";
import { Rng } from "./rng.ts";
import type { CheckBounds } from "./checker/linearizable.ts";
import { RegisterWorkload } from "./workloads/register.ts";
import { StateWorkload } from "./workloads/state.ts";
import { describeWriteGaps, stateWriteGaps, type PartitionWriteGap } from "./checker/availability.ts";
import { InvocationsWorkload } from "./workloads/invocations.ts";
import { SetWorkload } from "./workloads/set.ts";
import { CHAOS_LOG_ID, HttpLogApi, LogWorkload, logRoutesAvailable } from "./workloads/log.ts";
import type { CheckOutcome, ClientState, Endpoint, Workload, WorkloadContext } from "./workloads/types.ts";

export const WORKLOADS = ["register", "set", "log", "state", "invocations"] as const;
/** Workloads that need partition processors (the worker role on every node). */
const WORKER_WORKLOADS: ReadonlySet<WorkloadName> = new Set(["state", "invocations"]);
export type WorkloadName = (typeof WORKLOADS)[number];

export interface ChaosOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Traffic time from the first operation to the end of the quiet period. */
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Time after the final heal during which the workload keeps running (liveness is checked in it). */
  readonly quietMs: number;
  readonly nemeses: readonly NemesisKind[];
  readonly workloads: readonly WorkloadName[];
  /** Clients per workload (default: the workload's own). */
  readonly clients?: Partial<Record<WorkloadName, number>>;
  readonly requestTimeoutMs: number;
  readonly holdMs: readonly [number, number];
  readonly gapMs: readonly [number, number];
  /** After the final heal, every node must serve a write and a linearizable read within this. */
  readonly livenessTimeoutMs: number;
  /** Longest pause of a client between two operations. */
  readonly paceMs: number;
  readonly opsPerKey?: number;
  /** Elements per set key (default: one set for the whole run, as the CI profile has it). */
  readonly setAddsPerKey?: number;
  readonly checkBounds?: CheckBounds;
  /** Write artifacts even when the run passes. */
  readonly keepArtifacts?: boolean;
  readonly artifactsRoot?: string;
  readonly extraArgs?: readonly string[];
  /** Size of the tmpfs holding one node's data directory when disk-full is among the nemeses. */
  readonly diskSizeBytes?: number;
  readonly log?: (line: string) => void;
  /** Shown in the artifacts' README as the way to repeat the run. */
  readonly rerunCommand?: string;
}

export interface LivenessReport {
  readonly node: string;
  readonly ok: boolean;
  /** Time from the final heal until the node served a write and a linearizable read. */
  readonly recoveredAfterMs: number | null;
  readonly lastError: string | null;
}

export interface ChaosResult {
  readonly seed: number;
  readonly verdict: "ok" | "illegal" | "unknown" | "error";
  readonly checks: readonly CheckOutcome[];
  readonly liveness: readonly LivenessReport[];
  /** Node processes that exited without the harness stopping them (a crash fails the run). */
  readonly unexpectedExits: readonly UnexpectedExit[];
  /** Node processes that a storage fault made exit (fatal persist, I/O error); restarted on heal. */
  readonly expectedExits: readonly ExpectedExit[];
  readonly timeline: readonly TimelineEntry[];
  /** Faults started, per nemesis; for `refuse`, also how many took effect (the controller's verdict seen). */
  readonly faultCounts: Readonly<Record<string, number>>;
  readonly refuseEffects: { readonly scheduled: number; readonly tookEffect: number };
  readonly operations: number;
  readonly okOperations: number;
  readonly skippedWorkloads: readonly string[];
  readonly error?: string;
  readonly artifacts?: string;
  readonly elapsedMs: number;
  readonly proxy: { connections: number; refused: number; resets: number; unidentified: number };
  /** What checking the history cost, measured after the cluster stopped (absent when the run did not get that far). */
  readonly checking?: CheckingCost;
  /** The state workload's longest stretch without a successful write, per partition (none without that workload). */
  readonly writeGaps: readonly PartitionWriteGap[];
}

/** Time and memory of the checkers (Linux's peak-RSS counter is reset before they start). */
export interface CheckingCost {
  readonly ms: number;
  /** The harness's RSS when the checkers started (it holds the whole history). */
  readonly rssBeforeBytes: number;
  /** Peak RSS of the harness while the checkers ran (VmHWM after a reset); null where it cannot be read. */
  readonly peakRssBytes: number | null;
  /** Peak RSS of the harness over the run before the checkers (proxy, clients, history). */
  readonly runPeakRssBytes: number | null;
  readonly events: number;
  /** Each workload's checker on its own: time and peak RSS (the peak counter reset before each). */
  readonly perWorkload: ReadonlyArray<{ readonly workload: string; readonly ms: number; readonly peakRssBytes: number | null }>;
}

/** The checkers' budget after a long run (issue 16): 5 minutes and 1 GB. */
export const CHECK_BUDGET = { ms: 5 * 60_000, bytes: 2 ** 30 } as const;

export const CI_PROFILE: Omit<ChaosOptions, "seed"> = {
  nodes: 3,
  durationMs: 36_000,
  warmupMs: 4_000,
  quietMs: 8_000,
  nemeses: ["kill", "isolate", "split", "asymmetric", "refuse"],
  // invocations brings the worker role and the SDK fixture: a run of all of it stays near 45 s.
  workloads: ["register", "set", "log", "invocations"],
  requestTimeoutMs: 4_000,
  holdMs: [2_000, 4_500],
  gapMs: [1_000, 2_500],
  livenessTimeoutMs: 20_000,
  paceMs: 25,
  opsPerKey: 100,
};

/**
 * The long profile: every nemesis (scripts/chaos.ts drops ring below 5 nodes), every workload, half an hour by default.
 * fsync-error and disk-full need root (scripts/chaos.ts leaves them out, saying so, when they cannot run).
 */
export const LONG_PROFILE: Omit<ChaosOptions, "seed"> = {
  ...CI_PROFILE,
  durationMs: 1_800_000,
  warmupMs: 10_000,
  quietMs: 20_000,
  nemeses: [...NEMESES],
  // Every workload at once: the log workload has its own log, so it runs beside the workers.
  workloads: [...WORKLOADS],
  holdMs: [2_000, 8_000],
  gapMs: [1_000, 5_000],
  livenessTimeoutMs: 30_000,
  // One set value of ~50 000 elements would be rewritten whole by every add and held by every read.
  setAddsPerKey: 1_000,
  // Thirty minutes of faults leave many indeterminate operations per key (seed 4201: two keys of 103
  // operations with 27-29 indeterminate ones went past 2 M search steps, linearizable at 60 M): fewer
  // operations per key and more room for the search keep the verdict a verdict.
  opsPerKey: 60,
  checkBounds: { maxSteps: 20_000_000, timeoutMs: 180_000 },
};

/** 256 MiB: room for a long run's data; tmpfs uses memory only for what is written (and the ballast). */
const DEFAULT_DISK_SIZE_BYTES = 256 * 2 ** 20;

function buildWorkload(name: WorkloadName, options: ChaosOptions): Workload {
  const clients = options.clients?.[name];
  switch (name) {
    case "register":
      return new RegisterWorkload({ ...(clients ? { clients } : {}), ...(options.opsPerKey ? { opsPerKey: options.opsPerKey } : {}), ...(options.checkBounds ? { bounds: options.checkBounds } : {}) });
    case "set":
      return new SetWorkload({ ...(clients ? { clients } : {}), ...(options.setAddsPerKey ? { addsPerKey: options.setAddsPerKey } : {}) });
    case "log":
      return new LogWorkload(undefined, clients ? { clients } : {});
    case "state":
      return new StateWorkload({ ...(clients ? { clients } : {}), ...(options.opsPerKey ? { opsPerKey: options.opsPerKey } : {}), ...(options.checkBounds ? { bounds: options.checkBounds } : {}) });
    case "invocations":
      return new InvocationsWorkload(clients ? { clients } : {});
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const rng = new Rng(options.seed);
  const history = new History();
  const runId = `${options.seed.toString(36)}-${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), "cairn-chaos-"));
  const skippedWorkloads: string[] = [];
  let cluster: ChaosCluster | undefined;
  let nemesis: Nemesis | undefined;
  let checks: CheckOutcome[] = [];
  let liveness: LivenessReport[] = [];
  let error: string | undefined;
  let stopClients = false;
  let readyToCheck = false;
  let checking: CheckingCost | undefined;
  const clientLoops: Promise<void>[] = [];
  const workloads: Workload[] = [];
  let memoryLog: ReturnType<typeof setInterval> | undefined;
  log(`chaos seed ${options.seed}: ${options.nodes} nodes, ${options.durationMs} ms, nemeses [${options.nemeses.join(",")}], workloads [${options.workloads.join(",")}]`);
  try {
    const tmpfsNode = options.nemeses.includes("disk-full")
      ? { name: `n${rng.fork("disk-full").int(1, options.nodes)}`, sizeBytes: options.diskSizeBytes ?? DEFAULT_DISK_SIZE_BYTES }
      : undefined;
    cluster = await ChaosCluster.start({
      size: options.nodes,
      dir,
      rng: rng.fork("cluster"),
      log,
      ...(options.extraArgs ? { extraArgs: options.extraArgs } : {}),
      ...(tmpfsNode ? { tmpfsNode } : {}),
      workers: options.workloads.some((w) => WORKER_WORKLOADS.has(w)),
    });
    const c = cluster;
    const ctx: WorkloadContext = {
      history,
      runId,
      requestTimeoutMs: options.requestTimeoutMs,
      endpoints: () => c.nodes.map((n): Endpoint => ({ name: n.name, admin: c.adminUrl(n), ingress: c.ingressUrl(n) })),
      log,
    };
    for (const name of options.workloads) {
      if (name === "log" && !logRoutesAvailable()) {
        skippedWorkloads.push("log (openapi/cairn.json has no /v1/logs/{log}/records yet)");
        continue;
      }
      workloads.push(buildWorkload(name, options));
    }
    for (const w of workloads) await w.setup(ctx);

    const begin = history.now();
    for (const w of workloads) {
      const n = options.clients?.[w.name as WorkloadName] ?? w.defaultClients;
      for (let i = 0; i < n; i++) {
        const client: ClientState = { id: i, process: history.newProcess(), rng: rng.fork(`client/${w.name}/${i}`) };
        clientLoops.push(
          (async () => {
            while (!stopClients) {
              const node = client.rng.pick(ctx.endpoints());
              const done = await w.step(ctx, client, node);
              if (done.type === "info") client.process = history.newProcess();
              await Bun.sleep(client.rng.int(0, options.paceMs));
            }
          })(),
        );
      }
    }

    nemesis = new Nemesis(c, rng.fork("nemesis"), () => history.now(), log, dir);
    memoryLog = setInterval(() => log(`harness: ${mib(process.memoryUsage.rss())} MiB RSS, ${history.events.length} history events`), MEMORY_LOG_INTERVAL_MS);
    const faultPhaseMs = Math.max(0, options.durationMs - options.warmupMs - options.quietMs);
    await nemesis.run({ nemeses: options.nemeses, warmupMs: options.warmupMs, faultPhaseMs, holdMs: options.holdMs, gapMs: options.gapMs }, () => false);
    await c.healAll();
    const healedAt = history.now();
    nemesis.note("heal", "final heal: links pass, paused nodes resumed, dead nodes restarted");
    log(`final heal at ${Math.round(healedAt - begin)} ms`);
    const logLive = workloads.some((w) => w.name === "log");
    const dataPlaneLive = options.workloads.some((w) => WORKER_WORKLOADS.has(w));
    liveness = await checkLiveness(c, runId, options, () => history.now() - healedAt, { log: logLive, dataPlane: dataPlaneLive });
    log(`liveness: ${liveness.map((l) => `${l.node} ${l.ok ? `ok after ${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`).join(", ")}`);
    nemesis.note("liveness", liveness.map((l) => `${l.node}: ${l.ok ? `${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`).join("; "));
    const quietLeft = options.quietMs - (history.now() - healedAt);
    if (quietLeft > 0) await Bun.sleep(quietLeft);
    stopClients = true;
    await Promise.all(clientLoops);
    if (liveness.some((l) => !l.ok)) throw new LivenessFailed(liveness);
    log(`clients stopped; final reads`);
    for (const w of workloads) {
      const f0 = performance.now();
      await w.finalReads(ctx);
      log(`final reads of ${w.name}: ${Math.round(performance.now() - f0)} ms`);
    }
    readyToCheck = true;
  } catch (e) {
    if (e instanceof LivenessFailed) {
      // Not a harness error: the verdict is illegal. The final reads would wait on what does not
      // answer (hours, for a partition without a leader), so they and the checks are skipped.
      log(`${e.message}: final reads and checks skipped`);
    } else {
      error = (e as Error).stack ?? String(e);
      log(`chaos run failed: ${(e as Error).message}`);
    }
    stopClients = true;
    await Promise.race([Promise.all(clientLoops), Bun.sleep(options.requestTimeoutMs * 3)]);
  } finally {
    clearInterval(memoryLog);
    stopClients = true;
    for (const w of workloads) await w.stop?.().catch((e: unknown) => log(`stopping workload ${w.name}: ${(e as Error).message}`));
    await cluster?.stop().catch((e: unknown) => log(`stopping the cluster: ${(e as Error).message}`));
  }

  const ops = pairOperations(history.events);
  if (readyToCheck) {
    // The cluster is stopped: what the harness holds now is the history and the workloads' final reads.
    Bun.gc(true);
    const runPeakRssBytes = peakRss();
    resetPeakRss();
    const rssBeforeBytes = process.memoryUsage.rss();
    const t0 = performance.now();
    const perWorkload: Array<{ workload: string; ms: number; peakRssBytes: number | null }> = [];
    let peakRssBytes: number | null = null;
    for (const w of workloads) {
      // What one checker left behind is garbage for the next: collected here, not stacked in the peak.
      Bun.gc(true);
      resetPeakRss();
      const w0 = performance.now();
      checks.push(w.check(ops));
      const peak = peakRss();
      perWorkload.push({ workload: w.name, ms: performance.now() - w0, peakRssBytes: peak });
      if (peak !== null) peakRssBytes = Math.max(peakRssBytes ?? 0, peak);
    }
    checking = { ms: performance.now() - t0, rssBeforeBytes, peakRssBytes, runPeakRssBytes, events: history.events.length, perWorkload };
  }
  const okOperations = ops.filter((o) => o.status === "ok").length;
  let verdict: ChaosResult["verdict"] = "ok";
  if (error !== undefined) verdict = "error";
  else if (checks.some((c) => c.verdict === "illegal") || liveness.some((l) => !l.ok) || (cluster?.unexpectedExits.length ?? 0) > 0) verdict = "illegal";
  else if (checks.some((c) => c.verdict === "unknown")) verdict = "unknown";
  else if (nemesis !== undefined && nemesis.refuseEffects.scheduled > 0 && nemesis.refuseEffects.tookEffect === 0) {
    // The nemesis exists to exercise the log controller's refused-means-dead rule: a run in which it
    // never fired proves nothing about it (and may hide a harness that no longer refuses).
    verdict = "error";
    error = `the refuse nemesis ran ${nemesis.refuseEffects.scheduled} time(s) and no log controller ever declared its node dead by refused connections`;
  }
  else if (checks.length > 0 && okOperations === 0) {
    verdict = "unknown";
    error = "no operation succeeded: the run proves nothing";
  }
  const result: ChaosResult = {
    seed: options.seed,
    verdict,
    checks,
    liveness,
    unexpectedExits: cluster?.unexpectedExits ?? [],
    expectedExits: cluster?.expectedExits ?? [],
    timeline: nemesis?.timeline ?? [],
    faultCounts: countFaults(nemesis?.timeline ?? []),
    writeGaps: stateWriteGaps(ops),
    refuseEffects: { ...(nemesis?.refuseEffects ?? { scheduled: 0, tookEffect: 0 }) },
    operations: ops.length,
    okOperations,
    skippedWorkloads,
    ...(error !== undefined ? { error } : {}),
    elapsedMs: performance.now() - started,
    proxy: cluster ? { ...cluster.proxy.stats } : { connections: 0, refused: 0, resets: 0, unidentified: 0 },
    ...(checking ? { checking } : {}),
  };
  let artifacts: string | undefined;
  if (verdict !== "ok" || options.keepArtifacts) {
    artifacts = writeArtifacts(options, result, history, cluster, dir);
    log(`artifacts of seed ${options.seed}: ${artifacts}`);
  }
  rmSync(dir, { recursive: true, force: true });
  return { ...result, ...(artifacts ? { artifacts } : {}) };
}

const MEMORY_LOG_INTERVAL_MS = 60_000;

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

/** Linux's peak resident set size of this process (VmHWM), or null where /proc does not have it. */
export function peakRss(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Starts Linux's peak-RSS counter again from the current RSS (clear_refs 5); a no-op where it cannot. */
export function resetPeakRss(): void {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    // Not Linux, or not allowed: the peak then covers the whole run, an upper bound.
  }
}

/** One line on what checking cost, against issue 16's budget of 5 minutes and 1 GB. */
export function describeChecking(c: CheckingCost): string {
  const within = c.ms <= CHECK_BUDGET.ms && (c.peakRssBytes ?? 0) <= CHECK_BUDGET.bytes;
  return (
    `${(c.ms / 1000).toFixed(1)} s, peak ${c.peakRssBytes === null ? "unknown" : `${mib(c.peakRssBytes)} MiB`} RSS ` +
    `(${mib(c.rssBeforeBytes)} MiB before, holding ${c.events} history events; run peak ${c.runPeakRssBytes === null ? "unknown" : `${mib(c.runPeakRssBytes)} MiB`}) — ` +
    `[${c.perWorkload.map((w) => `${w.workload} ${(w.ms / 1000).toFixed(1)} s/${w.peakRssBytes === null ? "?" : mib(w.peakRssBytes)} MiB`).join(", ")}] ` +
    `${within ? "within" : "OVER"} the budget of ${CHECK_BUDGET.ms / 60_000} min and ${mib(CHECK_BUDGET.bytes)} MiB`
  );
}

/**
 * After the final heal: each node must serve a metadata write and a linearizable read within the
 * timeout, and, when the log workload runs, an append to its log (a log that stopped taking appends
 * is a hang even when every acknowledged record is still there). The liveness records are not the
 * workload's (other prefix): its checker counts them for order only.
 */
async function checkLiveness(cluster: ChaosCluster, runId: string, options: ChaosOptions, sinceHeal: () => number, also: { log: boolean; dataPlane: boolean }): Promise<LivenessReport[]> {
  const logApi = new HttpLogApi();
  const logToo = also.log;
  const objects = also.dataPlane ? liveObjectKeys(runId) : [];
  return Promise.all(
    cluster.nodes.map(async (n): Promise<LivenessReport> => {
      const base = cluster.adminUrl(n);
      const key = `chaos/${runId}/live/${n.name}`;
      let lastError: string | null = null;
      let i = 0;
      while (sinceHeal() < options.livenessTimeoutMs) {
        const w = await request(base, "PUT", keyPath(key), { body: i++, timeoutMs: options.requestTimeoutMs });
        if (w.kind === "ok") {
          const r = await request(base, "GET", `${keyPath(key)}?consistency=linearizable`, { timeoutMs: options.requestTimeoutMs });
          if (r.kind === "ok") {
            const a = logToo ? await logApi.append({ name: n.name, admin: base, ingress: cluster.ingressUrl(n) }, String(CHAOS_LOG_ID), `live/${runId}/${n.name}/${i}`, options.requestTimeoutMs) : undefined;
            if (a !== undefined && a.kind !== "ok") lastError = `log append: ${a.code}`;
            else {
              const objectError = await dataPlaneWriteAndRead(cluster.ingressUrl(n), objects, `${n.name}-${i}`, options.requestTimeoutMs);
              if (objectError === null) return { node: n.name, ok: true, recoveredAfterMs: sinceHeal(), lastError: null };
              lastError = objectError;
            }
          } else lastError = `read: ${r.code}`;
        } else lastError = `write: ${w.code}`;
        await Bun.sleep(100);
      }
      return { node: n.name, ok: false, recoveredAfterMs: null, lastError };
    }),
  );
}

/** A liveness failure after the final heal (the run's verdict is illegal; no harness error). */
class LivenessFailed extends Error {
  constructor(readonly reports: readonly LivenessReport[]) {
    super(`liveness failed after the final heal: ${reports.filter((l) => !l.ok).map((l) => `${l.node} (${l.lastError})`).join(", ")}`);
  }
}

const LIVE_SERVICE = "chaos-live";

/** One object key per partition of the harness's partition table: a write through each reaches every partition. */
function liveObjectKeys(runId: string): string[] {
  const table = evenPartitionTable(CHAOS_PARTITIONS);
  const keys: string[] = [];
  for (let p = 0; p < CHAOS_PARTITIONS; p++) {
    for (let i = 0; ; i++) {
      const key = `${runId}-p${p}-${i}`;
      if (partitionOfObject(table, LIVE_SERVICE, key) === p) {
        keys.push(key);
        break;
      }
    }
  }
  return keys;
}

/** Writes `value` to every key through a node's ingress and reads it back; null when all worked, else what failed. */
async function dataPlaneWriteAndRead(ingress: string, keys: readonly string[], value: string, timeoutMs: number): Promise<string | null> {
  for (const [p, key] of keys.entries()) {
    const path = `/v1/objects/${LIVE_SERVICE}/${encodeURIComponent(key)}/state/v`;
    const w = await request(ingress, "PUT", path, { body: value, headers: { "content-type": "text/plain" }, timeoutMs });
    if (w.kind !== "ok") return `object write, partition ${p}: ${w.status ?? "-"} ${w.code}`;
    const r = await request(ingress, "GET", path, { timeoutMs });
    if (r.kind !== "ok") return `object read, partition ${p}: ${r.status ?? "-"} ${r.code}`;
  }
  return null;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
}

function writeArtifacts(options: ChaosOptions, result: ChaosResult, history: History, cluster: ChaosCluster | undefined, dir: string): string {
  const root = options.artifactsRoot ?? join(REPO_ROOT, ".chaos");
  const out = join(root, `${timestamp()}-seed${options.seed}`);
  mkdirSync(join(out, "logs"), { recursive: true });
  writeFileSync(join(out, "history.jsonl"), history.toJsonl());
  writeFileSync(join(out, "nemesis.jsonl"), result.timeline.map((t) => JSON.stringify(t)).join("\n") + "\n");
  writeFileSync(join(out, "result.json"), JSON.stringify({ ...result, timeline: undefined }, (_k, v: unknown) => (v === Infinity ? "Infinity" : v), 2));
  const { log: _log, ...plain } = options;
  writeFileSync(join(out, "options.json"), JSON.stringify(plain, null, 2));
  for (const n of cluster?.nodes ?? []) {
    if (existsSync(n.logFile)) copyFileSync(n.logFile, join(out, "logs", `${n.name}.log`));
    // The data directories as the processes left them (SQLite stores, marker, generation).
    if (existsSync(n.dataDir)) cpSync(n.dataDir, join(out, "data", n.name), { recursive: true, filter: (src) => !src.endsWith("/LOCK") });
  }
  writeFileSync(
    join(out, "README.txt"),
    [
      `cairn chaos run, seed ${options.seed}: ${result.verdict}`,
      "",
      ...result.checks.map((c) => `${c.workload}: ${c.verdict} — ${c.summary}`),
      ...result.liveness.map((l) => `liveness ${l.node}: ${l.ok ? `ok after ${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`),
      ...result.unexpectedExits.map((x) => `UNEXPECTED EXIT of ${x.node} (pid ${x.pid}): ${x.exitCode ?? x.signal}`),
      ...result.expectedExits.map((x) => `expected exit of ${x.node} (pid ${x.pid}) under ${x.cause}: ${x.exitCode ?? x.signal}`),
      ...(result.error ? ["", `error: ${result.error}`] : []),
      "",
      "history.jsonl   invoke/ok/fail/info events (time = ms on a monotonic clock since the run began)",
      "nemesis.jsonl   fault starts and stops on the same clock",
      "result.json     checker reports (failing parts carry their operations and the longest linearizable prefix)",
      "logs/<node>.log each node's output across restarts",
      "data/<node>/    each node's data directory at the end of the run",
      "",
      `repeat the schedule: ${options.rerunCommand ?? `bun run chaos --seed ${options.seed} --nodes ${options.nodes} --duration ${options.durationMs / 1000} --nemesis ${options.nemeses.join(",")} --workload ${options.workloads.join(",")}`}`,
      "(the seed fixes the fault schedule and the clients' choices, not the cluster's timing)",
      "",
    ].join("\n"),
  );
  // strace's record of the fsync calls each fsync-error fault failed.
  for (const f of existsSync(dir) ? readdirSync(dir).filter((x) => x.endsWith(".strace")) : []) {
    mkdirSync(join(out, "strace"), { recursive: true });
    copyFileSync(join(dir, f), join(out, "strace", f));
  }
  return out;
}

/** Faults started per nemesis (from the timeline). */
export function countFaults(timeline: readonly TimelineEntry[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of timeline) if (t.event === "start") counts[t.nemesis] = (counts[t.nemesis] ?? 0) + 1;
  return counts;
}

/** What a chaos test prints and fails with: the run's log lines, each check, liveness, crashes, how to rerun. */
export function testSummary(result: ChaosResult, seed: number, lines: readonly string[], testFile: string): string {
  return [
    ...lines,
    ...result.checks.map((c) => `${c.workload}: ${c.verdict} — ${c.summary}`),
    ...result.liveness.map((l) => `liveness ${l.node}: ${l.ok ? `ok after ${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`),
    ...result.unexpectedExits.map((x) => `UNEXPECTED EXIT of ${x.node} (pid ${x.pid}): ${x.exitCode ?? x.signal}\n${x.logTail}`),
    `faults: ${Object.entries(result.faultCounts).map(([k, n]) => `${k} ${n}`).join(", ") || "none"}${result.refuseEffects.scheduled > 0 ? `; refuse took effect ${result.refuseEffects.tookEffect}/${result.refuseEffects.scheduled}` : ""}`,
    ...(result.checking ? [`checkers: ${describeChecking(result.checking)}`] : []),
    ...(result.writeGaps.length > 0 ? [`longest stretch without a successful object write: ${describeWriteGaps(result.writeGaps)}`] : []),
    `seed ${seed}: ${result.verdict} (${result.operations} ops, ${result.okOperations} ok, ${Math.round(result.elapsedMs / 1000)} s)`,
    ...(result.error ? [`error: ${result.error}`] : []),
    ...(result.artifacts ? [`artifacts: ${result.artifacts}`, `rerun: CAIRN_CHAOS_SEED=${seed} bun test ${testFile}`] : []),
  ].join("\n");
}
