// The data plane under chaos: one seeded run of object-state traffic on 3 real nodes running every
// role (partition processors included) behind the fault proxy, under kill -9, pauses and partitions
// (a deposed leader on the minority side among them): per-object registers must stay linearizable
// through every node's ingress, and a compare-and-set counter with idempotent retries must end
// exactly at its acknowledged increments. CAIRN_CHAOS_SEED picks another seed.
import { afterAll, expect, test } from "bun:test";
import { CI_PROFILE, runChaos, testSummary } from "./runner.ts";
import { liveCount, stopAll } from "./node-process.ts";

const SEED = Number(process.env.CAIRN_CHAOS_SEED ?? 20_261_207);

afterAll(async () => {
  await stopAll();
});

test(
  `3 nodes under kill -9, pauses and partitions keep object state linearizable and a CAS counter exact (seed ${SEED})`,
  async () => {
    const lines: string[] = [];
    const result = await runChaos({
      ...CI_PROFILE,
      seed: SEED,
      durationMs: 30_000,
      nemeses: ["kill", "pause", "isolate", "split"],
      workloads: ["state"],
      extraArgs: ["--roles", "metadata-server,log-server,worker,admin,ingress"],
      log: (l) => lines.push(l),
    });
    const summary = testSummary(result, SEED, lines, "test/chaos/state.test.ts");
    console.log(summary);
    expect(result.verdict, summary).toBe("ok");
    expect(result.timeline.filter((t) => t.event === "start").length).toBeGreaterThan(0);
    for (const c of result.checks) expect(c.summary).not.toContain(" 0 ok,");
    expect(liveCount()).toBe(0);
  },
  150_000,
);
