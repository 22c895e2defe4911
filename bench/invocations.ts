// Durable invocations: the same Restate SDK service (bench/invocations/service.ts, one process for
// the whole run) registered on cairn and on Restate 1.7 (npm, bench/setup-restate.sh), one system
// running at a time, single node and 3 nodes, same closed-loop load generator in its own processes
// (HTTP/1.1 keep-alive fetch, at most 32 callers each, their CPU shown; clients spread over every
// node's ingress). Cells: greet at 16 and 64 callers, counter on one hot key, counter on many keys
// (a new key every request: state grows). Then RSS of every node after --rss-invocations more
// invocations (half greet, half counter on new keys), and on 3 nodes failover: under greet +
// counter load through the survivors, kill -9 of the node leading a chosen counter key's partition
// (cairn: GET /v1/partitions; Restate: the last node), time until a request started after the kill
// completes, for that key and for probe keys over every partition. Ratios cairn/Restate per cell,
// median of rounds with spread. Each system keeps its defaults (cairn dev: 8 partitions, replication
// 2 on 3 nodes; Restate: 24 partitions, default-replication 2 on 3 nodes; single node: replication 1).
// The CPU of the machine per cell is recorded: other users above 15% flag the cell as noisy.
// Prints a table, writes bench/results/invocations.json.
//
// Run alone on the machine:  flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/invocations.ts
// Options: --rounds 3 --seconds 10 --warmup 2 --trials 3 --rss-invocations 1000000
//          --only <id prefix: single | three | single/greet-c16 | greet | rss | failover>
//          --systems cairn,restate   --quick (1 round of 3 s, 20 000 RSS invocations, 1 trial)
//          --failover-when settled|rejoined|moving (default settled: kill once leaderships stopped
//            moving; rejoined: kill right after the previous trial's restarted node is back, every
//            partition led; moving: kill as soon as a leadership moves back to it. Not "settled": a
//            node is killed and restarted once before the first trial, so every trial follows a rejoin)
//          --out <file name under bench/results> (default invocations.json)   --keep-logs (keep the nodes' logs)
// Failover only, right after a rejoin:  --only three/failover --systems cairn --failover-when moving --out invocations-failover.json
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { flagArg, numArg } from "./args.ts";
import { logBenchSession } from "./log/session.ts";
import { type LoadStats, mergeRaw, round, summarizeLoad } from "./metadata/load.ts";
import { forEachLine } from "./metadata/load-jobs.ts";
import { type LoadCpu, LoadProcesses, splitClients } from "./metadata/load-procs.ts";
import { JIFFIES_PER_SECOND, processCpuJiffies, processRssBytes } from "./metadata/procstat.ts";
import { type InvocationJob, type InvocationOp, invoke, SERVICE } from "./invocations/jobs.ts";
import { FAILOVER_WHEN, registerDeployment, startSystem, type FailoverWhen, type SysNode, type SystemName, type SystemUnderTest, type Topology } from "./invocations/systems.ts";

