// Configuration of one Raft node. Every bound the core keeps is a named field here with a default;
// `resolveConfig` fills the defaults and rejects impossible combinations.

import { invariant } from "./assert.ts";
import type { Index, RaftId } from "./types.ts";
import { ZERO_INDEX } from "./types.ts";

/**
 * Deliberate bugs, for proving that the simulator catches broken variants ("test the tester").
 * Never enable outside tests.
 */
export interface UnsafeTestingFaults {
  /** Grant votes without checking that the candidate's log is at least as up to date. */
  readonly voteWithoutLogCheck?: boolean;
  /** Commit entries of earlier terms by counting replicas (Raft paper, Figure 8). */
  readonly commitPreviousTermByCounting?: boolean;
  /** Answer ReadIndex on the leader without the heartbeat quorum round. */
  readonly readIndexWithoutQuorum?: boolean;
}

export interface RaftConfigInput {
  /** This node's id (non-zero). */
  readonly id: RaftId;
  /** Ticks without hearing from a leader before campaigning; the real timeout is randomised in [t, 2t). */
  readonly electionTimeoutTicks?: number;
  /** Ticks between leader heartbeats; must be smaller than the election timeout. */
  readonly heartbeatIntervalTicks?: number;
  /** Run a pre-vote round before incrementing the term (stops a partitioned node from disrupting). */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. */
  readonly checkQuorum?: boolean;
  /** Upper bound of entry bytes in one append message (at least one entry is always sent). */
  readonly maxSizePerMsgBytes?: number;
  /** Append messages in flight per follower in replicate mode. */
  readonly maxInflightMsgs?: number;
  /** Entry bytes in flight per follower in replicate mode. */
  readonly maxInflightBytes?: number;
  /** Bytes of uncommitted entries a leader accepts before refusing proposals. */
  readonly maxUncommittedEntriesBytes?: number;
  /** Entries proposed in one `proposeBatch` call. */
  readonly maxProposalBatchEntries?: number;
  /** Bytes of committed entries handed out in one Ready (at least one entry is always handed out). */
  readonly maxCommittedSizePerReadyBytes?: number;
  /** ReadIndex requests waiting at a leader (queued or in a heartbeat round). */
  readonly maxPendingReadIndexRequests?: number;
  /** A learner may be promoted only if its match index is at most this far behind the leader's log. */
  readonly learnerPromotionMaxLagEntries?: number;
  /** A follower in snapshot state that has not confirmed the snapshot after this many ticks is probed again. */
  readonly snapshotTimeoutTicks?: number;
  /** A follower in replicate state that acknowledged nothing for this many ticks is probed again. */
  readonly appendStallTimeoutTicks?: number;
  /** Ticks a leader transfer may take before it is abandoned (default: the election timeout). */
  readonly transferTimeoutTicks?: number;
  /** Index the driver's state machine has already applied (a restart does not re-deliver up to it). */
  readonly appliedIndex?: Index;
  readonly unsafeTestingFaults?: UnsafeTestingFaults;
}

export type RaftConfig = Required<Omit<RaftConfigInput, "unsafeTestingFaults">> & {
  readonly unsafeTestingFaults: UnsafeTestingFaults;
};

export const RAFT_CONFIG_DEFAULTS = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxSizePerMsgBytes: 1024 * 1024,
  maxInflightMsgs: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxUncommittedEntriesBytes: 64 * 1024 * 1024,
  maxProposalBatchEntries: 4096,
  maxCommittedSizePerReadyBytes: 16 * 1024 * 1024,
  maxPendingReadIndexRequests: 4096,
  learnerPromotionMaxLagEntries: 256,
} as const;

