// MetadataService over the replicated metadata cluster. Owns this node's metadata server (when it
// runs the role) and the metadata client. A background loop keeps the node's view current: learn
// that the cluster is provisioned, register this node (a new id the first time; the new generation
// and addresses on every start), feed members to the client, and let the server join by itself.
import type { FabricClient, FabricServer } from "../net/index.ts";
import { nodeId as toNodeId } from "../ids/index.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import type { Consistency, MetadataApi } from "./api.ts";
import { MetadataClient } from "./client.ts";
import { NO_VERSION, DOES_NOT_EXIST, matchesVersion } from "./kv.ts";
import { RemoveRpc, StatusRpc } from "./rpc.ts";
import { checkOperatorRequest } from "./server-state.ts";
import { KEYS, StaleGenerationError, findNode, registerNode, withMetadataServerEvent, type ClusterInfo, type NodesConfiguration, type RegisterRequest } from "./nodes-config.ts";
import type { RaftDriverOptions } from "./raft-driver.ts";
import { migrateLocalToReplicated, needsMigration } from "./migration.ts";
import { MetadataServer, type MetadataServerStatus } from "./server.ts";
import type { InitialDocuments, MetadataServerListEntry, MetadataService } from "./service.ts";

export interface ReplicatedMetadataServiceDeps {
  dataDir: string;
  clusterName: string;
  log: Logger;
  fabricServer: FabricServer;
  fabricClient: FabricClient;
  runsServer: boolean;
  /** The data directory belongs to a provisioned cluster (its marker has a fingerprint). */
  provisioned: boolean;
  seeds: readonly string[];
  driverOptions: RaftDriverOptions;
  requestTimeoutMs: number;
  nowMs: () => number;
  randomBytes: (n: number) => Uint8Array;
  self: () => RegisterRequest;
  /** The cluster became known (provisioned, here or elsewhere). */
  onCluster: (cluster: ClusterInfo) => void;
  /** This node got its id. */
  onRegistered: (nodeId: number) => void;
  /** Move this node's generation to at least `minimum` (durably). */
  advanceGeneration: (minimum: number) => void;
  /**
   * The nodes configuration knows this node (by name) from another incarnation: its data directory
   * was wiped or replaced, so whatever it stored before is gone (the log-server enters data-loss
   * mode). Called before it registers, i.e. before peers learn its new addresses.
   */
  onDataDirReplaced?: () => void;
  /**
   * Asked before this node registers for the first time (its name is not in the nodes
   * configuration): a refusal (it throws a CairnError) keeps the node out of the cluster; it asks
   * again every round, so it joins once the condition is lifted.
   */
  joinGuard?: (api: MetadataApi, joiner: RegisterRequest) => Promise<void>;
  /** The node's metrics registry. */
  registry?: Registry;
  /** Period of the metadata storage's background integrity check. */
  integrityCheckIntervalMs?: number;
}

const RECONCILE_INTERVAL_MS = 500;
/**
 * A node holding a replica learns every nodes_config change from it as it is applied; it asks
 * another member only every this many rounds, to find out that it was removed (a removed member's
 * replica stops at its removal). Nodes without a replica ask every round.
 */
const REMOTE_NODES_CONFIG_ROUNDS = 4;

export class ReplicatedMetadataService implements MetadataService {
  readonly server: MetadataServer | undefined;
  readonly client: MetadataClient;
  private clusterValue: ClusterInfo | undefined;
  private registeredId: number | undefined;
  private registeredGeneration = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly appliedListeners = new Set<() => void>();
  private reconciling = false;
  /** Rounds since another member last answered with nodes_config (see REMOTE_NODES_CONFIG_ROUNDS). */
  private roundsSinceRemoteConfig = Number.POSITIVE_INFINITY;
  private lastConfig: NodesConfiguration | undefined;
  /** The node learnt it was removed from the cluster (reported once). */
  private removedReported = false;
  private lastConfigVersion = 0;
  /** When the join guard's refusal was last logged (logged once a minute while it lasts). */
  private refusalLoggedMs: number | undefined;
  private refusal: string | undefined;

