// Provisioning: the cluster's first documents, written once, in this order: nodes configuration,
// logs, partition table, then `cluster` (whose presence means "provisioned"). It lives in the node,
// above the roles, because it writes documents that belong to several of them (metadata's nodes
// configuration, bifrost's logs, the worker's partition table); the metadata service only seeds
// the store and writes what it is handed (InitialDocuments). The fingerprint is random and never changes.
import { CairnError } from "../observability/errors.ts";
import { MAX_PARTITIONS } from "../ids/index.ts";
import { evenPartitionTable } from "../worker/partition-table.ts";
import { initialLogsDocument } from "../bifrost/chain.ts";
import { KEYS, registerNode, withMetadataServerEvent, type ClusterInfo, type NodesConfiguration } from "../metadata/nodes-config.ts";
import type { InitialDocuments } from "../metadata/service.ts";

export interface ProvisionRequest {
  numPartitions: number;
  replication: number;
}

export const DEFAULT_NUM_PARTITIONS = 8;

/**
 * The replication a cluster of `logServers` log-server nodes allows when none is asked for: enough
 * copies to survive one node's loss while a majority of the nodes can still take every append
 * (1 for one or two nodes, 2 for three or four, 3 from five). At provisioning only the provisioning
 * node is registered, so a new cluster starts at 1 unless asked otherwise (as it always did).
 */
export function autoReplication(logServers: number): number {
  return Math.max(1, Math.min(3, Math.ceil(logServers / 2)));
}

export function checkProvisionRequest(req: ProvisionRequest): void {
  if (!Number.isInteger(req.numPartitions) || req.numPartitions < 1 || req.numPartitions > MAX_PARTITIONS) {
    throw new CairnError("CLUSTER_INVALID_PROVISION", `num-partitions must be 1..${MAX_PARTITIONS}, got ${req.numPartitions}`);
  }
  if (!Number.isInteger(req.replication) || req.replication < 1 || req.replication > 9) {
    throw new CairnError("CLUSTER_INVALID_PROVISION", `replication must be 1..9, got ${req.replication}`);
  }
}

/**
 * The documents of a new cluster whose first member is the seed (already a metadata-server member),
 * in the order they must be written. The request is checked when the metadata service asks for the
 * documents, after it has refused a second provisioning (409 comes before 400, as it always has).
 */
export function initialDocuments(clusterName: string, request: ProvisionRequest): InitialDocuments {
  return (seed) => {
    checkProvisionRequest(request);
    return documents({ clusterName, request, ...seed });
  };
}

function documents(args: Parameters<InitialDocuments>[0] & { clusterName: string; request: ProvisionRequest }): Array<[string, unknown]> {
  if (!args.self.roles.includes("metadata-server")) {
    throw new CairnError(
      "CLUSTER_INVALID_PROVISION",
      `node ${args.self.name} does not run the metadata-server role; provision through a node that does`,
    );
  }
  const empty: NodesConfiguration = { clusterName: args.clusterName, fingerprint: args.fingerprint, nextNodeId: 1, nodes: [] };
  const registered = registerNode(empty, args.self);
  const nodesConfig = withMetadataServerEvent(registered.config, registered.node.id, { kind: "seed" }, args.storageId ?? null);
  const table = evenPartitionTable(args.request.numPartitions);
  // One log per partition. A log's segment chain starts empty; the log controller adds the first segment.
  const logs = initialLogsDocument(table.partitions.map((p) => p.id), args.request.replication);
  const cluster: ClusterInfo = {
    name: args.clusterName,
    fingerprint: args.fingerprint,
    provisionedAtMs: args.nowMs,
    numPartitions: args.request.numPartitions,
    replication: args.request.replication,
  };
  return [
    [KEYS.nodesConfig, nodesConfig],
    [KEYS.logs, logs],
    [KEYS.partitionTable, table],
    [KEYS.cluster, cluster],
  ];
}
