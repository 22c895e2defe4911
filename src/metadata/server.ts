// The replicated metadata server role of one node. Its local state: awaiting-provisioning (no Raft
// storage, cluster unknown), standby (a known cluster, not a member), joining (a learner catching
// up), member (a voter), storage-mismatch (the nodes configuration says this node is a member with
// other storage: it lost its disk, and must not vote as if it had its old log).
// It serves KV requests over the fabric (writes on the leader, linearizable reads on any member),
// joins by itself when its nodes-configuration state is auto-join, and as leader promotes learners
// that caught up and answers removal requests.
import { join } from "node:path";
import type { FabricClient, FabricServer } from "../net/index.ts";
import { nodeId as toNodeId } from "../ids/index.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { asRaftId, bootstrapPersistedState, joiningPersistedState, type RaftId } from "../raft/index.ts";
import { checkKey, checkValue, kvFailure, type Consistency } from "./api.ts";
import { asVersion, type KvCommand, type KvSnapshot, type Precondition, type Version, type VersionedValue } from "./kv.ts";
import { KEYS, findNode, type ClusterInfo, type NodesConfiguration, type RegisterRequest } from "./nodes-config.ts";
import { newFingerprint } from "./fingerprint.ts";
import type { InitialDocuments } from "./service.ts";
import { RaftDriver, type RaftDriverOptions } from "./raft-driver.ts";
import { MetadataRaftStorage, RAFT_STORAGE_FILE, freeDiskBytes } from "./raft-storage.ts";
import {
  GetRpc,
  JoinRpc,
  ListRpc,
  RaftMessagesRpc,
  RemoveRpc,
  StatusRpc,
  WriteBatchRpc,
  WriteRpc,
  type WriteRequestWire,
} from "./rpc.ts";
import type { Static } from "@sinclair/typebox";
import type { MetadataServerStatusSchema } from "./rpc.ts";
import { encodeMemberContext } from "./state-machine.ts";

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
  /** The node learned the cluster's nodes configuration (from its own replica). */
  onNodesConfig: (config: NodesConfiguration, version: number) => void;
}

const PROMOTION_CHECK_MS = 200;

export class MetadataServer {
  private readonly storage: MetadataRaftStorage;
  private driver: RaftDriver | undefined;
  private stateValue: MetadataServerLocalState = "awaiting-provisioning";
  private selfId: number | undefined;
  private promotionTimer: ReturnType<typeof setInterval> | undefined;
  private requestCounter = 0;
  private stopped = false;
  /** The newest nodes configuration seen from outside this replica (a joiner's replica starts empty). */
  private externalConfig: NodesConfiguration | undefined;
  /** The replica must have applied a nodes configuration at least this new to count as a member. */
  private minMemberConfigVersion = 0;

  constructor(private readonly deps: MetadataServerDeps) {
    this.storage = MetadataRaftStorage.open(join(deps.dataDir, RAFT_STORAGE_FILE), { mustExist: deps.provisioned });
    this.registerHandlers();
  }

  get state(): MetadataServerLocalState {
    return this.stateValue;
  }

  /** True once this node holds Raft state (it founded the cluster or was accepted as a learner). */
  get hasStorage(): boolean {
    return this.storage.identity !== undefined;
  }

  /** The cluster as this replica knows it (undefined until provisioned and replicated here). */
  cluster(): ClusterInfo | undefined {
    return this.driver?.sm.kv.get(KEYS.cluster)?.value as ClusterInfo | undefined;
  }

  nodesConfig(): NodesConfiguration | undefined {
    return this.driver?.sm.nodesConfig()?.config;
  }

  /** Restart with existing storage: resume Raft. */
  start(): void {
    if (this.storage.identity === undefined) return;
    const id = this.storage.raftNodeId();
    if (id === undefined) throw new CairnError("METADATA_STORAGE_CORRUPT", `${this.storage.path} has an identity but no node id`);
    this.startDriver(id);
    this.refreshState();
  }

