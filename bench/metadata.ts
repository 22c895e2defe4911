// Metadata store benchmark: a 3-node cairn cluster against a 3-member etcd cluster (fsync on in
// both), same machine, same run, same load generator (closed-loop HTTP/1.1 keep-alive clients via
// fetch, every request under a 10 s deadline, 100-byte JSON values, a key space of 1000 keys).
//  1. put throughput and p50/p99 with 1, 16, 64 clients to the leader; 16 clients to a follower
//  2. get with 16 clients: linearizable and stale (etcd: serializable), leader and follower
//  3. failover: kill -9 of the leader under continuous writes, time until a write succeeds again,
//     the longest any request waited, no acknowledged write lost; restart and rejoin between trials
// Cells alternate between the two systems so background load hits both alike. Prints a table and
// writes bench/results/metadata.json with machine info, CPU load from /proc, every figure and the
// cairn/etcd ratios. Every process started is stopped by PID, even on failure.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/metadata.ts
// Options: --seconds 3 --warmup 0.5 --rounds 3 --trials 10 --writers 8 --no-etcd --keep (keep temp dirs)
// Each cell runs `rounds` times, alternating cairn and etcd, and reports its median round.
import { flagArg, numArg } from "./args.ts";
import { cpus } from "node:os";
import { type CellSpec, PUT_CELLS } from "./metadata/cells.ts";
import type { Cluster } from "./metadata/cluster.ts";
import { type LoadStats, VALUE_SIZE_BYTES, errorText, isDeadline, keyName, makeValue, noteError, runLoad } from "./metadata/load.ts";
import { cpuModel } from "./metadata/machine.ts";
import type { CpuUsage } from "./metadata/procstat.ts";
import { fmt, median, medianByThroughput, ratio } from "./metadata/report.ts";
import { BenchSession } from "./metadata/session.ts";

// ---------------------------------------------------------------------------------------------
// Settings

const MEASURE_MS = numArg("seconds", 3) * 1000;
const WARMUP_MS = numArg("warmup", 0.5) * 1000;
const ROUNDS = Math.max(1, Math.round(numArg("rounds", 3)));
const TRIALS = numArg("trials", 10);
const FAILOVER_WRITERS = numArg("writers", 8);
const WITH_ETCD = !flagArg("no-etcd");
const KEEP_DIRS = flagArg("keep");
const KEY_SPACE = 1000;
const DEADLINE_MS = 10_000;
const PROBE_INTERVAL_MS = 25;
const RECOVERY_WAIT_MAX_MS = 20_000;
const REJOIN_TIMEOUT_MS = 45_000;

const CELLS: CellSpec[] = [
  ...PUT_CELLS,
  { id: "get-linearizable-leader-c16", label: "get linearizable → leader", op: "get", mode: "linearizable", target: "leader", concurrency: 16 },
  { id: "get-linearizable-follower-c16", label: "get linearizable → follower", op: "get", mode: "linearizable", target: "follower", concurrency: 16 },
  { id: "get-stale-leader-c16", label: "get stale → leader", op: "get", mode: "stale", target: "leader", concurrency: 16 },
  { id: "get-stale-follower-c16", label: "get stale → follower", op: "get", mode: "stale", target: "follower", concurrency: 16 },
];

// ---------------------------------------------------------------------------------------------
// Processes: everything we start is tracked and stopped, whatever happens (see session.ts).

const session = new BenchSession();
const { anomalies, anomaly, cpuMeter } = session;

// ---------------------------------------------------------------------------------------------
// Throughput cells

interface CellResult extends LoadStats {
  system: "cairn" | "etcd";
  node: string;
  nodeRole: "leader" | "follower";
  cpu: CpuUsage;
  /** Every round of this cell (the cell reports the median round by throughput). */
  rounds?: Array<{ opsPerSecond: number; latencyMsP50: number; latencyMsP99: number; errors: number; otherCpuPct: number; kernelCpuPct: number }>;
}

function medianRound(runs: CellResult[]): CellResult {
  return {
    ...medianByThroughput(runs),
    rounds: runs.map((r) => ({ opsPerSecond: r.opsPerSecond, latencyMsP50: r.latencyMsP50, latencyMsP99: r.latencyMsP99, errors: r.errors, otherCpuPct: r.cpu.otherPct, kernelCpuPct: r.cpu.kernelPct })),
  };
}