if (process.argv.includes("--help")) {
  // The options are documented once, in this file's header comment.
  const header = (await Bun.file(import.meta.path).text()).split("\n").filter((l) => l.startsWith("//"));
  console.log(header.map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
  process.exit(0);
}

const QUICK = flagArg("quick");
const ROUNDS = Math.max(1, Math.round(numArg("rounds", QUICK ? 1 : 3)));
const MEASURE_MS = numArg("seconds", QUICK ? 3 : 10) * 1000;
const WARMUP_MS = numArg("warmup", QUICK ? 0.5 : 2) * 1000;
const TRIALS = Math.round(numArg("trials", QUICK ? 1 : 3));
const RSS_INVOCATIONS = Math.round(numArg("rss-invocations", QUICK ? 20_000 : 1_000_000));
const ONLY = optionText("only");
const SYSTEMS = (optionText("systems") ?? "cairn,restate").split(",").map((s) => s.trim()) as SystemName[];
const FAILOVER_WHEN_OPTION = (optionText("failover-when") ?? "settled") as FailoverWhen;
if (!FAILOVER_WHEN.includes(FAILOVER_WHEN_OPTION)) throw new Error(`--failover-when takes ${FAILOVER_WHEN.join(", ")} (got ${FAILOVER_WHEN_OPTION})`);
const OUT_FILE = optionText("out") ?? "invocations.json";
if (!/^[\w.-]+\.json$/.test(OUT_FILE)) throw new Error(`--out takes a file name ending in .json (got ${OUT_FILE})`);
const CLIENTS_PER_PROCESS = 32;
const DEADLINE_MS = 10_000;
const RSS_CLIENTS_PER_NODE = 32;
/** Warm-up of a fresh system: every ingress answers greet and counter adds on this many keys. */
const WARM_KEYS = 32;
const WARM_TIMEOUT_MS = 120_000;
/** Failover probes: keys spread over every partition, a new request per key this often, at most this many in flight per key. */
const PROBE_KEYS = 64;
const PROBE_INTERVAL_MS = 50;
const PROBE_IN_FLIGHT_MAX = 8;
const RECOVERY_WAIT_MAX_MS = 30_000;
const FAILOVER_LOAD_CLIENTS = 16;
/** Other users' share of the machine during a cell above which the cell is flagged (a noisy machine). */
const OTHER_CPU_WARN_PCT = 15;

for (const s of SYSTEMS) if (s !== "cairn" && s !== "restate") throw new Error(`--systems takes cairn and/or restate (got ${s})`);

function optionText(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  return v;
}

interface Cell {
  id: string;
  op: InvocationOp;
  callers: number;
}
const CELLS: Cell[] = [
  { id: "greet-c16", op: "greet", callers: 16 },
  { id: "greet-c64", op: "greet", callers: 64 },
  { id: "counter-hot-c16", op: "counter-hot", callers: 16 },
  { id: "counter-many-c64", op: "counter-many", callers: 64 },
];
const TOPOLOGIES: Topology[] = ["single", "three"];

/** `--only` selects ids by prefix on either part: "three", "greet", "three/greet-c64", "rss", "failover". */
function selected(topology: Topology, id: string): boolean {
  if (ONLY === undefined) return true;
  return ONLY.split(",").some((o) => `${topology}/${id}`.startsWith(o) || id.startsWith(o) || (o === topology));
}

/** Machine CPU over a cell (all cores = 100): busy, ours by group (load, service, cairn, restate), other users. */
interface MachineCpu {
  machineBusyPct: number;
  otherPct: number;
  byGroupPct: Record<string, number>;
}
type CellRun = LoadStats & { loadCpu: LoadCpu; servicePctOfCore: number; machine: MachineCpu };
interface FailoverTrial {
  /** When the kill came (--failover-when). */
  when: FailoverWhen;
  key: string;
  killed: string;
  /** The killed node was known to lead the key's partition. */
  keyOnNode: boolean;
  how: string;
  /** Kill → first completed request on the chosen key that started after the kill (null: not known to be on the killed node, or never). */
  chosenKeyMs: number | null;
  /** Kill → every probe key has had such a request complete (null: some never did in time). */
  allKeysMs: number | null;
  probeKeysRecovered: number;
  /** The greet + counter load through the survivors over the trial. */
  load: LoadStats;
}
interface SystemResult {
  version: string;
  cells: Record<string, CellRun[]>;
  rss: { invocations: number; failed: number; seconds: number; rssMbBefore: number[]; rssMbAfter: number[] } | null;
  failover: FailoverTrial[];
  upMs: number;
}

const session = logBenchSession();
const { registry, stoppers, stopEverything, anomaly } = session;

/** The SDK service process (tracked by PID); resolves with its URL once it listens. */
async function startService(logDir: string): Promise<{ url: string; pid: number }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "invocations/service.ts"), "--port", "0"], {
    stdout: "pipe",
    stderr: Bun.file(join(logDir, "service.log")),
    stdin: "ignore",
    env: { ...process.env },
  });
  registry.track(proc.pid, "service", "SDK service", proc);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the SDK service did not print its port within 30 s")), 30_000);
    void forEachLine(proc.stdout, (line) => {
      const m = /^listening (\d+)$/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    }).then(() => reject(new Error(`the SDK service exited (${proc.exitCode}); see ${join(logDir, "service.log")}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: proc.pid };
}

async function warm(sys: SystemUnderTest): Promise<void> {
  const deadline = performance.now() + WARM_TIMEOUT_MS;
  for (const n of sys.nodes()) {
    for (let k = -1; k < WARM_KEYS; k++) {
      for (;;) {
        try {
          await invoke(n.ingress, k < 0 ? "greet" : "counter-hot", `warm-${k}`, 0, AbortSignal.timeout(DEADLINE_MS));
          break;
        } catch (e) {
          if (performance.now() > deadline) throw new Error(`${sys.system}: ${n.name}'s ingress does not answer invocations within ${WARM_TIMEOUT_MS} ms: ${String(e)}`);
          await Bun.sleep(200);
        }
      }
    }
  }
}

