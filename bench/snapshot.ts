// Snapshot benchmark (issue 14): a 3-node cluster (`cairn server` processes from source, every role,
// replication 2, trimming off so the whole log stays replayable), `--partitions` partitions filled to
// about `--mb` MB each through the data plane (separate load processes, `--value-kib` values), then:
//  1. per repository (a shared directory, then s3rver on 127.0.0.1, started here; the nodes are
//     restarted on the same data dirs to switch) and per round: serial snapshots (one job per
//     partition, one after the other) against one parallel job for all partitions; MB/s for the
//     whole job. One small write per partition before each measurement, so every snapshot is new.
//  2. data-plane write p99 (16 clients, 1 KiB values, a separate process) without a snapshot job,
//     and while a parallel job runs (the window is the job), to s3rver (the goal's figure) and to the
//     directory (same job without s3rver's work on this machine's cores). Snapshots on a node that
//     serves writes are paced (snapshots.busy-duty-cycle-percent): the job then takes longer.
//  3. bootstrap: a node's partition stores wiped, the node restarted with the file repository
//     (imports the latest snapshots, replays the rest) and without one (replays the whole log);
//     time from spawn until each of its replicas applied what the leaders had applied before.
// Medians of `--rounds` rounds with spread; prints a table; writes bench/results/snapshot.json.
// `--smoke` (4 partitions × 1 MB, 1 round) checks the harness; its results are marked "smoke".
// Every process started is stopped by PID.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/snapshot.ts
// The leaders' logs give where each partition's time went (copy, checksum + staging write, upload,
// publish), printed and written as medians per kind of job.
// Options: --partitions 16 --mb 20 --rounds 3 --value-kib 64 --p99-seconds 5 --per-node 0 --smoke
// (--skip-speed / --skip-bootstrap while iterating on one part: no results file is written)
import S3rver from "s3rver";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { flagArg, numArg } from "./args.ts";
import { type LoadStats, mergeRaw, round, summarizeLoad } from "./metadata/load.ts";
import type { LoadJob } from "./metadata/load-jobs.ts";
import { LoadProcesses } from "./metadata/load-procs.ts";
import { ProcessRegistry, stopOnExitAndSignals } from "./metadata/procs.ts";
import { evenPartitionTable, partitionOfObject } from "../src/worker/index.ts";

const SMOKE = flagArg("smoke");
const PARTITIONS = Math.round(numArg("partitions", SMOKE ? 4 : 16));
const MB_PER_PARTITION = numArg("mb", SMOKE ? 1 : 20);
const ROUNDS = Math.max(1, Math.round(numArg("rounds", SMOKE ? 1 : 3)));
const VALUE_BYTES = Math.round(numArg("value-kib", 64) * 1024);
const P99_MS = numArg("p99-seconds", SMOKE ? 2 : 5) * 1000;
/** snapshots.max-concurrent-per-node on every node (0: the default, half the cores). */
const PER_NODE = Math.round(numArg("per-node", 0));
/** Iterating on one part: the others are skipped and no results file is written. */
const SKIP_SPEED = flagArg("skip-speed");
const SKIP_BOOTSTRAP = flagArg("skip-bootstrap");
const P99_CLIENTS = 16;
const FILL_CLIENTS = 16;
const DEADLINE_MS = 30_000;
const JOB_TIMEOUT_MS = 30 * 60_000;
const BOOTSTRAP_TIMEOUT_MS = 30 * 60_000;
const BUCKET = "cairn-bench";
const MAIN_TS = join(import.meta.dir, "../src/main.ts");
const ROLES = "metadata-server,log-server,worker,admin,ingress";

const registry = new ProcessRegistry();
let s3: S3rver | undefined;
let dir = "";
async function stopEverything(): Promise<void> {
  await registry.stopAll(15_000);
  await s3?.close().catch(() => undefined);
}
stopOnExitAndSignals(registry, stopEverything);

