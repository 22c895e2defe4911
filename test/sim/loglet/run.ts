// Runs the loglet simulator from the command line:
//   bun test/sim/loglet/run.ts --seed 42 [--variant ack-at-r-minus-1] [--trace]
//   bun test/sim/loglet/run.ts --seeds 1000 [--from 1]
import { describeFailure, runLogletSimulation, type Variant } from "./simulation.ts";

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const variant = (arg("variant") ?? "correct") as Variant;
const seed = arg("seed");
if (seed !== undefined) {
  const r = runLogletSimulation(Number(seed), variant);
  if (!r.ok || args.includes("--trace")) console.log(describeFailure(r).replace("FAILED", r.ok ? "passed" : "FAILED"));
  console.log(JSON.stringify({ seed: r.seed, ok: r.ok, stats: r.stats, config: r.config }));
  process.exit(r.ok ? 0 : 1);
}
const count = Number(arg("seeds") ?? 200);
const from = Number(arg("from") ?? 1);
const started = performance.now();
let failed = 0;
for (let s = from; s < from + count; s++) {
  const r = runLogletSimulation(s, variant);
  if (!r.ok) {
    failed++;
    console.log(`seed ${s}: ${r.violations[0]}`);
  }
}
console.log(`${count} seeds, ${failed} failed, ${((performance.now() - started) / 1000).toFixed(2)} s`);
process.exit(failed === 0 ? 0 : 1);