/** Clients spread evenly over `nodes`' ingress, in processes of at most CLIENTS_PER_PROCESS. */
function jobsFor(nodes: SysNode[], op: InvocationOp, callers: number, key: string, window: { warmupMs: number; measureMs: number | null }): InvocationJob[] {
  const jobs: InvocationJob[] = [];
  nodes.forEach((n, i) => {
    const clients = Math.floor(callers / nodes.length) + (i < callers % nodes.length ? 1 : 0);
    splitClients(clients, CLIENTS_PER_PROCESS).forEach((c, j) => jobs.push({ kind: "window", op, url: n.ingress, clients: c, deadlineMs: DEADLINE_MS, key: op === "counter-hot" ? key : `${key}-n${i}-p${j}`, ...window }));
  });
  return jobs;
}

async function runCell(sys: SystemUnderTest, topology: Topology, cell: Cell, roundIndex: number, logDir: string, servicePid: number): Promise<CellRun> {
  const key = cell.op === "counter-hot" ? `hot-${topology}` : `${cell.id}-r${roundIndex}`;
  const procs = await LoadProcesses.start(registry, jobsFor(sys.nodes(), cell.op, cell.callers, key, { warmupMs: WARMUP_MS, measureMs: MEASURE_MS }), logDir, `${sys.system} ${cell.id}`, join(import.meta.dir, "invocations/load-worker.ts"));
  try {
    const svc0 = processCpuJiffies(servicePid) ?? 0;
    const cpu0 = session.cpuMeter.mark();
    const t0 = performance.now();
    procs.go();
    const outcome = await procs.finish();
    const servicePctOfCore = round((100 * ((processCpuJiffies(servicePid) ?? svc0) - svc0)) / JIFFIES_PER_SECOND / ((performance.now() - t0) / 1000), 1);
    const cpu = session.cpuMeter.since(cpu0);
    const machine = { machineBusyPct: round(cpu.machineBusyPct, 1), otherPct: round(cpu.otherPct, 1), byGroupPct: Object.fromEntries(Object.entries(cpu.byGroupPct).map(([g, v]) => [g, round(v, 1)])) };
    if (machine.otherPct > OTHER_CPU_WARN_PCT) anomaly(`${sys.system} ${topology}/${cell.id}: other work on the machine used ${machine.otherPct}% of it during the cell`);
    return { ...summarizeLoad(mergeRaw(outcome.loads)), loadCpu: outcome.cpu, servicePctOfCore, machine };
  } finally {
    await procs.close();
  }
}

/** VmRSS of a live process in MB (-1 once it is gone). */
function rssMb(pid: number): number {
  const bytes = processRssBytes(pid);
  return bytes === undefined ? -1 : Math.round(bytes / 2 ** 20);
}