interface Node {
  name: string;
  dataDir: string;
  pid: number;
  admin: string;
  fabric: string;
  ingress: string;
}
const nodes: Node[] = [];
let repoArgs: string[] = [];
let s3Endpoint = "";

function repositoryArgs(kind: "file" | "s3" | "none"): string[] {
  if (kind === "none") return ["--set", "snapshots.repository=none"];
  if (kind === "file") return ["--set", "snapshots.repository=file", "--set", `snapshots.path=${join(dir, "repo")}`];
  return [
    "--set", "snapshots.repository=s3",
    "--set", `snapshots.s3-endpoint=${s3Endpoint}`,
    "--set", `snapshots.s3-bucket=${BUCKET}`,
    "--set", "snapshots.s3-prefix=bench",
    "--set", "snapshots.s3-access-key-id=S3RVER",
    "--set", "snapshots.s3-secret-access-key=S3RVER",
  ];
}

/** `cairn server` for node `name` (tracked by PID); resolves once it published its addresses. */
async function spawnNode(name: string, extra: string[]): Promise<Node> {
  const dataDir = join(dir, "nodes", name);
  mkdirSync(dataDir, { recursive: true });
  const previous = nodes.find((n) => n.name === name);
  const seeds = nodes.filter((n) => n.name !== name && registry.isAlive(n.pid)).map((n) => n.fabric);
  const log = openSync(join(dir, `${name}.log`), "a");
  const args = [
    process.execPath, MAIN_TS, "server",
    "--node-name", name,
    "--base-dir", dataDir,
    // A restarted node keeps its addresses (as an operator's would): its peers find it where it was.
    "--admin-address", previous ? hostPort(previous.admin) : "127.0.0.1:0",
    "--fabric-address", previous ? hostPort(previous.fabric) : "127.0.0.1:0",
    "--ingress-address", previous ? hostPort(previous.ingress) : "127.0.0.1:0",
    "--roles", ROLES,
    "--set", "log.format=json",
    "--set", "trim.policy=off",
    "--set", `snapshots.max-concurrent-per-node=${PER_NODE}`,
    ...(seeds.length > 0 ? ["--set", `metadata-client.addresses=${seeds.join(",")}`] : []),
    ...repoArgs,
    ...extra,
  ];
  const proc = Bun.spawn(args, { stdout: log, stderr: log, stdin: "ignore", env: { ...process.env, CAIRN_EXIT_WITH_PARENT: "1" } });
  closeSync(log);
  registry.track(proc.pid, "cairn", `cairn ${name}`, proc);
  const deadline = performance.now() + 60_000;
  const path = join(dataDir, "addresses.json");
  while (performance.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`cairn ${name} exited; see ${join(dir, `${name}.log`)}`);
    try {
      if (existsSync(path)) {
        const a = JSON.parse(readFileSync(path, "utf8")) as { pid: number; admin: string; fabric: string; ingress: string };
        if (a.pid === proc.pid) {
          const n: Node = { name, dataDir, pid: proc.pid, admin: a.admin, fabric: a.fabric, ingress: a.ingress };
          const i = nodes.findIndex((x) => x.name === name);
          if (i >= 0) nodes[i] = n;
          else nodes.push(n);
          return n;
        }
      }
    } catch {
      // Being written.
    }
    await Bun.sleep(50);
  }
  throw new Error(`cairn ${name} did not start within 60 s`);
}

const hostPort = (url: string) => url.replace(/^[a-z0-9]+:\/\//, "");

async function stopNode(n: Node): Promise<void> {
  try {
    process.kill(n.pid, "SIGTERM");
  } catch {
    // Gone.
  }
  if (!(await registry.waitGone(n.pid, 20_000))) {
    registry.killHard(n.pid);
    await registry.waitGone(n.pid, 5_000);
  }
  registry.untrack(n.pid);
}

async function api<T>(n: Node, path: string, init?: RequestInit): Promise<T> {
  const r = await fetch(`${n.admin}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? "GET"} ${path}: ${r.status} ${text}`);
  return JSON.parse(text) as T;
}

interface Replica {
  node: string;
  appliedLsn: number;
  stopped: string | null;
}
interface PartitionRow {
  id: number;
  leader: string | null;
  leaderApplied: boolean;
  replicas: Replica[];
}
const alive = () => nodes.filter((n) => registry.isAlive(n.pid));
const partitions = async () => (await api<{ partitions: PartitionRow[] }>(alive()[0]!, "/v1/partitions")).partitions;

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (${last})` : ""}`);
}

