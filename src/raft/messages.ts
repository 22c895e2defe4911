// The messages Raft nodes exchange. Plain objects (JSON-friendly except `Uint8Array` payloads) with a
// `type` discriminant; every message carries the sender's term. `codec.ts` turns them into bytes.

import type { Entry, Index, RaftId, Snapshot, Term } from "./types.ts";

interface Envelope {
  readonly from: RaftId;
  readonly to: RaftId;
  readonly term: Term;
}

/** Leader → follower: entries after (`prevIndex`, `prevTerm`), and the leader's commit index. */
export interface AppendMessage extends Envelope {
  readonly type: "append";
  readonly prevIndex: Index;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: Index;
}

/**
 * Follower → leader. Accepted: `index` is the follower's last index known to match the leader.
 * Rejected: `index` is the rejected `prevIndex`; (`rejectHint`, `rejectHintTerm`) is the follower's
 * best guess of where the logs may still agree, so the leader can skip a whole term per round trip.
 */
export interface AppendResponseMessage extends Envelope {
  readonly type: "appendResponse";
  readonly index: Index;
  readonly reject: boolean;
  readonly rejectHint: Index;
  readonly rejectHintTerm: Term;
}

/** Candidate → voter. `term` is the term being campaigned for (for a pre-vote: the next term). */
export interface VoteMessage extends Envelope {
  readonly type: "vote" | "preVote";
  readonly lastIndex: Index;
  readonly lastTerm: Term;
  /** Set when the campaign follows a leader transfer: voters then ignore their leader lease. */
  readonly transfer: boolean;
}

export interface VoteResponseMessage extends Envelope {
  readonly type: "voteResponse" | "preVoteResponse";
  readonly reject: boolean;
}

/** Leader → follower: liveness, commit index, and (when `ctx` is set) a ReadIndex quorum round. */
export interface HeartbeatMessage extends Envelope {
  readonly type: "heartbeat";
  readonly commit: Index;
  readonly ctx: string | null;
}

export interface HeartbeatResponseMessage extends Envelope {
  readonly type: "heartbeatResponse";
  readonly ctx: string | null;
}

/** Leader → follower whose next entries were compacted away. */
export interface SnapshotMessage extends Envelope {
  readonly type: "snapshot";
  readonly snapshot: Snapshot;
}

/** Follower → leader: "tell me a safe read index for `ctx`". */
export interface ReadIndexMessage extends Envelope {
  readonly type: "readIndex";
  readonly ctx: string;
}

export interface ReadIndexResponseMessage extends Envelope {
  readonly type: "readIndexResponse";
  readonly index: Index;
  readonly ctx: string;
}

/** Leader → transfer target: campaign now, without waiting for the election timeout or a pre-vote. */
export interface TimeoutNowMessage extends Envelope {
  readonly type: "timeoutNow";
}

/** Follower → leader: a transfer request made on a follower, forwarded. */
export interface TransferLeaderMessage extends Envelope {
  readonly type: "transferLeader";
  readonly transferee: RaftId;
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TimeoutNowMessage
  | TransferLeaderMessage;

export type MessageType = Message["type"];

export const MESSAGE_TYPES: readonly MessageType[] = [
  "append",
  "appendResponse",
  "vote",
  "preVote",
  "voteResponse",
  "preVoteResponse",
  "heartbeat",
  "heartbeatResponse",
  "snapshot",
  "readIndex",
  "readIndexResponse",
  "timeoutNow",
  "transferLeader",
];