async function rssRun(sys: SystemUnderTest, logDir: string): Promise<NonNullable<SystemResult["rss"]>> {
  const nodes = sys.nodes();
  const rssMbBefore = nodes.map((n) => rssMb(n.pid));
  const per = Math.ceil(RSS_INVOCATIONS / nodes.length);
  const jobs: InvocationJob[] = nodes.map((n, i) => ({ kind: "count", op: "counter-many", url: n.ingress, clients: RSS_CLIENTS_PER_NODE, deadlineMs: DEADLINE_MS, key: `rss-n${i}`, count: Math.min(per, RSS_INVOCATIONS - i * per) }));
  const t0 = performance.now();
  const procs = await LoadProcesses.start(registry, jobs, logDir, `${sys.system} rss`, join(import.meta.dir, "invocations/load-worker.ts"));
  try {
    procs.go();
    const progress = setInterval(() => console.log(`  ${sys.system} rss: ${procs.written}/${RSS_INVOCATIONS} invocations, RSS ${sys.nodes().map((n) => rssMb(n.pid)).join(", ")} MB`), 30_000);
    const outcome = await procs.finish().finally(() => clearInterval(progress));
    const failed = outcome.preloads.reduce((a, p) => a + p.failed, 0);
    if (failed > 0) anomaly(`${sys.system} rss: ${failed} invocations failed: ${JSON.stringify(outcome.preloads.map((p) => p.errorSamples))}`);
    return { invocations: outcome.preloads.reduce((a, p) => a + p.written, 0), failed, seconds: round((performance.now() - t0) / 1000, 1), rssMbBefore, rssMbAfter: sys.nodes().map((n) => rssMb(n.pid)) };
  } finally {
    await procs.close();
  }
}

