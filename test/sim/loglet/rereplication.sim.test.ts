// Deterministic simulation of re-replication's copy (see rereplication.ts for the world and the
// checks): every copy that reports done leaves every record durable on every target, so the
// nodeset may change then; a copy that reports done before its stores are durable is caught.
//   CAIRN_SIM_SEEDS=5000 bun test test/sim/loglet/rereplication.sim.test.ts
import { describe, expect, test } from "bun:test";
import { runCopySimulation, type CopySimResult } from "./rereplication.ts";

const SEEDS = Number(process.env.CAIRN_SIM_SEEDS ?? 500);

function describeFailure(r: CopySimResult): string {
  return [`re-replication simulation FAILED: seed ${r.seed} (variant ${r.variant})`, ...r.violations.map((v) => `violation: ${v}`), "trace (last lines):", ...r.trace].join("\n");
}

describe("re-replication simulation", () => {
  test(`a copy reported done has every record durable on every target, across ${SEEDS} seeded runs with faults`, () => {
    const failures: string[] = [];
    let done = 0;
    let retried = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runCopySimulation(seed);
      if (r.done) done++;
      if (r.attempts > 1) retried++;
      if (!r.ok) {
        failures.push(describeFailure(r));
        if (failures.length >= 3) break;
      }
    }
    if (failures.length > 0) console.error(failures.join("\n\n"));
    expect(failures.length).toBe(0);
    // The runs finish real copies, and faults make some attempts fail and retry.
    expect(done).toBeGreaterThan(SEEDS * 0.6);
    expect(retried).toBeGreaterThan(0);
  });

  test("the same seed replays the same run", () => {
    expect(runCopySimulation(77)).toEqual(runCopySimulation(77));
  });

  test("catches a copy that lets the nodeset change before its stores are durable within 200 seeds", () => {
    let caughtAt: number | undefined;
    for (let seed = 1; seed <= 200 && caughtAt === undefined; seed++) {
      if (!runCopySimulation(seed, "nodeset-before-durable").ok) caughtAt = seed;
    }
    expect(caughtAt).toBeDefined();
  });
});
