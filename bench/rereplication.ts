// Re-replication benchmark (issue 16, "Measure"): how fast cairn copies a sealed segment onto new
// log-servers once a log needs more copies, what that copy does to appends on another log, and how
// long NATS JetStream takes to raise a stream holding the same records from R1 to R3.
//  cairn, per round on a fresh cluster: node 1 alone (replication 1) gets --mb MB of 1 KiB records
//  in log 0 (batched appends); nodes 2 and 3 join; log 1 moves to replication 3 on all three. A
//  baseline of appends to log 1 (16 in flight, one record each, separate load process, sent to its
//  sequencer's node) for --seconds; then log 0 is reconfigured to replication 3, which leaves its
//  old segment (sealed, on N1 only) under-replicated; the log controller copies it onto N2 and N3
//  in the background while the same load runs. Time: reconfigure → `underReplicatedRecords` 0 and
//  the old segment's nodeset of 3. Then kill -9 of N1 and a sample of log 0's records read back
//  through N2 (the copies are real).
//  JetStream 2.9, per round on a fresh cluster: 3 servers, an R1 file stream, the same records
//  published (async, 256 in flight), the stream updated to R3 through the npm client; time until
//  every replica is current with no lag. Then kill -9 of the original server and the stream's
//  message count and a sample of messages read from the survivors.
// Medians of --rounds rounds with their spread; prints a table, writes bench/results/rereplication.json
// (`"smoke": true` below 200 MB or 3 rounds). Every process started is stopped by PID.
//
// Why a script of its own and not `bench/log.ts --only rereplication`: the clusters differ (nodes
// started one by one and grown, an R1 stream), the measurement is a time and not load cells, and a
// run takes minutes per round; nothing of log.ts's cells would be shared.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/rereplication.ts
// Options: --mb 200 --rounds 3 --seconds 10 (baseline window) --no-nats --keep (temp dirs)
// CAIRN_BIFROST__* variables reach every node (e.g. CAIRN_BIFROST__REREPLICATION_BYTES_PER_SECOND).
import { logBenchSession } from "./log/session.ts";
import { flagArg, numArg } from "./args.ts";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { appendBody, retryUntil, sequencerNode, tailSegment, type Segment } from "./log/cairn.ts";
import { GrowingCluster } from "./log/growing.ts";
import { NatsCluster, STREAM, SUBJECT, natsVersion } from "./log/nats.ts";
import { httpFail } from "./metadata/cluster.ts";
import { type LoadStats, mergeRaw, round, summarizeLoad } from "./metadata/load.ts";
import type { LoadJob } from "./metadata/load-jobs.ts";
import { type LoadCpu, LoadProcesses } from "./metadata/load-procs.ts";
import type { CpuUsage } from "./metadata/procstat.ts";

// ---------------------------------------------------------------------------------------------
// Settings

const MB = numArg("mb", 200);
const ROUNDS = Math.max(1, Math.round(numArg("rounds", 3)));
const BASELINE_MS = numArg("seconds", 10) * 1000;
const WITH_NATS = !flagArg("no-nats");
const KEEP_DIRS = flagArg("keep");
const SMOKE = MB < 200 || ROUNDS < 3;

const RECORD_BYTES = 1024;
const RECORDS = Math.max(1, Math.ceil((MB * 1e6) / RECORD_BYTES));
const COPY_LOG = 0;
const LOAD_LOG = 1;
const REPLICATION = 3;
const FILL_RECORDS_PER_REQUEST = 256;
const FILL_IN_FLIGHT = 8;
const NATS_FILL_IN_FLIGHT = 256;
const LOAD_CLIENTS = 16;
const LOAD_WARMUP_MS = 1000;
const DEADLINE_MS = 10_000;
const START_TIMEOUT_MS = 60_000;
const POLL_MS = 50;
/** A copy slower than this is a failure of the round (2 s per MB, at least 2 minutes). */
const COPY_TIMEOUT_MS = Math.max(120_000, MB * 2000);
/** Records read back after the copy (first, last and evenly spread between). */
const VERIFY_SAMPLES = 10;

