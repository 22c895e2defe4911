// Initial durable state of a brand-new cluster. Every founding member starts from the same log: one
// `addVoter` entry per founder, committed in term 1. Membership is therefore always derivable from a
// log prefix, so a node that joins later (empty log) rebuilds the same configuration by replaying it.

import { invariant } from "./assert.ts";
import type { PersistedState } from "./storage.ts";
import type { Entry, Index, RaftId, Term } from "./types.ts";
import { EMPTY_HARD_STATE, NO_NODE } from "./types.ts";

const BOOTSTRAP_TERM = 1 as Term;

/** Durable state for each founding member of a cluster whose voters are `voters`. */
export function bootstrapPersistedState(voters: readonly RaftId[]): PersistedState {
  invariant(voters.length > 0, "bootstrap: at least one voter");
  invariant(new Set(voters).size === voters.length, "bootstrap: duplicate voter ids");
  const entries: Entry[] = voters.map((nodeId, k) => ({
    kind: "confChange",
    term: BOOTSTRAP_TERM,
    index: (k + 1) as Index,
    change: { type: "addVoter", nodeId, context: new Uint8Array(0) },
  }));
  return { hardState: { term: BOOTSTRAP_TERM, vote: NO_NODE, commit: voters.length as Index }, entries };
}

/** Durable state of a node that will join an existing cluster (it waits to be contacted). */
export function joiningPersistedState(): PersistedState {
  return { hardState: EMPTY_HARD_STATE, entries: [] };
}