  // ---- provisioning --------------------------------------------------------------------------

  async provision(initialDocuments: InitialDocuments): Promise<ClusterInfo> {
    const known = this.cluster();
    if (known !== undefined) {
      throw new CairnError("CLUSTER_ALREADY_PROVISIONED", `cluster '${known.name}' is already provisioned (fingerprint ${known.fingerprint})`);
    }
    if (this.storage.identity !== undefined && this.driver === undefined) {
      throw new CairnError("CLUSTER_ALREADY_PROVISIONED", "this node already holds metadata storage of a cluster");
    }
    const self = this.deps.self();
    if (this.driver === undefined) {
      // The seed: node id 1, a one-voter cluster.
      const storageId = newFingerprint(this.deps.randomBytes);
      this.storage.initialize({ storageId, createdAtMs: this.deps.nowMs(), nodeId: 1 }, bootstrapPersistedState([asRaftId(1)]));
      this.startDriver(1);
    }
    const driver = this.driver!;
    await this.awaitOwnLeadership();
    const docs = initialDocuments({
      fingerprint: newFingerprint(this.deps.randomBytes),
      self,
      nowMs: this.deps.nowMs(),
      storageId: this.storage.identity!.storageId,
    });
    const outcome = await driver.propose({ t: "provision", id: this.newRequestId(), docs }, this.deps.requestTimeoutMs);
    if (outcome.kind !== "provision" || !outcome.ok) {
      throw new CairnError("CLUSTER_ALREADY_PROVISIONED", "the cluster was provisioned concurrently");
    }
    this.refreshState();
    return this.cluster()!;
  }

  // ---- migration from the local store ------------------------------------------------------------

  /** Become a one-voter cluster under `nodeId` (idempotent: a restart finds the storage). */
  async bootstrapForImport(nodeId: number): Promise<void> {
    if (this.storage.identity === undefined) {
      const storageId = newFingerprint(this.deps.randomBytes);
      this.storage.initialize({ storageId, createdAtMs: this.deps.nowMs(), nodeId }, bootstrapPersistedState([asRaftId(nodeId)]));
    }
    if (this.driver === undefined) this.startDriver(this.storage.raftNodeId()!);
    await this.awaitOwnLeadership();
  }

  /** Import every key with its version; false if the store already held data (imported before). */
  async importSnapshot(snapshot: KvSnapshot, nodeId: number): Promise<boolean> {
    const driver = this.driver!;
    if (driver.sm.kv.snapshot().entries.length > 0) return false;
    const outcome = await driver.propose(
      { t: "import", id: this.newRequestId(), snapshot, member: { nodeId, storageId: this.storage.identity!.storageId } },
      this.deps.requestTimeoutMs,
    );
    this.refreshState();
    return outcome.kind === "import" && outcome.ok;
  }

  private async awaitOwnLeadership(): Promise<void> {
    const driver = this.driver!;
    const deadline = this.deps.nowMs() + this.deps.requestTimeoutMs * 2;
    while (driver.leader !== driver.id) {
      if (this.deps.nowMs() > deadline) throw new CairnError("METADATA_UNAVAILABLE", "the metadata server elected no leader in time");
      await Bun.sleep(20);
    }
  }

  // ---- joining ---------------------------------------------------------------------------------

