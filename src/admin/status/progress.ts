// Progress of a replication change, pure: how many logs already are at the cluster's replication
// setting (tail segment at least at it, sealed segments with at least that many surviving copies). Shown in
// /v1/cluster/status, /v1/cluster/config and `cairn ctl status`.
import { liveRecords, survivingCopies, tailSegment, type LogsDocument } from "../../bifrost/index.ts";
import type { NodeId } from "../../ids/index.ts";

export interface ReplicationProgress {
  readonly target: number;
  readonly logs: number;
  /** Logs whose tail segment and sealed segments (with records) have at least the target replication. */
  readonly logsAtTarget: number;
}

/**
 * How far the logs are on their way to the replication setting. A sealed segment counts by the copies
 * its records still have (`known`: nodes in the cluster; copies elsewhere are gone).
 */
export function replicationProgress(doc: LogsDocument, target: number, known: (n: NodeId) => boolean): ReplicationProgress {
  let atTarget = 0;
  for (const log of doc.logs) {
    const tail = tailSegment(log);
    if (tail === undefined) continue;
    const tailReplication = tail.kind === "local" ? 1 : tail.params.replication;
    if (tailReplication < target) continue;
    const sealedShort = log.segments.some(
      (s) => s !== tail && s.sealedTail !== undefined && liveRecords(s, log.trimPoint) > 0 && survivingCopies(s, (n) => !known(n)) < target,
    );
    if (!sealedShort) atTarget++;
  }
  return { target, logs: doc.logs.length, logsAtTarget: atTarget };
}
