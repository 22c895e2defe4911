// Operations benchmark: what an operator notices of the compiled binary (dist/cairn) on one machine.
//  1. `cairn dev` (3 nodes, 8 partitions, replication 2) from spawn to every partition led
//     (GET /v1/partitions: a leader that applied its own announce record)        goal < 3 s
//  2. full-cluster restart (every node stopped with SIGTERM, then all started at once on the same
//     data directories and addresses) to the first acknowledged write                goal < 2 s
//  3. idle RSS per node (VmRSS after the restarted cluster settled)                    goal < 80 MB
//  4. idle CPU of the 3-node cluster over --idle-seconds (utime + stime from /proc)   goal <= 3 % of one core
//  5. binary size                                                                       goal <= 120 MB
// Each of 1–4 once per round; the table shows the median of the rounds and the spread (min–max).
// Prints a table and writes bench/results/operations.json (--out to write elsewhere, e.g. a smoke
// run). Every process started is tracked by PID and stopped, also on failure or Ctrl-C.
//
// Run alone on the machine:  bun run build && flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/operations.ts
// Options: --rounds 3 --idle-seconds 20 --settle-seconds 5 --out bench/results/operations.json
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { numArg } from "./args.ts";
import { ProcessRegistry, stopOnExitAndSignals } from "./metadata/procs.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = join(ROOT, "dist/cairn");
const ROUNDS = Math.max(1, Math.round(numArg("rounds", 3)));
const IDLE_MS = numArg("idle-seconds", 20) * 1000;
const SETTLE_MS = numArg("settle-seconds", 5) * 1000;
const OUT = (() => {
  const i = process.argv.indexOf("--out");
  return i >= 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]!) : join(ROOT, "bench/results/operations.json");
})();
const NODES = 3;
const PARTITIONS = 8;
const REPLICATION = 2;
/** Generous bounds: a step that takes longer is a failure of the run, not a slow result. */
const STEP_TIMEOUT_MS = 120_000;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = 100;

const GOALS = { devToLedMs: 3000, restartToWriteMs: 2000, idleRssMb: 80, idleCpuPct: 3, binaryMb: 120 } as const;

const registry = new ProcessRegistry();
stopOnExitAndSignals(registry, () => registry.stopAll(10_000));

interface DevJson {
  cluster: string;
  nodes: Array<{ name: string; dataDir: string; pid: number; admin: string; fabric: string; ingress: string | null }>;
}

interface Round {
  devToLedMs: number;
  restartToWriteMs: number;
  /** Per node, after the restart settled. */
  idleRssMb: number[];
  /** The three nodes together, in % of one core. */
  idleCpuPct: number;
}

/** A base port with `count` consecutive free ports on 127.0.0.1 (checked by binding each). */
async function freePorts(count: number, avoid: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const range = Array.from({ length: count }, (_, i) => base + i);
    if (range.some((p) => avoid.has(p))) continue;
    const ok = await Promise.all(range.map(portFree));
    if (ok.every(Boolean)) {
      for (const p of range) avoid.add(p);
      return base;
    }
  }
  throw new Error("no free port range found");
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const s = createServer();
    s.once("error", () => resolvePort(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolvePort(true)));
  });
}

