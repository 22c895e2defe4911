// Log benchmark: append throughput and latency of cairn's logs (bifrost) against the disk's own
// limit and NATS JetStream, all in one run on this machine.
//  1. 1 KiB records, closed-loop clients keeping 1, 16, 256 appends in flight (one record per
//     request), plus 16 requests of 16 records, sent to the sequencer's node of log 0:
//     (a) local loglet (1 node, r = 1), (b) replicated (3 nodes, r = 2) with log-server.sync=true,
//     (c) the same with sync=false. Ratio replicated/local p50 at the same load.
//  2. The disk's limit: bun:sqlite WAL, page_size 8192, synchronous=FULL, 256 records/txn, nothing else.
//  3. NATS JetStream, 3 servers, R3 file stream, same records and windows (concurrent js.publish).
//     JetStream acknowledges before fsync: compared with cairn sync=false (sync=true beside it).
//  4. Reconfiguration: kill -9 of the sequencer's node under append load (sent to another node)
//     until an append issued after the kill is acknowledged; the node is restarted between trials.
// Prints a table and writes bench/results/log.json. Every process started is stopped by PID.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/log.ts
// Every system first takes --system-warmup seconds of load (16 in flight) before its idle CPU and
// its cells are measured: a fresh cairn process appends about half as fast in its first seconds as
// after 15 s (JIT, store files), and the goal is the steady state (warm-up figures are in the JSON).
// Options: --seconds 3 --warmup 0.5 --system-warmup 15 --trials 10 --trial-budget 150 (s) --no-nats --keep (temp dirs)
//   --only reconfiguration: part 4 alone (3 nodes, sync=true, no throughput cells); writes
//   bench/results/log-reconfiguration.json and leaves log.json alone. CAIRN_BIFROST__* variables in
//   the environment reach every node (e.g. CAIRN_BIFROST__REFUSED_DEAD_MS=0 for the timeout alone).
import { logBenchSession } from "./log/session.ts";
import { choiceArg, flagArg, numArg } from "./args.ts";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { CairnCluster, SingleNode, appendBody, appendClient, appendRecords, nodeId, retryUntil, sequencerNode, tailSegment, withEnv } from "./log/cairn.ts";
import { sqliteGroupCommitLimit, type DiskLimit } from "./log/disk.ts";
import { NatsCluster, SUBJECT, natsVersion } from "./log/nats.ts";
import type { BenchNode } from "./metadata/cluster.ts";
import { type LoadStats, errorText, percentile, round, runLoad } from "./metadata/load.ts";
import type { CpuUsage } from "./metadata/procstat.ts";

// ---------------------------------------------------------------------------------------------
// Settings

const MEASURE_MS = numArg("seconds", 3) * 1000;
const WARMUP_MS = numArg("warmup", 0.5) * 1000;
/** Load before a system's first cell: Bun's JIT and the stores take seconds to reach steady state. */
const SYSTEM_WARMUP_MS = numArg("system-warmup", 15) * 1000;
const SYSTEM_WARMUP_WINDOW = 16;
const SYSTEM_WARMUP_STEP_MS = 3000;
const TRIALS = Math.round(numArg("trials", 10));
const TRIAL_BUDGET_MS = numArg("trial-budget", 150) * 1000;
const WITH_NATS = !flagArg("no-nats");
const KEEP_DIRS = flagArg("keep");
const ONLY = choiceArg("only", ["reconfiguration"] as const);
const RECORD_BYTES = 1024;
const LOG = 0;
const DEADLINE_MS = 10_000;
const START_TIMEOUT_MS = 60_000;
const WINDOWS = [1, 16, 256];
const BATCH = { window: 16, recordsPerRequest: 16 };
const FAILOVER_WRITERS = 8;
const RECOVERY_WAIT_MAX_MS = 30_000;

type System = "cairn-local" | "cairn-replicated-sync" | "cairn-replicated-nosync" | "jetstream-r3";

