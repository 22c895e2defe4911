// The CI chaos profile: one seeded run of ~36 s of traffic on 3 real nodes behind the fault proxy,
// with kill -9 + restart and partitions (isolate one, majority/minority split, one-way), register, set
// and log workloads, then heal, liveness and the checkers. Longer runs: `bun run chaos` (scripts/chaos.ts).
// CAIRN_CHAOS_SEED picks another seed; a failure prints the seed and the artifacts folder.
import { afterAll, expect, test } from "bun:test";
import { CI_PROFILE, runChaos } from "./runner.ts";
import { liveCount, stopAll } from "./node-process.ts";

const SEED = Number(process.env.CAIRN_CHAOS_SEED ?? 20_240_601);

afterAll(async () => {
  await stopAll();
});

test(
  `3 nodes under kill -9 and partitions keep the metadata KV linearizable, lose no set element or log record, and recover (seed ${SEED})`,
  async () => {
    const lines: string[] = [];
    const result = await runChaos({ ...CI_PROFILE, seed: SEED, log: (l) => lines.push(l) });
    const summary = [
      ...lines,
      ...result.checks.map((c) => `${c.workload}: ${c.verdict} — ${c.summary}`),
      ...result.liveness.map((l) => `liveness ${l.node}: ${l.ok ? `ok after ${Math.round(l.recoveredAfterMs ?? 0)} ms` : `FAILED (${l.lastError})`}`),
      ...result.unexpectedExits.map((x) => `UNEXPECTED EXIT of ${x.node} (pid ${x.pid}): ${x.exitCode ?? x.signal}\n${x.logTail}`),
      `seed ${SEED}: ${result.verdict} (${result.operations} ops, ${result.okOperations} ok, ${Math.round(result.elapsedMs / 1000)} s)`,
      ...(result.error ? [`error: ${result.error}`] : []),
      ...(result.artifacts ? [`artifacts: ${result.artifacts}`, `rerun: CAIRN_CHAOS_SEED=${SEED} bun test test/chaos/chaos.test.ts`] : []),
    ].join("\n");
    console.log(summary);
    expect(result.verdict, summary).toBe("ok");
    // The run saw faults, and the workloads made progress.
    expect(result.timeline.filter((t) => t.event === "start").length).toBeGreaterThan(0);
    for (const c of result.checks) expect(c.summary).not.toContain(" 0 ok,");
    expect(liveCount()).toBe(0);
  },
  150_000,
);