const allLed = () =>
  until("every partition led with its replicas", async () => {
    const rows = await partitions();
    if (rows.length === PARTITIONS && rows.every((p) => p.leaderApplied && p.replicas.length >= 2 && p.replicas.every((r) => r.stopped === null))) return rows;
    throw new Error(JSON.stringify(rows.map((p) => ({ id: p.id, leader: p.leader, applied: p.leaderApplied, replicas: p.replicas.map((r) => `${r.node}:${r.appliedLsn}:${r.stopped ?? ""}`) }))));
  }, 180_000);

// ---- load -----------------------------------------------------------------------------------------

async function fill(): Promise<{ objects: number; seconds: number }> {
  const objects = Math.ceil((PARTITIONS * MB_PER_PARTITION * 1024 * 1024) / VALUE_BYTES);
  const urls = alive().map((n) => n.ingress);
  const per = Math.ceil(objects / urls.length);
  // One process per node's data-plane port; the writes are forwarded to each partition's leader.
  const jobs: LoadJob[] = urls.map((url, i) => ({
    kind: "preload",
    system: "cairn-state",
    url,
    clients: Math.ceil(FILL_CLIENTS / urls.length),
    deadlineMs: DEADLINE_MS,
    valueBytes: VALUE_BYTES,
    from: Math.min(objects, i * per),
    to: Math.min(objects, (i + 1) * per),
    attemptsPerKey: 5,
  }));
  const t = performance.now();
  const procs = await LoadProcesses.start(registry, jobs, dir, "fill");
  try {
    procs.go();
    const outcome = await procs.finish();
    const failed = outcome.preloads.reduce((a, p) => a + p.failed, 0);
    if (failed > 0) throw new Error(`fill: ${failed} writes failed: ${JSON.stringify(outcome.preloads.map((p) => p.errorSamples))}`);
  } finally {
    await procs.close();
  }
  return { objects, seconds: round((performance.now() - t) / 1000, 1) };
}

/** One key of every partition (service "bench"): a write to each makes every snapshot a new one. */
const table = evenPartitionTable(PARTITIONS);
const touchKeys = Array.from({ length: PARTITIONS }, (_, p) => {
  for (let i = 0; ; i++) if (partitionOfObject(table, "bench", `touch-${i}`) === p) return `touch-${i}`;
});
let touches = 0;
async function touchAll(): Promise<void> {
  touches++;
  await Promise.all(
    touchKeys.map(async (key) => {
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(`${alive()[0]!.ingress}/v1/objects/bench/${key}/state/v`, { method: "PUT", body: `t${touches}`, signal: AbortSignal.timeout(DEADLINE_MS) }).catch(() => undefined);
        await r?.arrayBuffer();
        if (r?.ok) return;
        if (attempt > 50) throw new Error(`touch ${key}: ${r?.status ?? "no answer"}`);
        await Bun.sleep(100);
      }
    }),
  );
}

/** Data-plane writes from a separate process while `during` runs (or for P99_MS without it). */
async function writeLoad(during: (() => Promise<unknown>) | undefined): Promise<LoadStats> {
  const urls = alive().map((n) => n.ingress);
  const job: LoadJob = { kind: "put", system: "cairn-state", url: urls[0]!, clients: P99_CLIENTS, deadlineMs: DEADLINE_MS, valueBytes: 1024, keyPrefix: "p99-", keyCount: 10_000, warmupMs: 500, measureMs: during ? null : P99_MS };
  const procs = await LoadProcesses.start(registry, [job], dir, "p99");
  try {
    procs.go();
    if (during) {
      await Bun.sleep(600); // past the warm-up
      await during();
      procs.stop();
    }
    const outcome = await procs.finish();
    return summarizeLoad(mergeRaw(outcome.loads));
  } finally {
    await procs.close();
  }
}

