// Object-state benchmark: a 3-node cairn cluster (`cairn dev`: 8 partitions, replication 2, workers
// on every node) against a 3-member etcd cluster, same machine, same run, same load generator
// (closed-loop HTTP/1.1 keep-alive clients via fetch in separate processes, at most 32 clients each,
// whose CPU is shown; 10 s deadline per request; 1 KiB values; 10 000 objects preloaded, writes and
// reads to random ones). cairn's clients spread over the three nodes' data-plane ports (requests
// are forwarded to each partition's leader); etcd's go to its leader (its best case).
//  1. put with 1, 16, 64 clients; get with 64 clients (cairn: linearizable, etcd: linearizable)
//  2. start + provision → every partition led (GET /v1/partitions)
//  3. failover: kill -9 of a node that leads partitions (not the metadata leader, so only partition
//     failover is measured), continuous writes through a survivor to every one of its partitions,
//     time until each of them accepts a write again; restart the node between trials
// Prints a table and writes bench/results/state.json. Every process started is stopped by PID.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/state.ts
//  4. with --rss-writes N: N more writes over 100 000 objects, then each node's RSS
// Options: --seconds 3 --warmup 0.5 --rounds 3 --trials 10 --no-etcd --failover-only --rss-writes 1000000
import { flagArg, numArg } from "./args.ts";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { CairnCluster } from "./metadata/cairn.ts";
import { EtcdCluster, etcdVersion } from "./metadata/etcd.ts";
import { type LoadStats, makeValue, mergeRaw, percentile, round, summarizeLoad } from "./metadata/load.ts";
import type { LoadJob } from "./metadata/load-jobs.ts";
import { type LoadCpu, LoadProcesses, splitClients } from "./metadata/load-procs.ts";
import { ProcessRegistry, stopOnExitAndSignals } from "./metadata/procs.ts";

const MEASURE_MS = numArg("seconds", 3) * 1000;
const WARMUP_MS = numArg("warmup", 0.5) * 1000;
const ROUNDS = Math.max(1, Math.round(numArg("rounds", 3)));
const TRIALS = numArg("trials", 10);
const WITH_ETCD = !flagArg("no-etcd") && etcdVersion() !== undefined;
/** Only the failover trials (no load cells). */
const FAILOVER_ONLY = flagArg("failover-only");
const KEY_SPACE = 10_000;
const CLIENTS_PER_PROCESS = 32;
/** Extra writes over RSS_OBJECTS objects before RSS is read (0: skip). */
const RSS_WRITES = Math.round(numArg("rss-writes", 0));
const RSS_OBJECTS = 100_000;
const VALUE_BYTES = 1024;
const DEADLINE_MS = 10_000;
const RECOVERY_WAIT_MAX_MS = 20_000;

const registry = new ProcessRegistry();
let cairn: CairnCluster | undefined;
let etcd: EtcdCluster | undefined;
async function stopEverything(): Promise<void> {
  await cairn?.stop().catch(() => undefined);
  await etcd?.stop().catch(() => undefined);
  await registry.stopAll(10_000);
}
stopOnExitAndSignals(registry, stopEverything);

const value = (client: number, seq: number) => makeValue(client, seq, VALUE_BYTES);

function ingressOf(dataDir: string): string {
  return (JSON.parse(readFileSync(join(dataDir, "addresses.json"), "utf8")) as { ingress: string }).ingress;
}

interface PartitionRow {
  id: number;
  leader: string | null;
  leaderApplied: boolean;
}

async function partitions(admin: string): Promise<PartitionRow[]> {
  const r = await fetch(`${admin}/v1/partitions`, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`GET /v1/partitions: ${r.status}`);
  return ((await r.json()) as { partitions: PartitionRow[] }).partitions;
}

async function allLed(admin: string): Promise<boolean> {
  const rows = await partitions(admin).catch(() => []);
  return rows.length > 0 && rows.every((p) => p.leader !== null && p.leaderApplied);
}