/** One trial: background load through the survivors, kill -9, probe until every probe key recovers; restart the node. */
async function failoverTrial(sys: SystemUnderTest, trial: number, logDir: string): Promise<FailoverTrial> {
  const target = await sys.failoverTarget(SERVICE.counter, FAILOVER_WHEN_OPTION);
  const survivors = sys.nodes().filter((n) => n.name !== target.node.name);
  const keys = [target.key, ...Array.from({ length: PROBE_KEYS }, (_, i) => `probe-${i}`)];
  for (const k of keys) await invoke(survivors[0]!.ingress, "counter-hot", k, 0, AbortSignal.timeout(DEADLINE_MS));
  const window = { warmupMs: 500, measureMs: null };
  const jobs = [...jobsFor(survivors, "greet", FAILOVER_LOAD_CLIENTS, "fo", window), ...jobsFor(survivors, "counter-many", FAILOVER_LOAD_CLIENTS, `fo-t${trial}`, window)];
  const procs = await LoadProcesses.start(registry, jobs, logDir, `${sys.system} failover`, join(import.meta.dir, "invocations/load-worker.ts"));
  try {
    procs.go();
    await Bun.sleep(1500);
    const recoveredAt = new Map<string, number>();
    const inFlight = new Map<string, number>(keys.map((k) => [k, 0]));
    const t0 = performance.now();
    session.cpuMeter.mark(); // a killed process's jiffies since the last mark are lost
    sys.killHard(target.node);
    let seq = 0;
    while (recoveredAt.size < keys.length && performance.now() - t0 < RECOVERY_WAIT_MAX_MS) {
      for (const k of keys) {
        if (recoveredAt.has(k) || inFlight.get(k)! >= PROBE_IN_FLIGHT_MAX) continue;
        const via = survivors[seq++ % survivors.length]!;
        inFlight.set(k, inFlight.get(k)! + 1);
        invoke(via.ingress, "counter-hot", k, seq, AbortSignal.timeout(DEADLINE_MS))
          .then(() => {
            if (!recoveredAt.has(k)) recoveredAt.set(k, performance.now() - t0);
          })
          .catch(() => undefined)
          .finally(() => inFlight.set(k, inFlight.get(k)! - 1));
      }
      await Bun.sleep(PROBE_INTERVAL_MS);
    }
    procs.stop();
    const outcome = await procs.finish();
    const all = [...recoveredAt.values()];
    const result: FailoverTrial = {
      when: FAILOVER_WHEN_OPTION,
      key: target.key,
      killed: target.node.name,
      keyOnNode: target.keyOnNode,
      how: target.how,
      chosenKeyMs: target.keyOnNode && recoveredAt.has(target.key) ? Math.round(recoveredAt.get(target.key)!) : null,
      allKeysMs: recoveredAt.size === keys.length ? Math.round(Math.max(...all)) : null,
      probeKeysRecovered: recoveredAt.size,
      load: summarizeLoad(mergeRaw(outcome.loads)),
    };
    // Let the probes still in flight settle before the restart.
    const settle = performance.now();
    while ([...inFlight.values()].some((n) => n > 0) && performance.now() - settle < DEADLINE_MS + 1000) await Bun.sleep(50);
    return result;
  } finally {
    await procs.close();
    await sys.restart(target.node);
    await warm(sys);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "cairn-bench-invocations-"));
  const logDir = join(dir, "logs");
  mkdirSync(logDir, { recursive: true });
  const results: Record<string, Partial<Record<SystemName, SystemResult>>> = {};
  let keepDir = flagArg("keep-logs");
  try {
    const service = await startService(logDir);
    console.log(`SDK service ${service.url} (pid ${service.pid}); logs under ${logDir}`);
    for (const topology of TOPOLOGIES) {
      const cells = CELLS.filter((c) => selected(topology, c.id));
      const doRss = RSS_INVOCATIONS > 0 && selected(topology, "rss");
      const doFailover = topology === "three" && TRIALS > 0 && selected(topology, "failover");
      if (cells.length === 0 && !doRss && !doFailover) continue;
      results[topology] = {};
      for (const system of SYSTEMS) {
        const t0 = performance.now();
        const sys = await startSystem(system, registry, join(dir, `${system}-${topology}`), topology);
        stoppers.push(() => sys.stop());
        try {
          const upMs = Math.round(performance.now() - t0);
          await registerDeployment(sys.nodes()[0]!.admin, service.url);
          await warm(sys);
          console.log(`${system} ${topology} (${sys.version}): up in ${upMs} ms, ${sys.nodes().length} node(s), service registered`);
          const r: SystemResult = { version: sys.version, cells: {}, rss: null, failover: [], upMs };
          results[topology]![system] = r;
          for (const cell of cells) {
            r.cells[cell.id] = [];
            for (let n = 0; n < ROUNDS; n++) {
              const c = await runCell(sys, topology, cell, n, logDir, service.pid);
              r.cells[cell.id]!.push(c);
              console.log(
                `  ${topology}/${cell.id} round ${n + 1}: ${c.opsPerSecond} req/s, p50 ${c.latencyMsP50} ms, p99 ${c.latencyMsP99} ms, errors ${c.errors}` +
                  ` (load ${c.loadCpu.processes} proc(s) ≤${Math.round(c.loadCpu.maxPctOfCore)}% of a core, service ${Math.round(c.servicePctOfCore)}%; machine busy ${c.machine.machineBusyPct}%, other users ${c.machine.otherPct}%)` +
                  (c.errors > 0 ? ` ${JSON.stringify(c.errorSamples)}` : ""),
              );
              if (c.loadCpu.maxPctOfCore > 85) anomaly(`${system} ${topology}/${cell.id}: a load process used ${c.loadCpu.maxPctOfCore}% of a core (the load generator may be the bottleneck)`);
            }
          }
          if (doRss) {
            r.rss = await rssRun(sys, logDir);
            console.log(`  ${topology}/rss: RSS per node ${r.rss.rssMbBefore.join(", ")} MB → ${r.rss.rssMbAfter.join(", ")} MB after ${r.rss.invocations} invocations (${r.rss.failed} failed, ${r.rss.seconds} s)`);
          }
          if (doFailover && FAILOVER_WHEN_OPTION !== "settled") {
            // Every trial then follows a rejoin, the first one included.
            const first = await sys.failoverTarget(SERVICE.counter, "settled");
            sys.killHard(first.node);
            await sys.restart(first.node);
            console.log(`  ${topology}/failover: killed and restarted ${first.node.name} before the first trial (--failover-when ${FAILOVER_WHEN_OPTION})`);
          }
          for (let trial = 0; doFailover && trial < TRIALS; trial++) {
            const f = await failoverTrial(sys, trial, logDir);
            r.failover.push(f);
            console.log(`  ${topology}/failover trial ${trial + 1}: killed ${f.killed} (${f.how}); key ${f.key} again after ${f.chosenKeyMs ?? "-"} ms, all ${f.probeKeysRecovered} probe keys after ${f.allKeysMs ?? "-"} ms; load ${f.load.opsPerSecond} req/s, ${f.load.errors} errors${f.load.errors > 0 ? ` ${JSON.stringify(f.load.errorSamples)}` : ""}`);
          }
        } finally {
          stoppers.pop();
          await sys.stop();
        }
      }
    }
    report(results);
  } catch (e) {
    keepDir = true;
    console.error(`failed; logs kept under ${logDir}`);
    throw e;
  } finally {
    await stopEverything();
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  }
}