// A record names its index, so a read-back proves which record came back.
const PAD = "x".repeat(RECORD_BYTES - 11);
const record = (i: number): string => `${String(i).padStart(10, "0")}:${PAD}`;
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Processes: everything we start is tracked and stopped, whatever happens.

const { registry, stoppers, stopEverything, anomalies, anomaly, cpuMeter } = logBenchSession();
const mbOf = (records: number) => round((records * RECORD_BYTES) / 1e6, 1);

// ---------------------------------------------------------------------------------------------
// cairn

interface LogInfo {
  segments: Segment[];
  underReplicatedRecords: number;
  rereplication: { segment: number; targets: string[]; records: number; copiedRecords: number; state: string; error?: string; startedAtMs: number; finishedAtMs: number | null } | null;
}

async function logInfo(url: string, log: number): Promise<LogInfo> {
  const res = await fetch(`${url}/v1/logs/${log}`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) await httpFail(res, `describe log ${log}`);
  return ((await res.json()) as { log: LogInfo }).log;
}

async function post(url: string, body: unknown, what: string, timeoutMs = 30_000): Promise<unknown> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) await httpFail(res, what);
  return await res.json();
}

/** Appends `count` records to `log` in batches; the LSN of every batch's first record (by batch). */
async function fillCairn(url: string, log: number, count: number): Promise<number[]> {
  const batches = Math.ceil(count / FILL_RECORDS_PER_REQUEST);
  const firstLsn: number[] = new Array<number>(batches);
  const append = async (b: number): Promise<void> => {
    const from = b * FILL_RECORDS_PER_REQUEST;
    const records = Array.from({ length: Math.min(FILL_RECORDS_PER_REQUEST, count - from) }, (_, k) => record(from + k));
    const r = (await post(`${url}/v1/logs/${log}/records`, JSON.parse(appendBody(records)), "fill append", DEADLINE_MS)) as { firstLsn: number; count: number };
    if (r.count !== records.length) throw new Error(`fill append: ${r.count} of ${records.length} records acknowledged`);
    firstLsn[b] = r.firstLsn;
  };
  // The first batch waits for the freshly provisioned log to take appends (a refused append stores nothing).
  await retryUntil(`first append to log ${log}`, START_TIMEOUT_MS, () => append(0));
  let next = 1;
  await Promise.all(
    Array.from({ length: FILL_IN_FLIGHT }, async () => {
      while (next < batches) await append(next++);
    }),
  );
  return firstLsn;
}

/** LSN of record `i` given the batches' first LSNs. */
function lsnOf(firstLsn: number[], i: number): number {
  return firstLsn[Math.floor(i / FILL_RECORDS_PER_REQUEST)]! + (i % FILL_RECORDS_PER_REQUEST);
}

function sampleIndexes(count: number): number[] {
  const n = Math.min(count, VERIFY_SAMPLES);
  return [...new Set(Array.from({ length: n }, (_, k) => (n === 1 ? 0 : Math.round((k * (count - 1)) / (n - 1)))))];
}

type LoadRun = LoadStats & { loadCpu: LoadCpu; cpu: CpuUsage };

/**
 * Appends to LOAD_LOG from a separate process (LOAD_CLIENTS in flight, one 1 KiB record each) to
 * `url`, measured for `measureMs`, or while `during` runs (from LOAD_WARMUP_MS after the start).
 */