// ---- snapshot jobs -------------------------------------------------------------------------------

interface Job {
  id: string;
  state: string;
  partitions: Array<{ partition: number; state: string; sizeBytes: number | null; durationMs: number | null; error: string | null }>;
}

/** Which measurement the jobs started now belong to (for the phase breakdown read from the nodes' logs). */
let jobCategory = "other";
const jobsOf = new Map<string, string>();
/** Per category: each partition's time as the controller saw it (RPC to the leader + index CAS). */
const controllerMs = new Map<string, number[]>();
/** Per category: CPU this process used per ms of job (s3rver runs in it: 1.0 is one core all along). */
const benchCpuShare = new Map<string, number[]>();

async function runJob(partitionIds: number[] | undefined): Promise<{ ms: number; bytes: number }> {
  const n = alive()[0]!;
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const started = await api<{ id: string }>(n, "/v1/snapshots", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(partitionIds ? { partitions: partitionIds } : {}) });
  const job = await until(`snapshot job ${started.id}`, async () => {
    const j = await api<Job>(n, `/v1/snapshots/jobs/${started.id}`);
    return j.state === "running" ? undefined : j;
  }, JOB_TIMEOUT_MS);
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  benchCpuShare.set(jobCategory, [...(benchCpuShare.get(jobCategory) ?? []), (cpu.user + cpu.system) / 1000 / ms]);
  if (job.state !== "succeeded") throw new Error(`snapshot job ${job.id} ${job.state}: ${JSON.stringify(job.partitions.filter((p) => p.error))}`);
  jobsOf.set(job.id, jobCategory);
  const list = controllerMs.get(jobCategory) ?? [];
  for (const p of job.partitions) if (p.durationMs !== null) list.push(p.durationMs);
  controllerMs.set(jobCategory, list);
  return { ms, bytes: job.partitions.reduce((a, p) => a + (p.sizeBytes ?? 0), 0) };
}

interface JobRun {
  ms: number;
  mb: number;
  mbPerSecond: number;
}
const asRun = (ms: number, bytes: number): JobRun => ({ ms: Math.round(ms), mb: round(bytes / 1e6, 1), mbPerSecond: round(bytes / 1e6 / (ms / 1000), 1) });

async function serial(): Promise<JobRun> {
  await touchAll();
  let ms = 0;
  let bytes = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    const r = await runJob([p]);
    ms += r.ms;
    bytes += r.bytes;
  }
  return asRun(ms, bytes);
}

async function parallel(): Promise<JobRun> {
  await touchAll();
  const r = await runJob(undefined);
  return asRun(r.ms, r.bytes);
}

async function ready(n: Node): Promise<void> {
  await until(`${n.name} ready`, async () => ((await fetch(`${n.admin}/ready`, { signal: AbortSignal.timeout(5_000) })).ok ? true : undefined), 180_000);
}

/** Restarts every node, one at a time (the next only once the last is ready), with `kind`. */
async function restartAll(kind: "file" | "s3" | "none"): Promise<void> {
  repoArgs = repositoryArgs(kind);
  for (const n of [...nodes]) {
    await stopNode(n);
    await ready(await spawnNode(n.name, []));
  }
  await allLed();
}

// ---- bootstrap -----------------------------------------------------------------------------------

/**
 * Wipes the last node's partition stores and restarts it with `kind`: ms from spawn until every
 * partition the placement gives it has a replica there that applied what the most advanced replica
 * had applied before the stop (the placement may move partitions while it is down: whatever it holds
 * at the end counts).
 */