async function until<T>(what: string, check: () => Promise<T | undefined>, pollMs = 20): Promise<T> {
  const deadline = performance.now() + STEP_TIMEOUT_MS;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await Bun.sleep(pollMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

async function allLed(admin: string): Promise<boolean | undefined> {
  const r = await fetch(`${admin}/v1/partitions`, { signal: AbortSignal.timeout(2000) });
  if (!r.ok) return undefined;
  const rows = ((await r.json()) as { partitions: Array<{ leader: string | null; leaderApplied: boolean }> }).partitions;
  return rows.length === PARTITIONS && rows.every((p) => p.leader !== null && p.leaderApplied) ? true : undefined;
}

async function writeOnce(ingress: string, seq: number): Promise<true | undefined> {
  const r = await fetch(`${ingress}/v1/objects/bench/k${seq % 64}/state/v`, { method: "PUT", body: `value-${seq}`, signal: AbortSignal.timeout(2000) });
  return r.ok ? true : undefined;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  if (line === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) / 1024;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
  return Number(fields[11]) + Number(fields[12]);
}

/** Starts `cairn dev` from the binary; resolves with its JSON description once every node is a member. */
async function startDev(baseDir: string, ports: { admin: number; fabric: number; ingress: number }): Promise<{ dev: Subprocess; json: DevJson }> {
  const outPath = join(baseDir, "dev.out");
  const proc = Bun.spawn(
    [
      BINARY, "dev",
      "--base-dir", join(baseDir, "nodes"),
      "--nodes", String(NODES),
      "--num-partitions", String(PARTITIONS),
      "--replication", String(REPLICATION),
      "--admin-port", String(ports.admin),
      "--fabric-port", String(ports.fabric),
      "--ingress-port", String(ports.ingress),
      "--json",
    ],
    { stdout: Bun.file(outPath), stderr: Bun.file(join(baseDir, "dev.err")), stdin: "ignore", env: { ...process.env } },
  );
  registry.track(proc.pid, "dev", "cairn dev", proc);
  const json = await until("cairn dev to print its cluster", async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`cairn dev exited (${proc.exitCode ?? proc.signalCode}); see ${baseDir}/dev.err`);
    const line = (existsSync(outPath) ? readFileSync(outPath, "utf8") : "").split("\n").find((l) => l.startsWith("{"));
    return line === undefined ? undefined : (JSON.parse(line) as DevJson);
  }, 50);
  for (const n of json.nodes) registry.track(n.pid, "dev-node", `cairn ${n.name}`);
  return { dev: proc, json };
}

/** The same nodes as `cairn dev` ran them (names, data dirs, addresses), each started directly. */
function startNodes(json: DevJson): Subprocess[] {
  const seeds = json.nodes.map((n) => n.fabric).join(",");
  return json.nodes.map((n) => {
    const proc = Bun.spawn(
      [
        BINARY, "server",
        "--node-name", n.name,
        "--base-dir", n.dataDir,
        "--cluster-name", json.cluster,
        "--admin-address", n.admin.replace(/^http:\/\//, ""),
        "--fabric-address", n.fabric,
        "--ingress-address", (n.ingress ?? "").replace(/^http:\/\//, ""),
        "--set", "log.format=json",
        "--set", `metadata-client.addresses=${seeds}`,
      ],
      { stdout: Bun.file(join(n.dataDir, "restart.out")), stderr: Bun.file(join(n.dataDir, "restart.err")), stdin: "ignore", env: { ...process.env } },
    );
    registry.track(proc.pid, "node", `cairn ${n.name} (restarted)`, proc);
    return proc;
  });
}

async function stopPids(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Gone already.
    }
  }
  for (const pid of pids) {
    if (!(await registry.waitGone(pid, 15_000))) registry.killHard(pid);
    await registry.waitGone(pid, 5_000);
    registry.untrack(pid);
  }
}

