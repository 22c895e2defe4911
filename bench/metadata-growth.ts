// Metadata store benchmark with growing state (issue 12, "Measure"): does a write cost more when
// the store holds more keys? A 3-node cairn cluster against a 3-member etcd, same machine, same run.
//  1. Preload N unique keys (100-byte JSON values) into each system, N from --preloads, growing
//     cumulatively (load to 100 000, measure, load up to 1 000 000, measure); many concurrent
//     writers in separate load processes (cairn: PUT /v1/metadata/{key} on the leader; etcd: its
//     JSON gateway /v3/kv/put). Each system's server RSS (per node) after every level.
//  2. At each level, cells: put (every put a new key) at 1/16/64 clients to the leader, put at 16
//     through a follower (forwarded), linearizable get at 64 clients of random preloaded keys;
//     cairn and etcd alternating, median of --rounds rounds with the spread (min–max).
//  3. At the largest level (--no-join to skip): a 4th cairn node joins the metadata cluster;
//     seconds until it is a voter, and the leader's put p99 (16 clients) during the catch-up
//     against the same load just before.
// The load runs in separate processes (bench/metadata/load-worker.ts, at most
// --clients-per-process clients each); the table shows their CPU (% of one core, from
// /proc/<pid>/stat) so the tool is visibly not the limit. Prints a table and writes
// bench/results/metadata-growth.json. Every process started is stopped by PID, even on failure.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/metadata-growth.ts
// Options: --preloads 0,100000,1000000 --rounds 3 --seconds 3 --warmup 0.5 --clients-per-process 32
//          --preload-clients 128 --join-timeout 180 --no-etcd --no-join --keep (keep temp dirs)
// With fewer than 1000 keys loaded, the get cell first tops the preload up to 1000 keys (after the
// put cells of that level) so that reads hit existing keys.
import { flagArg, listArg, numArg } from "./args.ts";
import { cpus } from "node:os";
import type { CairnCluster } from "./metadata/cairn.ts";
import { type CellSpec, PUT_CELLS } from "./metadata/cells.ts";
import type { BenchNode, Cluster } from "./metadata/cluster.ts";
import type { System } from "./metadata/kv-http.ts";
import type { LoadJob } from "./metadata/load-jobs.ts";
import { type LoadCpu, LoadProcesses, splitClients } from "./metadata/load-procs.ts";
import { type LoadStats, VALUE_SIZE_BYTES, mergeRaw, round, summarizeLoad } from "./metadata/load.ts";
import { cpuModel } from "./metadata/machine.ts";
import { type CpuUsage, processRssBytes } from "./metadata/procstat.ts";
import { fmt, medianByThroughput, ratio } from "./metadata/report.ts";
import { BenchSession } from "./metadata/session.ts";

// ---------------------------------------------------------------------------------------------
// Settings

const PRELOADS = [...new Set(listArg("preloads", [0, 100_000, 1_000_000]))].sort((a, b) => a - b);
const ROUNDS = Math.max(1, Math.round(numArg("rounds", 3)));
const MEASURE_MS = numArg("seconds", 3) * 1000;
const WARMUP_MS = numArg("warmup", 0.5) * 1000;
const CLIENTS_PER_PROCESS = Math.max(1, Math.round(numArg("clients-per-process", 32)));
const PRELOAD_CLIENTS = Math.max(1, Math.round(numArg("preload-clients", 128)));
const JOIN_TIMEOUT_MS = numArg("join-timeout", 180) * 1000;
const WITH_ETCD = !flagArg("no-etcd");
// --join is the default; accepted so that scripts may say it.
const WITH_JOIN = !flagArg("no-join");
const KEEP_DIRS = flagArg("keep");
const DEADLINE_MS = 10_000;
const PRELOAD_ATTEMPTS_PER_KEY = 5;
const READ_SET_MIN_KEYS = 1000;
const PROGRESS_EVERY_MS = 5000;
const HEALTHY_TIMEOUT_MS = 300_000;
const JOIN_POLL_MS = 100;
const MB = 2 ** 20;