async function bootstrap(kind: "file" | "none"): Promise<{ ms: number; replicas: number }> {
  const victim = nodes[nodes.length - 1]!;
  const id = (await api<{ id: string }>(victim, "/v1/node")).id;
  const target = new Map((await partitions()).map((p) => [p.id, Math.max(...p.replicas.map((r) => r.appliedLsn))]));
  await stopNode(victim);
  rmSync(join(victim.dataDir, "partitions"), { recursive: true, force: true });
  repoArgs = repositoryArgs(kind);
  const t = performance.now();
  await spawnNode(victim.name, []);
  const held = await until(
    `${victim.name} caught up after a ${kind} bootstrap`,
    async () => {
      const placement = (await api<{ value: { partitions: Array<{ id: number; leader: string | null; followers: string[] }> } }>(alive()[0]!, "/v1/metadata/partition_placement")).value;
      const placed = placement.partitions.filter((e) => e.leader === id || e.followers.includes(id)).map((e) => e.id);
      const rows = await partitions();
      const caughtUp = placed.every((p) => rows.find((r) => r.id === p)?.replicas.some((r) => r.node === id && r.stopped === null && r.appliedLsn >= (target.get(p) ?? 0)));
      return placed.length > 0 && caughtUp ? placed.length : undefined;
    },
    BOOTSTRAP_TIMEOUT_MS,
  );
  const ms = Math.round(performance.now() - t);
  await ready(nodes[nodes.length - 1]!);
  await allLed();
  return { ms, replicas: held };
}

// ---- where the time went ----------------------------------------------------------------------------

/**
 * Per category of job (serial/parallel × repository, p99): the median over partitions of each phase
 * the leaders logged (export = copy + checksum/staging write, upload, publish), of the leader's whole
 * handling, and of each partition's time as the controller saw it.
 */
function phaseBreakdown(): Record<string, Record<string, number>> {
  const byCategory = new Map<string, Map<string, number[]>>();
  const add = (category: string, phase: string, v: number) => {
    const m = byCategory.get(category) ?? new Map<string, number[]>();
    byCategory.set(category, m);
    m.set(phase, [...(m.get(phase) ?? []), v]);
  };
  for (const n of nodes) {
    const path = join(dir, `${n.name}.log`);
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.includes('"phasesMs"')) continue;
      try {
        const r = JSON.parse(line) as { job?: string; ms?: number; phasesMs?: Record<string, number> };
        const category = r.job === undefined ? undefined : jobsOf.get(r.job);
        if (category === undefined || r.phasesMs === undefined) continue;
        for (const [phase, v] of Object.entries(r.phasesMs)) add(category, phase, v);
        if (r.ms !== undefined) add(category, "leader", r.ms);
      } catch {
        // Not a JSON line.
      }
    }
  }
  for (const [category, list] of controllerMs) for (const v of list) add(category, "controller", v);
  for (const [category, list] of benchCpuShare) for (const v of list) add(category, "benchCpuPerJobMs", v);
  const out: Record<string, Record<string, number>> = {};
  for (const [category, phases] of byCategory) out[category] = Object.fromEntries([...phases].map(([phase, vs]) => [phase, round(median(vs), phase === "benchCpuPerJobMs" ? 2 : 1)]));
  return out;
}

// ---- main ----------------------------------------------------------------------------------------

/**
 * The machine's 1-minute load average before each round (the cluster itself adds about 1-2 while it
 * works): other processes on the 2 cores show up here, and in the p99 without a job.
 */
const loadAverages: Array<{ at: string; loadavg1m: number }> = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const spread = (xs: number[]) => `${Math.min(...xs)}-${Math.max(...xs)}`;

