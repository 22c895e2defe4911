// `bun run chaos`: longer chaos runs than CI's, with a chosen seed, cluster size, duration, nemeses and
// workloads (see test/chaos/runner.ts). Exits 0 when every run passed, 1 otherwise; failing runs leave
// their history, nemesis timeline and node logs under .chaos/.
//
//   bun run chaos [--seed N] [--runs K] [--nodes 3|5] [--duration SECONDS] [--nemesis kill,pause,partition,…]
//                 [--workload register,set,log,state,invocations] [--warmup S] [--quiet S] [--hold A-B] [--gap A-B] [--keep]
//                 [--profile ci|long] [--sandbox | --no-sandbox] [--disk-size MIB]
// The sandbox re-runs the whole thing inside `unshare --net` (a private network namespace with only a
// loopback interface: nothing can leave the machine, and nothing outside can reach the nodes). It is
// the default when running as root (fault tests that run as root run inside `unshare --net`) and
// unshare works; --no-sandbox opts out, --sandbox insists (as non-root too, through a user namespace).
import { parseArgs } from "node:util";
import { CI_PROFILE, describeChecking, LONG_PROFILE, runChaos, WORKLOADS, type ChaosOptions, type WorkloadName } from "../test/chaos/runner.ts";
import { describeWriteGaps } from "../test/chaos/checker/availability.ts";
import { parseNemeses, type NemesisKind } from "../test/chaos/nemesis.ts";
import { storageFaultUnavailable } from "../test/chaos/io-faults.ts";
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
    "disk-size": { type: "string" },
    keep: { type: "boolean", default: false },
    sandbox: { type: "boolean" },
    help: { type: "boolean", short: "h", default: false },
  },
  allowNegative: true,
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
      "  --nemesis LIST      kill,pause,isolate,split,asymmetric,ring,delay,reset,fsync-error,disk-full,membership,refuse;",
      "                      partition = isolate,split,asymmetric; all (default all; ring only with 5 nodes;",
      "                      fsync-error and disk-full need root and are left out of all when they cannot run)",
      "  --workload LIST     register,set,log,state,invocations (default: all; state and invocations run workers and, for",
      "                      invocations, the Restate SDK fixture as its own process)",
      "  --warmup S          fault-free seconds at the start (default 5)",
      "  --quiet S           seconds after the final heal (default 10)",
      "  --hold A-B          seconds a fault lasts (default 2-6)",
      "  --gap A-B           seconds between faults (default 1-4)",
      "  --clients N         clients per workload (default: per workload)",
      "  --request-timeout MS  client deadline per request (default 4000)",
      "  --profile ci        the CI profile (36 s, 3 nodes, kill and partitions, all workloads) as the base",
      "  --profile long      the long profile (1800 s, 3 nodes, every nemesis, all workloads, holds 2-8 s) as the base",
      "  --disk-size MIB     size of the tmpfs holding one node's data directory for disk-full (default 256)",
      "  --keep              write .chaos/ artifacts even when the run passes",
      "  --sandbox           run inside `unshare --net` (private loopback-only network); the default as root",
      "  --no-sandbox        run in the machine's network namespace (still only 127.0.0.0/8)",
      "",
    ].join("\n"),
  );
  process.exit(0);
}

const asRoot = process.getuid?.() === 0;
if (process.env.CAIRN_CHAOS_SANDBOXED === "1") {
  process.stdout.write("sandbox: running inside `unshare --net` (private loopback-only network namespace)\n");
} else {
  // --kill-child: the run inside gets SIGTERM (and stops its processes) when unshare is killed.
  const unshareArgs = [...(asRoot ? [] : ["-r"]), "--net", "--fork", "--kill-child=SIGTERM"];
  const sandbox = values.sandbox ?? (asRoot && unshareWorks(unshareArgs));
  if (sandbox) {
    const rest = Bun.argv.slice(2).filter((a) => a !== "--sandbox");
    const inner = `ip link set lo up && exec ${[process.execPath, import.meta.path, ...rest].map(shellQuote).join(" ")}`;
    const proc = Bun.spawn(["unshare", ...unshareArgs, "--", "sh", "-c", inner], {
      env: { ...process.env, CAIRN_CHAOS_SANDBOXED: "1" },
      stdio: ["inherit", "inherit", "inherit"],
    });
    // unshare blocks SIGINT and SIGTERM while it waits: killing it hands the inner run a SIGTERM.
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => proc.kill("SIGKILL"));
    process.exit(await proc.exited);
  }
  process.stdout.write(
    values.sandbox === false
      ? "sandbox: off (--no-sandbox): the nodes use the machine's network namespace, on 127.0.0.0/8 only\n"
      : asRoot
        ? "sandbox: off (`unshare --net` does not work here): the nodes use the machine's network namespace, on 127.0.0.0/8 only\n"
        : "sandbox: off (not root; --sandbox runs inside `unshare -r --net`): the nodes use 127.0.0.0/8 only\n",
  );
}