/** Every partition led and leaderships even over `nodes` nodes: the placement has stopped moving them. */
async function settled(admin: string, nodes: number): Promise<boolean> {
  const rows = await partitions(admin).catch(() => []);
  if (rows.length === 0 || !rows.every((p) => p.leader !== null && p.leaderApplied)) return false;
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.leader!, (counts.get(r.leader!) ?? 0) + 1);
  return counts.size === nodes && Math.max(...counts.values()) - Math.min(...counts.values()) <= 1;
}

async function cairnPut(base: string, key: number, body: string, signal: AbortSignal): Promise<void> {
  const r = await fetch(`${base}/v1/objects/bench/k${key}/state/v`, { method: "PUT", body, headers: { "content-type": "text/plain" }, signal });
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`put: HTTP ${r.status}`);
}

type Cell = { id: string; op: "put" | "get"; concurrency: number };
const CELLS: Cell[] = [
  { id: "put-c1", op: "put", concurrency: 1 },
  { id: "put-c16", op: "put", concurrency: 16 },
  { id: "put-c64", op: "put", concurrency: 64 },
  { id: "get-c64", op: "get", concurrency: 64 },
];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "cairn-bench-state-"));
  const results: Record<string, { cairn: CellRun[]; etcd: CellRun[] }> = {};
  try {
    const t0 = performance.now();
    cairn = await CairnCluster.start(registry, join(dir, "cairn"), 60_000);
    const upMs = performance.now() - t0;
    const admin = cairn.nodes[0]!.url;
    while (!(await allLed(admin))) await Bun.sleep(20);
    const ledMs = performance.now() - t0;
    console.log(`cairn: cluster up (provisioned) in ${Math.round(upMs)} ms, every partition led ${Math.round(ledMs)} ms after start (${Math.round(ledMs - upMs)} ms after provisioning)`);
    const ingress = () => cairn!.nodes.map((n) => ingressOf((n as unknown as { dataDir: string }).dataDir));
    if (WITH_ETCD) etcd = await EtcdCluster.start(registry, join(dir, "etcd"), 30_000);
    const logDir = join(dir, "load");
    mkdirSync(logDir, { recursive: true });
    const etcdUrl = async () => (await etcd!.roles()).leader.url;
    // Every object exists before the cells (reads find it; writes rewrite it).
    await preload("cairn-state", ingress(), KEY_SPACE, logDir);
    if (etcd) await preload("etcd", [await etcdUrl()], KEY_SPACE, logDir);
    for (const cell of FAILOVER_ONLY ? [] : CELLS) {
      results[cell.id] = { cairn: [], etcd: [] };
      for (let round = 0; round < ROUNDS; round++) {
        const c = await runCell("cairn-state", ingress(), cell, logDir);
        results[cell.id]!.cairn.push(c);
        if (etcd) results[cell.id]!.etcd.push(await runCell("etcd", [await etcdUrl()], cell, logDir));
        const last = (xs: CellRun[]) => xs.at(-1)!;
        console.log(
          `${cell.id} round ${round + 1}: cairn ${c.opsPerSecond}/s (load ${c.loadCpu.processes} proc(s) ≤${Math.round(c.loadCpu.maxPctOfCore)}% of a core)` +
            (etcd ? `, etcd ${last(results[cell.id]!.etcd).opsPerSecond}/s` : "") +
            (c.errors > 0 ? `, cairn errors ${c.errors} ${JSON.stringify(c.errorSamples)}` : ""),
        );
      }
    }
    let rssAfterWrites: { writes: number; objects: number; seconds: number; rssMb: number[] } | undefined;
    if (RSS_WRITES > 0) {
      const t = performance.now();
      await preload("cairn-state", ingress(), RSS_WRITES, logDir, RSS_OBJECTS);
      rssAfterWrites = { writes: RSS_WRITES, objects: RSS_OBJECTS, seconds: round((performance.now() - t) / 1000, 1), rssMb: cairn.nodes.map((n) => rssMb(n.pid)) };
      console.log(`RSS after ${RSS_WRITES} more writes over ${RSS_OBJECTS} objects (${rssAfterWrites.seconds} s): ${rssAfterWrites.rssMb.join(", ")} MB`);
    }
    const rss = cairn.nodes.map((n) => rssMb(n.pid));
    const failovers = await failoverTrials();
    const table = CELLS.filter((cell) => results[cell.id] !== undefined).map((cell) => {
      const r = results[cell.id]!;
      const med = (xs: LoadStats[]) => xs.map((x) => x.opsPerSecond).sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
      const spread = (xs: LoadStats[]) => (xs.length === 0 ? "-" : `${Math.min(...xs.map((x) => x.opsPerSecond))}-${Math.max(...xs.map((x) => x.opsPerSecond))}`);
      const c = med(r.cairn);
      const e = med(r.etcd);
      return { cell: cell.id, cairnOpsPerSecond: c, cairnSpread: spread(r.cairn), etcdOpsPerSecond: e, etcdSpread: spread(r.etcd), ratio: e > 0 ? round(c / e, 2) : null, cairnP99Ms: r.cairn.map((x) => x.latencyMsP99).sort((a, b) => a - b)[Math.floor(r.cairn.length / 2)] };
    });
    console.log("\ncell        cairn/s (spread)        etcd/s (spread)        cairn/etcd  cairn p99 ms");
    for (const t of table) console.log(`${t.cell.padEnd(10)}  ${`${t.cairnOpsPerSecond} (${t.cairnSpread})`.padEnd(22)}  ${`${t.etcdOpsPerSecond} (${t.etcdSpread})`.padEnd(22)}  ${String(t.ratio ?? "-").padEnd(10)}  ${t.cairnP99Ms}`);
    const sortedFo = [...failovers].sort((a, b) => a - b);
    console.log(`\nfailover (kill -9 of a partition leader's node → writes to its partitions succeed): median ${Math.round(percentile(sortedFo, 50))} ms, min ${Math.round(sortedFo[0] ?? 0)}, max ${Math.round(sortedFo.at(-1) ?? 0)} over ${failovers.length} trials`);
    console.log(`provision → every partition led: ${Math.round(ledMs - upMs)} ms; RSS per node after the load: ${rss.join(", ")} MB`);
    mkdirSync(join(import.meta.dir, "results"), { recursive: true });
    if (!FAILOVER_ONLY) writeFileSync(
      join(import.meta.dir, "results/state.json"),
      JSON.stringify(
        {
          when: new Date().toISOString(),
          cpus: cpus().length,
          etcd: etcdVersion() ?? null,
          rounds: ROUNDS,
          measureMs: MEASURE_MS,
          client: `separate Bun processes (bench/metadata/load-worker.ts, at most ${CLIENTS_PER_PROCESS} clients each), fetch, HTTP/1.1 keep-alive, closed loop; ${KEY_SPACE} objects, 1 KiB values`,
          table,
          results,
          failoverMs: failovers,
          upMs,
          ledMs,
          rssMb: rss,
          rssAfterWrites: rssAfterWrites ?? null,
        },
        null,
        2,
      ) + "\n",
    );
  } finally {
    await stopEverything();
    rmSync(dir, { recursive: true, force: true });
  }
}