  constructor(private readonly deps: ReplicatedMetadataServiceDeps) {
    this.server = deps.runsServer
      ? new MetadataServer({
          dataDir: deps.dataDir,
          clusterName: deps.clusterName,
          log: deps.log.child({ component: "metadata-server" }),
          fabricServer: deps.fabricServer,
          fabricClient: deps.fabricClient,
          driverOptions: deps.driverOptions,
          ...(deps.registry !== undefined ? { registry: deps.registry } : {}),
          ...(deps.integrityCheckIntervalMs !== undefined ? { integrityCheckIntervalMs: deps.integrityCheckIntervalMs } : {}),
          requestTimeoutMs: deps.requestTimeoutMs,
          nowMs: deps.nowMs,
          randomBytes: deps.randomBytes,
          self: deps.self,
          provisioned: deps.provisioned,
          onNodesConfig: (c, v) => this.onNodesConfig(c, v),
          onApplied: () => {
            for (const l of this.appliedListeners) l();
          },
          knownLeader: () => this.client.knownLeader(),
        })
      : undefined;
    const seeds = deps.seeds.length > 0 ? deps.seeds : deps.runsServer ? [deps.self().fabricAddress] : [];
    if (seeds.length === 0) {
      throw new CairnError(
        "CONFIG_CONFLICT",
        "this node does not run the metadata-server role, so 'metadata-client.addresses' must name at least one metadata server",
        { keys: ["metadata-client.addresses", "roles"] },
      );
    }
    this.client = new MetadataClient({
      fabric: deps.fabricClient,
      seeds,
      ...(this.server ? { local: this.server } : {}),
      requestTimeoutMs: deps.requestTimeoutMs,
      log: deps.log,
      requestIdPrefix: () => `${deps.self().name}:${deps.self().generation}`,
    });
  }

  /**
   * Called whenever this node's replica applies an entry. Returns how to stop listening, or
   * undefined when this node holds no replica (nothing would ever be called).
   */
  onLocalApplied(listener: () => void): (() => void) | undefined {
    if (this.server === undefined) return undefined;
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /** Whether this node's replica is a member's, so it applies every committed entry as it comes. */
  replicaIsCurrent(): boolean {
    return this.server?.state === "member";
  }

  async start(): Promise<void> {
    this.server?.start();
    if (this.server !== undefined && needsMigration(this.deps.dataDir)) {
      await migrateLocalToReplicated(this.deps.dataDir, this.deps.self().name, this.server, this.deps.log, this.deps.nowMs);
    }
    // A restart replays the committed log into the state machine right away; wait for it (briefly)
    // so the node does not report "not provisioned" for a cluster it belongs to.
    if (this.server?.hasStorage) {
      const until = this.deps.nowMs() + this.deps.requestTimeoutMs;
      while (this.server.cluster() === undefined && this.deps.nowMs() < until) await Bun.sleep(10);
    }
    const fromReplica = this.server?.cluster();
    if (fromReplica !== undefined) this.setCluster(fromReplica);
    this.timer = setInterval(() => void this.reconcile(), RECONCILE_INTERVAL_MS);
    void this.reconcile();
  }

  api(): MetadataApi | undefined {
    return this.clusterValue === undefined ? undefined : this.client;
  }

  cluster(): ClusterInfo | undefined {
    return this.clusterValue;
  }

  nodeId(): number | undefined {
    return this.registeredId;
  }

  nodesConfig(): NodesConfiguration | undefined {
    return this.server?.nodesConfig() ?? this.lastConfig;
  }

  async provision(documents: InitialDocuments): Promise<ClusterInfo> {
    if (this.server === undefined) {
      throw new CairnError(
        "CLUSTER_INVALID_PROVISION",
        `node ${this.deps.self().name} does not run the metadata-server role; provision through a node that does`,
      );
    }
    if (this.clusterValue !== undefined) {
      throw new CairnError("CLUSTER_ALREADY_PROVISIONED", `cluster '${this.clusterValue.name}' is already provisioned (fingerprint ${this.clusterValue.fingerprint})`);
    }
    const cluster = await this.server.provision(documents);
    this.setCluster(cluster);
    this.registeredId = 1;
    this.registeredGeneration = this.deps.self().generation;
    this.deps.onRegistered(1);
    void this.reconcile();
    return cluster;
  }

  /** Run one round now (tests and the admin API use it to avoid waiting for the timer). */
  async reconcile(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      if (this.clusterValue === undefined) {
        const c = await this.client.get(KEYS.cluster).catch(() => undefined);
        if (c === undefined) return;
        this.setCluster(c.value as ClusterInfo);
      }
      if (this.registeredGeneration !== this.deps.self().generation) await this.register();
      // Ask the cluster, not only this replica: a removed member's replica stops at its removal.
      // Another member's copy suffices (older versions are ignored): a linearizable read would cost
      // the leader a heartbeat round to its followers, twice a second for every node.
      // A replica pushes what it applies (onNodesConfig above): it only needs the occasional look
      // at another member's copy; until one answered (a restart, peers still starting) every round.
      if (this.server?.hasStorage !== true || ++this.roundsSinceRemoteConfig >= REMOTE_NODES_CONFIG_ROUNDS) {
        const fetched = await this.client.get(KEYS.nodesConfig, { remoteFirst: true, consistency: "stale" }).catch(() => undefined);
        if (fetched !== undefined) {
          this.roundsSinceRemoteConfig = 0;
          this.onNodesConfig(fetched.value as NodesConfiguration, fetched.version);
        }
      }
    } catch (e) {
      if (isCairnError(e, "NODE_REMOVED")) {
        // An operator retired this node: it stays out (its peers refuse it too); say so once, loudly.
        if (!this.removedReported) this.deps.log.error({ err: e, code: e.code }, `${e.message}: this node will not rejoin (CAIRN-NODE-0008)`);
        this.removedReported = true;
      } else this.deps.log.debug({ err: e }, "metadata reconcile round failed; will retry");
    } finally {
      this.reconciling = false;
    }
  }

