// Per-seed "swarm" parameters: each seed draws its own network quality, fault rates, workload and
// Raft tuning, so a few hundred seeds cover calm and hostile worlds alike (TigerBeetle's VOPR idea).

import type { SimRng } from "./rng.ts";

export interface Scenario {
  /** Nominal tick length; each node ticks at its own rate around it. */
  readonly baseTickMs: number;
  /** Node tick period = baseTickMs × a factor in [1 - spread, 1 + spread]. */
  readonly tickSpread: number;
  readonly netMinDelayMs: number;
  readonly netMeanDelayMs: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  /** Share of messages delivered a second time much later. */
  readonly replayRate: number;
  /** Share of messages that may overtake earlier ones on the same link. */
  readonly reorderRate: number;
  readonly diskMaxLatencyMs: number;
  /** Mean time between partition episodes (Infinity: none). */
  readonly partitionEveryMs: number;
  readonly partitionHoldMaxMs: number;
  readonly crashEveryMs: number;
  readonly downMaxMs: number;
  readonly membershipEveryMs: number;
  readonly transferEveryMs: number;
  readonly writeEveryMs: number;
  readonly readEveryMs: number;
  /** A node snapshots once this many entries were applied since its last snapshot. */
  readonly snapshotEveryEntries: number;
  /** Entries kept below the snapshot when compacting. */
  readonly compactKeepEntries: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly maxInflightMsgs: number;
  readonly maxSizePerMsgBytes: number;
  readonly maxUncommittedEntriesBytes: number;
}

export function drawScenario(rng: SimRng): Scenario {
  const calm = rng.chance(0.15);
  const electionTimeoutTicks = rng.pick([5, 10, 15]);
  // Like any real deployment, the election timeout must dwarf the round trip (here: >= 6 mean RTTs).
  const delays = [0.5, 2, 5, 10, 20].filter((d) => 2 * d * 6 <= electionTimeoutTicks * 10);
  const maxInflightMsgs = rng.pick([1, 4, 64]);
  const maxSizePerMsgBytes = rng.pick([256, 4096, 1024 * 1024]);
  // Keep the backlog a leader accepts proportional to what its pipeline moves per round trip, so the
  // liveness bound (a fixed number of ticks) holds for every drawn combination.
  const maxUncommittedEntriesBytes = Math.min(rng.pick([1024, 4096, 16384]), 8 * maxInflightMsgs * maxSizePerMsgBytes);
  return {
    baseTickMs: 10,
    tickSpread: rng.pick([0, 0.1, 0.3, 0.5]),
    netMinDelayMs: rng.pick([0, 0.5, 1, 2]),
    netMeanDelayMs: rng.pick(delays),
    dropRate: calm ? 0 : rng.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: calm ? 0 : rng.pick([0, 0.01, 0.05, 0.15]),
    reorderRate: calm ? 0 : rng.pick([0, 0.05, 0.3, 1]),
    replayRate: calm ? 0 : rng.pick([0, 0, 0.01, 0.05]),
    diskMaxLatencyMs: rng.pick([0, 0.5, 2, 5]),
    partitionEveryMs: calm ? Infinity : rng.pick([Infinity, 150, 300, 600]),
    partitionHoldMaxMs: rng.pick([100, 300, 600]),
    crashEveryMs: calm ? Infinity : rng.pick([Infinity, 150, 300, 700]),
    downMaxMs: rng.pick([20, 100, 400]),
    membershipEveryMs: rng.pick([Infinity, 100, 250, 500]),
    transferEveryMs: rng.pick([Infinity, Infinity, 200, 500]),
    writeEveryMs: rng.pick([1, 3, 8]),
    readEveryMs: rng.pick([2, 5, 10]),
    snapshotEveryEntries: rng.pick([8, 30, 100]),
    compactKeepEntries: rng.pick([0, 2, 10]),
    electionTimeoutTicks,
    heartbeatIntervalTicks: rng.pick([1, 1, 2]),
    maxInflightMsgs,
    maxSizePerMsgBytes,
    maxUncommittedEntriesBytes,
  };
}

export function describeScenario(s: Scenario): string {
  const fmt = (v: number): string => (v === Infinity ? "off" : String(v));
  return [
    `tick=${s.baseTickMs}ms±${s.tickSpread * 100}%`,
    `delay=${s.netMinDelayMs}+exp(${s.netMeanDelayMs})ms`,
    `drop=${s.dropRate}`,
    `dup=${s.duplicateRate}`,
    `reorder=${s.reorderRate}`,
    `replay=${s.replayRate}`,
    `disk<=${s.diskMaxLatencyMs}ms`,
    `partitionEvery=${fmt(s.partitionEveryMs)}ms(hold<=${s.partitionHoldMaxMs})`,
    `crashEvery=${fmt(s.crashEveryMs)}ms(down<=${s.downMaxMs})`,
    `membershipEvery=${fmt(s.membershipEveryMs)}ms`,
    `transferEvery=${fmt(s.transferEveryMs)}ms`,
    `writeEvery=${s.writeEveryMs}ms`,
    `readEvery=${s.readEveryMs}ms`,
    `snapshotEvery=${s.snapshotEveryEntries}`,
    `keep=${s.compactKeepEntries}`,
    `election=${s.electionTimeoutTicks}t`,
    `heartbeat=${s.heartbeatIntervalTicks}t`,
    `inflight=${s.maxInflightMsgs}`,
    `maxMsg=${s.maxSizePerMsgBytes}B`,
    `maxUncommitted=${s.maxUncommittedEntriesBytes}B`,
  ].join(" ");
}
