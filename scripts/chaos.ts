// `bun run chaos`: longer chaos runs than CI's, with a chosen seed, cluster size, duration, nemeses and
// workloads (see test/chaos/runner.ts). Exits 0 when every run passed, 1 otherwise; failing runs leave
// their history, nemesis timeline and node logs under .chaos/.
//
//   bun run chaos [--seed N] [--runs K] [--nodes 3|5] [--duration SECONDS] [--nemesis kill,pause,partition,…]
//                 [--workload register,set,log] [--warmup S] [--quiet S] [--hold A-B] [--gap A-B] [--keep]
//                 [--profile ci] [--sandbox]
// --sandbox re-runs the whole thing inside `unshare --net` (a private network namespace with only a
// loopback interface: nothing can leave the machine, and nothing outside can reach the nodes).
import { parseArgs } from "node:util";
import { CI_PROFILE, runChaos, WORKLOADS, type ChaosOptions, type WorkloadName } from "../test/chaos/runner.ts";
import { parseNemeses } from "../test/chaos/nemesis.ts";
import { freshSeed } from "../test/chaos/rng.ts";
import { liveCount, stopAll } from "../test/chaos/node-process.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    seed: { type: "string" },
    runs: { type: "string", default: "1" },
    nodes: { type: "string" },
    duration: { type: "string" },
    nemesis: { type: "string" },
    workload: { type: "string" },
    warmup: { type: "string" },
    quiet: { type: "string" },
    hold: { type: "string" },
    gap: { type: "string" },
    clients: { type: "string" },
    "request-timeout": { type: "string" },
    profile: { type: "string" },
    keep: { type: "boolean", default: false },
    sandbox: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    [
      "bun run chaos [options]",
      "  --seed N            seed of the first run (default: random, printed)",
      "  --runs K            K runs with seeds N, N+1, … (default 1)",
      "  --nodes 3|5         cluster size (default 3)",
      "  --duration S        traffic seconds per run, warm-up and quiet period included (default 60)",
      "  --nemesis LIST      kill,pause,isolate,split,asymmetric,ring,delay,reset; partition = isolate,split,asymmetric; all (default all)",
      "  --workload LIST     register,set,log (default register,set,log; log runs once the log routes exist)",
      "  --warmup S          fault-free seconds at the start (default 5)",
      "  --quiet S           seconds after the final heal (default 10)",
      "  --hold A-B          seconds a fault lasts (default 2-6)",
      "  --gap A-B           seconds between faults (default 1-4)",
      "  --clients N         clients per workload (default: per workload)",
      "  --request-timeout MS  client deadline per request (default 4000)",
      "  --profile ci        the CI profile (36 s, 3 nodes, kill and partitions, all workloads) as the base",
      "  --keep              write .chaos/ artifacts even when the run passes",
      "  --sandbox           run inside `unshare --net` (private loopback-only network)",
      "",
    ].join("\n"),
  );
  process.exit(0);
}