  joinRefusal(): string | undefined {
    return this.registeredId === undefined ? this.refusal : undefined;
  }

  serverStatus(): MetadataServerStatus | undefined {
    return this.server?.status();
  }

  leadsAsMember(): boolean {
    return this.server !== undefined && this.server.leadsAsMember();
  }

  async listServers(consistency: Consistency = "linearizable"): Promise<MetadataServerListEntry[]> {
    const config = (await this.requireApi().get(KEYS.nodesConfig, { consistency }))?.value as NodesConfiguration | undefined;
    if (config === undefined) return [];
    const nodes = config.nodes.filter((n) => n.roles.includes("metadata-server"));
    return Promise.all(
      nodes.map(async (n): Promise<MetadataServerListEntry> => {
        const base = { node: toNodeId(n.id), name: n.name, fabricAddress: n.fabricAddress, state: n.metadataServer.state };
        if (n.metadataServer.state === "standby") return { ...base, status: null, error: null };
        try {
          const status =
            n.id === this.registeredId && this.server !== undefined
              ? this.server.status()
              : await this.deps.fabricClient.call(n.fabricAddress, StatusRpc, {}, { deadlineMs: Math.min(2000, this.deps.requestTimeoutMs) });
          return { ...base, status, error: null };
        } catch (e) {
          return { ...base, status: null, error: (e as Error).message };
        }
      }),
    );
  }