const RECORD = "r".repeat(RECORD_BYTES);
const BODY_1 = appendBody([RECORD]);
const BODY_BATCH = appendBody(Array.from({ length: BATCH.recordsPerRequest }, () => RECORD));
const PAYLOAD = new TextEncoder().encode(RECORD);

// ---------------------------------------------------------------------------------------------
// Processes: everything we start is tracked and stopped, whatever happens.

const { registry, stoppers, stopEverything, anomalies, anomaly, cpuMeter } = logBenchSession();

// ---------------------------------------------------------------------------------------------
// Cells

interface Cell extends LoadStats {
  system: System;
  window: number;
  recordsPerRequest: number;
  recordsPerSecond: number;
  mbPerSecond: number;
  target: string;
  cpu: CpuUsage;
  /** The HTTP client that sent cairn's appends (see appendClient). */
  client?: string;
}

async function cell(system: System, window: number, recordsPerRequest: number, target: string, op: (signal: AbortSignal) => Promise<void>): Promise<Cell> {
  const cpu0 = cpuMeter.mark();
  const stats = await runLoad({ concurrency: window, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, deadlineMs: DEADLINE_MS, op: (_c, _s, signal) => op(signal) });
  const cpu = cpuMeter.since(cpu0);
  const recordsPerSecond = Math.round(stats.opsPerSecond * recordsPerRequest);
  const c: Cell = { system, window, recordsPerRequest, target, ...stats, recordsPerSecond, mbPerSecond: round((recordsPerSecond * RECORD_BYTES) / 1e6, 2), cpu };
  console.error(
    `${system.padEnd(24)} in-flight ${String(window).padStart(3)} × ${recordsPerRequest} rec: ${String(recordsPerSecond).padStart(6)} rec/s  p50 ${stats.latencyMsP50} ms  p99 ${stats.latencyMsP99} ms  errors ${stats.errors}  (other CPU ${cpu.otherPct}%)`,
  );
  if (stats.errors > 0) anomaly(`${system} in-flight ${window}×${recordsPerRequest}: ${stats.errors} errors ${JSON.stringify(stats.errorSamples)}`);
  return c;
}

/** Node of the sequencer of log 0's tail segment. */
async function sequencerOf(nodes: BenchNode[]): Promise<{ node: BenchNode; sequencer: string; kind: string; nodeset: string[] }> {
  for (const n of nodes) {
    try {
      const seg = await tailSegment(n.url, LOG);
      const id = sequencerNode(seg);
      const node = nodes.find((m) => m.id === id);
      if (node === undefined) throw new Error(`sequencer ${seg.sequencer} is no node we know`);
      return { node, sequencer: seg.sequencer, kind: seg.kind, nodeset: seg.nodeset };
    } catch {
      // Try the next node.
    }
  }
  throw new Error("no node answers with log 0's chain");
}

/** Records/s of each warm-up step, per system. */
const warmup: Partial<Record<System, number[]>> = {};
async function warmUp(system: System, op: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const steps: number[] = [];
  for (let spent = 0; spent < SYSTEM_WARMUP_MS; spent += SYSTEM_WARMUP_STEP_MS) {
    const stats = await runLoad({ concurrency: SYSTEM_WARMUP_WINDOW, warmupMs: 0, measureMs: Math.min(SYSTEM_WARMUP_STEP_MS, SYSTEM_WARMUP_MS - spent), deadlineMs: DEADLINE_MS, op: (_c, _s, signal) => op(signal) });
    steps.push(Math.round(stats.opsPerSecond));
  }
  warmup[system] = steps;
  if (steps.length > 0) console.error(`${system} warm-up (${SYSTEM_WARMUP_WINDOW} in flight, rec/s per ${SYSTEM_WARMUP_STEP_MS / 1000} s): ${steps.join(" ")}`);
}