const CELLS: CellSpec[] = [
  ...PUT_CELLS,
  { id: "get-linearizable-leader-c64", label: "get linearizable → leader", op: "get", mode: "linearizable", target: "leader", concurrency: 64 },
];
const GROWTH_CELL = "put-leader-c64";
const JOIN_CLIENTS = 16;

// ---------------------------------------------------------------------------------------------
// Processes: everything we start (load processes and the joiner included) is tracked and
// stopped, whatever happens (see session.ts).

const session = new BenchSession();
const { registry, anomalies, anomaly, cpuMeter } = session;

// ---------------------------------------------------------------------------------------------
// Preload and memory

interface PreloadResult {
  system: System;
  fromKeys: number;
  toKeys: number;
  seconds: number;
  keysPerSecond: number | null;
  failedKeys: number;
  loadCpu: LoadCpu | null;
}

/** Keys preloaded so far per system: preloadKey(0 … n-1) exist. */
const loaded: Record<System, number> = { cairn: 0, etcd: 0 };

async function preloadTo(cluster: Cluster, target: number, logDir: string): Promise<PreloadResult> {
  const from = loaded[cluster.system];
  const result: PreloadResult = { system: cluster.system, fromKeys: from, toKeys: target, seconds: 0, keysPerSecond: null, failedKeys: 0, loadCpu: null };
  if (target <= from) return result;
  await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
  const { leader } = await cluster.roles();
  const count = target - from;
  const split = splitClients(Math.min(PRELOAD_CLIENTS, count), CLIENTS_PER_PROCESS);
  // Contiguous key ranges, one per process, in proportion to its clients.
  const totalClients = split.reduce((a, c) => a + c, 0);
  let next = from;
  const jobs: LoadJob[] = split.map((clients, i) => {
    const end = i === split.length - 1 ? target : next + Math.floor((count * clients) / totalClients);
    const job: LoadJob = { kind: "preload", system: cluster.system, url: leader.url, clients, deadlineMs: DEADLINE_MS, from: next, to: end, attemptsPerKey: PRELOAD_ATTEMPTS_PER_KEY };
    next = end;
    return job;
  });
  const procs = await LoadProcesses.start(registry, jobs, logDir, `preload ${cluster.system}`);
  try {
    const t0 = performance.now();
    procs.go();
    const finished = procs.finish();
    let done = false;
    void finished.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      await Promise.race([finished.catch(() => undefined), Bun.sleep(PROGRESS_EVERY_MS)]);
      if (!done) {
        const s = (performance.now() - t0) / 1000;
        console.error(`  ${cluster.system} preload: ${from + procs.written}/${target} keys, ${Math.round(procs.written / s)} keys/s`);
      }
    }
    const outcome = await finished;
    result.seconds = round((performance.now() - t0) / 1000, 1);
    const written = outcome.preloads.reduce((a, p) => a + p.written, 0);
    result.failedKeys = outcome.preloads.reduce((a, p) => a + p.failed, 0);
    result.keysPerSecond = Math.round(written / Math.max(0.001, result.seconds));
    result.loadCpu = outcome.cpu;
    if (result.failedKeys > 0) {
      const samples = outcome.preloads.map((p) => p.errorSamples);
      anomaly(`${cluster.system} preload to ${target}: ${result.failedKeys} keys failed after ${PRELOAD_ATTEMPTS_PER_KEY} attempts ${JSON.stringify(samples)}`);
    }
  } finally {
    await procs.close();
  }
  loaded[cluster.system] = target;
  // Followers apply what the leader acknowledged before the cells start.
  await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
  return result;
}

interface Rss {
  system: System;
  totalMb: number | null;
  perNodeMb: Record<string, number | null>;
}

function rssOf(cluster: Cluster, extra: BenchNode[] = []): Rss {
  const perNodeMb: Record<string, number | null> = {};
  let total = 0;
  let known = true;
  for (const n of [...cluster.nodes, ...extra]) {
    const b = processRssBytes(n.pid);
    perNodeMb[n.name] = b === undefined ? null : round(b / MB, 1);
    if (b === undefined) known = false;
    else total += b;
  }
  return { system: cluster.system, totalMb: known ? round(total / MB, 1) : null, perNodeMb };
}

// ---------------------------------------------------------------------------------------------
// Cells