  async addServer(nodeRef: string): Promise<void> {
    const api = this.requireApi();
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await api.get(KEYS.nodesConfig);
      const config = current?.value as NodesConfiguration | undefined;
      const node = config === undefined ? undefined : findNode(config, nodeRef);
      if (current === undefined || config === undefined || node === undefined) {
        throw new CairnError("METADATA_ILLEGAL_TRANSITION", `no node '${nodeRef}' is registered in the cluster`);
      }
      if (!node.roles.includes("metadata-server")) {
        throw new CairnError("METADATA_ILLEGAL_TRANSITION", `node ${nodeRef} does not run the metadata-server role`);
      }
      checkOperatorRequest(nodeRef, node.metadataServer.state, "add");
      const updated = withMetadataServerEvent(config, node.id, { kind: "operator-add" });
      try {
        await api.put(KEYS.nodesConfig, updated, matchesVersion(current.version));
        return;
      } catch (e) {
        if (!isCairnError(e, "METADATA_VERSION_MISMATCH")) throw e;
      }
    }
    throw new CairnError("METADATA_UNAVAILABLE", "the nodes configuration kept changing; retry");
  }

  async removeServer(nodeRef: string): Promise<void> {
    const config = (await this.requireApi().get(KEYS.nodesConfig))?.value as NodesConfiguration | undefined;
    const node = config === undefined ? undefined : findNode(config, nodeRef);
    if (node === undefined) throw new CairnError("METADATA_ILLEGAL_TRANSITION", `no node '${nodeRef}' is registered in the cluster`);
    checkOperatorRequest(nodeRef, node.metadataServer.state, "remove");
    await this.client.onLeader(async (target) => {
      if (target === "local") await this.server!.remove(node.id);
      else await this.deps.fabricClient.call(target, RemoveRpc, { nodeId: node.id }, { deadlineMs: this.deps.requestTimeoutMs });
    });
  }

  private requireApi(): MetadataApi {
    const api = this.api();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
    return api;
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.server?.stop();
  }

  private setCluster(cluster: ClusterInfo): void {
    if (this.clusterValue !== undefined) return;
    if (cluster.name !== this.deps.clusterName) {
      this.deps.log.error(
        { cluster: cluster.name, configured: this.deps.clusterName },
        "the metadata servers this node reached belong to another cluster; check metadata-client.addresses and cluster-name",
      );
      return;
    }
    this.clusterValue = cluster;
    this.deps.onCluster(cluster);
  }

  private onNodesConfig(config: NodesConfiguration, version: number): void {
    if (version < this.lastConfigVersion) return;
    this.lastConfig = config;
    this.lastConfigVersion = version;
    this.client.updateMembers(config);
    if (this.server !== undefined) {
      this.server.reconcile(config, version, () => this.client.leaderHint()).catch((e: unknown) => {
        this.deps.log.warn({ err: e }, "metadata server reconcile failed; will retry");
      });
    }
  }

  /** Register this node (or its new generation and addresses) by compare-and-set on nodes_config. */
  private async register(): Promise<void> {
    const self = this.deps.self();
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.client.get(KEYS.nodesConfig);
      if (current === undefined) throw new CairnError("METADATA_STORAGE_CORRUPT", "the cluster is provisioned but has no nodes_config");
      const joining = !(current.value as NodesConfiguration).nodes.some((n) => n.name === self.name);
      if (joining && this.deps.joinGuard !== undefined) await this.guardJoin(this.deps.joinGuard, self);
      let registered: ReturnType<typeof registerNode>;
      try {
        registered = registerNode(current.value as NodesConfiguration, self);
      } catch (e) {
        if (!(e instanceof StaleGenerationError)) throw e;
        this.deps.log.warn({ registered: e.registered, local: self.generation }, "a newer generation of this node is registered (wiped data directory?): moving past it");
        this.deps.onDataDirReplaced?.();
        this.deps.advanceGeneration(e.registered + 1);
        return this.register();
      }
      const { config, node } = registered;
      if (config !== current.value) {
        try {
          await this.client.put(KEYS.nodesConfig, config, current.version === NO_VERSION ? DOES_NOT_EXIST : matchesVersion(current.version));
        } catch (e) {
          if (isCairnError(e, "METADATA_VERSION_MISMATCH")) continue; // someone else registered; read again
          throw e;
        }
      }
      this.registeredId = node.id;
      this.registeredGeneration = self.generation;
      this.deps.log.info({ node: `${toNodeId(node.id)}`, generation: self.generation }, "registered in the nodes configuration");
      this.deps.onRegistered(node.id);
      return;
    }
    throw new CairnError("METADATA_UNAVAILABLE", "could not register in the nodes configuration: too many concurrent changes");
  }

  /** Runs the join guard; a refusal is logged with its code and hint (once a minute) and rethrown. */
  private async guardJoin(guard: NonNullable<ReplicatedMetadataServiceDeps["joinGuard"]>, self: RegisterRequest): Promise<void> {
    try {
      await guard(this.client, self);
      this.refusalLoggedMs = undefined;
      this.refusal = undefined;
    } catch (e) {
      const now = this.deps.nowMs();
      if (isCairnError(e)) this.refusal = `${e.code}: ${e.message}`;
      if (isCairnError(e) && (this.refusalLoggedMs === undefined || now - this.refusalLoggedMs >= 60_000)) {
        this.refusalLoggedMs = now;
        this.deps.log.error({ code: e.code, hint: e.hint }, `join refused: ${e.message} (${e.code}; hint: ${e.hint})`);
      }
      throw e;
    }
  }
}