async function round(index: number, avoid: Set<number>): Promise<Round> {
  const baseDir = mkdtempSync(join(tmpdir(), `cairn-bench-ops-${index}-`));
  try {
    const ports = { admin: await freePorts(NODES, avoid), fabric: await freePorts(NODES, avoid), ingress: await freePorts(NODES, avoid) };
    // 1. From spawning `cairn dev` to every partition led.
    const t0 = performance.now();
    const { dev, json } = await startDev(baseDir, ports);
    const admin = json.nodes[0]!.admin;
    await until("every partition led", () => allLed(admin));
    const devToLedMs = performance.now() - t0;
    const ingress = json.nodes[0]!.ingress;
    if (ingress === null) throw new Error("cairn dev nodes have no data-plane address");
    await until("a first write", () => writeOnce(ingress, 0));

    // 2. Full-cluster restart: `cairn dev` stops its nodes on SIGTERM; then every node at once.
    await stopPids([dev.pid]);
    for (const n of json.nodes) {
      await registry.waitGone(n.pid, 15_000);
      registry.untrack(n.pid);
    }
    const t1 = performance.now();
    const nodes = startNodes(json);
    let seq = 1;
    await until("the first write after the restart", () => writeOnce(ingress, seq++), 10);
    const restartToWriteMs = performance.now() - t1;

    // 3 and 4. Idle: let the placement settle, then RSS per node and CPU of the three together.
    await until("every partition led after the restart", () => allLed(admin));
    await Bun.sleep(SETTLE_MS);
    const before = nodes.map((p) => cpuTicks(p.pid));
    const startedMs = performance.now();
    await Bun.sleep(IDLE_MS);
    const after = nodes.map((p) => cpuTicks(p.pid));
    const seconds = (performance.now() - startedMs) / 1000;
    const ticks = after.reduce((s, t, i) => s + (t - before[i]!), 0);
    const idleCpuPct = (ticks / CLOCK_TICKS / seconds) * 100;
    const idleRssMb = nodes.map((p) => rssMb(p.pid));
    await stopPids(nodes.map((p) => p.pid));
    return { devToLedMs, restartToWriteMs, idleRssMb, idleCpuPct };
  } finally {
    rmSync(baseDir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`bun run build\` first`);
  const binaryMb = statSync(BINARY).size / (1024 * 1024);
  const rounds: Round[] = [];
  const avoid = new Set<number>();
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(i, avoid);
    rounds.push(r);
    process.stderr.write(
      `round ${i + 1}/${ROUNDS}: dev→led ${Math.round(r.devToLedMs)} ms, restart→write ${Math.round(r.restartToWriteMs)} ms, RSS ${r.idleRssMb.map((x) => x.toFixed(1)).join("/")} MB, idle CPU ${r.idleCpuPct.toFixed(2)} %\n`,
    );
  }
  const stat = (xs: number[]) => ({ median: r1(median(xs)), min: r1(Math.min(...xs)), max: r1(Math.max(...xs)) });
  const metrics = {
    devToLedMs: { ...stat(rounds.map((r) => r.devToLedMs)), goal: `< ${GOALS.devToLedMs}` },
    restartToWriteMs: { ...stat(rounds.map((r) => r.restartToWriteMs)), goal: `< ${GOALS.restartToWriteMs}` },
    // Per node: the median over every node of every round; the spread over the same values.
    idleRssMb: { ...stat(rounds.flatMap((r) => r.idleRssMb)), goal: `< ${GOALS.idleRssMb}` },
    idleCpuPct: { ...stat(rounds.map((r) => r.idleCpuPct)), goal: `<= ${GOALS.idleCpuPct}` },
    binaryMb: { median: r1(binaryMb), min: r1(binaryMb), max: r1(binaryMb), goal: `<= ${GOALS.binaryMb}` },
  };
  const met = {
    devToLedMs: metrics.devToLedMs.median < GOALS.devToLedMs,
    restartToWriteMs: metrics.restartToWriteMs.median < GOALS.restartToWriteMs,
    idleRssMb: metrics.idleRssMb.median < GOALS.idleRssMb,
    idleCpuPct: metrics.idleCpuPct.median <= GOALS.idleCpuPct,
    binaryMb: binaryMb <= GOALS.binaryMb,
  };
  const rows: Array<[string, string, string, string, string]> = [
    ["measure", "median", "spread (min–max)", "goal", "met"],
    ...(Object.keys(metrics) as Array<keyof typeof metrics>).map((k): [string, string, string, string, string] => {
      const m = metrics[k];
      return [k, String(m.median), `${m.min}–${m.max}`, m.goal, met[k] ? "yes" : "NO"];
    }),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n");
  const result = {
    benchmark: "operations",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown" },
    setup: { nodes: NODES, partitions: PARTITIONS, replication: REPLICATION, rounds: ROUNDS, idleSeconds: IDLE_MS / 1000, settleSeconds: SETTLE_MS / 1000, binary: "dist/cairn" },
    metrics,
    met,
    rounds: rounds.map((r) => ({ ...r, devToLedMs: r1(r.devToLedMs), restartToWriteMs: r1(r.restartToWriteMs), idleRssMb: r.idleRssMb.map(r1), idleCpuPct: Math.round(r.idleCpuPct * 100) / 100 })),
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(result, null, 2) + "\n");
  process.stdout.write(`wrote ${OUT}\n`);
}

await main().finally(() => registry.stopAll(10_000));