interface CellRound extends LoadStats {
  system: System;
  node: string;
  loadCpu: LoadCpu;
  cpu: CpuUsage;
}

interface CellSummary {
  median: CellRound;
  opsPerSecondMin: number;
  opsPerSecondMax: number;
  latencyMsP99Min: number;
  latencyMsP99Max: number;
  rounds: Array<{ opsPerSecond: number; latencyMsP50: number; latencyMsP99: number; errors: number; loadProcesses: number; loadCpuMaxPctOfCore: number; otherCpuPct: number }>;
}

function summarizeRounds(runs: CellRound[]): CellSummary | null {
  if (runs.length === 0) return null;
  const ops = runs.map((r) => r.opsPerSecond);
  const p99 = runs.map((r) => r.latencyMsP99);
  return {
    median: medianByThroughput(runs),
    opsPerSecondMin: Math.min(...ops),
    opsPerSecondMax: Math.max(...ops),
    latencyMsP99Min: Math.min(...p99),
    latencyMsP99Max: Math.max(...p99),
    rounds: runs.map((r) => ({
      opsPerSecond: r.opsPerSecond,
      latencyMsP50: r.latencyMsP50,
      latencyMsP99: r.latencyMsP99,
      errors: r.errors,
      loadProcesses: r.loadCpu.processes,
      loadCpuMaxPctOfCore: r.loadCpu.maxPctOfCore,
      otherCpuPct: r.cpu.otherPct,
    })),
  };
}

/** Jobs for one closed-loop run: `clients` split over processes, put keys unique per process. */
function loadJobs(cluster: Cluster, spec: CellSpec, url: string, keyPrefix: string, measureMs: number | null): LoadJob[] {
  return splitClients(spec.concurrency, CLIENTS_PER_PROCESS).map((clients, p): LoadJob => {
    const base = { system: cluster.system, url, clients, deadlineMs: DEADLINE_MS, warmupMs: WARMUP_MS, measureMs };
    return spec.op === "put"
      ? { ...base, kind: "put", keyPrefix: `${keyPrefix}.p${p}.` }
      : { ...base, kind: "get", keyCount: loaded[cluster.system], mode: spec.mode ?? "linearizable" };
  });
}

const lastLeader = new Map<System, string>();

async function runCell(cluster: Cluster, spec: CellSpec, keyPrefix: string, logDir: string): Promise<CellRound> {
  await cluster.waitHealthy(HEALTHY_TIMEOUT_MS);
  const roles = await cluster.roles();
  const previous = lastLeader.get(cluster.system);
  if (previous !== undefined && previous !== roles.leaderId) anomaly(`${cluster.system}: leader changed between cells (${previous} → ${roles.leaderId}), noticed before ${keyPrefix}`);
  const node = spec.target === "leader" ? roles.leader : roles.followers[0]!;
  const procs = await LoadProcesses.start(registry, loadJobs(cluster, spec, node.url, keyPrefix, MEASURE_MS), logDir, `${cluster.system} ${spec.id}`);
  let outcome;
  let cpu: CpuUsage;
  const cpu0 = cpuMeter.mark();
  try {
    procs.go();
    outcome = await procs.finish();
    // Before the load processes exit: a dead process's jiffies are lost to the meter.
    cpu = cpuMeter.since(cpu0);
  } finally {
    await procs.close();
  }
  const stats = summarizeLoad(mergeRaw(outcome.loads));
  const after = await cluster.roles().catch(() => undefined);
  if (after !== undefined) lastLeader.set(cluster.system, after.leaderId);
  if (after?.leaderId !== roles.leaderId) anomaly(`${cluster.system} ${keyPrefix}: leader changed during the cell (${roles.leaderId} → ${after?.leaderId ?? "none agreed"})`);
  if (stats.errors > 0) anomaly(`${cluster.system} ${keyPrefix}: ${stats.errors} errors ${JSON.stringify(stats.errorSamples)}`);
  return { system: cluster.system, node: node.name, ...stats, loadCpu: outcome.cpu, cpu };
}

interface LevelResult {
  preloadKeys: number;
  preload: PreloadResult[];
  rssAfterPreload: Rss[];
  rssAfterCells: Rss[];
  /** Keys written by the measured windows of this level's put cells (warm-ups wrote more). */
  cellPutsMeasured: Record<string, number>;
  cells: Array<{ spec: CellSpec; cairn: CellSummary | null; etcd: CellSummary | null }>;
}