  /**
   * Called by the node whenever it sees a newer nodes configuration (from any source). Drives this
   * node's own transitions: start joining when its state is auto-join, detect a lost disk.
   */
  async reconcile(config: NodesConfiguration, version: number, leaderHint: () => LeaderHint | undefined): Promise<void> {
    if (this.stopped) return;
    this.externalConfig = config;
    const me = findNode(config, this.deps.self().name);
    if (me === undefined) return;
    this.selfId = me.id;
    const mine = this.storage.identity;
    if (me.metadataServer.state === "member" && mine === undefined) {
      if (this.stateValue !== "storage-mismatch") {
        this.deps.log.error(
          { node: toNodeId(me.id), recorded: me.metadataServer.storageId },
          "this node is a metadata member with storage it no longer has (lost disk?): not joining; remove and re-add it",
        );
      }
      this.stateValue = "storage-mismatch";
      return;
    }
    if (me.metadataServer.state === "standby") {
      if (this.driver !== undefined && this.stateValue !== "joining") {
        // Removed from the metadata cluster: the leader no longer replicates to this node, so its
        // own replica may never show the removal. Stop serving; the storage stays for a re-add.
        this.deps.log.info({ node: toNodeId(me.id) }, "removed from the metadata cluster: now standby");
        this.stopDriver();
      }
      if (this.driver === undefined) this.stateValue = "standby";
      return;
    }
    if (me.metadataServer.state !== "auto-join") return;
    // This replica may hold a stale "member" from before a removal: it counts as a member again
    // only once it has applied a nodes configuration at least this new that says so.
    this.minMemberConfigVersion = Math.max(this.minMemberConfigVersion, version + 1);
    if (mine === undefined) {
      const storageId = newFingerprint(this.deps.randomBytes);
      this.storage.initialize({ storageId, createdAtMs: this.deps.nowMs(), nodeId: me.id }, joiningPersistedState());
    }
    if (this.driver === undefined) this.startDriver(me.id);
    this.refreshState();
    if (this.stateValue === "member") return;
    this.stateValue = "joining";
    const hint = leaderHint();
    const targets = hint ? [hint.address] : config.nodes.filter((n) => n.metadataServer.state === "member").map((n) => n.fabricAddress);
    for (const address of targets) {
      try {
        await this.deps.fabricClient.call(address, JoinRpc, { nodeId: me.id, storageId: this.storage.identity!.storageId }, { deadlineMs: this.deps.requestTimeoutMs });
        return;
      } catch (e) {
        if (isCairnError(e, "METADATA_STORAGE_MISMATCH")) {
          this.stateValue = "storage-mismatch";
          this.deps.log.error({ err: e }, "the cluster refused this node's metadata storage");
          return;
        }
        this.deps.log.debug({ err: e, address }, "join attempt failed; will retry");
      }
    }
  }

  // ---- KV service ------------------------------------------------------------------------------

  /** Serve a read on this node (a member). Linearizable unless `stale`. */
  async read(key: string, consistency: Consistency): Promise<VersionedValue | undefined> {
    const driver = this.memberDriver();
    if (consistency === "linearizable") await driver.linearizableBarrier(this.deps.requestTimeoutMs);
    return driver.sm.kv.get(key);
  }

  async list(prefix: string, consistency: Consistency): Promise<Array<{ key: string; version: Version }>> {
    const driver = this.memberDriver();
    if (consistency === "linearizable") await driver.linearizableBarrier(this.deps.requestTimeoutMs);
    return driver.sm.kv.list(prefix);
  }

  private async writeFromWire(req: WriteRequestWire): Promise<Version> {
    checkKey(req.key);
    if (req.op === "put") checkValue(req.key, req.value);
    const precondition: Precondition =
      req.precondition.kind === "matches-version" ? { kind: "matches-version", version: asVersion(req.precondition.version) } : req.precondition;
    const cmd: KvCommand = req.op === "put" ? { op: "put", key: req.key, value: req.value, precondition } : { op: "delete", key: req.key, precondition };
    return await this.write(req.requestId, cmd);
  }

  /** Serve a write on this node; only the leader accepts (others refuse with a leader hint). */
  async write(requestId: string, cmd: KvCommand): Promise<Version> {
    const driver = this.memberDriver();
    if (driver.leader !== driver.id) throw this.notLeader();
    const outcome = await driver.propose({ t: "kv", id: requestId, cmd }, this.deps.requestTimeoutMs).catch((e: unknown) => {
      if (isCairnError(e, "METADATA_UNAVAILABLE")) throw this.withHint(e);
      throw e;
    });
    if (outcome.kind !== "kv") throw new Error("a KV proposal applied as something else");
    if (!outcome.result.ok) throw kvFailure(cmd.key, cmd.op, outcome.result);
    return outcome.result.version;
  }

