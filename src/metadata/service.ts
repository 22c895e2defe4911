// The node's view of the metadata store, whichever kind backs it: is the cluster provisioned, the
// MetadataApi once it is, and provisioning. The node and the admin API talk only to this.
import type { Consistency, MetadataApi } from "./api.ts";
import type { ClusterInfo, RegisterRequest } from "./nodes-config.ts";

/**
 * What provisioning writes, decided above the roles (src/node/provision.ts): given the seed's facts,
 * the documents in the order they must be written. The last one is `cluster`, whose presence means
 * "provisioned". The metadata service seeds its store, calls this once and writes the result.
 */
export type InitialDocuments = (seed: {
  fingerprint: string;
  /** The provisioning node, already the first metadata member. */
  self: RegisterRequest;
  nowMs: number;
  /** Identity of the seed's metadata storage (replicated server); null for the local store. */
  storageId: string | null;
}) => Array<[string, unknown]>;

export interface MetadataService {
  /** The metadata store, or undefined while the cluster is not provisioned. */
  api(): MetadataApi | undefined;
  /** The cluster's identity, or undefined while it is not provisioned. */
  cluster(): ClusterInfo | undefined;
  /** Provision the cluster with this node as its first metadata member, writing `documents`. */
  provision(documents: InitialDocuments): Promise<ClusterInfo>;
  /** The node's id in the nodes configuration once registered (undefined before). */
  nodeId(): number | undefined;
  /** This node's latest copy of the nodes configuration, when the service keeps one. */
  nodesConfig?(): import("./nodes-config.ts").NodesConfiguration | undefined;
  /** This node's metadata server, if it runs one. */
  serverStatus(): import("./server.ts").MetadataServerStatus | undefined;
  /**
   * Calls `listener` whenever this node's replica applies an entry; returns how to stop, or undefined
   * when the service keeps no replica that applies entries (then readers poll).
   */
  onLocalApplied?(listener: () => void): (() => void) | undefined;
  /** Whether this node's replica applies every committed entry as it comes (a member's): pushes are complete. */
  replicaIsCurrent?(): boolean;
  /** Whether this node's metadata server is a member that leads (a local store always does): cheap, for loops. */
  leadsAsMember(): boolean;
  /** Why this node's first registration is refused right now (`CODE: message`); none when it is not. */
  joinRefusal?(): string | undefined;
  /** Every node with the metadata-server role and its state. */
  /** `stale`: from this node's copy of the nodes configuration, without a linearizable read. */
  listServers(consistency?: Consistency): Promise<MetadataServerListEntry[]>;
  /** Operator: ask a standby node to join (standby → auto-join). */
  addServer(node: string): Promise<void>;
  /** Operator: remove a member (member → standby). */
  removeServer(node: string): Promise<void>;
  stop(): Promise<void>;
}

/** One node's metadata-server role as `cairn ctl metadata-server list` shows it. */
export interface MetadataServerListEntry {
  node: string;
  name: string;
  fabricAddress: string;
  /** The node's state in the nodes configuration. */
  state: "auto-join" | "member" | "standby";
  /** The node's own report (members and joiners), or why it could not be had. */
  status: import("./server.ts").MetadataServerStatus | null;
  error: string | null;
}