const idleCpu: Partial<Record<System, CpuUsage>> = {};
async function measureIdle(system: System): Promise<void> {
  const m = cpuMeter.mark();
  await Bun.sleep(2000);
  idleCpu[system] = cpuMeter.since(m);
  console.error(`${system} idle: ${JSON.stringify(idleCpu[system]!.byGroupPct)} (% of the machine)`);
}

async function cairnCells(system: System, nodes: BenchNode[]): Promise<Cell[]> {
  const out: Cell[] = [];
  const first = await sequencerOf(nodes);
  const warmClient = await appendClient(first.node.url, LOG, BODY_1);
  try {
    await warmUp(system, warmClient.append);
  } finally {
    await warmClient.close();
  }
  await measureIdle(system);
  console.error(`${system}: log ${LOG} tail segment ${first.kind}, sequencer ${first.sequencer}, nodeset ${first.nodeset.join(",")}`);
  const specs = [...WINDOWS.map((w) => ({ window: w, rpr: 1 })), { window: BATCH.window, rpr: BATCH.recordsPerRequest }];
  for (const s of specs) {
    const seq = await sequencerOf(nodes);
    if (seq.sequencer !== first.sequencer) anomaly(`${system}: sequencer of log ${LOG} moved ${first.sequencer} → ${seq.sequencer} between cells`);
    const client = await appendClient(seq.node.url, LOG, s.rpr === 1 ? BODY_1 : BODY_BATCH);
    try {
      out.push({ ...(await cell(system, s.window, s.rpr, `${seq.node.id} (${seq.kind})`, client.append)), client: client.client });
    } finally {
      await client.close();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reconfiguration trials

interface Trial {
  trial: number;
  killed: string;
  killedWasMetadataLeader: boolean | null;
  loadTo: string;
  oldSequencer: string;
  newSequencer: string | null;
  /** kill → first acknowledgement of an append issued after the kill. */
  recoveryMs: number | null;
  /** kill → first acknowledgement of any append (incl. ones in flight at the kill). */
  firstAckMs: number | null;
  errors: number;
  indeterminate: number;
  errorSamples: Record<string, number>;
  longestRequestMs: number;
}

async function reconfigurationTrial(cluster: CairnCluster, trial: number): Promise<Trial> {
  const nodes = cluster.nodes;
  const seq = await sequencerOf(nodes);
  const victim = seq.node;
  const target = nodes.find((n) => n !== victim)!;
  const metaLeader = await cluster.roles().then((r) => r.leaderId, () => null);
  let stop = false;
  let killAt = Number.POSITIVE_INFINITY;
  let recoveredAt: number | null = null;
  let firstAckAt: number | null = null;
  let errors = 0;
  let indeterminate = 0;
  let longest = 0;
  const errorSamples: Record<string, number> = {};
  const writer = async () => {
    while (!stop) {
      const issued = performance.now();
      try {
        await appendRecords(target.url, LOG, BODY_1, AbortSignal.timeout(DEADLINE_MS));
        const done = performance.now();
        if (done > killAt && firstAckAt === null) firstAckAt = done;
        if (issued > killAt && recoveredAt === null) recoveredAt = done;
        if (issued > killAt - 0) longest = Math.max(longest, done - issued);
      } catch (e) {
        const done = performance.now();
        longest = Math.max(longest, done - issued);
        if (done > killAt) {
          errors++;
          const k = errorText(e);
          if ((e instanceof Error ? e.message : String(e)).includes("CAIRN-LOG-0014")) indeterminate++;
          if (errorSamples[k] !== undefined || Object.keys(errorSamples).length < 6) errorSamples[k] = (errorSamples[k] ?? 0) + 1;
        }
        await Bun.sleep(20);
      }
    }
  };
  const writers = Array.from({ length: FAILOVER_WRITERS }, writer);
  await Bun.sleep(1000);
  cpuMeter.mark(); // a killed process's jiffies since the last mark are lost
  killAt = performance.now();
  cluster.killHard(victim);
  const deadline = killAt + RECOVERY_WAIT_MAX_MS;
  while (recoveredAt === null && performance.now() < deadline) await Bun.sleep(10);
  stop = true;
  await Promise.all(writers);
  const after = await tailSegment(target.url, LOG).catch(() => null);
  const t: Trial = {
    trial,
    killed: victim.id!,
    killedWasMetadataLeader: metaLeader === null ? null : metaLeader === victim.id,
    loadTo: target.id!,
    oldSequencer: seq.sequencer,
    newSequencer: after?.sequencer ?? null,
    recoveryMs: recoveredAt === null ? null : round(recoveredAt - killAt, 1),
    firstAckMs: firstAckAt === null ? null : round(firstAckAt - killAt, 1),
    errors,
    indeterminate,
    errorSamples,
    longestRequestMs: round(longest, 1),
  };
  console.error(`trial ${trial}: killed ${t.killed}${t.killedWasMetadataLeader ? " (metadata leader)" : ""}, ${t.oldSequencer} → ${t.newSequencer}: recovery ${t.recoveryMs} ms, first ack ${t.firstAckMs} ms, errors ${errors} (indeterminate ${indeterminate})`);
  if (recoveredAt === null) anomaly(`reconfiguration trial ${trial}: no append acknowledged within ${RECOVERY_WAIT_MAX_MS} ms of killing ${victim.id}`);
  // Restart, then wait until the log is back on a full nodeset (the controller's auto-improve), so
  // the next trial starts from the same shape and is not disturbed by that reconfiguration.
  await cluster.restart(victim);
  await retryUntil(`${victim.name} answering after restart`, 30_000, () => nodeId(victim.url));
  await retryUntil("log 0 back on a 3-node nodeset", 25_000, async () => {
    const seg = await tailSegment(target.url, LOG);
    if (seg.nodeset.length < 3) throw new Error(`nodeset ${seg.nodeset.join(",")}`);
  }).catch((e: unknown) => anomaly(`after trial ${trial}: ${e instanceof Error ? e.message : String(e)}`));
  await appendRecords(target.url, LOG, BODY_1, AbortSignal.timeout(DEADLINE_MS)).catch((e: unknown) => anomaly(`after trial ${trial}: append failed ${errorText(e)}`));
  return t;
}

// ---------------------------------------------------------------------------------------------
// Clusters

async function identify(nodes: BenchNode[]): Promise<void> {
  for (const n of nodes) n.id = await retryUntil(`${n.name} /v1/node`, 30_000, () => nodeId(n.url));
}

/** Every node runs with log-server.sync as the system under test says (its effective configuration). */
async function checkLogServerSync(nodes: BenchNode[], sync: boolean): Promise<void> {
  for (const n of nodes) {
    const res = await fetch(`${n.url}/v1/node/config`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${n.name}: GET /v1/node/config answered ${res.status}`);
    const actual = ((await res.json()) as { "log-server": { sync: boolean } })["log-server"].sync;
    if (actual !== sync) throw new Error(`${n.name} runs with log-server.sync = ${actual}, the benchmark asked for ${sync}`);
  }
}

async function waitAppendable(url: string): Promise<void> {
  await retryUntil("first append to log 0", 30_000, () => appendRecords(url, LOG, BODY_1, AbortSignal.timeout(5000)));
}

async function runLocal(base: string): Promise<Cell[]> {
  const single = await SingleNode.start(registry, join(base, "cairn-local"), START_TIMEOUT_MS);
  stoppers.push(() => single.stop());
  try {
    await identify([single.node]);
    await waitAppendable(single.node.url);
    const seg = await tailSegment(single.node.url, LOG);
    if (seg.kind !== "local") {
      anomaly(`single-node cluster provisioned with replication 1 gave log ${LOG} a '${seg.kind}' segment (expected 'local'); reconfiguring it to local`);
      const res = await fetch(`${single.node.url}/v1/logs/${LOG}/reconfigure`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "local" }), signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`reconfigure to local: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      await waitAppendable(single.node.url);
    }
    return await cairnCells("cairn-local", [single.node]);
  } finally {
    await single.stop();
  }
}

async function runReplicated(base: string, sync: boolean, trials: number, withCells = true): Promise<{ cells: Cell[]; trials: Trial[]; trialsNote?: string }> {
  const system: System = sync ? "cairn-replicated-sync" : "cairn-replicated-nosync";
  return await withEnv({ CAIRN_LOG_SERVER__SYNC: String(sync) }, async () => {
    const cluster = await CairnCluster.start(registry, join(base, system), START_TIMEOUT_MS);
    stoppers.push(() => cluster.stop());
    try {
      await identify(cluster.nodes);
      await checkLogServerSync(cluster.nodes, sync);
      await waitAppendable(cluster.nodes[0]!.url);
      await retryUntil("log 0 on a 3-node nodeset", 20_000, async () => {
        const seg = await tailSegment(cluster.nodes[0]!.url, LOG);
        if (seg.kind !== "replicated" || seg.nodeset.length < 3) throw new Error(`${seg.kind} ${seg.nodeset.join(",")}`);
      }).catch((e: unknown) => anomaly(`${system}: ${e instanceof Error ? e.message : String(e)}`));
      const cells = withCells ? await cairnCells(system, cluster.nodes) : [];
      const done: Trial[] = [];
      let trialsNote: string | undefined;
      const t0 = performance.now();
      for (let i = 1; i <= trials; i++) {
        if (performance.now() - t0 > TRIAL_BUDGET_MS) {
          trialsNote = `stopped after ${done.length} trials: time budget of ${TRIAL_BUDGET_MS / 1000} s spent`;
          break;
        }
        try {
          done.push(await reconfigurationTrial(cluster, i));
        } catch (e) {
          trialsNote = `trial ${i} failed: ${e instanceof Error ? e.message : String(e)}`;
          anomaly(trialsNote);
          break;
        }
      }
      return { cells, trials: done, ...(trialsNote ? { trialsNote } : {}) };
    } finally {
      await cluster.stop();
      // Nodes restarted by the trials are our children, not `cairn dev`'s: stop them too before the next phase.
      await registry.stopAll(10_000);
    }
  });
}

async function runNats(base: string): Promise<{ cells: Cell[]; version?: string; skipped?: string }> {
  if (!WITH_NATS) return { cells: [], skipped: "--no-nats" };
  if (Bun.which("nats-server") === null) {
    console.error("nats-server is missing: running bench/setup-nats.sh");
    const r = Bun.spawnSync(["bash", join(import.meta.dir, "setup-nats.sh")], { stdout: "inherit", stderr: "inherit", stdin: "ignore" });
    if (r.exitCode !== 0) {
      anomaly(`bench/setup-nats.sh failed (exit ${r.exitCode}); no JetStream rows`);
      return { cells: [], skipped: "setup-nats.sh failed" };
    }
  }
  const version = natsVersion();
  const dir = join(base, "nats");
  const nats = await NatsCluster.start(registry, dir);
  stoppers.push(() => nats.stop());
  try {
    const { js, leader } = await nats.streamPublisher(START_TIMEOUT_MS);
    console.error(`jetstream-r3: stream leader ${leader}`);
    const publish = async (signal: AbortSignal): Promise<void> => {
      const ack = js.publish(SUBJECT, PAYLOAD);
      // js.publish has its own timeout; the load generator's deadline is honoured by racing it.
      await Promise.race([ack, new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))]);
    };
    await warmUp("jetstream-r3", publish);
    await measureIdle("jetstream-r3");
    const cells: Cell[] = [];
    for (const w of WINDOWS) cells.push(await cell("jetstream-r3", w, 1, leader, publish));
    return { cells, ...(version ? { version } : {}) };
  } finally {
    await nats.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
function ratio(a: number | null | undefined, b: number | null | undefined, digits = 2): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return round(a / b, digits);
}
function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? "—" : String(x);
}
function cairnSource(): { commit: string | null; srcDirty: boolean | null } {
  const repo = join(import.meta.dir, "..");
  const head = Bun.spawnSync(["git", "rev-parse", "HEAD"], { cwd: repo, stdout: "pipe", stderr: "ignore" });
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--", "src"], { cwd: repo, stdout: "pipe", stderr: "ignore" });
  return { commit: head.exitCode === 0 ? head.stdout.toString().trim() : null, srcDirty: dirty.exitCode === 0 ? dirty.stdout.toString().trim().length > 0 : null };
}

function summarise(trials: Trial[], note: string | undefined) {
  const rec = trials.map((t) => t.recoveryMs).filter((x): x is number => x !== null);
  return {
    trials: trials.length,
    recovered: rec.length,
    recoveryMsMedian: median(rec),
    recoveryMsMin: rec.length ? Math.min(...rec) : null,
    recoveryMsMax: rec.length ? Math.max(...rec) : null,
    recoveryMsP90: rec.length ? percentile([...rec].sort((a, b) => a - b), 90) : null,
    ...(note ? { note } : {}),
    perTrial: trials,
  };
}

function reconfigurationLine(r: ReturnType<typeof summarise>): string {
  return `reconfiguration (kill -9 of the sequencer's node, sync=true, ${FAILOVER_WRITERS} writers to another node): ${r.trials} trials, median ${fmt(r.recoveryMsMedian)} ms, min ${fmt(r.recoveryMsMin)}, max ${fmt(r.recoveryMsMax)}${r.note ? ` (${r.note})` : ""}`;
}

/** The CAIRN_BIFROST__* settings every node inherits from this process (none: the defaults). */
function bifrostEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("CAIRN_BIFROST__") && e[1] !== undefined));
}