type CellRun = LoadStats & { loadCpu: LoadCpu };

/** The load of one cell: clients spread evenly over `urls`, in processes of at most CLIENTS_PER_PROCESS. */
async function runCell(system: "cairn-state" | "etcd", urls: string[], cell: Cell, logDir: string): Promise<CellRun> {
  const jobs: LoadJob[] = [];
  urls.forEach((url, i) => {
    const clients = Math.floor(cell.concurrency / urls.length) + (i < cell.concurrency % urls.length ? 1 : 0);
    if (clients === 0) return;
    for (const n of splitClients(clients, CLIENTS_PER_PROCESS)) {
      const base = { system, url, clients: n, deadlineMs: DEADLINE_MS, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, valueBytes: VALUE_BYTES };
      jobs.push(cell.op === "put" ? { ...base, kind: "put", keyPrefix: "", keyCount: KEY_SPACE } : { ...base, kind: "get", keyCount: KEY_SPACE, mode: "linearizable" });
    }
  });
  const procs = await LoadProcesses.start(registry, jobs, logDir, `${system} ${cell.id}`);
  try {
    procs.go();
    const outcome = await procs.finish();
    return { ...summarizeLoad(mergeRaw(outcome.loads)), loadCpu: outcome.cpu };
  } finally {
    await procs.close();
  }
}