function report(results: Record<string, Partial<Record<SystemName, SystemResult>>>): void {
  const table: Array<Record<string, unknown>> = [];
  const spread = (xs: number[]) => (xs.length === 0 ? "-" : `${Math.min(...xs)}-${Math.max(...xs)}`);
  console.log(`\ncell                     ${SYSTEMS.map((s) => `${s} req/s (spread) p50/p99 ms`.padEnd(36)).join("")}cairn/restate`);
  for (const [topology, bySystem] of Object.entries(results)) {
    for (const cell of CELLS) {
      const row: Record<string, unknown> = { cell: `${topology}/${cell.id}` };
      let line = `${topology}/${cell.id}`.padEnd(25);
      for (const s of SYSTEMS) {
        const runs = bySystem[s]?.cells[cell.id];
        if (!runs || runs.length === 0) {
          line += "-".padEnd(36);
          continue;
        }
        const rps = median(runs.map((x) => x.opsPerSecond));
        row[s] = { reqPerSecond: rps, spread: spread(runs.map((x) => x.opsPerSecond)), p50Ms: median(runs.map((x) => x.latencyMsP50)), p99Ms: median(runs.map((x) => x.latencyMsP99)), errors: runs.reduce((a, x) => a + x.errors, 0), loadMaxPctOfCore: Math.max(...runs.map((x) => x.loadCpu.maxPctOfCore)) };
        const v = row[s] as { p50Ms: number; p99Ms: number; spread: string; errors: number };
        line += `${rps} (${v.spread}) ${v.p50Ms}/${v.p99Ms}${v.errors > 0 ? ` err ${v.errors}` : ""}`.padEnd(36);
      }
      if (row.cairn === undefined && row.restate === undefined) continue;
      const c = (row.cairn as { reqPerSecond: number } | undefined)?.reqPerSecond;
      const r = (row.restate as { reqPerSecond: number } | undefined)?.reqPerSecond;
      row.ratio = c !== undefined && r !== undefined && r > 0 ? round(c / r, 2) : null;
      console.log(`${line}${row.ratio ?? "-"}`);
      table.push(row);
    }
    for (const s of SYSTEMS) {
      const x = bySystem[s];
      if (x?.rss) console.log(`${topology}/rss ${s}: ${x.rss.rssMbAfter.join(", ")} MB per node after ${x.rss.invocations} invocations (before: ${x.rss.rssMbBefore.join(", ")} MB)`);
      if (x && x.failover.length > 0) {
        const chosen = x.failover.filter((f) => f.keyOnNode).map((f) => f.chosenKeyMs ?? RECOVERY_WAIT_MAX_MS);
        const allKeys = x.failover.map((f) => f.allKeysMs ?? RECOVERY_WAIT_MAX_MS);
        const chosenText = chosen.length > 0 ? `chosen key median ${median(chosen)} ms (max ${Math.max(...chosen)}), ` : "";
        console.log(`${topology}/failover ${s}: ${chosenText}every probe key median ${median(allKeys)} ms (max ${Math.max(...allKeys)}) over ${x.failover.length} trial(s)`);
      }
    }
  }
  if (session.anomalies.length > 0) console.log(`\nanomalies:\n  ${session.anomalies.join("\n  ")}`);
  mkdirSync(join(import.meta.dir, "results"), { recursive: true });
  writeFileSync(
    join(import.meta.dir, "results", OUT_FILE),
    JSON.stringify(
      {
        when: new Date().toISOString(),
        cpus: cpus().length,
        rounds: ROUNDS,
        measureMs: MEASURE_MS,
        warmupMs: WARMUP_MS,
        only: ONLY ?? null,
        failoverWhen: FAILOVER_WHEN_OPTION,
        client: `separate Bun processes (bench/invocations/load-worker.ts, at most ${CLIENTS_PER_PROCESS} callers each), fetch, HTTP/1.1 keep-alive, closed loop, spread over every node's ingress; ${DEADLINE_MS} ms deadline per request`,
        service: "bench/invocations/service.ts (@restatedev/restate-sdk, h2c), one process for both systems",
        table,
        results,
        anomalies: session.anomalies,
      },
      null,
      2,
    ) + "\n",
  );
}

await main();
