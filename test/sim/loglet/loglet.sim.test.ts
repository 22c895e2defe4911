// Deterministic simulation of the replicated loglet protocol (see simulation.ts for the world and
// the checks). A failing seed prints its replay command and trace. More seeds on demand:
//   CAIRN_SIM_SEEDS=5000 bun test test/sim/loglet     or     bun test/sim/loglet/run.ts --seeds 5000
import { describe, expect, test } from "bun:test";
import { describeFailure, runLogletSimulation, type Variant } from "./simulation.ts";

const SEEDS = Number(process.env.CAIRN_SIM_SEEDS ?? 1000);
const FIRST_SEED = Number(process.env.CAIRN_SIM_FIRST_SEED ?? 1);

describe("replicated loglet simulation", () => {
  test(`no committed record is lost, duplicated or reordered across ${SEEDS} seeded runs with faults`, () => {
    const failures: string[] = [];
    const modes = new Map<string, number>();
    let committedRecords = 0;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
      const r = runLogletSimulation(seed);
      modes.set(r.config.mode, (modes.get(r.config.mode) ?? 0) + 1);
      committedRecords += r.stats.committedRecords;
      if (!r.ok) {
        failures.push(describeFailure(r));
        if (failures.length >= 3) break;
      }
    }
    if (failures.length > 0) console.error(failures.join("\n\n"));
    expect(failures.length).toBe(0);
    // The runs exercise every scenario and commit real work.
    for (const mode of ["lose-sequencer", "seal-live-sequencer", "quiet"]) expect(modes.get(mode) ?? 0).toBeGreaterThan(SEEDS / 10);
    expect(committedRecords).toBeGreaterThan(SEEDS * 20);
  });

  test("the same seed replays the same run", () => {
    const a = runLogletSimulation(4242);
    const b = runLogletSimulation(4242);
    expect(b.stats).toEqual(a.stats);
    expect(b.trace).toEqual(a.trace);
  });

  const broken: Array<[Variant, string]> = [
    ["ack-at-r-minus-1", "a sequencer that commits at r − 1 copies"],
    ["find-tail-single-server", "a find-tail that trusts a single sealed server's digest"],
  ];
  for (const [variant, what] of broken) {
    test(`catches ${what} within 200 seeds`, () => {
      let caughtAt: number | undefined;
      for (let seed = 1; seed <= 200 && caughtAt === undefined; seed++) {
        if (!runLogletSimulation(seed, variant).ok) caughtAt = seed;
      }
      expect(caughtAt).toBeDefined();
    });
  }
});