async function appendLoad<T>(url: string, label: string, logDir: string, measureMs: number | null, during?: () => Promise<T>): Promise<{ load: LoadRun; result: T | undefined }> {
  const job: LoadJob = { kind: "put", system: "cairn-log", url: `${url}/v1/logs/${LOAD_LOG}`, clients: LOAD_CLIENTS, deadlineMs: DEADLINE_MS, warmupMs: LOAD_WARMUP_MS, measureMs, keyPrefix: "", valueBytes: RECORD_BYTES };
  const procs = await LoadProcesses.start(registry, [job], logDir, label);
  try {
    procs.go();
    await Bun.sleep(LOAD_WARMUP_MS);
    const cpu0 = cpuMeter.mark();
    let result: T | undefined;
    if (during !== undefined) {
      try {
        result = await during();
      } finally {
        procs.stop();
      }
    }
    const outcome = await procs.finish();
    const cpu = cpuMeter.since(cpu0);
    const load = { ...summarizeLoad(mergeRaw(outcome.loads)), loadCpu: outcome.cpu, cpu };
    if (load.errors > 0) anomaly(`${label}: ${load.errors} append errors ${JSON.stringify(load.errorSamples)}`);
    return { load, result };
  } finally {
    await procs.close();
  }
}

interface CopyTiming {
  /** Reconfigure sent → every old segment has REPLICATION copies and nothing is under-replicated. */
  seconds: number;
  /** The copying node's own account (startedAtMs → finishedAtMs of its re-replication), if seen. */
  copySeconds: number | null;
  /** Reconfigure sent → the copy started (the controller's reaction), if seen. */
  startDelaySeconds: number | null;
  copiedRecords: number | null;
  copiedBy: string | null;
  targets: string[];
  segments: Segment[];
}

/** Reconfigures COPY_LOG to REPLICATION and waits until its old segments hold that many copies. */
async function copyOldSegment(cluster: GrowingCluster, lastFilledLsn: number): Promise<CopyTiming> {
  const url = cluster.nodes[0]!.url;
  const wallAtMs = Date.now();
  const t0 = performance.now();
  await post(`${url}/v1/logs/${COPY_LOG}/reconfigure`, { kind: "replicated", replication: REPLICATION }, `reconfigure log ${COPY_LOG}`);
  const done = await retryUntil(`log ${COPY_LOG}'s old segments at ${REPLICATION} copies`, COPY_TIMEOUT_MS, async () => {
    const l = await logInfo(url, COPY_LOG);
    const old = l.segments.filter((s) => s.baseLsn <= lastFilledLsn);
    const short = old.filter((s) => s.nodeset.length < REPLICATION || s.replication < REPLICATION);
    if (l.underReplicatedRecords !== 0 || short.length > 0 || old.length === 0) {
      await Bun.sleep(POLL_MS);
      throw new Error(`${l.underReplicatedRecords} under-replicated records; ${JSON.stringify(l.rereplication)}`);
    }
    return l;
  });
  const seconds = (performance.now() - t0) / 1000;
  // The metadata leader's controller ran the copy: find the node that reports it.
  let progress: LogInfo["rereplication"] = null;
  let copiedBy: string | null = null;
  for (const n of cluster.nodes) {
    const p = (await logInfo(n.url, COPY_LOG).catch(() => undefined))?.rereplication;
    if (p && p.state === "done" && (progress === null || p.startedAtMs > progress.startedAtMs)) {
      progress = p;
      copiedBy = n.id;
    }
  }
  if (progress === null) anomaly(`no node reports the re-replication of log ${COPY_LOG} (seen: ${JSON.stringify(done.rereplication)})`);
  return {
    seconds,
    copySeconds: progress?.finishedAtMs ? (progress.finishedAtMs - progress.startedAtMs) / 1000 : null,
    startDelaySeconds: progress ? (progress.startedAtMs - wallAtMs) / 1000 : null,
    copiedRecords: progress?.copiedRecords ?? null,
    copiedBy,
    targets: progress?.targets ?? [],
    segments: done.segments,
  };
}