async function prefill(cluster: Cluster): Promise<void> {
  const { leader } = await cluster.roles();
  let next = 0;
  const worker = async () => {
    while (next < KEY_SPACE) {
      const k = next++;
      await cluster.put(leader, keyName(k), makeValue(0, k), AbortSignal.timeout(DEADLINE_MS));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

const lastLeader = new Map<string, string>();

async function runCell(cluster: Cluster, spec: CellSpec): Promise<CellResult> {
  await cluster.waitHealthy(30_000);
  const roles = await cluster.roles();
  const previous = lastLeader.get(cluster.system);
  if (previous !== undefined && previous !== roles.leaderId) {
    anomaly(`${cluster.system}: leader changed between cells (${previous} → ${roles.leaderId}), noticed before ${spec.id}`);
  }
  const node = spec.target === "leader" ? roles.leader : roles.followers[0]!;
  let nextKey = 0;
  const op =
    spec.op === "put"
      ? (client: number, seq: number, signal: AbortSignal) => cluster.put(node, keyName(nextKey++ % KEY_SPACE), makeValue(client, seq), signal)
      : (client: number, seq: number, signal: AbortSignal) => cluster.get(node, keyName((client * 7919 + seq * 104_729) % KEY_SPACE), spec.mode!, signal);
  const cpu0 = cpuMeter.mark();
  const stats = await runLoad({ concurrency: spec.concurrency, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, deadlineMs: DEADLINE_MS, op });
  const cpu = cpuMeter.since(cpu0);
  const after = await cluster.roles().catch(() => undefined);
  if (after !== undefined) lastLeader.set(cluster.system, after.leaderId);
  if (after?.leaderId !== roles.leaderId) {
    anomaly(`${cluster.system} ${spec.id}: leader changed during the cell (${roles.leaderId} → ${after?.leaderId ?? "none agreed"})`);
  }
  if (stats.errors > 0) anomaly(`${cluster.system} ${spec.id}: ${stats.errors} errors ${JSON.stringify(stats.errorSamples)}`);
  return { system: cluster.system, node: node.name, nodeRole: spec.target, ...stats, cpu };
}

// ---------------------------------------------------------------------------------------------
// Failover

interface FailoverTrial {
  trial: number;
  system: "cairn" | "etcd";
  killed: string;
  killedLeaderId: string;
  /** kill → acknowledgement of the first probe write sent after the kill. */
  recoveryMs: number | null;
  /** kill → first survivor reporting a new leader (polled every 25 ms). */
  leaderElectedMs: number | null;
  /** kill → every closed-loop writer has had a write sent after the kill acknowledged. */
  allWritersRecoveredMs: number | null;
  /** Longest any single request (writers and probes) waited, from send to answer or deadline. */
  maxRequestMs: number;
  /** Longest wait of a request in flight at the moment of the kill. */
  maxInFlightAtKillMs: number;
  requestsPastDeadline: number;
  requests: number;
  errors: number;
  errorSamples: Record<string, number>;
  /** Writers whose key, read back after recovery, is older than their last acknowledged write. */
  lostAcknowledgedWrites: number;
  rejoinMs: number | null;
  error?: string;
}

async function failoverTrial(cluster: Cluster, trial: number): Promise<FailoverTrial> {
  await cluster.waitHealthy(REJOIN_TIMEOUT_MS);
  const { leader, leaderId, followers } = await cluster.roles();
  const result: FailoverTrial = {
    trial,
    system: cluster.system,
    killed: leader.name,
    killedLeaderId: leaderId,
    recoveryMs: null,
    leaderElectedMs: null,
    allWritersRecoveredMs: null,
    maxRequestMs: 0,
    maxInFlightAtKillMs: 0,
    requestsPastDeadline: 0,
    requests: 0,
    errors: 0,
    errorSamples: {},
    lostAcknowledgedWrites: 0,
    rejoinMs: null,
  };
  let stop = false;
  let tKill = Number.POSITIVE_INFINITY;
  let firstProbeOkMs: number | undefined;
  const writerRecoveredMs = new Map<number, number>();
  const lastAcked = new Map<number, number>();
  const requests: Array<{ sentMs: number; doneMs: number }> = [];
  const finish = (sentMs: number, e: unknown | undefined) => {
    const doneMs = performance.now();
    requests.push({ sentMs, doneMs });
    if (e !== undefined) {
      if (isDeadline(e)) result.requestsPastDeadline++;
      if (sentMs >= tKill || doneMs >= tKill) {
        result.errors++;
        noteError(result.errorSamples, e);
      }
    }
    return doneMs;
  };
  const prefix = `fo-${cluster.system}-t${trial}`;
  // Closed-loop writers, each on its own key, spread over the members that will survive.
  const writer = async (j: number) => {
    const node = followers[j % followers.length]!;
    for (let seq = 1; !stop; seq++) {
      const sentMs = performance.now();
      try {
        await cluster.put(node, `${prefix}-w${j}`, makeValue(j, seq), AbortSignal.timeout(DEADLINE_MS));
        const doneMs = finish(sentMs, undefined);
        lastAcked.set(j, seq);
        if (sentMs > tKill && !writerRecoveredMs.has(j)) writerRecoveredMs.set(j, doneMs - tKill);
      } catch (e) {
        finish(sentMs, e);
        await Bun.sleep(20);
      }
    }
  };
  // Open-loop probes: a fresh write every 25 ms whatever earlier ones are doing, so the time to
  // recovery is not hidden behind writers stuck on requests sent before the kill.
  const probes: Promise<void>[] = [];
  const probe = async (n: number) => {
    const node = followers[n % followers.length]!;
    const sentMs = performance.now();
    try {
      await cluster.put(node, `${prefix}-probe`, makeValue(99, n), AbortSignal.timeout(DEADLINE_MS));
      const doneMs = finish(sentMs, undefined);
      if (sentMs > tKill && (firstProbeOkMs === undefined || doneMs < firstProbeOkMs)) firstProbeOkMs = doneMs;
    } catch (e) {
      finish(sentMs, e);
    }
  };
  const prober = async () => {
    for (let n = 0; !stop; n++) {
      probes.push(probe(n));
      await Bun.sleep(PROBE_INTERVAL_MS);
    }
  };
  const electionWatch = async () => {
    while (!stop && result.leaderElectedMs === null) {
      const seen = await Promise.all(followers.map((f) => cluster.leaderSeenBy(f, AbortSignal.timeout(300))));
      if (tKill !== Number.POSITIVE_INFINITY && seen.some((l) => l !== null && l !== leaderId)) {
        result.leaderElectedMs = Math.round(performance.now() - tKill);
      }
      await Bun.sleep(25);
    }
  };
  const writers = Array.from({ length: FAILOVER_WRITERS }, (_, j) => writer(j));
  const proberDone = prober();
  await Bun.sleep(1000);
  const electionDone = electionWatch();
  cpuMeter.mark();
  tKill = performance.now();
  cluster.killHard(leader);
  while (firstProbeOkMs === undefined && performance.now() - tKill < RECOVERY_WAIT_MAX_MS) await Bun.sleep(10);
  // Let every writer get through, then one more second of steady writes.
  const writersDeadline = performance.now() + DEADLINE_MS + 1000;
  while (writerRecoveredMs.size < FAILOVER_WRITERS && performance.now() < writersDeadline) await Bun.sleep(20);
  await Bun.sleep(1000);
  stop = true;
  await Promise.all([...writers, proberDone, electionDone]);
  await Promise.all(probes);
  if (firstProbeOkMs !== undefined) result.recoveryMs = Math.round(firstProbeOkMs - tKill);
  if (writerRecoveredMs.size === FAILOVER_WRITERS) result.allWritersRecoveredMs = Math.round(Math.max(...writerRecoveredMs.values()));
  result.requests = requests.length;
  result.maxRequestMs = Math.round(Math.max(0, ...requests.map((r) => r.doneMs - r.sentMs)));
  result.maxInFlightAtKillMs = Math.round(Math.max(0, ...requests.filter((r) => r.sentMs < tKill && r.doneMs > tKill).map((r) => r.doneMs - r.sentMs)));
  // No acknowledged write lost: each writer's key holds its last acknowledged value or a later one.
  for (const [j, seq] of lastAcked) {
    try {
      const text = await cluster.read(followers[0]!, `${prefix}-w${j}`, AbortSignal.timeout(DEADLINE_MS));
      const stored = text === undefined ? -1 : (JSON.parse(text) as { s: number }).s;
      if (stored < seq) {
        result.lostAcknowledgedWrites++;
        anomaly(`${cluster.system} failover trial ${trial}: writer ${j} was acknowledged seq ${seq}, key holds ${stored}`);
      }
    } catch (e) {
      anomaly(`${cluster.system} failover trial ${trial}: read-back of writer ${j} failed: ${errorText(e)}`);
    }
  }
  if (result.requestsPastDeadline > 0) anomaly(`${cluster.system} failover trial ${trial}: ${result.requestsPastDeadline} request(s) hung past the ${DEADLINE_MS} ms client deadline`);
  if (result.recoveryMs === null) anomaly(`${cluster.system} failover trial ${trial}: no write succeeded within ${RECOVERY_WAIT_MAX_MS} ms of the kill`);
  const t0 = performance.now();
  await cluster.restart(leader);
  await cluster.waitRejoined(leader, REJOIN_TIMEOUT_MS);
  result.rejoinMs = Math.round(performance.now() - t0);
  await Bun.sleep(300);
  return result;
}

interface FailoverSummary {
  trials: number;
  recovered: number;
  recoveryMsMedian: number | null;
  recoveryMsMin: number | null;
  recoveryMsMax: number | null;
  leaderElectedMsMedian: number | null;
  allWritersRecoveredMsMedian: number | null;
  allWritersRecoveredMsMax: number | null;
  maxRequestMs: number;
  maxInFlightAtKillMsMedian: number | null;
  requestsPastDeadline: number;
  anyRequestHungPastDeadline: boolean;
  lostAcknowledgedWrites: number;
  rejoinMsMedian: number | null;
  aborted?: string;
}

function summarize(trials: FailoverTrial[], aborted?: string): FailoverSummary {
  const ok = trials.filter((t) => t.recoveryMs !== null).map((t) => t.recoveryMs!);
  const notNull = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);
  const allW = notNull(trials.map((t) => t.allWritersRecoveredMs));
  const pastDeadline = trials.reduce((a, t) => a + t.requestsPastDeadline, 0);
  return {
    trials: trials.length,
    recovered: ok.length,
    recoveryMsMedian: median(ok),
    recoveryMsMin: ok.length ? Math.min(...ok) : null,
    recoveryMsMax: ok.length ? Math.max(...ok) : null,
    leaderElectedMsMedian: median(notNull(trials.map((t) => t.leaderElectedMs))),
    allWritersRecoveredMsMedian: median(allW),
    allWritersRecoveredMsMax: allW.length ? Math.max(...allW) : null,
    maxRequestMs: Math.max(0, ...trials.map((t) => t.maxRequestMs)),
    maxInFlightAtKillMsMedian: median(trials.map((t) => t.maxInFlightAtKillMs)),
    requestsPastDeadline: pastDeadline,
    anyRequestHungPastDeadline: pastDeadline > 0,
    lostAcknowledgedWrites: trials.reduce((a, t) => a + t.lostAcknowledgedWrites, 0),
    rejoinMsMedian: median(notNull(trials.map((t) => t.rejoinMs))),
    ...(aborted ? { aborted } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Report

async function main(): Promise<void> {
  const startedMs = performance.now();
  const cpuRun0 = cpuMeter.mark();
  await session.run({ tmpPrefix: "cairn-bench-metadata-", withEtcd: WITH_ETCD, keep: KEEP_DIRS }, async (startup) => {
    const { version, source, fsync, cpuBeforeStart, cairn, etcd, clusters } = startup;
    // Failover times depend on each system's election timeout: record both.
    const t = await cairn.raftTiming();
    const electionTimeouts = {
      cairn: t
        ? `tick ${t.tickIntervalMs} ms, election timeout ${t.electionTimeoutTicks * t.tickIntervalMs}–${2 * t.electionTimeoutTicks * t.tickIntervalMs} ms (randomized), heartbeat ${t.heartbeatIntervalTicks * t.tickIntervalMs} ms`
        : "unknown",
      etcd: "defaults: heartbeat 100 ms, election timeout 1000–2000 ms (randomized)",
    };

    const idle1 = cpuMeter.mark();
    await Bun.sleep(2000);
    const cpuIdleClusters = cpuMeter.since(idle1);
    console.error(`idle clusters: ${JSON.stringify(cpuIdleClusters.byGroupPct)} (% of the machine)`);

    for (const c of clusters) {
      const t = performance.now();
      await prefill(c);
      console.error(`${c.system}: prefilled ${KEY_SPACE} keys in ${Math.round(performance.now() - t)} ms`);
    }

    // 1 + 2: throughput cells, alternating which system goes first.
    const cellsCpu0 = cpuMeter.mark();
    const cells: Array<{ spec: CellSpec; cairn: CellResult; etcd?: CellResult }> = [];
    for (const [i, spec] of CELLS.entries()) {
      const runs: Record<"cairn" | "etcd", CellResult[]> = { cairn: [], etcd: [] };
      for (let round = 0; round < ROUNDS; round++) {
        const order = (i + round) % 2 === 0 ? clusters : [...clusters].reverse();
        for (const c of order) {
          const r = await runCell(c, spec);
          runs[c.system].push(r);
          console.error(
            `${spec.id} ${c.system} round ${round + 1}: ${r.opsPerSecond} ops/s, p50 ${r.latencyMsP50} ms, p99 ${r.latencyMsP99} ms, errors ${r.errors}, other CPU ${r.cpu.otherPct}%, kernel ${r.cpu.kernelPct}%`,
          );
        }
      }
      const etcdRuns = runs.etcd.length > 0 ? medianRound(runs.etcd) : undefined;
      cells.push({ spec, cairn: medianRound(runs.cairn), ...(etcdRuns ? { etcd: etcdRuns } : {}) });
    }
    const cpuCells = cpuMeter.since(cellsCpu0);

    // 3 + 4: failover, alternating systems trial by trial.
    const failCpu0 = cpuMeter.mark();
    const trials: Record<"cairn" | "etcd", FailoverTrial[]> = { cairn: [], etcd: [] };
    const aborted: Partial<Record<"cairn" | "etcd", string>> = {};
    for (let trial = 1; trial <= TRIALS; trial++) {
      const order = trial % 2 === 1 ? clusters : [...clusters].reverse();
      for (const c of order) {
        if (aborted[c.system] !== undefined) continue;
        try {
          const t = await failoverTrial(c, trial);
          trials[c.system].push(t);
          console.error(
            `failover ${c.system} #${trial}: killed ${t.killed}; write ok after ${fmt(t.recoveryMs, " ms")}, leader seen after ${fmt(t.leaderElectedMs, " ms")}, all writers after ${fmt(t.allWritersRecoveredMs, " ms")}, longest request ${t.maxRequestMs} ms, past deadline ${t.requestsPastDeadline}, rejoin ${fmt(t.rejoinMs, " ms")}`,
          );
        } catch (e) {
          aborted[c.system] = `trial ${trial}: ${(e as Error).message}`;
          anomaly(`${c.system} failover aborted at trial ${trial}: ${(e as Error).message}`);
        }
      }
    }
    const cpuFailover = cpuMeter.since(failCpu0);
    const failover = {
      cairn: summarize(trials.cairn, aborted.cairn),
      ...(etcd ? { etcd: summarize(trials.etcd, aborted.etcd) } : {}),
    };
    const cpuRun = cpuMeter.since(cpuRun0);

    // Table.
    const rows = cells.map(({ spec, cairn: c, etcd: e }) => ({
      id: spec.id,
      label: spec.label,
      concurrency: spec.concurrency,
      cairn: c,
      etcd: e ?? null,
      ratio: {
        throughput: ratio(c.opsPerSecond, e?.opsPerSecond),
        latencyP50: ratio(c.latencyMsP50, e?.latencyMsP50),
        latencyP99: ratio(c.latencyMsP99, e?.latencyMsP99),
      },
    }));
    console.log(
      `\nmetadata store, 3 members on 127.0.0.1, fsync on; ${VALUE_SIZE_BYTES} B JSON values, key space ${KEY_SPACE}; median of ${ROUNDS} rounds of ${WARMUP_MS / 1000} s warm-up + ${MEASURE_MS / 1000} s per cell, cairn and etcd alternating\n` +
        `cairn ${source.commit?.slice(0, 7) ?? "?"}${source.srcDirty ? " (src/ modified)" : ""}; ${cpuModel()}, ${cpus().length} cores, Bun ${Bun.version}, etcd ${version ?? "not run"}; fsync of 100 B p50 ${fsync.p50Ms} ms; CPU during cells (% of the machine): other users ${cpuCells.otherPct}, kernel ${cpuCells.kernelPct}, this run ${cpuCells.oursPct}\n`,
    );
    console.log("| scenario | clients | cairn ops/s | etcd ops/s | cairn/etcd | cairn p50 / p99 ms | etcd p50 / p99 ms | p50 cairn/etcd | p99 cairn/etcd | other users' CPU % during cairn / etcd |");
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(
        `| ${r.label} | ${r.concurrency} | ${r.cairn.opsPerSecond} | ${fmt(r.etcd?.opsPerSecond)} | ${fmt(r.ratio.throughput, "×")} | ${r.cairn.latencyMsP50} / ${r.cairn.latencyMsP99} | ${r.etcd ? `${r.etcd.latencyMsP50} / ${r.etcd.latencyMsP99}` : "–"} | ${fmt(r.ratio.latencyP50)} | ${fmt(r.ratio.latencyP99)} | ${r.cairn.cpu.otherPct} / ${fmt(r.etcd?.cpu.otherPct)} |`,
      );
    }
    console.log(
      `\nfailover: kill -9 of the leader under ${FAILOVER_WRITERS} closed-loop writers + a probe write every ${PROBE_INTERVAL_MS} ms, all to the surviving members; client deadline ${DEADLINE_MS} ms\n` +
        `cairn: ${electionTimeouts.cairn}; etcd: ${electionTimeouts.etcd}\n`,
    );
    console.log("| system | trials recovered | write ok again after (median, min–max ms) | new leader seen (median ms) | all writers through (median / max ms) | longest request (ms) | past deadline | lost acked writes | rejoin (median ms) |");
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const [name, s] of Object.entries(failover)) {
      console.log(
        `| ${name} | ${s.recovered}/${s.trials}${s.aborted ? " (aborted)" : ""} | ${fmt(s.recoveryMsMedian)} (${fmt(s.recoveryMsMin)}–${fmt(s.recoveryMsMax)}) | ${fmt(s.leaderElectedMsMedian)} | ${fmt(s.allWritersRecoveredMsMedian)} / ${fmt(s.allWritersRecoveredMsMax)} | ${s.maxRequestMs} | ${s.requestsPastDeadline} | ${s.lostAcknowledgedWrites} | ${fmt(s.rejoinMsMedian)} |`,
      );
    }
    const failoverRatio = failover.etcd
      ? {
          recoveryMsMedian: ratio(failover.cairn.recoveryMsMedian, failover.etcd.recoveryMsMedian),
          leaderElectedMsMedian: ratio(failover.cairn.leaderElectedMsMedian, failover.etcd.leaderElectedMsMedian),
          maxRequestMs: ratio(failover.cairn.maxRequestMs, failover.etcd.maxRequestMs),
        }
      : null;
    if (failoverRatio) console.log(`\nfailover cairn/etcd: recovery ${fmt(failoverRatio.recoveryMsMedian, "×")}, election ${fmt(failoverRatio.leaderElectedMsMedian, "×")}, longest request ${fmt(failoverRatio.maxRequestMs, "×")}`);
    console.log(`\nCPU (% of the whole machine): cells ${JSON.stringify(cpuCells)}\nfailover ${JSON.stringify(cpuFailover)}`);

    session.finishReport("metadata.json", {
      ...session.resultsHead("metadata", startedMs, startup),
      settings: {
        nodes: 3,
        valueBytes: VALUE_SIZE_BYTES,
        keySpace: KEY_SPACE,
        keys: "a shared space of 1000 keys (writes cycle through it; reads pick keys pseudo-randomly), prefilled",
        warmupSeconds: WARMUP_MS / 1000,
        measureSeconds: MEASURE_MS / 1000,
        rounds: ROUNDS,
        roundsNote: "each cell runs this many rounds, cairn and etcd alternating; the cell reports its median round by throughput, every round is kept",
        clientDeadlineMs: DEADLINE_MS,
        client: "Bun fetch, HTTP/1.1 keep-alive, closed loop (one request in flight per client)",
        cairn: "cairn dev --nodes 3 from source; admin API PUT/GET /v1/metadata/{key}; SQLite synchronous=FULL",
        etcd: "etcd 3-member cluster, default flags (fsync on), JSON gateway POST /v3/kv/put and /v3/kv/range (stale = serializable)",
        failover: { trials: TRIALS, writers: FAILOVER_WRITERS, probeIntervalMs: PROBE_INTERVAL_MS, recoveryWaitMaxMs: RECOVERY_WAIT_MAX_MS, electionTimeouts },
        ratios: "cairn / etcd: above 1 means cairn has more throughput, or more latency",
      },
      cpu: {
        note: "percent of the whole machine (all cores = 100); ours = this benchmark's process tree by group; kernel = interrupts, softirqs and kernel threads (partly caused by our fsyncs and loopback traffic); other = the rest of the machine's busy time (other users' processes)",
        beforeStart: cpuBeforeStart,
        idleClusters: cpuIdleClusters,
        cells: cpuCells,
        failover: cpuFailover,
        run: cpuRun,
      },
      cells: rows,
      failover: { ...failover, ratio: failoverRatio, trials },
      anomalies: anomalies.list,
    });
  });
}

await main();
