// The replicated metadata server role of one node: owns the Raft storage and the driver over it, and
// composes membership (membership.ts: seeding, joining, promotion, removal, the local state) with the
// KV service (kv-service.ts: reads, writes, status), which share them through a MetadataServerContext.
import { join } from "node:path";
import { CairnError } from "../observability/errors.ts";
import { asRaftId, type RaftId } from "../raft/index.ts";
import type { Consistency, MetadataListOptions, MetadataListPage } from "./api.ts";
import type { KvCommand, KvSnapshot, Version, VersionedValue } from "./kv.ts";
import { MetadataKvService } from "./kv-service.ts";
import { MetadataMembership } from "./membership.ts";
import type { ClusterInfo, NodesConfiguration } from "./nodes-config.ts";
import { RaftDriver, type RaftTransport } from "./raft-driver.ts";
import { MetadataRaftStorage, RAFT_STORAGE_FILE } from "./raft-storage.ts";
import { RaftMessagesRpc, SnapshotChunkRpc } from "./rpc.ts";
import { SnapshotSource } from "./snapshot-transfer.ts";
import { MetadataMetrics } from "./metrics.ts";
import { IntegrityMonitor } from "./integrity.ts";
import { Registry } from "../observability/metrics.ts";
import type { LeaderHint, MetadataServerContext, MetadataServerDeps, MetadataServerLocalState, MetadataServerStatus } from "./server-context.ts";
import type { InitialDocuments } from "./service.ts";

export type { LeaderHint, MetadataServerDeps, MetadataServerLocalState, MetadataServerStatus } from "./server-context.ts";

export class MetadataServer {
  private readonly storage: MetadataRaftStorage;
  private driver: RaftDriver | undefined;
  private requestCounter = 0;
  private readonly membership: MetadataMembership;
  private readonly kv: MetadataKvService;
  private readonly snapshotSource: SnapshotSource;
  private readonly metrics: MetadataMetrics;
  private readonly integrity: IntegrityMonitor;

  constructor(private readonly deps: MetadataServerDeps) {
    this.storage = MetadataRaftStorage.open(join(deps.dataDir, RAFT_STORAGE_FILE), { mustExist: deps.provisioned });
    this.snapshotSource = new SnapshotSource(this.storage.path);
    this.metrics = MetadataMetrics.for(deps.registry ?? new Registry());
    this.metrics.attach({
      status: () => this.driver?.status(),
      appliedIndex: () => this.driver?.applied,
      proposalsInFlight: () => this.driver?.proposalsInFlight ?? 0,
      snapshotIndex: () => (this.driver === undefined ? undefined : this.storage.mirror.snapshot().metadata.index),
      storeBytes: () => this.storage.sizeBytes(),
    });
    this.integrity = new IntegrityMonitor(this.storage.path, this.storage.openIntegrity, deps.log);
    if ((deps.integrityCheckIntervalMs ?? 0) > 0) this.integrity.start(deps.integrityCheckIntervalMs!);
    const ctx: MetadataServerContext = {
      deps,
      storage: this.storage,
      integrity: () => this.integrity.result,
      driver: () => this.driver,
      startDriver: (id) => this.startDriver(id),
      stopDriver: () => this.stopDriver(),
      newRequestId: () => this.newRequestId(),
    };
    this.membership = new MetadataMembership(ctx);
    this.kv = new MetadataKvService(ctx, this.membership);
    this.registerHandlers();
    this.membership.registerHandlers(deps.fabricServer);
    this.kv.registerHandlers(deps.fabricServer);
  }

  get state(): MetadataServerLocalState {
    return this.membership.state;
  }

  /** True once this node holds Raft state (it founded the cluster or was accepted as a learner). */
  get hasStorage(): boolean {
    return this.storage.identity !== undefined;
  }

  /** The cluster as this replica knows it (undefined until provisioned and replicated here). */
  cluster(): ClusterInfo | undefined {
    return this.membership.cluster();
  }

  nodesConfig(): NodesConfiguration | undefined {
    return this.membership.nodesConfig();
  }

  /** Restart with existing storage: resume Raft. */
  start(): void {
    if (this.storage.identity === undefined) return;
    const id = this.storage.raftNodeId();
    if (id === undefined) throw new CairnError("METADATA_STORAGE_CORRUPT", `${this.storage.path} has an identity but no node id`);
    this.startDriver(id);
    this.membership.refreshState();
  }

  provision(initialDocuments: InitialDocuments): Promise<ClusterInfo> {
    return this.membership.provision(initialDocuments);
  }