/** kill -9 of the node that held the only copy, then a sample of records read back through another node. */
async function verifyCairn(cluster: GrowingCluster, firstLsn: number[]): Promise<{ killed: string; readVia: string; checked: number }> {
  const [first, second] = [cluster.nodes[0]!, cluster.nodes[1]!];
  await cluster.killHard(first);
  let checked = 0;
  for (const i of sampleIndexes(RECORDS)) {
    const at = lsnOf(firstLsn, i);
    const entry = await retryUntil(`record ${i} (LSN ${at}) through ${second.id} after N1's kill`, START_TIMEOUT_MS, async () => {
      const res = await fetch(`${second.url}/v1/logs/${COPY_LOG}/records?from=${at}&limit=1`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) await httpFail(res, "read");
      const body = (await res.json()) as { entries: Array<{ kind: string; lsn?: number; data?: string }> };
      const e = body.entries[0];
      if (e === undefined) throw new Error("no entry");
      return e;
    });
    if (entry.kind !== "record" || entry.lsn !== at || entry.data !== record(i)) {
      throw new Error(`record ${i} at LSN ${at} read back wrong after N1's kill: ${JSON.stringify(entry).slice(0, 120)}`);
    }
    checked++;
  }
  return { killed: first.id, readVia: second.id, checked };
}

/** The rereplication-* settings the nodes ran with (node 1's effective configuration). */
let rereplicationSettings: Record<string, unknown> | null = null;