async function main(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "cairn-bench-snapshot-"));
  let ok = false;
  try {
    s3 = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: join(dir, "s3rver"), configureBuckets: [{ name: BUCKET }] });
    s3Endpoint = `http://127.0.0.1:${(await s3.run()).port}`;
    repoArgs = repositoryArgs("file");
    const first = await spawnNode("n1", []);
    await api(first, "/v1/cluster/provision", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ numPartitions: PARTITIONS, replication: 2 }) });
    await ready(first);
    await ready(await spawnNode("n2", []));
    await ready(await spawnNode("n3", []));
    await allLed();
    const filled = await fill();
    console.log(`filled ${PARTITIONS} partitions with ${filled.objects} objects of ${VALUE_BYTES / 1024} KiB (~${MB_PER_PARTITION} MB each) in ${filled.seconds} s`);

    const runs: Record<"file" | "s3", { serial: JobRun[]; parallel: JobRun[] }> = { file: { serial: [], parallel: [] }, s3: { serial: [], parallel: [] } };
    for (const kind of SKIP_SPEED ? [] : (["file", "s3"] as const)) {
      if (kind === "s3") await restartAll("s3");
      for (let r = 0; r < ROUNDS; r++) {
        loadAverages.push({ at: `${kind} round ${r + 1}`, loadavg1m: round(loadavg()[0]!, 2) });
        jobCategory = `serial-${kind}`;
        const s = await serial();
        jobCategory = `parallel-${kind}`;
        const p = await parallel();
        runs[kind].serial.push(s);
        runs[kind].parallel.push(p);
        console.log(`${kind} round ${r + 1}: serial ${s.ms} ms (${s.mbPerSecond} MB/s), parallel ${p.ms} ms (${p.mbPerSecond} MB/s), ${p.mb} MB`);
      }
    }

    // The write p99, first with the s3 repository (the last the speed runs used; the goal's figure),
    // then with the file repository (the same job without s3rver's work on this machine's cores).
    if (SKIP_SPEED) await restartAll("s3");
    const p99ByRepo: Record<"s3" | "file", { without: LoadStats[]; during: LoadStats[] }> = { s3: { without: [], during: [] }, file: { without: [], during: [] } };
    for (const kind of ["s3", "file"] as const) {
      if (kind === "file") await restartAll("file");
      jobCategory = `p99-during-${kind}`;
      const rounds = p99ByRepo[kind];
      for (let r = 0; r < ROUNDS; r++) {
        loadAverages.push({ at: `p99 ${kind} round ${r + 1}`, loadavg1m: round(loadavg()[0]!, 2) });
        rounds.without.push(await writeLoad(undefined));
        rounds.during.push(await writeLoad(() => parallel()));
        console.log(`write p99 (${kind}) round ${r + 1}: without a job ${rounds.without.at(-1)!.latencyMsP99} ms, during a parallel job ${rounds.during.at(-1)!.latencyMsP99} ms (the job took ${rounds.during.at(-1)!.seconds} s)`);
      }
    }
    const p99 = p99ByRepo.s3;

    // Bootstrap needs the file repository's snapshots to be recent: one more parallel job there.
    jobCategory = "other";
    if (!SKIP_BOOTSTRAP) await parallel();
    const boot: { snapshot: number[]; replay: number[]; replicas: number } = { snapshot: [], replay: [], replicas: 0 };
    for (let r = 0; r < (SKIP_BOOTSTRAP ? 0 : ROUNDS); r++) {
      const a = await bootstrap("file");
      const b = await bootstrap("none");
      boot.snapshot.push(a.ms);
      boot.replay.push(b.ms);
      boot.replicas = a.replicas;
      console.log(`bootstrap round ${r + 1} (${a.replicas} partition stores): from the snapshot ${a.ms} ms, replaying the whole log ${b.ms} ms`);
    }

    const summary = (["file", "s3"] as const).map((kind) => {
      const s = runs[kind].serial.map((x) => x.ms);
      const p = runs[kind].parallel.map((x) => x.ms);
      return {
        repository: kind,
        serialMs: median(s),
        serialSpread: spread(s),
        parallelMs: median(p),
        parallelSpread: spread(p),
        speedup: round(median(s) / Math.max(1, median(p)), 2),
        parallelMbPerSecond: median(runs[kind].parallel.map((x) => x.mbPerSecond)),
      };
    });
    const p99Without = median(p99.without.map((x) => x.latencyMsP99));
    const p99During = median(p99.during.map((x) => x.latencyMsP99));
    console.log("\nrepository  serial ms (spread)      parallel ms (spread)    speedup  parallel MB/s");
    for (const t of summary) console.log(`${t.repository.padEnd(10)}  ${`${t.serialMs} (${t.serialSpread})`.padEnd(22)}  ${`${t.parallelMs} (${t.parallelSpread})`.padEnd(22)}  ${String(t.speedup).padEnd(7)}  ${t.parallelMbPerSecond}`);
    const p99Summary = Object.fromEntries(
      (["s3", "file"] as const).map((kind) => {
        const w = p99ByRepo[kind].without.map((x) => x.latencyMsP99);
        const d = p99ByRepo[kind].during.map((x) => x.latencyMsP99);
        const ratios = p99ByRepo[kind].during.map((x, i) => round(x.latencyMsP99 / Math.max(0.001, p99ByRepo[kind].without[i]!.latencyMsP99), 2));
        return [kind, { without: median(w), withoutSpread: spread(w), during: median(d), duringSpread: spread(d), ratio: round(median(d) / Math.max(0.001, median(w)), 2), roundRatios: ratios, jobSeconds: p99ByRepo[kind].during.map((x) => x.seconds) }];
      }),
    );
    for (const [kind, s] of Object.entries(p99Summary)) {
      console.log(`write p99 (16 clients, ${kind} repository): ${s.without} ms (${s.withoutSpread}) without a job, ${s.during} ms (${s.duringSpread}) during a parallel job (ratio of medians ${s.ratio}; per round ${s.roundRatios.join(", ")}; jobs took ${s.jobSeconds.join(", ")} s)`);
    }
    console.log(`bootstrap of ${boot.replicas} partition stores: from the snapshot ${median(boot.snapshot)} ms (${spread(boot.snapshot)}), replaying the log ${median(boot.replay)} ms (${spread(boot.replay)})`);
    const phases = phaseBreakdown();
    console.log("median ms per partition (leader: copy, hashWrite, export, upload, publish, leader; controller); benchCpuPerJobMs: this process's (s3rver's) CPU per ms of job:");
    for (const [category, m] of Object.entries(phases)) console.log(`  ${category.padEnd(14)} ${Object.entries(m).map(([k, v]) => `${k} ${v}`).join(", ")}`);
    console.log(`1-minute load average before each round: ${loadAverages.map((l) => `${l.at} ${l.loadavg1m}`).join("; ")}`);
    console.log(`goals: parallel ≥ 2× serial; s3 ≥ 45 MB/s for the whole job; p99 during ≤ 2× without`);

    mkdirSync(join(import.meta.dir, "results"), { recursive: true });
    if (!(SKIP_SPEED || SKIP_BOOTSTRAP)) writeFileSync(
      join(import.meta.dir, "results/snapshot.json"),
      JSON.stringify(
        {
          ...(SMOKE ? { smoke: true } : {}),
          when: new Date().toISOString(),
          cpus: cpus().length,
          partitions: PARTITIONS,
          mbPerPartition: MB_PER_PARTITION,
          valueBytes: VALUE_BYTES,
          rounds: ROUNDS,
          fill: filled,
          summary,
          runs,
          writeP99Ms: { repository: "s3", without: p99Without, during: p99During, ratio: round(p99During / Math.max(0.001, p99Without), 2), rounds: p99, byRepository: p99Summary, fileRounds: p99ByRepo.file },
          phasesMsMedian: phases,
          loadAverages,
          bootstrapMs: { fromSnapshot: median(boot.snapshot), replay: median(boot.replay), partitionStores: boot.replicas, rounds: boot },
        },
        null,
        2,
      ) + "\n",
    );
    ok = true;
  } finally {
    await stopEverything();
    // A failed run keeps its directory (the nodes' logs) for a look.
    if (ok) rmSync(dir, { recursive: true, force: true });
    else console.error(`logs kept in ${dir}`);
  }
}

await main();