async function runLevel(levelIndex: number, target: number, clusters: Cluster[], logDir: string): Promise<LevelResult> {
  console.error(`\n== level ${levelIndex + 1}/${PRELOADS.length}: ${target} preloaded keys`);
  const preload: PreloadResult[] = [];
  for (const c of clusters) {
    const r = await preloadTo(c, target, logDir);
    preload.push(r);
    if (r.toKeys > r.fromKeys) console.error(`${c.system}: preloaded ${r.fromKeys} → ${r.toKeys} keys in ${r.seconds} s (${r.keysPerSecond} keys/s, load CPU ${JSON.stringify(r.loadCpu?.perProcessPctOfCore)} % of a core)`);
  }
  const rssAfterPreload = clusters.map((c) => rssOf(c));
  for (const r of rssAfterPreload) console.error(`${r.system} RSS after preload: ${r.totalMb} MB ${JSON.stringify(r.perNodeMb)}`);
  const cellPutsMeasured: Record<string, number> = { cairn: 0, etcd: 0 };
  const cells: LevelResult["cells"] = [];
  for (const [i, spec] of CELLS.entries()) {
    if (spec.op === "get") {
      for (const c of clusters) if (loaded[c.system] < READ_SET_MIN_KEYS) preload.push(await preloadTo(c, READ_SET_MIN_KEYS, logDir));
    }
    const runs: Record<System, CellRound[]> = { cairn: [], etcd: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = (i + r) % 2 === 0 ? clusters : [...clusters].reverse();
      for (const c of order) {
        try {
          const res = await runCell(c, spec, `n${levelIndex}.${spec.id}.r${r}`, logDir);
          runs[c.system].push(res);
          if (spec.op === "put") cellPutsMeasured[c.system] = (cellPutsMeasured[c.system] ?? 0) + res.ops;
          console.error(
            `${spec.id} ${c.system} round ${r + 1}: ${res.opsPerSecond} ops/s, p50 ${res.latencyMsP50} ms, p99 ${res.latencyMsP99} ms, errors ${res.errors}, load ${res.loadCpu.processes} proc(s) ${JSON.stringify(res.loadCpu.perProcessPctOfCore)} % of a core, other CPU ${res.cpu.otherPct}%`,
          );
        } catch (e) {
          anomaly(`${c.system} level ${target} ${spec.id} round ${r + 1} failed: ${(e as Error).message}`);
        }
      }
    }
    cells.push({ spec, cairn: summarizeRounds(runs.cairn), etcd: summarizeRounds(runs.etcd) });
  }
  const rssAfterCells = clusters.map((c) => rssOf(c));
  for (const r of rssAfterCells) console.error(`${r.system} RSS after cells: ${r.totalMb} MB ${JSON.stringify(r.perNodeMb)}`);
  return { preloadKeys: target, preload, rssAfterPreload, rssAfterCells, cellPutsMeasured, cells };
}

// ---------------------------------------------------------------------------------------------
// Join

interface JoinResult {
  preloadKeys: number;
  node: string;
  /** Spawn → the node published its addresses (process start, not the join). */
  startedSeconds: number | null;
  /** Spawn → its metadata-server state is "member" (a voter). */
  voterSeconds: number | null;
  steady: LoadStats;
  duringCatchUp: LoadStats | null;
  p99DuringOverSteady: number | null;
  opsDuringOverSteady: number | null;
  loadCpuSteady: LoadCpu;
  loadCpuDuring: LoadCpu | null;
  rssAfterJoin: Rss | null;
  error?: string;
}

