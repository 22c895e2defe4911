// Operators' changes to the cluster as pure decisions: whether a node may be removed (it holds nothing
// it would lose: no metadata membership, no partition leadership, no log it sequences or whose only
// copy it has) and whether new cluster settings are valid and keepable by the live log-servers.
// No I/O: the routes read and write.
import { liveRecords, survivingCopies, tailSegment, type LogsDocument } from "../../bifrost/index.ts";
import { nodeId, type NodeId } from "../../ids/index.ts";
import { clusterSettings, type ClusterInfo, type ClusterSettings, type NodeEntry, type NodesConfiguration } from "../../metadata/nodes-config.ts";
import { CairnError } from "../../observability/errors.ts";
import type { PartitionPlacement } from "../../worker/index.ts";

export interface RemovalInput {
  readonly config: NodesConfiguration;
  readonly node: NodeEntry;
  readonly logs: LogsDocument | undefined;
  readonly placement: PartitionPlacement | undefined;
  /** Whether the node answered a ping just now (null: not known). */
  readonly alive: boolean | null;
}

/** Why the node may not be removed now, or undefined when it holds nothing it would lose. */
export function removalRefusal(input: RemovalInput): CairnError | undefined {
  const { node } = input;
  const id = nodeId(node.id);
  const who = `${id} (${node.name})`;
  if (input.alive === true) return new CairnError("CLUSTER_REMOVE_NODE_ALIVE", `${who} still answers; stop its process first`, { node: id });
  if (node.metadataServer.state === "member") {
    return new CairnError("CLUSTER_REMOVE_METADATA_MEMBER", `${who} is a member of the metadata cluster`, { node: id });
  }
  const led = (input.placement?.partitions ?? []).filter((p) => p.leader === id).map((p) => p.id);
  if (led.length > 0) {
    return new CairnError("CLUSTER_REMOVE_PARTITION_LEADER", `${who} is placed as leader of partition${led.length > 1 ? "s" : ""} ${led.join(", ")}`, { node: id, partitions: led });
  }
  const known = new Set(input.config.nodes.map((n) => nodeId(n.id)));
  // Copies on nodes already gone do not count; neither do the ones of the node being removed.
  const lost = (n: NodeId) => n === id || !known.has(n);
  for (const log of input.logs?.logs ?? []) {
    const tail = tailSegment(log);
    if (tail !== undefined && tail.sealedTail === undefined && tail.params.sequencer.split(":")[0] === id) {
      return new CairnError("CLUSTER_REMOVE_HOLDS_LOG", `${who} sequences log ${log.id}`, { node: id, log: log.id });
    }
    for (const seg of log.segments) {
      if (!seg.params.nodeset.includes(id)) continue;
      const holdsRecords = seg.sealedTail === undefined || liveRecords(seg, log.trimPoint) > 0;
      if (holdsRecords && survivingCopies(seg, lost) === 0) {
        return new CairnError("CLUSTER_REMOVE_HOLDS_LOG", `${who} holds the only copy of log ${log.id} segment ${seg.index}`, { node: id, log: log.id, segment: seg.index });
      }
    }
  }
  return undefined;
}

/** A settings change as the API takes it (absent fields stay). */
export interface SettingsChange {
  readonly replication?: number | undefined;
  readonly nodesetSize?: number | undefined;
}

/**
 * The settings after `change`, or a refusal: nothing to change, a nodeset smaller than the
 * replication, or a replication the live log-servers cannot keep.
 */
export function checkSettingsChange(current: ClusterInfo, change: SettingsChange, liveLogServers: number): ClusterSettings {
  if (change.replication === undefined && change.nodesetSize === undefined) {
    throw new CairnError("CLUSTER_INVALID_SETTINGS", "give replication, nodesetSize or both");
  }
  const next: ClusterSettings = { ...clusterSettings(current) };
  if (change.replication !== undefined) next.replication = change.replication;
  if (change.nodesetSize !== undefined) next.nodesetSize = change.nodesetSize;
  if (!Number.isInteger(next.replication) || next.replication < 1 || next.replication > 9) {
    throw new CairnError("CLUSTER_INVALID_SETTINGS", `replication must be 1..9, got ${next.replication}`);
  }
  if (next.nodesetSize !== 0 && next.nodesetSize < next.replication) {
    throw new CairnError("CLUSTER_INVALID_SETTINGS", `a nodeset of ${next.nodesetSize} cannot hold ${next.replication} copies (nodeset-size 0 is automatic)`);
  }
  if (change.replication !== undefined && next.replication > liveLogServers) {
    throw new CairnError(
      "CLUSTER_REPLICATION_UNSATISFIABLE",
      `replication ${next.replication} needs ${next.replication} live log-server nodes; ${liveLogServers} answer now`,
      { replication: next.replication, liveLogServers },
    );
  }
  return next;
}