  /** Become a one-voter cluster under `nodeId` (idempotent: a restart finds the storage). */
  bootstrapForImport(nodeId: number): Promise<void> {
    return this.membership.bootstrapForImport(nodeId);
  }

  /** Import every key with its version; false if the store already held data (imported before). */
  importSnapshot(snapshot: KvSnapshot, nodeId: number): Promise<boolean> {
    return this.membership.importSnapshot(snapshot, nodeId);
  }

  /**
   * Called by the node whenever it sees a newer nodes configuration (from any source). Drives this
   * node's own transitions: start joining when its state is auto-join, detect a lost disk.
   */
  reconcile(config: NodesConfiguration, version: number, leaderHint: () => LeaderHint | undefined): Promise<void> {
    return this.membership.reconcile(config, version, leaderHint);
  }

  /** Serve a read on this node (a member). Linearizable unless `stale`. */
  read(key: string, consistency: Consistency): Promise<VersionedValue | undefined> {
    return this.kv.read(key, consistency);
  }

  list(options: MetadataListOptions): Promise<MetadataListPage> {
    return this.kv.list(options);
  }

  /** Serve a write on this node; only the leader accepts (others refuse with a leader hint). */
  write(requestId: string, cmd: KvCommand): Promise<Version> {
    return this.kv.write(requestId, cmd);
  }

  isLeader(): boolean {
    return this.driver !== undefined && this.driver.leader === this.driver.id;
  }

  /** A member that leads: what status() would say, without its storage figures (a query and a statfs). */
  leadsAsMember(): boolean {
    return this.membership.state === "member" && this.isLeader();
  }

  /** Where a client should go: the leader if this node knows it, else some member it knows of. */
  leaderHint(): LeaderHint | undefined {
    return this.membership.leaderHint();
  }

  /** Remove a member (leader only). */
  remove(nodeId: number): Promise<void> {
    return this.membership.remove(nodeId);
  }

  status(): MetadataServerStatus {
    return this.kv.status();
  }

  async stop(): Promise<void> {
    this.membership.stop();
    this.snapshotSource.close();
    this.integrity.stop();
    this.storage.close();
  }

  // ---- the driver ------------------------------------------------------------------------------

  private newRequestId(): string {
    return `${this.deps.self().name}:${this.deps.self().generation}:${++this.requestCounter}`;
  }

  private startDriver(id: number): void {
    const transport = {
      send: async (to: RaftId, messages: Uint8Array[]) => {
        const address = this.membership.addressOf(to);
        if (address === undefined) throw new Error(`no address for N${to}`);
        const r = await this.deps.fabricClient.call(address, RaftMessagesRpc, { from: id, messages }, { deadlineMs: this.deps.requestTimeoutMs });
        return r.messages;
      },
      snapshotChunk: async (from: RaftId, req: Parameters<RaftTransport["snapshotChunk"]>[1]) => {
        const address = this.membership.addressOf(from);
        if (address === undefined) throw new Error(`no address for N${from}`);
        return this.deps.fabricClient.call(address, SnapshotChunkRpc, req, { deadlineMs: this.deps.requestTimeoutMs });
      },
    };
    const seed = new DataView(this.deps.randomBytes(4).buffer).getUint32(0);
    const driver = new RaftDriver(asRaftId(id), this.storage, transport, { ...this.deps.driverOptions, metrics: this.metrics }, this.deps.log.child({ part: "raft" }), seed);
    this.driver = driver;
    this.membership.follow(driver, id);
    driver.start();
    this.membership.startPromoting();
  }

  private stopDriver(): void {
    this.membership.stopPromoting();
    this.driver?.stop();
    this.driver = undefined;
  }

  private registerHandlers(): void {
    this.deps.fabricServer.register(RaftMessagesRpc, async (req) => {
      if (this.driver === undefined) {
        throw new CairnError("METADATA_NOT_MEMBER", "this node has no metadata raft state");
      }
      return { messages: this.driver.receiveAndReply(asRaftId(req.from), req.messages) };
    });
    // Any member with state can serve its store to one installing a snapshot (normally the leader).
    this.deps.fabricServer.register(SnapshotChunkRpc, async (req) => {
      if (this.driver === undefined) throw new CairnError("METADATA_NOT_MEMBER", "this node has no metadata raft state");
      const page = this.snapshotSource.chunk(req);
      this.metrics.snapshotTransferPagesServed.inc();
      return page;
    });
  }
}