async function runJoin(c: CairnCluster, logDir: string): Promise<JoinResult> {
  await c.waitHealthy(HEALTHY_TIMEOUT_MS);
  const { leader } = await c.roles();
  const spec: CellSpec = { id: "join-put-leader-c16", label: "put → leader", op: "put", target: "leader", concurrency: JOIN_CLIENTS };
  // Steady: the same load, same length as a cell, right before the join.
  const steadyProcs = await LoadProcesses.start(registry, loadJobs(c, spec, leader.url, "join.steady", MEASURE_MS), logDir, "join steady");
  let steadyOutcome;
  try {
    steadyProcs.go();
    steadyOutcome = await steadyProcs.finish();
  } finally {
    await steadyProcs.close();
  }
  const steady = summarizeLoad(mergeRaw(steadyOutcome.loads));
  console.error(`join: steady ${steady.opsPerSecond} puts/s, p99 ${steady.latencyMsP99} ms`);
  const result: JoinResult = {
    preloadKeys: loaded.cairn,
    node: "node-4",
    startedSeconds: null,
    voterSeconds: null,
    steady,
    duringCatchUp: null,
    p99DuringOverSteady: null,
    opsDuringOverSteady: null,
    loadCpuSteady: steadyOutcome.cpu,
    loadCpuDuring: null,
    rssAfterJoin: null,
  };
  // During: the load runs from its warm-up until the new node is a voter (or the timeout).
  const procs = await LoadProcesses.start(registry, loadJobs(c, spec, leader.url, "join.during", null), logDir, "join during");
  try {
    procs.go();
    await Bun.sleep(WARMUP_MS);
    const { node, spawnedAtMs } = await c.startJoiner(result.node);
    result.startedSeconds = round((performance.now() - spawnedAtMs) / 1000, 2);
    let last: string | undefined;
    while (performance.now() - spawnedAtMs < JOIN_TIMEOUT_MS) {
      last = await c.metadataState(node, AbortSignal.timeout(1000));
      if (last === "member") {
        result.voterSeconds = round((performance.now() - spawnedAtMs) / 1000, 2);
        break;
      }
      await Bun.sleep(JOIN_POLL_MS);
    }
    procs.stop();
    const outcome = await procs.finish();
    result.duringCatchUp = summarizeLoad(mergeRaw(outcome.loads));
    result.loadCpuDuring = outcome.cpu;
    result.p99DuringOverSteady = ratio(result.duringCatchUp.latencyMsP99, steady.latencyMsP99);
    result.opsDuringOverSteady = ratio(result.duringCatchUp.opsPerSecond, steady.opsPerSecond);
    result.rssAfterJoin = rssOf(c, [node]);
    if (result.voterSeconds === null) anomaly(`cairn join: ${result.node} not a member within ${JOIN_TIMEOUT_MS / 1000} s (last state ${last ?? "no answer"})`);
    if (result.duringCatchUp.errors > 0) anomaly(`cairn join: ${result.duringCatchUp.errors} put errors during the catch-up ${JSON.stringify(result.duringCatchUp.errorSamples)}`);
  } catch (e) {
    result.error = (e as Error).message;
    anomaly(`cairn join failed: ${result.error}`);
  } finally {
    await procs.close();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

const cpuText = (x: LoadCpu | undefined) => (x === undefined ? "–" : `${x.processes}×≤${Math.round(x.maxPctOfCore)}%`);
const spreadText = (s: CellSummary | null) => (s === null ? "–" : `${s.median.opsPerSecond} (${s.opsPerSecondMin}–${s.opsPerSecondMax})`);
const latText = (s: CellSummary | null) => (s === null ? "–" : `${s.median.latencyMsP50} / ${s.median.latencyMsP99} (${s.latencyMsP99Min}–${s.latencyMsP99Max})`);
const rssText = (r: Rss | undefined) => (r === undefined ? "–" : `${fmt(r.totalMb)} (${Object.values(r.perNodeMb).map((x) => fmt(x)).join(" / ")})`);

async function main(): Promise<void> {
  const startedMs = performance.now();
  const cpuRun0 = cpuMeter.mark();
  await session.run({ tmpPrefix: "cairn-bench-metadata-growth-", withEtcd: WITH_ETCD, keep: KEEP_DIRS }, async (startup) => {
    const { baseDir, version, source, fsync, cpuBeforeStart, cairn, clusters } = startup;
    const rssFresh = clusters.map((c) => rssOf(c));

    const levels: LevelResult[] = [];
    for (const [i, n] of PRELOADS.entries()) levels.push(await runLevel(i, n, clusters, baseDir));
    const join_ = WITH_JOIN ? await runJoin(cairn, baseDir) : null;
    const cpuRun = cpuMeter.since(cpuRun0);

    // Ratios: cairn/etcd per cell; the growth cell at the largest level against the smallest.
    const rows = levels.flatMap((l) =>
      l.cells.map(({ spec, cairn: c, etcd: e }) => ({
        preloadKeys: l.preloadKeys,
        id: spec.id,
        label: spec.label,
        clients: spec.concurrency,
        cairn: c,
        etcd: e,
        ratio: {
          throughput: ratio(c?.median.opsPerSecond, e?.median.opsPerSecond),
          latencyP50: ratio(c?.median.latencyMsP50, e?.median.latencyMsP50),
          latencyP99: ratio(c?.median.latencyMsP99, e?.median.latencyMsP99),
        },
      })),
    );
    const growthCell = (l: LevelResult | undefined, s: System) => l?.cells.find((x) => x.spec.id === GROWTH_CELL)?.[s]?.median;
    const first = levels[0];
    const last = levels[levels.length - 1];
    const growth = {
      cell: GROWTH_CELL,
      fromPreloadKeys: first?.preloadKeys ?? null,
      toPreloadKeys: last?.preloadKeys ?? null,
      cairnThroughput: ratio(growthCell(last, "cairn")?.opsPerSecond, growthCell(first, "cairn")?.opsPerSecond),
      cairnLatencyP99: ratio(growthCell(last, "cairn")?.latencyMsP99, growthCell(first, "cairn")?.latencyMsP99),
      etcdThroughput: ratio(growthCell(last, "etcd")?.opsPerSecond, growthCell(first, "etcd")?.opsPerSecond),
      goal: "cairn throughput at the largest preload ≥ 0.9× the same cell at the smallest",
    };

    console.log(
      `\nmetadata store with growing state, 3 members on 127.0.0.1, fsync on; ${VALUE_SIZE_BYTES} B JSON values, every put a new key; median of ${ROUNDS} round(s) of ${WARMUP_MS / 1000} s warm-up + ${MEASURE_MS / 1000} s per cell (min–max in brackets), cairn and etcd alternating\n` +
        `cairn ${source.commit?.slice(0, 7) ?? "?"}${source.srcDirty ? " (src/ modified)" : ""}; ${cpuModel()}, ${cpus().length} cores, Bun ${Bun.version}, etcd ${version ?? "not run"}; fsync of 100 B p50 ${fsync.p50Ms} ms\n` +
        `load: separate processes of at most ${CLIENTS_PER_PROCESS} clients; "load CPU" = processes × the busiest one's CPU in % of one core (100 = that process saturated)\n`,
    );
    console.log("| preload keys | scenario | clients | cairn ops/s | etcd ops/s | cairn/etcd | cairn p50 / p99 ms (p99 range) | etcd p50 / p99 ms (p99 range) | p99 cairn/etcd | load CPU cairn / etcd |");
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(
        `| ${r.preloadKeys} | ${r.label} | ${r.clients} | ${spreadText(r.cairn)} | ${spreadText(r.etcd)} | ${fmt(r.ratio.throughput, "×")} | ${latText(r.cairn)} | ${latText(r.etcd)} | ${fmt(r.ratio.latencyP99, "×")} | ${cpuText(r.cairn?.median.loadCpu)} / ${cpuText(r.etcd?.median.loadCpu)} |`,
      );
    }
    console.log(
      `\ncairn ${GROWTH_CELL} at ${growth.toPreloadKeys} keys vs ${growth.fromPreloadKeys} keys: throughput ${fmt(growth.cairnThroughput, "×")} (goal ≥ 0.9×), p99 ${fmt(growth.cairnLatencyP99, "×")}; etcd throughput ${fmt(growth.etcdThroughput, "×")}`,
    );
    console.log("\n| preload keys | system | preload (keys, s, keys/s, load CPU) | RSS after preload MB: sum (per node) | RSS after the cells MB: sum (per node) |");
    console.log("|---|---|---|---|---|");
    for (const l of levels) {
      for (const c of clusters) {
        // The level's preload, and a top-up to READ_SET_MIN_KEYS before its get cell if there was one.
        const ps = l.preload.filter((x) => x.system === c.system && x.toKeys > x.fromKeys);
        const pre = ps.map((p) => `${p.fromKeys}→${p.toKeys}: ${p.seconds} s, ${p.keysPerSecond}/s, ${cpuText(p.loadCpu ?? undefined)}${p.failedKeys ? `, ${p.failedKeys} failed` : ""}`).join("; ") || "–";
        console.log(`| ${l.preloadKeys} | ${c.system} | ${pre} | ${rssText(l.rssAfterPreload.find((r) => r.system === c.system))} | ${rssText(l.rssAfterCells.find((r) => r.system === c.system))} |`);
      }
    }
    if (join_) {
      console.log(`\njoin: a 4th cairn node joins while ${JOIN_CLIENTS} clients put new keys to the leader (${join_.preloadKeys} keys preloaded, plus what the cells wrote)`);
      console.log("| node started (s) | voter after (s) | steady puts/s, p99 ms | during catch-up puts/s, p99 ms | p99 during / steady | load CPU steady / during | RSS after join MB: sum (per node) |");
      console.log("|---|---|---|---|---|---|---|");
      const d = join_.duringCatchUp;
      console.log(
        `| ${fmt(join_.startedSeconds)} | ${fmt(join_.voterSeconds)} | ${join_.steady.opsPerSecond}, ${join_.steady.latencyMsP99} | ${d ? `${d.opsPerSecond}, ${d.latencyMsP99}` : "–"} | ${fmt(join_.p99DuringOverSteady, "×")} (goal ≤ 2×) | ${cpuText(join_.loadCpuSteady)} / ${cpuText(join_.loadCpuDuring ?? undefined)} | ${rssText(join_.rssAfterJoin ?? undefined)} |`,
      );
    }
    console.log(`\nCPU (% of the whole machine) over the run: ${JSON.stringify(cpuRun)}`);

    session.finishReport("metadata-growth.json", {
      ...session.resultsHead("metadata-growth", startedMs, startup),
      settings: {
        nodes: 3,
        valueBytes: VALUE_SIZE_BYTES,
        preloads: PRELOADS,
        preload: `cumulative, keys grow-0000000…; ${PRELOAD_CLIENTS} concurrent writers in processes of at most ${CLIENTS_PER_PROCESS}, to the leader; each key retried up to ${PRELOAD_ATTEMPTS_PER_KEY} times`,
        keys: `every put a new key; gets read random preloaded keys (topped up to ${READ_SET_MIN_KEYS} before the get cell when fewer are loaded)`,
        warmupSeconds: WARMUP_MS / 1000,
        measureSeconds: MEASURE_MS / 1000,
        rounds: ROUNDS,
        roundsNote: "each cell runs this many rounds, cairn and etcd alternating; the cell reports its median round by throughput and the min–max of every round",
        clientsPerProcess: CLIENTS_PER_PROCESS,
        clientDeadlineMs: DEADLINE_MS,
        client: "separate Bun processes (bench/metadata/load-worker.ts), fetch, HTTP/1.1 keep-alive, closed loop (one request in flight per client)",
        loadCpu: "per load process, utime+stime from /proc/<pid>/stat between go and result, in % of one core",
        rss: "VmRSS of each server process from /proc/<pid>/status",
        cairn: "cairn dev --nodes 3 from source; admin API PUT/GET /v1/metadata/{key}; SQLite synchronous=FULL",
        etcd: "etcd 3-member cluster, default flags (fsync on), JSON gateway POST /v3/kv/put and /v3/kv/range",
        join: WITH_JOIN ? `node-4 started with metadata-client.addresses = the members' fabric addresses (auto-join), polled every ${JOIN_POLL_MS} ms until its metadata-server state is "member"; timeout ${JOIN_TIMEOUT_MS / 1000} s` : "not run",
        ratios: "cairn / etcd: above 1 means cairn has more throughput, or more latency",
      },
      cpu: { note: "percent of the whole machine (all cores = 100); see bench/metadata/procstat.ts", beforeStart: cpuBeforeStart, run: cpuRun },
      rssFresh,
      levels,
      cells: rows,
      growth,
      join: join_,
      anomalies: anomalies.list,
    });
  });
}

await main();