  isLeader(): boolean {
    return this.driver !== undefined && this.driver.leader === this.driver.id;
  }

  /** Where a client should go: the leader if this node knows it, else some member it knows of. */
  leaderHint(): LeaderHint | undefined {
    const leader = this.driver?.leader;
    if (leader) {
      const address = this.addressOf(leader);
      if (address) return { id: leader, address };
    }
    const known = this.deps.knownLeader?.();
    if (known !== undefined) return known;
    const member = this.externalConfig?.nodes.find((n) => n.metadataServer.state === "member" && n.id !== this.selfId);
    return member ? { id: member.id, address: member.fabricAddress } : undefined;
  }

  /** Remove a member (leader only). */
  async remove(nodeId: number): Promise<void> {
    const driver = this.memberDriver();
    if (driver.leader !== driver.id) throw this.notLeader();
    const status = driver.status();
    const voters = status.confState.voters;
    if (!voters.includes(nodeId as RaftId) && !status.confState.learners.includes(nodeId as RaftId)) {
      throw new CairnError("METADATA_ILLEGAL_TRANSITION", `${toNodeId(nodeId)} is not a member of the metadata cluster`);
    }
    if (voters.length === 1 && voters[0] === nodeId) {
      throw new CairnError("METADATA_LAST_MEMBER", `${toNodeId(nodeId)} is the only member of the metadata cluster`);
    }
    const r = driver.proposeConfChange({ type: "removeNode", nodeId: nodeId as RaftId, context: new Uint8Array(0) });
    if (!r.ok) {
      throw new CairnError("METADATA_UNAVAILABLE", `removal refused for now (${r.reason}); retry shortly`, { leaderHint: this.leaderHint() ?? null });
    }
    const deadline = this.deps.nowMs() + this.deps.requestTimeoutMs;
    while (driver.applied < r.index) {
      if (this.deps.nowMs() > deadline) throw new CairnError("METADATA_INDETERMINATE", "the removal was proposed but not seen applied in time");
      await Bun.sleep(20);
    }
  }

  status(): MetadataServerStatus {
    const s = this.driver?.status();
    const snapshotIndex = this.storage.mirror.snapshot().metadata.index;
    return {
      node: this.selfId !== undefined ? toNodeId(this.selfId) : (this.driver ? toNodeId(this.driver.id) : null),
      state: this.stateValue,
      raft: s
        ? {
            role: s.role,
            term: s.term,
            leader: s.leader ? toNodeId(s.leader) : null,
            commitIndex: s.commit,
            appliedIndex: this.driver!.applied,
            firstIndex: s.firstIndex,
            lastIndex: s.lastIndex,
            logLength: Math.max(0, s.lastIndex - s.firstIndex + 1),
            snapshotIndex,
            voters: s.confState.voters.map(toNodeId),
            learners: s.confState.learners.map(toNodeId),
          }
        : null,
      storage: {
        storageId: this.storage.identity?.storageId ?? null,
        sizeBytes: this.storage.sizeBytes(),
        integrityOk: this.storage.integrityOk(),
        freeDiskBytes: freeDiskBytes(this.storage.path),
      },
    };
  }

  private stopDriver(): void {
    if (this.promotionTimer !== undefined) clearInterval(this.promotionTimer);
    this.promotionTimer = undefined;
    this.driver?.stop();
    this.driver = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopDriver();
    this.stateValue = "stopped";
    this.storage.close();
  }

  // ---- internals -------------------------------------------------------------------------------

  private newRequestId(): string {
    return `${this.deps.self().name}:${this.deps.self().generation}:${++this.requestCounter}`;
  }

