// Provisioning: the cluster's first documents, written once, in this order: nodes configuration,
// logs, partition table, then `cluster` (whose presence means "provisioned"). The fingerprint is
// random, chosen here, and never changes.
import { CairnError } from "../observability/errors.ts";
import { evenPartitionTable, MAX_PARTITIONS } from "../worker/partition-table.ts";
import { initialLogsDocument } from "../bifrost/chain.ts";
import { KEYS, registerNode, withMetadataServerEvent, type ClusterInfo, type NodesConfiguration, type RegisterRequest } from "./nodes-config.ts";

export interface ProvisionRequest {
  numPartitions: number;
  replication: number;
}

export const DEFAULT_NUM_PARTITIONS = 8;

export function checkProvisionRequest(req: ProvisionRequest): void {
  if (!Number.isInteger(req.numPartitions) || req.numPartitions < 1 || req.numPartitions > MAX_PARTITIONS) {
    throw new CairnError("CLUSTER_INVALID_PROVISION", `num-partitions must be 1..${MAX_PARTITIONS}, got ${req.numPartitions}`);
  }
  if (!Number.isInteger(req.replication) || req.replication < 1 || req.replication > 9) {
    throw new CairnError("CLUSTER_INVALID_PROVISION", `replication must be 1..9, got ${req.replication}`);
  }
}

/** A fingerprint: 16 random hex digits (64 bits), never all zero. */
export function newFingerprint(random: (bytes: number) => Uint8Array): string {
  for (;;) {
    const hex = [...random(8)].map((b) => b.toString(16).padStart(2, "0")).join("");
    if (!/^0+$/.test(hex)) return hex;
  }
}

/**
 * The documents of a new cluster whose first member is `self` (already a metadata-server member:
 * the seed). Returned in the order they must be written.
 */
export function initialDocuments(args: {
  clusterName: string;
  fingerprint: string;
  request: ProvisionRequest;
  self: RegisterRequest;
  nowMs: number;
  /** Identity of the seed's metadata storage (replicated server); null for the local store. */
  storageId?: string | null;
}): Array<[string, unknown]> {
  checkProvisionRequest(args.request);
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
