// Long simulation runs of the Raft core, or the replay of one seed.
//   bun scripts/sim.ts --seeds 100000 --nodes 5          many seeds (stops at the first failure)
//   bun scripts/sim.ts --seed 42 --nodes 3 --trace       replay one seed, printing every event
// Options: --from N (first seed, default 1), --safety-ms N, --bug vote|commit|read (broken variants),
// --keep-going (report every failing seed instead of stopping), --quiet.

import { formatFailure, replayCommand, runSeed } from "../test/sim/run.ts";
import type { UnsafeTestingFaults } from "../src/raft/index.ts";

interface Args {
  seed: number | null;
  seeds: number;
  from: number;
  nodes: number[];
  trace: boolean;
  safetyMs: number | undefined;
  bug: string | null;
  keepGoing: boolean;
  quiet: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seed: null, seeds: 100, from: 1, nodes: [3, 5], trace: false, safetyMs: undefined, bug: null, keepGoing: false, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case "--seed":
        args.seed = Number(value());
        break;
      case "--seeds":
        args.seeds = Number(value());
        break;
      case "--from":
        args.from = Number(value());
        break;
      case "--nodes":
        args.nodes = value().split(",").map(Number);
        break;
      case "--trace":
        args.trace = true;
        break;
      case "--safety-ms":
        args.safetyMs = Number(value());
        break;
      case "--bug":
        args.bug = value();
        break;
      case "--keep-going":
        args.keepGoing = true;
        break;
      case "--quiet":
        args.quiet = true;
        break;
      case "--help":
      case "-h":
        console.log("usage: bun scripts/sim.ts [--seeds N] [--from N] [--nodes 3,5] [--seed N --trace] [--safety-ms N] [--bug vote|commit|read] [--keep-going]");
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}`);
    }
  }
  for (const n of args.nodes) if (!Number.isInteger(n) || n < 1) throw new Error(`bad --nodes ${n}`);
  return args;
}

function faultsFor(bug: string | null): UnsafeTestingFaults | undefined {
  switch (bug) {
    case null:
      return undefined;
    case "vote":
      return { voteWithoutLogCheck: true };
    case "commit":
      return { commitPreviousTermByCounting: true };
    case "read":
      return { readIndexWithoutQuorum: true };
    default:
      throw new Error(`unknown --bug ${bug} (vote, commit, read)`);
  }
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  const unsafeTestingFaults = faultsFor(args.bug);
  const common = {
    ...(args.safetyMs === undefined ? {} : { safetyMs: args.safetyMs }),
    ...(unsafeTestingFaults === undefined ? {} : { unsafeTestingFaults }),
  };

  if (args.seed !== null) {
    const nodes = args.nodes[0]!;
    const r = runSeed({ seed: args.seed, nodes, ...common, ...(args.trace ? { traceSink: (line: string) => console.log(line) } : {}) });
    if (r.ok) {
      console.log(`seed ${r.seed} nodes ${nodes}: ok, ${r.stats.events} events, ${r.simulatedMs.toFixed(0)} simulated ms, liveness after ${r.stats.livenessTicks} ticks`);
      console.log(JSON.stringify(r.stats));
      return 0;
    }
    console.log(args.trace ? `FAILURE ${r.failure?.property}: ${r.failure?.message}` : formatFailure(r));
    return 1;
  }

  const started = performance.now();
  let passed = 0;
  let failed = 0;
  let events = 0;
  let simulatedMs = 0;
  let maxLivenessTicks = 0;
  const failures: string[] = [];
  for (let k = 0; k < args.seeds; k++) {
    const seed = args.from + k;
    const nodes = args.nodes[k % args.nodes.length]!;
    const r = runSeed({ seed, nodes, ...common });
    events += r.stats.events;
    simulatedMs += r.simulatedMs;
    if (r.stats.livenessTicks > maxLivenessTicks) maxLivenessTicks = r.stats.livenessTicks;
    if (r.ok) {
      passed++;
    } else {
      failed++;
      failures.push(replayCommand(r));
      console.log(formatFailure(r));
      if (!args.keepGoing) break;
    }
    if (!args.quiet && (k + 1) % 1000 === 0) {
      const s = (performance.now() - started) / 1000;
      console.log(`${k + 1} seeds, ${failed} failed, ${events} events, ${s.toFixed(1)}s`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `simulated ${passed + failed} seeds (nodes ${args.nodes.join("/")}), ${events} events, ${(simulatedMs / 1000).toFixed(0)} simulated s, ${seconds.toFixed(1)} s wall`,
  );
  console.log(`liveness: slowest recovery ${maxLivenessTicks} ticks after healing (bound 300)`);
  for (const f of failures) console.log(`failing: ${f}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exit(main());