  private memberDriver(): RaftDriver {
    if (this.driver === undefined || this.stateValue !== "member") {
      throw new CairnError("METADATA_NOT_MEMBER", `this node's metadata server is ${this.stateValue}, not a member`, {
        leaderHint: this.leaderHint() ?? null,
      });
    }
    return this.driver;
  }

  private notLeader(): CairnError {
    return new CairnError("METADATA_UNAVAILABLE", "this member is not the metadata leader", { leaderHint: this.leaderHint() ?? null, notLeader: true });
  }

  private withHint(e: CairnError): CairnError {
    return new CairnError("METADATA_UNAVAILABLE", e.message, { ...e.details, leaderHint: this.leaderHint() ?? null });
  }

  private startDriver(id: number): void {
    const transport = {
      send: async (to: RaftId, messages: Uint8Array[]) => {
        const address = this.addressOf(to);
        if (address === undefined) throw new Error(`no address for N${to}`);
        const r = await this.deps.fabricClient.call(address, RaftMessagesRpc, { from: id, messages }, { deadlineMs: this.deps.requestTimeoutMs });
        return r.messages;
      },
    };
    const seed = new DataView(this.deps.randomBytes(4).buffer).getUint32(0);
    const driver = new RaftDriver(asRaftId(id), this.storage, transport, this.deps.driverOptions, this.deps.log.child({ part: "raft" }), seed);
    this.driver = driver;
    this.selfId = id;
    let lastConfigVersion = 0;
    driver.onApplied(() => {
      // Applying a nodes configuration that makes this node standby stops this driver (reconcile)
      // while the rest of the same Ready is still being applied: its later entries are no news.
      if (this.driver !== driver) return;
      const nc = driver.sm.nodesConfig();
      if (nc !== undefined && nc.version !== lastConfigVersion) {
        lastConfigVersion = nc.version;
        this.refreshState();
        this.deps.onNodesConfig(nc.config, nc.version);
      }
    });
    this.driver.start();
    this.promotionTimer = setInterval(() => this.promoteLearners(), PROMOTION_CHECK_MS);
  }

  /** A peer's fabric address: from this replica's nodes configuration, else the newest seen elsewhere. */
  private addressOf(id: number): string | undefined {
    return (
      this.nodesConfig()?.nodes.find((n) => n.id === id)?.fabricAddress ?? this.externalConfig?.nodes.find((n) => n.id === id)?.fabricAddress
    );
  }

  /** Derive the local state from the replica's own nodes configuration. */
  private refreshState(): void {
    const replica = this.driver?.sm.nodesConfig();
    const nc = replica?.config;
    const me = nc?.nodes.find((n) => n.id === this.selfId);
    if (me === undefined) {
      this.stateValue = this.driver ? "joining" : "awaiting-provisioning";
      return;
    }
    if (
      me.metadataServer.state === "member" &&
      me.metadataServer.storageId === this.storage.identity?.storageId &&
      (replica?.version ?? 0) >= this.minMemberConfigVersion
    ) {
      this.stateValue = "member";
    } else if (me.metadataServer.state === "standby") {
      this.stateValue = "standby";
    } else {
      this.stateValue = "joining";
    }
  }

  /** Leader: promote learners whose log caught up. */
  private promoteLearners(): void {
    const driver = this.driver;
    if (driver === undefined || driver.leader !== driver.id) return;
    const status = driver.status();
    for (const learner of status.confState.learners) {
      const pr = status.progress.get(learner);
      // Caught up: it has everything committed and answers. Promoting earlier could cost the quorum.
      if (pr === undefined || !pr.recentActive || pr.match < status.commit || status.lastIndex - pr.match > 16) continue;
      const r = driver.proposeConfChange({ type: "addVoter", nodeId: learner, context: new Uint8Array(0) });
      if (r.ok) this.deps.log.info({ node: toNodeId(learner) }, "promoting a caught-up learner to metadata member");
      return; // one change at a time
    }
  }

