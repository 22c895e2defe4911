// The CI chaos profile: one seeded run of ~36 s of traffic on 3 real nodes behind the fault proxy,
// with kill -9 + restart, partitions (isolate one, majority/minority split, one-way) and a live node's
// refused fabric port (the log controller's refused-means-dead rule must fire), register, set, log
// and invocations workloads (workers and the Restate SDK fixture), then heal, liveness and the checkers. Longer runs: `bun run chaos` (scripts/chaos.ts).
// CAIRN_CHAOS_SEED picks another seed; a failure prints the seed and the artifacts folder.
import { afterAll, expect, test } from "bun:test";
import { CI_PROFILE, runChaos, testSummary } from "./runner.ts";
import { liveCount, stopAll } from "./node-process.ts";

const SEED = Number(process.env.CAIRN_CHAOS_SEED ?? 20_240_601);

afterAll(async () => {
  await stopAll();
});

test(
  `3 nodes under kill -9, partitions and refused ports keep the metadata KV linearizable, lose no set element or log record, count every invocation once, and recover (seed ${SEED})`,
  async () => {
    const lines: string[] = [];
    const result = await runChaos({ ...CI_PROFILE, seed: SEED, log: (l) => lines.push(l) });
    const summary = testSummary(result, SEED, lines, "test/chaos/chaos.test.ts");
    console.log(summary);
    expect(result.verdict, summary).toBe("ok");
    // The run saw faults, and the workloads made progress.
    expect(result.timeline.filter((t) => t.event === "start").length).toBeGreaterThan(0);
    for (const c of result.checks) expect(c.summary).not.toContain(" 0 ok,");
    expect(liveCount()).toBe(0);
  },
  150_000,
);