async function rereplicationConfig(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/v1/node/config`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) await httpFail(res, "node config");
  const bifrost = ((await res.json()) as { bifrost: Record<string, unknown> }).bifrost;
  return Object.fromEntries(Object.entries(bifrost).filter(([k]) => k.startsWith("rereplication-")));
}

interface CairnRound {
  round: number;
  records: number;
  mb: number;
  fillSeconds: number;
  copy: CopyTiming;
  mbPerSecond: number;
  baseline: LoadRun;
  during: LoadRun;
  p99Ratio: number | null;
  loadTarget: string;
  verify: { killed: string; readVia: string; checked: number };
}

async function cairnRound(roundNo: number, dir: string): Promise<CairnRound> {
  const logDir = join(dir, "load");
  mkdirSync(logDir, { recursive: true });
  const cluster = await GrowingCluster.startFirst(registry, join(dir, "nodes"), 2);
  stoppers.push(() => cluster.stop());
  try {
    const n1 = cluster.nodes[0]!;
    rereplicationSettings ??= await rereplicationConfig(n1.url);
    const tf = performance.now();
    const firstLsn = await fillCairn(n1.url, COPY_LOG, RECORDS);
    const fillSeconds = (performance.now() - tf) / 1000;
    const lastFilledLsn = lsnOf(firstLsn, RECORDS - 1);
    console.error(`cairn round ${roundNo}: ${RECORDS} records (${mbOf(RECORDS)} MB) in log ${COPY_LOG} on ${n1.id} in ${round(fillSeconds, 1)} s; LSN ${firstLsn[0]}..${lastFilledLsn}`);
    await cluster.join("n2");
    await cluster.join("n3");
    await cluster.waitMembers(START_TIMEOUT_MS);
    // The load's log on all three nodes (the copy then competes with it on every log-server).
    await retryUntil(`log ${LOAD_LOG} at replication ${REPLICATION}`, START_TIMEOUT_MS, async () => {
      await post(`${n1.url}/v1/logs/${LOAD_LOG}/reconfigure`, { kind: "replicated", replication: REPLICATION }, `reconfigure log ${LOAD_LOG}`);
      const seg = await tailSegment(n1.url, LOAD_LOG);
      if (seg.nodeset.length < REPLICATION) throw new Error(`log ${LOAD_LOG} on ${seg.nodeset.join(",")}`);
    });
    const before = await logInfo(n1.url, COPY_LOG);
    if (before.underReplicatedRecords !== 0 || before.rereplication !== null) {
      anomaly(`cairn round ${roundNo}: log ${COPY_LOG} changed before its reconfiguration: ${JSON.stringify({ under: before.underReplicatedRecords, rereplication: before.rereplication, segments: before.segments })}`);
    }
    const loadSeg = await tailSegment(n1.url, LOAD_LOG);
    const target = cluster.byId(sequencerNode(loadSeg));
    console.error(`cairn round ${roundNo}: log ${LOAD_LOG} on ${loadSeg.nodeset.join(",")} (sequencer ${loadSeg.sequencer}): baseline load for ${BASELINE_MS / 1000} s`);
    const baseline = (await appendLoad(target.url, `cairn baseline r${roundNo}`, logDir, BASELINE_MS)).load;
    console.error(`cairn round ${roundNo}: baseline ${baseline.opsPerSecond} appends/s p50 ${baseline.latencyMsP50} ms p99 ${baseline.latencyMsP99} ms`);
    const { load: during, result } = await appendLoad(target.url, `cairn during copy r${roundNo}`, logDir, null, () => copyOldSegment(cluster, lastFilledLsn));
    const copy = result!;
    const mbPerSecond = round(mbOf(RECORDS) / copy.seconds, 1);
    console.error(
      `cairn round ${roundNo}: copied onto ${copy.targets.join(",")} by ${copy.copiedBy} in ${round(copy.seconds, 2)} s (${mbPerSecond} MB/s; the copy itself ${copy.copySeconds ?? "?"} s, started ${copy.startDelaySeconds ?? "?"} s after the reconfigure); during: ${during.opsPerSecond} appends/s p50 ${during.latencyMsP50} ms p99 ${during.latencyMsP99} ms; CPU ${JSON.stringify(during.cpu.byGroupPct)}`,
    );
    const verify = await verifyCairn(cluster, firstLsn);
    console.error(`cairn round ${roundNo}: ${verify.checked} records read back through ${verify.readVia} after kill -9 of ${verify.killed}`);
    return {
      round: roundNo,
      records: RECORDS,
      mb: mbOf(RECORDS),
      fillSeconds: round(fillSeconds, 2),
      copy: { ...copy, seconds: round(copy.seconds, 3) },
      mbPerSecond,
      baseline,
      during,
      p99Ratio: baseline.latencyMsP99 > 0 ? round(during.latencyMsP99 / baseline.latencyMsP99, 2) : null,
      loadTarget: `${target.id} (sequencer of log ${LOAD_LOG})`,
      verify,
    };
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// NATS JetStream

interface NatsRound {
  round: number;
  records: number;
  mb: number;
  fillSeconds: number;
  seconds: number;
  mbPerSecond: number;
  leader: string;
  cpu: CpuUsage;
  verify: { killed: string; messages: number; checked: number };
}

async function natsRound(roundNo: number, dir: string): Promise<NatsRound> {
  const nats = await NatsCluster.start(registry, dir);
  stoppers.push(() => nats.stop());
  try {
    const { js, jsm, leader } = await nats.streamPublisher(START_TIMEOUT_MS, 1);
    const tf = performance.now();
    const seqOf: number[] = new Array<number>(RECORDS);
    let next = 0;
    await Promise.all(
      Array.from({ length: NATS_FILL_IN_FLIGHT }, async () => {
        while (next < RECORDS) {
          const i = next++;
          // The message's sequence is recorded: publishes in flight may be stored out of order.
          seqOf[i] = (await js.publish(SUBJECT, encoder.encode(record(i)))).seq;
        }
      }),
    );
    const fillSeconds = (performance.now() - tf) / 1000;
    const filled = await jsm.streams.info(STREAM);
    if (filled.state.messages !== RECORDS) throw new Error(`JetStream stream holds ${filled.state.messages} messages, published ${RECORDS}`);
    console.error(`nats round ${roundNo}: ${RECORDS} messages (${mbOf(RECORDS)} MB) in the R1 stream on ${leader} in ${round(fillSeconds, 1)} s`);
    const cpu0 = cpuMeter.mark();
    const t0 = performance.now();
    await jsm.streams.update(STREAM, { num_replicas: REPLICATION });
    await retryUntil(`stream ${STREAM} at R${REPLICATION} with every replica current`, COPY_TIMEOUT_MS, async () => {
      const info = await jsm.streams.info(STREAM);
      const replicas = info.cluster?.replicas ?? [];
      if (replicas.length !== REPLICATION - 1 || !replicas.every((r) => r.current && (r.lag ?? 0) === 0)) {
        await Bun.sleep(POLL_MS);
        throw new Error(`replicas ${JSON.stringify(replicas)}`);
      }
    });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuMeter.since(cpu0);
    const mbPerSecond = round(mbOf(RECORDS) / seconds, 1);
    console.error(`nats round ${roundNo}: R1 → R${REPLICATION} in ${round(seconds, 2)} s (${mbPerSecond} MB/s); CPU ${JSON.stringify(cpu.byGroupPct)}`);
    // The copies are real: kill -9 of the server that held the only one, then read from the others.
    const victim = nats.servers.find((s) => s.name === leader)!;
    registry.killHard(victim.pid);
    await registry.waitGone(victim.pid, 10_000);
    const messages = await retryUntil(`stream ${STREAM} led again after ${leader}'s kill`, START_TIMEOUT_MS, async () => {
      const info = await jsm.streams.info(STREAM);
      if (!info.cluster?.leader || info.cluster.leader === leader) throw new Error(`leader ${info.cluster?.leader}`);
      return info.state.messages;
    });
    if (messages !== RECORDS) anomaly(`nats round ${roundNo}: after ${leader}'s kill the stream holds ${messages} of ${RECORDS} messages: replicas reported current before holding every message`);
    let checked = 0;
    for (const i of sampleIndexes(RECORDS)) {
      const seq = seqOf[i]!;
      const m = await retryUntil(`message ${seq} after ${leader}'s kill`, START_TIMEOUT_MS, () => jsm.streams.getMessage(STREAM, { seq }));
      if (new TextDecoder().decode(m.data) === record(i)) checked++;
      else anomaly(`nats round ${roundNo}: message ${seq} is not record ${i} after ${leader}'s kill`);
    }
    return { round: roundNo, records: RECORDS, mb: mbOf(RECORDS), fillSeconds: round(fillSeconds, 2), seconds: round(seconds, 3), mbPerSecond, leader, cpu, verify: { killed: leader, messages, checked } };
  } finally {
    await nats.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : round((s[s.length / 2 - 1]! + s[s.length / 2]!) / 2, 3);
}
function spread(xs: number[]): string {
  return xs.length === 0 ? "—" : `${Math.min(...xs)}–${Math.max(...xs)}`;
}
function stat(xs: number[]): { median: number | null; min: number | null; max: number | null } {
  return { median: median(xs), min: xs.length ? Math.min(...xs) : null, max: xs.length ? Math.max(...xs) : null };
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
function bifrostEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("CAIRN_BIFROST__") && e[1] !== undefined));
}

