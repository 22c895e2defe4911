// The cluster-wide documents that provisioning writes, in this order: `nodes_config` (who is in the
// cluster, their roles, addresses and metadata-server state), `logs` (one log per partition) and
// `partition_table`; plus `cluster` (name, fingerprint, settings). Each is a JSON value in the
// metadata store, changed only by compare-and-set. Node ids are never reused: `nextNodeId` only grows,
// and a removed node leaves `nodes` for `removed` (never placed again; its name may not register again).
import { Type, type Static } from "@sinclair/typebox";
import { nodeNumber, parseNodeId, ROLES, StringEnum } from "../ids/index.ts";
import { CairnError, invariant } from "../observability/errors.ts";
import { METADATA_SERVER_STATES, transitionMetadataServerState, type MetadataServerEvent } from "./server-state.ts";

export const KEYS = {
  nodesConfig: "nodes_config",
  logs: "logs",
  partitionTable: "partition_table",
  cluster: "cluster",
} as const;

export const NodeEntry = Type.Object({
  id: Type.Integer({ minimum: 1, description: "The number of the node id N<id> (see nodeNumber in src/ids/node.ts)." }),
  name: Type.String(),
  generation: Type.Integer({ minimum: 1, description: "The generation that last registered." }),
  incarnation: Type.String({ description: "Random id of the process that registered this generation." }),
  roles: Type.Array(StringEnum(ROLES)),
  fabricAddress: Type.String(),
  adminAddress: Type.String(),
  metadataServer: Type.Object({
    state: StringEnum(METADATA_SERVER_STATES),
    /** Identity of the node's metadata storage when it became a member (detects a wiped disk). */
    storageId: Type.Union([Type.String(), Type.Null()]),
  }),
});
export type NodeEntry = Static<typeof NodeEntry>;

export const NodesConfiguration = Type.Object({
  clusterName: Type.String(),
  fingerprint: Type.String(),
  nextNodeId: Type.Integer({ minimum: 1 }),
  nodes: Type.Array(NodeEntry),
  /** Nodes an operator removed (`cairn ctl nodes remove`): their ids and names are never reused. */
  removed: Type.Optional(Type.Array(Type.Object({ id: Type.Integer({ minimum: 1 }), name: Type.String(), removedAtMs: Type.Integer() }))),
});
export type NodesConfiguration = Static<typeof NodesConfiguration>;

/** What operators change after provisioning (`PATCH /v1/cluster/config`), by compare-and-set. */
export const ClusterSettings = Type.Object({
  replication: Type.Integer({ minimum: 1, maximum: 9, description: "Default replication of logs and partitions; logs below it are reconfigured to it." }),
  nodesetSize: Type.Integer({ minimum: 0, maximum: 64, description: "Log-servers in a new nodeset; 0: automatic (2r − 1, or the node's bifrost.nodeset-size)." }),
});
export type ClusterSettings = Static<typeof ClusterSettings>;

export const ClusterInfo = Type.Object({
  name: Type.String(),
  fingerprint: Type.String(),
  provisionedAtMs: Type.Integer(),
  numPartitions: Type.Integer({ minimum: 1 }),
  /** Equal to `settings.replication` once settings exist (kept for readers of the first format). */
  replication: Type.Integer({ minimum: 1 }),
  settings: Type.Optional(ClusterSettings),
});
export type ClusterInfo = Static<typeof ClusterInfo>;

/** The settings in force: a cluster provisioned before settings existed has its provisioned replication. */
export function clusterSettings(info: Pick<ClusterInfo, "replication" | "settings">): ClusterSettings {
  return info.settings ?? { replication: info.replication, nodesetSize: 0 };
}

/** The cluster document with changed settings (the top-level replication follows). */
export function withClusterSettings(info: ClusterInfo, change: Partial<ClusterSettings>): ClusterInfo {
  const settings = { ...clusterSettings(info), ...change };
  invariant(settings.nodesetSize === 0 || settings.nodesetSize >= settings.replication, "nodeset smaller than the replication");
  return { ...info, replication: settings.replication, settings };
}

export function findNode(config: NodesConfiguration, nameOrId: string): NodeEntry | undefined {
  const id = parseNodeId(nameOrId);
  return config.nodes.find((n) => (id !== undefined ? n.id === nodeNumber(id) : n.name === nameOrId));
}

