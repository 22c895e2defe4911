// Single-server membership changes. A configuration takes effect on a node as soon as the change is
// in its log (committed or not), as in the Raft thesis §4.1: two configurations in use at once then
// always differ by one server, so their majorities overlap. Invariants: voters and learners stay
// disjoint and sorted; a change never removes the last voter.

import { invariant } from "./assert.ts";
import type { ConfChange, ConfState, RaftId } from "./types.ts";

export type ConfChangeRefusal = "invalidNodeId" | "alreadyVoter" | "alreadyMember" | "notMember" | "lastVoter";

/** Why `change` cannot be applied to `cs`, or null if it can. */
export function validateConfChange(cs: ConfState, change: ConfChange): ConfChangeRefusal | null {
  const id = change.nodeId;
  if (!Number.isSafeInteger(id) || id <= 0) return "invalidNodeId";
  const isVoter = cs.voters.includes(id);
  const isLearner = cs.learners.includes(id);
  switch (change.type) {
    case "addVoter":
      return isVoter ? "alreadyVoter" : null;
    case "addLearner":
      return isVoter || isLearner ? "alreadyMember" : null;
    case "removeNode":
      if (!isVoter && !isLearner) return "notMember";
      return isVoter && cs.voters.length === 1 ? "lastVoter" : null;
  }
}

function sorted(ids: Iterable<RaftId>): RaftId[] {
  return [...ids].sort((a, b) => a - b);
}

/** The configuration after `change`. The change must be valid (see `validateConfChange`). */
export function applyConfChange(cs: ConfState, change: ConfChange): ConfState {
  const refusal = validateConfChange(cs, change);
  invariant(refusal === null, () => `conf change ${change.type}(${change.nodeId}) invalid: ${refusal}`);
  const id = change.nodeId;
  switch (change.type) {
    case "addVoter":
      return { voters: sorted([...cs.voters, id]), learners: cs.learners.filter((x) => x !== id) };
    case "addLearner":
      return { voters: cs.voters, learners: sorted([...cs.learners, id]) };
    case "removeNode":
      return { voters: cs.voters.filter((x) => x !== id), learners: cs.learners.filter((x) => x !== id) };
  }
}

export function describeConfState(cs: ConfState): string {
  return `voters=[${cs.voters.join(",")}] learners=[${cs.learners.join(",")}]`;
}
