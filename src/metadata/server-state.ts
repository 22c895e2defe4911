// The metadata-server state of a node, as written in the nodes configuration, and the only ways it
// may change. `auto-join`: the node should join the metadata cluster by itself (a learner that is
// promoted once caught up); `member`: a voter; `standby`: runs the role but serves nothing until an
// operator adds it. A new node is never registered as `member`, and nothing turns an `auto-join`
// node into `standby` (clusters that silently shrink are the failure this rules out).
import { METADATA_SERVER_STATES, type MetadataServerState } from "../ids/index.ts";
import { CairnError, invariant } from "../observability/errors.ts";

export { METADATA_SERVER_STATES, type MetadataServerState };

/** What happened to a node's metadata-server role. Each event names its cause. */
export type MetadataServerEvent =
  /** The node registered for the first time (auto-join per `metadata-server.auto-join`). */
  | { kind: "register"; autoJoin: boolean }
  /** The provisioning node seeds the cluster: it is the first member. */
  | { kind: "seed" }
  /** The node became a voter of the metadata Raft group (promotion committed). */
  | { kind: "promoted" }
  /** The node was removed from the Raft group (operator `metadata-server remove`). */
  | { kind: "removed" }
  /** An operator asked a standby node to join (`metadata-server add`). */
  | { kind: "operator-add" };

type From = MetadataServerState | "unregistered";

const TABLE: ReadonlyArray<readonly [From, MetadataServerEvent["kind"], MetadataServerState]> = [
  ["unregistered", "register", "auto-join"], // autoJoin = true
  ["unregistered", "register", "standby"], // autoJoin = false
  ["unregistered", "seed", "member"],
  ["auto-join", "seed", "member"], // the provisioning node registered before it provisioned
  ["standby", "seed", "member"],
  ["auto-join", "promoted", "member"],
  ["member", "removed", "standby"],
  ["standby", "operator-add", "auto-join"],
];

/** Legal (from, event) pairs and where they lead; anything else is illegal. */
export function nextMetadataServerState(from: From, event: MetadataServerEvent): MetadataServerState | undefined {
  if (event.kind === "register") {
    if (from !== "unregistered") return undefined;
    return event.autoJoin ? "auto-join" : "standby";
  }
  return TABLE.find(([f, k]) => f === from && k === event.kind)?.[2];
}

/**
 * Apply an event that the system itself decided on. An illegal transition here is a bug: it
 * throws an InvariantViolation and must never be caught as an expected failure.
 */
export function transitionMetadataServerState(from: From, event: MetadataServerEvent): MetadataServerState {
  const to = nextMetadataServerState(from, event);
  invariant(to !== undefined, () => `illegal metadata-server state transition: ${from} on ${event.kind}`);
  return to;
}

/**
 * Validate an operator's request before it reaches the state machine: an impossible request is the
 * operator's error (409 with a hint), not a bug.
 */
export function checkOperatorRequest(
  node: string,
  from: MetadataServerState,
  request: "add" | "remove",
): void {
  if (request === "add" && from !== "standby") {
    throw new CairnError(
      "METADATA_ILLEGAL_TRANSITION",
      from === "member"
        ? `node ${node} is already a metadata-server member`
        : `node ${node} is already joining the metadata cluster (state auto-join)`,
      { node, state: from, request },
    );
  }
  if (request === "remove" && from !== "member") {
    throw new CairnError(
      "METADATA_ILLEGAL_TRANSITION",
      from === "auto-join"
        ? `node ${node} is still joining (auto-join); an auto-join node is never demoted to standby: wait until it is a member, then remove it`
        : `node ${node} is not a metadata-server member (state ${from})`,
      { node, state: from, request },
    );
  }
}