if (values.sandbox && process.env.CAIRN_CHAOS_SANDBOXED !== "1") {
  const rest = Bun.argv.slice(2).filter((a) => a !== "--sandbox");
  const asRoot = process.getuid?.() === 0;
  const inner = `ip link set lo up && exec ${[process.execPath, import.meta.path, ...rest].map(shellQuote).join(" ")}`;
  const proc = Bun.spawn(["unshare", ...(asRoot ? [] : ["-r"]), "--net", "--fork", "--", "sh", "-c", inner], {
    env: { ...process.env, CAIRN_CHAOS_SANDBOXED: "1" },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await proc.exited);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Seconds on the command line → milliseconds; `dfltMs` when absent. */
function seconds(v: string | undefined, dfltMs: number): number {
  if (v === undefined) return dfltMs;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a number of seconds: ${v}`);
  return Math.round(n * 1000);
}

function range(v: string | undefined, dflt: readonly [number, number]): readonly [number, number] {
  if (v === undefined) return dflt;
  const [a, b] = v.split("-").map((x) => seconds(x, 0));
  if (a === undefined || b === undefined || b < a) throw new Error(`not a range of seconds like 2-6: ${v}`);
  return [a, b];
}

const base: Omit<ChaosOptions, "seed"> =
  values.profile === "ci"
    ? CI_PROFILE
    : {
        ...CI_PROFILE,
        durationMs: 60_000,
        warmupMs: 5_000,
        quietMs: 10_000,
        nemeses: parseNemeses("all"),
        workloads: ["register", "set", "log"],
        holdMs: [2_000, 6_000],
        gapMs: [1_000, 4_000],
      };
const nodes = values.nodes === undefined ? base.nodes : Number(values.nodes);
if (nodes !== 3 && nodes !== 5) throw new Error("--nodes must be 3 or 5");
const workloads = values.workload === undefined ? base.workloads : values.workload.split(",").map((w) => w.trim());
for (const w of workloads) if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload ${w} (known: ${WORKLOADS.join(", ")})`);
const clients = values.clients === undefined ? undefined : Number(values.clients);
const options: Omit<ChaosOptions, "seed"> = {
  ...base,
  nodes,
  durationMs: seconds(values.duration, base.durationMs),
  warmupMs: seconds(values.warmup, base.warmupMs),
  quietMs: seconds(values.quiet, base.quietMs),
  nemeses: values.nemesis === undefined ? base.nemeses.filter((n) => n !== "ring" || nodes >= 5) : parseNemeses(values.nemesis),
  workloads: workloads as WorkloadName[],
  holdMs: range(values.hold, base.holdMs),
  gapMs: range(values.gap, base.gapMs),
  requestTimeoutMs: values["request-timeout"] === undefined ? base.requestTimeoutMs : Number(values["request-timeout"]),
  ...(clients !== undefined ? { clients: Object.fromEntries(WORKLOADS.map((w) => [w, clients])) } : {}),
  keepArtifacts: values.keep,
};

const firstSeed = values.seed === undefined ? freshSeed() : Number(values.seed);
const runs = Number(values.runs);
const started = Date.now();
const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
let passed = 0;
let failed = 0;
const shutdown = async () => {
  await stopAll();
  process.exit(130);
};
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());

for (let i = 0; i < runs; i++) {
  const seed = (firstSeed + i) >>> 0;
  const result = await runChaos({
    ...options,
    seed,
    log,
    rerunCommand: `bun run chaos --seed ${seed} --nodes ${nodes} --duration ${options.durationMs / 1000} --nemesis ${options.nemeses.join(",")} --workload ${options.workloads.join(",")}`,
  });
  for (const c of result.checks) log(`  ${c.workload}: ${c.verdict} — ${c.summary}`);
  for (const l of result.liveness) log(`  liveness ${l.node}: ${l.ok ? `ok after ${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`);
  for (const x of result.unexpectedExits) log(`  UNEXPECTED EXIT of ${x.node} (pid ${x.pid}): ${x.exitCode ?? x.signal}`);
  for (const s of result.skippedWorkloads) log(`  skipped: ${s}`);
  if (result.error) log(`  error: ${result.error.split("\n")[0]}`);
  log(
    `seed ${seed}: ${result.verdict.toUpperCase()} (${result.operations} ops, ${result.okOperations} ok, ${Math.round(result.elapsedMs / 1000)} s; proxy ${result.proxy.connections} connections, ${result.proxy.unidentified} unidentified)` +
      (result.artifacts ? ` — artifacts: ${result.artifacts}` : ""),
  );
  if (result.verdict === "ok") passed++;
  else failed++;
}
await stopAll();
log(`${passed} passed, ${failed} failed (first seed ${firstSeed}, ${runs} run${runs === 1 ? "" : "s"}); processes left: ${liveCount()}`);
process.exit(failed === 0 ? 0 : 1);
