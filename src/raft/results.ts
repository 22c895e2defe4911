// Typed answers of the core's local operations. Refusals are expected (a client asked the wrong node,
// a change is already pending, ...) and carry a code the driver maps to its own errors.

import type { ConfChangeRefusal } from "./confchange.ts";
import type { Index, RaftId, Term } from "./types.ts";

export type ProposeRefusal =
  | "notLeader"
  | "transferInProgress"
  | "uncommittedBytesExceeded"
  | "emptyBatch"
  | "batchTooLarge";

/**
 * An accepted proposal occupies [firstIndex, lastIndex] in `term`. It is committed once an entry at
 * that index with that term is handed out as committed; if another term shows up at the index, the
 * proposal was lost (leadership changed) and may be retried.
 */
export type ProposeResult =
  | { readonly ok: true; readonly term: Term; readonly firstIndex: Index; readonly lastIndex: Index }
  | { readonly ok: false; readonly reason: ProposeRefusal; readonly leader: RaftId };

export type ConfChangeProposalRefusal =
  | ProposeRefusal
  | ConfChangeRefusal
  /** The leader has not yet committed an entry of its own term. */
  | "leaderNotReady"
  /** An earlier membership change is not committed yet. */
  | "confChangePending"
  /** The learner to promote is too far behind the leader's log. */
  | "learnerBehind";

export type ConfChangeResult =
  | { readonly ok: true; readonly term: Term; readonly index: Index }
  | { readonly ok: false; readonly reason: ConfChangeProposalRefusal; readonly leader: RaftId };

export type ReadIndexRefusal = "noLeader" | "duplicateCtx" | "tooManyPendingReads";

/** Accepted: a ReadState with the same ctx will appear in a later Ready (unless leadership changes). */
export type ReadIndexResult = { readonly ok: true } | { readonly ok: false; readonly reason: ReadIndexRefusal };

export type TransferRefusal = "noLeader" | "notVoter";

export type TransferResult = { readonly ok: true } | { readonly ok: false; readonly reason: TransferRefusal };