/** `--only reconfiguration`: the kill -9 trials alone, on a fresh 3-node cluster. */
async function mainReconfiguration(): Promise<void> {
  const started = performance.now();
  const base = mkdtempSync(join(tmpdir(), "cairn-bench-log-"));
  const cpuRun0 = cpuMeter.mark();
  let result: { trials: Trial[]; trialsNote?: string } = { trials: [] };
  let failed: string | undefined;
  try {
    result = await runReplicated(base, true, TRIALS, false);
  } catch (e) {
    failed = e instanceof Error ? (e.stack ?? e.message) : String(e);
    anomaly(`reconfiguration trials failed: ${failed}`);
  } finally {
    await stopEverything();
    if (!KEEP_DIRS) rmSync(base, { recursive: true, force: true });
    else console.error(`kept ${base}`);
  }
  const cpuRun = cpuMeter.since(cpuRun0);
  const source = cairnSource();
  const reconfiguration = summarise(result.trials, result.trialsNote);
  const env = bifrostEnv();
  console.log(
    `\ncairn ${source.commit?.slice(0, 7) ?? "?"}${source.srcDirty ? " (src/ modified)" : ""}; ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores; Bun ${Bun.version}; bifrost settings ${Object.keys(env).length ? JSON.stringify(env) : "default"}; CPU of other users during the run ${cpuRun.otherPct}% of the machine`,
  );
  console.log(reconfigurationLine(reconfiguration));
  const results = {
    benchmark: "log --only reconfiguration",
    date: new Date().toISOString(),
    cairn: source,
    machine: { cpu: cpus()[0]?.model ?? null, cores: cpus().length, memoryBytes: totalmem(), kernel: release(), bun: Bun.version },
    settings: { recordBytes: RECORD_BYTES, writers: FAILOVER_WRITERS, trials: TRIALS, trialBudgetMs: TRIAL_BUDGET_MS, deadlineMs: DEADLINE_MS, log: LOG, bifrostEnv: env },
    reconfiguration,
    cpuRun,
    failed: failed ?? null,
    anomalies,
    runSeconds: round((performance.now() - started) / 1000, 1),
  };
  mkdirSync(join(import.meta.dir, "results"), { recursive: true });
  writeFileSync(join(import.meta.dir, "results", "log-reconfiguration.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.error(`wrote bench/results/log-reconfiguration.json (${results.runSeconds} s)`);
}

async function main(): Promise<void> {
  if (ONLY === "reconfiguration") return mainReconfiguration();
  const started = performance.now();
  const base = mkdtempSync(join(tmpdir(), "cairn-bench-log-"));
  const cpuRun0 = cpuMeter.mark();
  let disk: DiskLimit | undefined;
  let local: Cell[] = [];
  let sync: { cells: Cell[]; trials: Trial[]; trialsNote?: string } = { cells: [], trials: [] };
  let nosync: { cells: Cell[]; trials: Trial[] } = { cells: [], trials: [] };
  let nats: { cells: Cell[]; version?: string; skipped?: string } = { cells: [] };
  const missing: string[] = [];
  const phase = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      missing.push(name);
      anomaly(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  };
  try {
    mkdirSync(join(base, "disk"));
    await phase("disk limit", async () => {
      disk = sqliteGroupCommitLimit(join(base, "disk"), MEASURE_MS / 1000, RECORD_BYTES);
      console.error(`disk limit (SQLite WAL FULL, 256 × 1 KiB per txn): ${disk.recordsPerSecond} rec/s, ${disk.mbPerSecond} MB/s, txn p50 ${disk.txnMsP50} ms`);
    });
    await phase("cairn local", async () => {
      local = await runLocal(base);
    });
    await phase("cairn replicated sync=true", async () => {
      sync = await runReplicated(base, true, TRIALS);
    });
    await phase("cairn replicated sync=false", async () => {
      nosync = await runReplicated(base, false, 0);
    });
    await phase("jetstream", async () => {
      nats = await runNats(base);
    });
  } finally {
    await stopEverything();
    if (!KEEP_DIRS) rmSync(base, { recursive: true, force: true });
    else console.error(`kept ${base}`);
  }
  const cpuRun = cpuMeter.since(cpuRun0);

  // Tables
  const key = (c: Cell) => `${c.window}x${c.recordsPerRequest}`;
  const find = (cells: Cell[], k: string) => cells.find((c) => key(c) === k);
  const keys = [...WINDOWS.map((w) => `${w}x1`), `${BATCH.window}x${BATCH.recordsPerRequest}`];
  const systems: Array<[string, Cell[]]> = [["cairn local", local], ["cairn r=2 sync", sync.cells], ["cairn r=2 nosync", nosync.cells], ["JetStream R3", nats.cells]];
  const source = cairnSource();
  const lines: string[] = [];
  lines.push(`\ncairn ${source.commit?.slice(0, 7) ?? "?"}${source.srcDirty ? " (src/ modified)" : ""}; ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores; Bun ${Bun.version}; ${nats.version ?? "nats-server not run"}; 1 KiB records; CPU of other users during the run ${cpuRun.otherPct}% of the machine`);
  lines.push(`disk limit (bun:sqlite WAL, FULL, 256 rec/txn): ${fmt(disk?.recordsPerSecond)} rec/s, ${fmt(disk?.mbPerSecond)} MB/s, txn p50 ${fmt(disk?.txnMsP50)} ms p99 ${fmt(disk?.txnMsP99)} ms\n`);
  lines.push(`| system | in flight × rec/req | rec/s | MB/s | p50 ms | p99 ms | errors |`);
  lines.push(`|---|---|---:|---:|---:|---:|---:|`);
  for (const [name, cells] of systems) {
    for (const k of keys) {
      const c = find(cells, k);
      if (c === undefined) continue;
      lines.push(`| ${name} | ${c.window} × ${c.recordsPerRequest} | ${c.recordsPerSecond} | ${c.mbPerSecond} | ${c.latencyMsP50} | ${c.latencyMsP99} | ${c.errors} |`);
    }
  }
  const ratios = keys.map((k) => {
    const l = find(local, k);
    const s = find(sync.cells, k);
    const n = find(nosync.cells, k);
    const j = find(nats.cells, k);
    return {
      load: k,
      replicatedSyncOverLocalP50: ratio(s?.latencyMsP50, l?.latencyMsP50),
      replicatedNosyncOverLocalP50: ratio(n?.latencyMsP50, l?.latencyMsP50),
      nosyncOverJetstreamThroughput: ratio(n?.recordsPerSecond, j?.recordsPerSecond),
      nosyncOverJetstreamP50: ratio(n?.latencyMsP50, j?.latencyMsP50),
      syncOverJetstreamThroughput: ratio(s?.recordsPerSecond, j?.recordsPerSecond),
      syncOverJetstreamP50: ratio(s?.latencyMsP50, j?.latencyMsP50),
      syncOverDiskLimitThroughput: ratio(s?.recordsPerSecond, disk?.recordsPerSecond, 3),
    };
  });
  lines.push(`\n| load | repl sync / local p50 | repl nosync / local p50 | nosync / JS rec/s | nosync / JS p50 | sync / JS rec/s | sync / JS p50 | sync / disk limit rec/s |`);
  lines.push(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const r of ratios) {
    lines.push(`| ${r.load} | ${fmt(r.replicatedSyncOverLocalP50)} | ${fmt(r.replicatedNosyncOverLocalP50)} | ${fmt(r.nosyncOverJetstreamThroughput)} | ${fmt(r.nosyncOverJetstreamP50)} | ${fmt(r.syncOverJetstreamThroughput)} | ${fmt(r.syncOverJetstreamP50)} | ${fmt(r.syncOverDiskLimitThroughput)} |`);
  }
  const reconfiguration = summarise(sync.trials, sync.trialsNote);
  lines.push(`\n${reconfigurationLine(reconfiguration)}`);
  if (missing.length) lines.push(`missing: ${missing.join(", ")}`);
  console.log(lines.join("\n"));

  const results = {
    benchmark: "log",
    date: new Date().toISOString(),
    cairn: source,
    machine: { cpu: cpus()[0]?.model ?? null, cores: cpus().length, memoryBytes: totalmem(), kernel: release(), bun: Bun.version, natsServer: nats.version ?? null },
    settings: { recordBytes: RECORD_BYTES, measureMs: MEASURE_MS, warmupMs: WARMUP_MS, systemWarmup: { ms: SYSTEM_WARMUP_MS, window: SYSTEM_WARMUP_WINDOW, stepMs: SYSTEM_WARMUP_STEP_MS }, windows: WINDOWS, batch: BATCH, deadlineMs: DEADLINE_MS, log: LOG, bifrostEnv: bifrostEnv(), clients: "closed-loop; cairn: node:http2 on one h2c connection to the sequencer's node's admin API; JetStream: nats.js on one connection to the stream leader" },
    diskLimit: disk ?? null,
    cells: { cairnLocal: local, cairnReplicatedSync: sync.cells, cairnReplicatedNosync: nosync.cells, jetstream: nats.cells },
    ratios,
    reconfiguration,
    cpuRun,
    warmup: { note: "records/s of each warm-up step before the cells (16 in flight, one record per request)", ...warmup },
    idleCpu: { note: "CPU of each cluster idle for 2 s after its warm-up (% of the whole machine)", ...idleCpu },
    missing,
    natsSkipped: nats.skipped ?? null,
    anomalies,
    runSeconds: round((performance.now() - started) / 1000, 1),
  };
  mkdirSync(join(import.meta.dir, "results"), { recursive: true });
  writeFileSync(join(import.meta.dir, "results", "log.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.error(`wrote bench/results/log.json (${results.runSeconds} s)`);
}

await main().catch(async (e: unknown) => {
  console.error(e);
  await stopEverything();
  process.exit(1);
});
process.exit(0);
