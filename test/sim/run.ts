// Running seeds and reporting failures in a form that can be replayed.

import type { SimResult, WorldOptions } from "./world.ts";
import { World } from "./world.ts";

export function runSeed(options: WorldOptions): SimResult {
  return new World(options).run();
}

export function replayCommand(r: SimResult): string {
  return `bun scripts/sim.ts --seed ${r.seed} --nodes ${r.nodes} --trace`;
}

/** A failure report: seed, property, the world's parameters, the trace tail and how to replay. */
export function formatFailure(r: SimResult, traceLines = 200): string {
  const tail = r.traceTail.slice(-traceLines);
  return [
    `SIMULATION FAILURE seed=${r.seed} nodes=${r.nodes} at ${r.simulatedMs.toFixed(3)}ms`,
    `property: ${r.failure?.property}`,
    `detail: ${r.failure?.message}`,
    `world: ${r.scenario}`,
    `--- last ${tail.length} events ---`,
    ...tail,
    `--- replay: ${replayCommand(r)}`,
  ].join("\n");
}