export function resolveConfig(input: RaftConfigInput): RaftConfig {
  const electionTimeoutTicks = input.electionTimeoutTicks ?? RAFT_CONFIG_DEFAULTS.electionTimeoutTicks;
  const config: RaftConfig = {
    id: input.id,
    electionTimeoutTicks,
    heartbeatIntervalTicks: input.heartbeatIntervalTicks ?? RAFT_CONFIG_DEFAULTS.heartbeatIntervalTicks,
    preVote: input.preVote ?? RAFT_CONFIG_DEFAULTS.preVote,
    checkQuorum: input.checkQuorum ?? RAFT_CONFIG_DEFAULTS.checkQuorum,
    maxSizePerMsgBytes: input.maxSizePerMsgBytes ?? RAFT_CONFIG_DEFAULTS.maxSizePerMsgBytes,
    maxInflightMsgs: input.maxInflightMsgs ?? RAFT_CONFIG_DEFAULTS.maxInflightMsgs,
    maxInflightBytes: input.maxInflightBytes ?? RAFT_CONFIG_DEFAULTS.maxInflightBytes,
    maxUncommittedEntriesBytes: input.maxUncommittedEntriesBytes ?? RAFT_CONFIG_DEFAULTS.maxUncommittedEntriesBytes,
    maxProposalBatchEntries: input.maxProposalBatchEntries ?? RAFT_CONFIG_DEFAULTS.maxProposalBatchEntries,
    maxCommittedSizePerReadyBytes:
      input.maxCommittedSizePerReadyBytes ?? RAFT_CONFIG_DEFAULTS.maxCommittedSizePerReadyBytes,
    maxPendingReadIndexRequests: input.maxPendingReadIndexRequests ?? RAFT_CONFIG_DEFAULTS.maxPendingReadIndexRequests,
    learnerPromotionMaxLagEntries:
      input.learnerPromotionMaxLagEntries ?? RAFT_CONFIG_DEFAULTS.learnerPromotionMaxLagEntries,
    snapshotTimeoutTicks: input.snapshotTimeoutTicks ?? electionTimeoutTicks * 5,
    appendStallTimeoutTicks: input.appendStallTimeoutTicks ?? Math.max(2, Math.ceil(electionTimeoutTicks / 2)),
    transferTimeoutTicks: input.transferTimeoutTicks ?? electionTimeoutTicks,
    appliedIndex: input.appliedIndex ?? ZERO_INDEX,
    unsafeTestingFaults: input.unsafeTestingFaults ?? {},
  };
  validateConfig(config);
  return config;
}

function positiveInt(value: number, name: string): void {
  invariant(Number.isSafeInteger(value) && value > 0, () => `raft config: ${name} must be a positive integer, got ${value}`);
}

function validateConfig(c: RaftConfig): void {
  invariant(Number.isSafeInteger(c.id) && c.id > 0, "raft config: id must be a positive integer");
  positiveInt(c.electionTimeoutTicks, "electionTimeoutTicks");
  positiveInt(c.heartbeatIntervalTicks, "heartbeatIntervalTicks");
  invariant(
    c.heartbeatIntervalTicks < c.electionTimeoutTicks,
    "raft config: heartbeatIntervalTicks must be smaller than electionTimeoutTicks",
  );
  positiveInt(c.maxSizePerMsgBytes, "maxSizePerMsgBytes");
  positiveInt(c.maxInflightMsgs, "maxInflightMsgs");
  positiveInt(c.maxInflightBytes, "maxInflightBytes");
  positiveInt(c.maxUncommittedEntriesBytes, "maxUncommittedEntriesBytes");
  positiveInt(c.maxProposalBatchEntries, "maxProposalBatchEntries");
  positiveInt(c.maxCommittedSizePerReadyBytes, "maxCommittedSizePerReadyBytes");
  positiveInt(c.maxPendingReadIndexRequests, "maxPendingReadIndexRequests");
  invariant(
    Number.isSafeInteger(c.learnerPromotionMaxLagEntries) && c.learnerPromotionMaxLagEntries >= 0,
    "raft config: learnerPromotionMaxLagEntries must be a natural number",
  );
  positiveInt(c.snapshotTimeoutTicks, "snapshotTimeoutTicks");
  positiveInt(c.appendStallTimeoutTicks, "appendStallTimeoutTicks");
  positiveInt(c.transferTimeoutTicks, "transferTimeoutTicks");
  invariant(Number.isSafeInteger(c.appliedIndex) && c.appliedIndex >= 0, "raft config: appliedIndex must be natural");
}