/** Writes preloadKey(i % objects) for i in [0, count), spread over `urls` (one process each, 32 clients). */
async function preload(system: "cairn-state" | "etcd", urls: string[], count: number, logDir: string, objects = count): Promise<void> {
  const per = Math.ceil(count / urls.length);
  const jobs: LoadJob[] = urls.map((url, i) => ({
    kind: "preload",
    system,
    url,
    clients: 32,
    deadlineMs: DEADLINE_MS,
    valueBytes: VALUE_BYTES,
    from: i * per,
    to: Math.min(count, (i + 1) * per),
    attemptsPerKey: 5,
    ...(objects < count ? { keyModulo: objects } : {}),
  }));
  const procs = await LoadProcesses.start(registry, jobs, logDir, `${system} preload`);
  try {
    procs.go();
    const outcome = await procs.finish();
    const failed = outcome.preloads.reduce((a, p) => a + p.failed, 0);
    if (failed > 0) throw new Error(`${system}: ${failed} preload writes failed: ${JSON.stringify(outcome.preloads.map((p) => p.errorSamples))}`);
  } finally {
    await procs.close();
  }
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : -1;
  } catch {
    return -1;
  }
}

/** Kill -9 of a node leading partitions (not the metadata leader); time until each of its partitions takes a write. */
async function failoverTrials(): Promise<number[]> {
  const c = cairn!;
  const out: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    await c.waitHealthy(30_000);
    const admin = c.nodes[0]!.url;
    // A kill while leaderships still move back to the restarted node would measure the moves too.
    while (!(await settled(admin, c.nodes.length))) await Bun.sleep(50);
    const roles = await c.roles();
    const ids = await Promise.all(c.nodes.map(async (n) => ((await (await fetch(`${n.url}/v1/node`)).json()) as { id: string }).id));
    const rows = await partitions(admin);
    const victimIndex = c.nodes.findIndex((n, i) => n !== roles.leader && rows.some((r) => r.leader === ids[i]));
    if (victimIndex < 0) throw new Error("no partition leader outside the metadata leader's node");
    const victim = c.nodes[victimIndex]!;
    const survivor = c.nodes.find((n) => n !== victim)!;
    const base = ingressOf((survivor as unknown as { dataDir: string }).dataDir);
    const led = rows.filter((r) => r.leader === ids[victimIndex]).map((r) => r.id);
    // One key per led partition (keys map to partitions by the table's hash: find them by asking).
    const table = (await (await fetch(`${admin}/v1/metadata/partition_table`)).json()) as { value: { numPartitions: number } };
    const { evenPartitionTable, partitionOfObject } = await import("../src/worker/index.ts");
    const t = evenPartitionTable(table.value.numPartitions);
    const keys = led.map((p) => Array.from({ length: 10_000 }, (_, i) => i).find((i) => partitionOfObject(t, "bench", `k${i}`) === p)!);
    c.killHard(victim);
    const killedMs = performance.now();
    const times = await Promise.all(
      keys.map(async (k) => {
        for (;;) {
          const ok = await cairnPut(base, k, value(999, trial), AbortSignal.timeout(2_000)).then(() => true, () => false);
          if (ok) return performance.now() - killedMs;
          if (performance.now() - killedMs > RECOVERY_WAIT_MAX_MS) return Infinity;
          await Bun.sleep(10);
        }
      }),
    );
    const ms = Math.max(...times);
    out.push(ms);
    console.log(`failover trial ${trial + 1}: ${Math.round(ms)} ms (${led.length} partitions)`);
    await c.restart(victim);
  }
  return out;
}

await main();