  private registerHandlers(): void {
    const server = this.deps.fabricServer;
    server.register(RaftMessagesRpc, async (req) => {
      if (this.driver === undefined) {
        throw new CairnError("METADATA_NOT_MEMBER", "this node has no metadata raft state");
      }
      return { messages: this.driver.receiveAndReply(asRaftId(req.from), req.messages) };
    });
    server.register(GetRpc, async (req) => {
      checkKey(req.key);
      const v = await this.read(req.key, req.consistency);
      return v === undefined ? { found: false, version: 0, value: null } : { found: true, version: v.version, value: v.value };
    });
    server.register(ListRpc, async (req) => ({ keys: await this.list(req.prefix, req.consistency) }));
    server.register(WriteRpc, async (req) => ({ version: await this.writeFromWire(req) }));
    // Writes forwarded together by a non-leader: proposed in one turn, so they share one Ready and one
    // fsync; each keeps its own outcome. An error that is not a CairnError is a bug: logged, and that
    // write's outcome is reported as unknown (it may have been proposed), never as a failure.
    server.register(WriteBatchRpc, async (req) => ({
      results: await Promise.all(
        req.writes.map((w) =>
          this.writeFromWire(w).then(
            (version) => ({ ok: true as const, version }),
            (e: unknown) => {
              if (e instanceof CairnError) return { ok: false as const, problem: e.toProblem() };
              this.deps.log.error({ err: e, key: w.key }, "bug: a batched metadata write failed with an unexpected error");
              const unknown = new CairnError("METADATA_INDETERMINATE", `the leader failed unexpectedly while handling the write: ${e instanceof Error ? e.message : String(e)}`);
              return { ok: false as const, problem: unknown.toProblem() };
            },
          ),
        ),
      ),
    }));
    server.register(JoinRpc, async (req) => this.handleJoin(req.nodeId, req.storageId));
    server.register(RemoveRpc, async (req) => {
      await this.remove(req.nodeId);
      return {};
    });
    server.register(StatusRpc, async () => this.status());
  }

  private async handleJoin(nodeId: number, storageId: string): Promise<{ status: "learner" | "member" }> {
    const driver = this.memberDriver();
    if (driver.leader !== driver.id) throw this.notLeader();
    const node = this.nodesConfig()?.nodes.find((n) => n.id === nodeId);
    if (node === undefined) throw new CairnError("METADATA_ILLEGAL_TRANSITION", `${toNodeId(nodeId)} is not registered in the nodes configuration`);
    if (!node.roles.includes("metadata-server")) {
      throw new CairnError("METADATA_ILLEGAL_TRANSITION", `${toNodeId(nodeId)} does not run the metadata-server role`);
    }
    const conf = driver.status().confState;
    if (node.metadataServer.state === "member") {
      if (node.metadataServer.storageId !== storageId) {
        throw new CairnError(
          "METADATA_STORAGE_MISMATCH",
          `${toNodeId(nodeId)} is a member with storage ${node.metadataServer.storageId}, but asked to join with storage ${storageId}`,
        );
      }
      return { status: "member" };
    }
    if (node.metadataServer.state !== "auto-join") {
      throw new CairnError("METADATA_ILLEGAL_TRANSITION", `${toNodeId(nodeId)} is ${node.metadataServer.state}; only auto-join nodes join`);
    }
    if (conf.learners.includes(nodeId as RaftId) || conf.voters.includes(nodeId as RaftId)) return { status: "learner" };
    const r = driver.proposeConfChange({ type: "addLearner", nodeId: nodeId as RaftId, context: encodeMemberContext({ storageId }) });
    if (!r.ok) {
      throw new CairnError("METADATA_UNAVAILABLE", `cannot add N${nodeId} right now (${r.reason}); retry shortly`, { leaderHint: this.leaderHint() ?? null });
    }
    this.deps.log.info({ node: toNodeId(nodeId) }, "adding a joining node as a metadata learner");
    return { status: "learner" };
  }
}