export interface RegisterRequest {
  name: string;
  generation: number;
  /** Random per process start: tells a re-registration of this process from another process. */
  incarnation: string;
  roles: NodeEntry["roles"];
  fabricAddress: string;
  adminAddress: string;
  autoJoin: boolean;
}

/**
 * Register a node (first start) or record its new generation and addresses (restart). Returns the
 * new configuration, or the same object if nothing changed (so the caller can skip the write).
 */
export function registerNode(config: NodesConfiguration, req: RegisterRequest): { config: NodesConfiguration; node: NodeEntry } {
  const removed = config.removed?.find((r) => r.name === req.name);
  if (removed !== undefined) throw new NodeRemovedError(req.name, removed.id);
  const existing = config.nodes.find((n) => n.name === req.name);
  if (existing !== undefined) {
    if (existing.incarnation !== req.incarnation && existing.generation >= req.generation) {
      // Another process registered this generation or a later one: this node's local counter is
      // behind (a wiped data directory). It must take a newer generation before registering.
      throw new StaleGenerationError(req.name, existing.generation);
    }
    const unchanged =
      existing.incarnation === req.incarnation &&
      existing.generation === req.generation &&
      existing.fabricAddress === req.fabricAddress &&
      existing.adminAddress === req.adminAddress &&
      sameRoles(existing.roles, req.roles);
    if (unchanged) return { config, node: existing };
    const updated: NodeEntry = {
      ...existing,
      generation: req.generation,
      incarnation: req.incarnation,
      roles: [...req.roles],
      fabricAddress: req.fabricAddress,
      adminAddress: req.adminAddress,
    };
    return { config: { ...config, nodes: config.nodes.map((n) => (n.id === existing.id ? updated : n)) }, node: updated };
  }
  const event: MetadataServerEvent = { kind: "register", autoJoin: req.autoJoin };
  const node: NodeEntry = {
    id: config.nextNodeId,
    name: req.name,
    generation: req.generation,
    incarnation: req.incarnation,
    roles: [...req.roles],
    fabricAddress: req.fabricAddress,
    adminAddress: req.adminAddress,
    metadataServer: { state: transitionMetadataServerState("unregistered", event), storageId: null },
  };
  return { config: { ...config, nextNodeId: config.nextNodeId + 1, nodes: [...config.nodes, node] }, node };
}

/** Registration found a newer generation of this node: the process must move past `registered`. */
export class StaleGenerationError extends CairnError {
  constructor(
    name: string,
    readonly registered: number,
  ) {
    super("NET_STALE_GENERATION", `node ${name} has registered generation ${registered} from another process; this process must use a newer one`);
  }
}

/** Registration of a node an operator removed from the cluster: it may never come back under that name. */
export class NodeRemovedError extends CairnError {
  constructor(name: string, id: number) {
    super(
      "NODE_REMOVED",
      `node ${name} (N${id}) was removed from the cluster by an operator; it may not rejoin under that name`,
      { node: `N${id}`, name },
    );
  }
}

/**
 * The configuration without node `id`, which moves to `removed` (its id is never reused: nextNodeId
 * is untouched). The caller has checked that the node holds nothing it would lose.
 */
export function removeNode(config: NodesConfiguration, id: number, nowMs: number): NodesConfiguration {
  const node = config.nodes.find((n) => n.id === id);
  invariant(node !== undefined, () => `node N${id} is not in the nodes configuration`);
  invariant(node.metadataServer.state !== "member", () => `node N${id} is a metadata member`);
  return {
    ...config,
    nodes: config.nodes.filter((n) => n.id !== id),
    removed: [...(config.removed ?? []), { id, name: node.name, removedAtMs: nowMs }],
  };
}

/** Apply a metadata-server event to one node (checked: an illegal transition throws). */
export function withMetadataServerEvent(
  config: NodesConfiguration,
  nodeId: number,
  event: MetadataServerEvent,
  storageId?: string | null,
): NodesConfiguration {
  const node = config.nodes.find((n) => n.id === nodeId);
  invariant(node !== undefined, () => `node N${nodeId} is not in the nodes configuration`);
  const state = transitionMetadataServerState(node.metadataServer.state, event);
  const updated: NodeEntry = {
    ...node,
    metadataServer: { state, storageId: storageId === undefined ? node.metadataServer.storageId : storageId },
  };
  return { ...config, nodes: config.nodes.map((n) => (n.id === nodeId ? updated : n)) };
}

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r) => b.includes(r));
}
