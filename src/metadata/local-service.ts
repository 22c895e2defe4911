// MetadataService over the local single-node store (`metadata-server.type = "local"`). Provisioning
// writes the initial documents into the store; every start re-registers this node (new generation,
// current addresses) by compare-and-set on the nodes configuration.
import { join } from "node:path";
import { nodeId as toNodeId } from "../ids/index.ts";
import { CairnError } from "../observability/errors.ts";
import type { MetadataApi } from "./api.ts";
import { DOES_NOT_EXIST, matchesVersion } from "./kv.ts";
import { LocalMetadataApi } from "./local-api.ts";
import { LOCAL_STORE_FILE, LocalMetadataStore } from "./local-store.ts";
import { KEYS, registerNode, type ClusterInfo, type NodesConfiguration, type RegisterRequest } from "./nodes-config.ts";
import { newFingerprint } from "./fingerprint.ts";
import type { MetadataServerStatus } from "./server.ts";
import type { InitialDocuments, MetadataServerListEntry, MetadataService } from "./service.ts";
import { freeDiskBytes } from "./raft-storage.ts";

export class LocalMetadataService implements MetadataService {
  private readonly store: LocalMetadataStore;
  private readonly localApi: LocalMetadataApi;
  private registeredId: number | undefined;

  constructor(
    dataDir: string,
    private readonly self: RegisterRequest,
    private readonly clusterName: string,
    private readonly deps: {
      nowMs: () => number;
      randomBytes: (n: number) => Uint8Array;
      onProvisioned: (c: ClusterInfo) => void;
      /** The data directory belongs to a provisioned cluster (its marker has a fingerprint). */
      provisioned: boolean;
    },
  ) {
    this.store = LocalMetadataStore.open(join(dataDir, LOCAL_STORE_FILE), { mustExist: deps.provisioned });
    this.localApi = new LocalMetadataApi(this.store);
    if (this.store.sealed) {
      this.store.close();
      throw new CairnError(
        "METADATA_STORE_SEALED",
        `the local metadata store ${join(dataDir, LOCAL_STORE_FILE)} was migrated to the replicated server and is sealed; set metadata-server.type = "replicated"`,
      );
    }
    const cluster = this.cluster();
    if (cluster !== undefined) {
      this.checkClusterName(cluster);
      this.register();
      deps.onProvisioned(cluster);
    }
  }

  api(): MetadataApi | undefined {
    return this.cluster() === undefined ? undefined : this.localApi;
  }

  cluster(): ClusterInfo | undefined {
    return this.store.get(KEYS.cluster)?.value as ClusterInfo | undefined;
  }

  nodeId(): number | undefined {
    return this.registeredId;
  }

  async provision(initialDocuments: InitialDocuments): Promise<ClusterInfo> {
    const existing = this.cluster();
    if (existing !== undefined) {
      throw new CairnError("CLUSTER_ALREADY_PROVISIONED", `cluster '${existing.name}' is already provisioned (fingerprint ${existing.fingerprint})`, {
        cluster: existing,
      });
    }
    const docs = initialDocuments({
      fingerprint: newFingerprint(this.deps.randomBytes),
      self: this.self,
      nowMs: this.deps.nowMs(),
      storageId: null,
    });
    for (const [key, value] of docs) {
      const r = this.store.apply({ op: "put", key, value, precondition: DOES_NOT_EXIST });
      if (!r.ok) {
        // A half-provisioned store (crash between documents): the `cluster` key is written last, so
        // earlier documents may exist. They were written by this same procedure; overwrite them.
        const again = this.store.apply({ op: "put", key, value, precondition: matchesVersion(r.currentVersion) });
        if (!again.ok) throw new Error(`provisioning could not write ${key}`);
      }
    }
    const cluster = this.cluster()!;
    this.register();
    this.deps.onProvisioned(cluster);
    return cluster;
  }

  private checkClusterName(cluster: ClusterInfo): void {
    if (cluster.name !== this.clusterName) {
      throw new CairnError(
        "NODE_CLUSTER_MISMATCH",
        `the local metadata store belongs to cluster '${cluster.name}', but this node is configured for '${this.clusterName}'`,
      );
    }
  }

  private register(): void {
    const current = this.store.get(KEYS.nodesConfig);
    if (current === undefined) throw new CairnError("METADATA_STORAGE_CORRUPT", "provisioned store lacks nodes_config");
    const { config, node } = registerNode(current.value as NodesConfiguration, this.self);
    if (config !== current.value) {
      const r = this.store.apply({ op: "put", key: KEYS.nodesConfig, value: config, precondition: matchesVersion(current.version) });
      if (!r.ok) throw new Error("nodes_config changed during registration on a single-node store");
    }
    this.registeredId = node.id;
  }

  leadsAsMember(): boolean {
    return this.cluster() !== undefined;
  }

  serverStatus(): MetadataServerStatus | undefined {
    return {
      node: this.registeredId !== undefined ? toNodeId(this.registeredId) : null,
      state: this.cluster() === undefined ? "awaiting-provisioning" : "member",
      raft: null,
      // The local store is small (one node, before migration): checking it per status call is cheap.
      storage: (() => {
        const ok = this.store.integrityOk();
        return {
          storageId: null,
          sizeBytes: this.store.sizeBytes(),
          integrityOk: ok,
          integrityDetail: ok ? "ok" : "quick_check failed",
          integrityCheckedAtMs: this.deps.nowMs(),
          freeDiskBytes: freeDiskBytes(this.store.path),
        };
      })(),
    };
  }

  async listServers(): Promise<MetadataServerListEntry[]> {
    const config = this.store.get(KEYS.nodesConfig)?.value as NodesConfiguration | undefined;
    return (config?.nodes ?? []).map((n) => ({
      node: toNodeId(n.id),
      name: n.name,
      fabricAddress: n.fabricAddress,
      state: n.metadataServer.state,
      status: n.id === this.registeredId ? (this.serverStatus() ?? null) : null,
      error: null,
    }));
  }

  async addServer(): Promise<void> {
    throw new CairnError("METADATA_ILLEGAL_TRANSITION", "the local metadata store has exactly one server; use metadata-server.type = \"replicated\" for more");
  }

  async removeServer(): Promise<void> {
    throw new CairnError("METADATA_LAST_MEMBER", "the local metadata store's only server cannot be removed");
  }

  async stop(): Promise<void> {
    this.store.close();
  }
}
