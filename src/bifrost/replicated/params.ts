// Parameters of one replicated loglet and the quorum arithmetic every core uses. A write quorum is
// any r log-servers of the nodeset; an f-majority is any n − r + 1 of them, the smallest set that
// intersects every write quorum (so once an f-majority is sealed no new write quorum can form, and
// an f-majority of authoritative servers holds a copy of every acknowledged record).
import { invariant } from "../../observability/errors.ts";
import type { GenerationalNodeId, LogletId, NodeId } from "../../ids/index.ts";

export interface ReplicatedLogletParams {
  readonly loglet: LogletId;
  /** The only node that may append; a restarted node is a different generation and is fenced. */
  readonly sequencer: GenerationalNodeId;
  /** The log-servers that may hold records of this loglet. */
  readonly nodeset: readonly NodeId[];
  /** Copies per record (r): an append is acknowledged once r log-servers stored it. */
  readonly replication: number;
}

export function checkParams(p: ReplicatedLogletParams): void {
  invariant(p.nodeset.length > 0, () => `loglet ${p.loglet}: empty nodeset`);
  invariant(new Set(p.nodeset).size === p.nodeset.length, () => `loglet ${p.loglet}: duplicate nodes in nodeset ${p.nodeset.join(",")}`);
  invariant(
    Number.isInteger(p.replication) && p.replication >= 1 && p.replication <= p.nodeset.length,
    () => `loglet ${p.loglet}: replication ${p.replication} must be in [1, ${p.nodeset.length}]`,
  );
}

export function writeQuorumSize(p: ReplicatedLogletParams): number {
  return p.replication;
}

/** n − r + 1: intersects every write quorum. */
export function fMajoritySize(p: ReplicatedLogletParams): number {
  return p.nodeset.length - p.replication + 1;
}