/** A round's stores (three copies of --mb MB per system) go once the round is over, unless --keep. */
function dropRoundDir(dir: string): void {
  if (!KEEP_DIRS) rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const started = performance.now();
  const base = mkdtempSync(join(tmpdir(), "cairn-bench-rerep-"));
  const cpuRun0 = cpuMeter.mark();
  const cairnRounds: CairnRound[] = [];
  const natsRounds: NatsRound[] = [];
  const failed: string[] = [];
  if (WITH_NATS && Bun.which("nats-server") === null) {
    console.error("nats-server is missing: running bench/setup-nats.sh");
    const r = Bun.spawnSync(["bash", join(import.meta.dir, "setup-nats.sh")], { stdout: "inherit", stderr: "inherit", stdin: "ignore" });
    if (r.exitCode !== 0) anomaly(`bench/setup-nats.sh failed (exit ${r.exitCode})`);
  }
  const version = WITH_NATS ? natsVersion() : undefined;
  if (WITH_NATS && version === undefined) anomaly("nats-server not found: no JetStream rounds");
  try {
    for (let r = 1; r <= ROUNDS; r++) {
      try {
        cairnRounds.push(await cairnRound(r, join(base, `cairn-${r}`)));
      } catch (e) {
        failed.push(`cairn round ${r}`);
        anomaly(`cairn round ${r} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
      await registry.stopAll(10_000);
      dropRoundDir(join(base, `cairn-${r}`));
      if (WITH_NATS && version !== undefined) {
        try {
          natsRounds.push(await natsRound(r, join(base, `nats-${r}`)));
        } catch (e) {
          failed.push(`nats round ${r}`);
          anomaly(`nats round ${r} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        }
        await registry.stopAll(10_000);
        dropRoundDir(join(base, `nats-${r}`));
      }
    }
  } finally {
    await stopEverything();
    if (!KEEP_DIRS) rmSync(base, { recursive: true, force: true });
    else console.error(`kept ${base}`);
  }
  const cpuRun = cpuMeter.since(cpuRun0);

  const c = {
    seconds: stat(cairnRounds.map((r) => r.copy.seconds)),
    mbPerSecond: stat(cairnRounds.map((r) => r.mbPerSecond)),
    p99BaselineMs: stat(cairnRounds.map((r) => r.baseline.latencyMsP99)),
    p99DuringMs: stat(cairnRounds.map((r) => r.during.latencyMsP99)),
    p50BaselineMs: stat(cairnRounds.map((r) => r.baseline.latencyMsP50)),
    p50DuringMs: stat(cairnRounds.map((r) => r.during.latencyMsP50)),
    p99Ratio: stat(cairnRounds.flatMap((r) => (r.p99Ratio === null ? [] : [r.p99Ratio]))),
  };
  const n = { seconds: stat(natsRounds.map((r) => r.seconds)), mbPerSecond: stat(natsRounds.map((r) => r.mbPerSecond)) };
  const speedRatio = c.mbPerSecond.median !== null && n.mbPerSecond.median ? round(c.mbPerSecond.median / n.mbPerSecond.median, 2) : null;
  const source = cairnSource();
  const lines: string[] = [];
  lines.push(
    `\ncairn ${source.commit?.slice(0, 7) ?? "?"}${source.srcDirty ? " (src/ modified)" : ""}; ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores; Bun ${Bun.version}; ${version ?? "nats-server not run"}; ${mbOf(RECORDS)} MB of 1 KiB records; ${ROUNDS} round(s)${SMOKE ? " (SMOKE)" : ""}; CPU of other users during the run ${cpuRun.otherPct}% of the machine`,
  );
  lines.push(`cairn re-replication settings: ${JSON.stringify(rereplicationSettings)}${Object.keys(bifrostEnv()).length ? `; env ${JSON.stringify(bifrostEnv())}` : ""}\n`);
  lines.push(`| system | MB | seconds (spread) | MB/s (spread) | append p99 baseline ms | append p99 during ms | p99 ratio (spread) | MB/s ÷ JetStream's |`);
  lines.push(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  const cs = (k: keyof typeof c, rounds: number[]) => `${fmt(c[k].median)} (${spread(rounds)})`;
  if (cairnRounds.length) {
    lines.push(
      `| cairn r1 → r${REPLICATION} (2 new log-servers) | ${mbOf(RECORDS)} | ${cs("seconds", cairnRounds.map((r) => r.copy.seconds))} | ${cs("mbPerSecond", cairnRounds.map((r) => r.mbPerSecond))} | ${fmt(c.p99BaselineMs.median)} | ${fmt(c.p99DuringMs.median)} | ${fmt(c.p99Ratio.median)} (${spread(cairnRounds.flatMap((r) => (r.p99Ratio === null ? [] : [r.p99Ratio])))}) | ${fmt(speedRatio)} |`,
    );
  }
  if (natsRounds.length) {
    lines.push(`| JetStream R1 → R${REPLICATION} | ${mbOf(RECORDS)} | ${fmt(n.seconds.median)} (${spread(natsRounds.map((r) => r.seconds))}) | ${fmt(n.mbPerSecond.median)} (${spread(natsRounds.map((r) => r.mbPerSecond))}) | — | — | — | 1 |`);
  }
  for (const r of cairnRounds) {
    lines.push(
      `cairn round ${r.round} CPU (% of the machine) baseline ${JSON.stringify(r.baseline.cpu.byGroupPct)}, during the copy ${JSON.stringify(r.during.cpu.byGroupPct)} (other users ${r.during.cpu.otherPct}%); load process ${r.during.loadCpu.maxPctOfCore}% of a core`,
    );
  }
  for (const r of natsRounds) lines.push(`JetStream round ${r.round} CPU (% of the machine) during R1 → R${REPLICATION}: ${JSON.stringify(r.cpu.byGroupPct)} (other users ${r.cpu.otherPct}%)`);
  lines.push(`\ncairn MB/s ÷ JetStream MB/s: ${fmt(speedRatio)} (goal ≥ 1); append p99 during ÷ baseline: ${fmt(c.p99Ratio.median)} (goal ≤ 2)`);
  if (failed.length) lines.push(`failed: ${failed.join(", ")}`);
  console.log(lines.join("\n"));

  const results = {
    benchmark: "rereplication",
    smoke: SMOKE,
    date: new Date().toISOString(),
    cairn: source,
    machine: { cpu: cpus()[0]?.model ?? null, cores: cpus().length, memoryBytes: totalmem(), kernel: release(), bun: Bun.version, natsServer: version ?? null },
    settings: {
      mb: MB,
      records: RECORDS,
      recordBytes: RECORD_BYTES,
      rounds: ROUNDS,
      baselineMs: BASELINE_MS,
      load: `separate Bun process (bench/metadata/load-worker.ts), ${LOAD_CLIENTS} closed-loop clients, one 1 KiB record per append (fetch, HTTP/1.1 keep-alive) to log ${LOAD_LOG}'s sequencer node; ${LOAD_WARMUP_MS} ms warm-up`,
      fill: { cairn: `${FILL_RECORDS_PER_REQUEST} records per append, ${FILL_IN_FLIGHT} in flight`, nats: `js.publish, ${NATS_FILL_IN_FLIGHT} in flight` },
      done: {
        cairn: `reconfigure of log ${COPY_LOG} to replication ${REPLICATION} → underReplicatedRecords 0 and every segment below the fill's last LSN with a nodeset of ${REPLICATION} (polled every ${POLL_MS} ms); includes the controller's reaction (copy.startDelaySeconds); copy.copySeconds is the copying node's own start → end. The 'during' load window is the same span (from the reconfigure to done)`,
        nats: `streams.update(num_replicas ${REPLICATION}) → ${REPLICATION - 1} replicas current with lag 0 (polled every ${POLL_MS} ms)`,
      },
      rereplication: rereplicationSettings,
      bifrostEnv: bifrostEnv(),
    },
    summary: { cairn: c, nats: n, cairnOverNatsMbPerSecond: speedRatio },
    rounds: { cairn: cairnRounds, nats: natsRounds },
    cpuRun,
    failed,
    anomalies,
    runSeconds: round((performance.now() - started) / 1000, 1),
  };
  mkdirSync(join(import.meta.dir, "results"), { recursive: true });
  writeFileSync(join(import.meta.dir, "results", "rereplication.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.error(`wrote bench/results/rereplication.json (${results.runSeconds} s)`);
}

await main().catch(async (e: unknown) => {
  console.error(e);
  await stopEverything();
  process.exit(1);
});
process.exit(0);