/** Whether `unshare <args> -- true` succeeds (namespaces may be forbidden in a container). */
function unshareWorks(args: readonly string[]): boolean {
  try {
    return Bun.spawnSync(["unshare", ...args, "--", "true"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  } catch {
    return false;
  }
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

if (values.profile !== undefined && values.profile !== "ci" && values.profile !== "long") throw new Error(`unknown profile ${values.profile} (known: ci, long)`);
const base: Omit<ChaosOptions, "seed"> =
  values.profile === "ci"
    ? CI_PROFILE
    : values.profile === "long"
      ? LONG_PROFILE
      : {
        ...CI_PROFILE,
        durationMs: 60_000,
        warmupMs: 5_000,
        quietMs: 10_000,
        nemeses: parseNemeses("all"),
        workloads: [...WORKLOADS],
        holdMs: [2_000, 6_000],
        gapMs: [1_000, 4_000],
        setAddsPerKey: 1_000,
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
  nemeses: chooseNemeses(),
  workloads: workloads as WorkloadName[],
  holdMs: range(values.hold, base.holdMs),
  gapMs: range(values.gap, base.gapMs),
  requestTimeoutMs: values["request-timeout"] === undefined ? base.requestTimeoutMs : Number(values["request-timeout"]),
  ...(clients !== undefined ? { clients: Object.fromEntries(WORKLOADS.map((w) => [w, clients])) } : {}),
  keepArtifacts: values.keep,
  ...(values["disk-size"] !== undefined ? { diskSizeBytes: Math.round(Number(values["disk-size"]) * 2 ** 20) } : {}),
};

/**
 * The nemeses asked for (the profile's by default, ring only with 5 nodes). Storage nemeses that
 * cannot run here are left out of a default list, saying so, and refused when named explicitly.
 */
function chooseNemeses(): NemesisKind[] {
  const named = new Set((values.nemesis ?? "").split(",").map((x) => x.trim()));
  const asked = values.nemesis === undefined ? base.nemeses.filter((n) => n !== "ring" || nodes >= 5) : parseNemeses(values.nemesis);
  const out: NemesisKind[] = [];
  for (const n of asked) {
    const why = n === "fsync-error" || n === "disk-full" ? storageFaultUnavailable(n) : null;
    if (why === null) out.push(n);
    else if (named.has(n)) throw new Error(`nemesis ${n} cannot run here: ${why}`);
    else process.stdout.write(`nemesis ${n} left out: ${why}\n`);
  }
  return out;
}

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
    rerunCommand:
      `bun run chaos --seed ${seed} --nodes ${nodes} --duration ${options.durationMs / 1000} --nemesis ${options.nemeses.join(",")} --workload ${options.workloads.join(",")}` +
      ` --warmup ${options.warmupMs / 1000} --quiet ${options.quietMs / 1000} --hold ${options.holdMs.map((x) => x / 1000).join("-")} --gap ${options.gapMs.map((x) => x / 1000).join("-")}` +
      (values.profile ? ` --profile ${values.profile}` : ""),
  });
  for (const c of result.checks) log(`  ${c.workload}: ${c.verdict} — ${c.summary}`);
  for (const l of result.liveness) log(`  liveness ${l.node}: ${l.ok ? `ok after ${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`);
  for (const x of result.unexpectedExits) log(`  UNEXPECTED EXIT of ${x.node} (pid ${x.pid}): ${x.exitCode ?? x.signal}`);
  for (const x of result.expectedExits) log(`  expected exit of ${x.node} (pid ${x.pid}) under ${x.cause}: ${x.exitCode ?? x.signal} — ${x.lastError.slice(0, 200)}`);
  for (const s of result.skippedWorkloads) log(`  skipped: ${s}`);
  if (result.checking) log(`  checkers: ${describeChecking(result.checking)}`);
  if (result.writeGaps.length > 0) log(`  longest stretch without a successful object write: ${describeWriteGaps(result.writeGaps)}`);
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
