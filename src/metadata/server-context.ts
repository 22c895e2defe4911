// What the parts of one node's metadata server (membership.ts, kv-service.ts) share, and the types its
// callers know it by. The MetadataServer owns every piece; the parts reach the storage and the Raft
// driver only through this context. Invariant: a driver runs only over storage that holds an identity.
import type { Static } from "@sinclair/typebox";
import type { FabricClient, FabricServer } from "../net/index.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import type { NodesConfiguration, RegisterRequest } from "./nodes-config.ts";
import type { RaftDriver, RaftDriverOptions } from "./raft-driver.ts";
import type { IntegrityResult } from "./integrity.ts";
import type { MetadataRaftStorage } from "./raft-storage.ts";
import type { MetadataServerStatusSchema } from "./rpc.ts";

export type MetadataServerLocalState = Static<typeof MetadataServerStatusSchema>["state"];
export type MetadataServerStatus = Static<typeof MetadataServerStatusSchema>;

export interface LeaderHint {
  id: number;
  address: string;
}

export interface MetadataServerDeps {
  dataDir: string;
  clusterName: string;
  log: Logger;
  fabricServer: FabricServer;
  fabricClient: FabricClient;
  driverOptions: RaftDriverOptions;
  requestTimeoutMs: number;
  nowMs: () => number;
  randomBytes: (n: number) => Uint8Array;
  /** This node as it registers (name, generation, roles, addresses). */
  self: () => RegisterRequest;
  /** The data directory belongs to a provisioned cluster (its marker has a fingerprint). */
  provisioned: boolean;
  /** The leader as the node's metadata client last learned it (for hints while not a member). */
  knownLeader?: () => LeaderHint | undefined;
  /** Period of the background integrity check of the storage (0: only at open). */
  integrityCheckIntervalMs?: number;
  /** Where the metadata server's metrics go (a private registry when not given). */
  registry?: Registry;
  /** The node learned the cluster's nodes configuration (from its own replica). */
  onNodesConfig: (config: NodesConfiguration, version: number) => void;
  /** This node's replica applied an entry (any key): readers of the replica may look again. */
  onApplied?: () => void;
}

export interface MetadataServerContext {
  readonly deps: MetadataServerDeps;
  readonly storage: MetadataRaftStorage;
  /** The storage's last integrity check (at open, then on a slow timer off the event loop). */
  integrity(): IntegrityResult;
  /** The running driver: none before this node holds Raft state, after its removal, and after stop. */
  driver(): RaftDriver | undefined;
  /** Run Raft as `id` over the storage, which must hold an identity by now. */
  startDriver(id: number): void;
  stopDriver(): void;
  /** Unique per node generation: the state machine answers a retried proposal with its first result. */
  newRequestId(): string;
}
