// This node's membership of the metadata Raft group: seeding, joining as a learner, promotion, removal,
// and the node's metadata-server state derived from them. Invariants: "member" only with the storage id
// the nodes configuration records for this node (a lost disk never votes); one configuration change at a time.
import { nodeId as toNodeId } from "../ids/index.ts";
import type { FabricServer } from "../net/index.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import { asRaftId, bootstrapPersistedState, joiningPersistedState, type RaftId } from "../raft/index.ts";
import { newFingerprint } from "./fingerprint.ts";
import type { KvSnapshot } from "./kv.ts";
import { KEYS, findNode, type ClusterInfo, type NodesConfiguration } from "./nodes-config.ts";
import type { RaftDriver } from "./raft-driver.ts";
import type { MetadataRaftStorage } from "./raft-storage.ts";
import { JoinRpc, RemoveRpc } from "./rpc.ts";
import type { LeaderHint, MetadataServerContext, MetadataServerDeps, MetadataServerLocalState } from "./server-context.ts";
import type { InitialDocuments } from "./service.ts";
import { encodeMemberContext } from "./state-machine.ts";

/** Raft ticks between two checks for caught-up learners (200 ms at the default 50 ms tick). */
const PROMOTION_CHECK_TICKS = 4;

/**
 * The local state: awaiting-provisioning (no Raft storage, cluster unknown), standby (a known cluster,
 * not a member), joining (a learner catching up), member (a voter), storage-mismatch (the nodes
 * configuration says this node is a member with other storage: it lost its disk, and must not vote as
 * if it had its old log). It joins by itself when its nodes-configuration state is auto-join, and as
 * leader admits joiners, promotes learners that caught up and answers removal requests.
 */
export class MetadataMembership {
  private readonly deps: MetadataServerDeps;
  private readonly storage: MetadataRaftStorage;
  private stateValue: MetadataServerLocalState = "awaiting-provisioning";
  private selfId: number | undefined;
  private promoting = false;
  private stopped = false;
  /** The newest nodes configuration seen from outside this replica (a joiner's replica starts empty). */
  private externalConfig: NodesConfiguration | undefined;
  /** The replica must have applied a nodes configuration at least this new to count as a member. */
  private minMemberConfigVersion = 0;

  constructor(private readonly ctx: MetadataServerContext) {
    this.deps = ctx.deps;
    this.storage = ctx.storage;
  }

  private get driver(): RaftDriver | undefined {
    return this.ctx.driver();
  }

  get state(): MetadataServerLocalState {
    return this.stateValue;
  }

  /** This node's id, once learned from the nodes configuration or from its own Raft storage. */
  get nodeId(): number | undefined {
    return this.selfId;
  }

  /** The cluster as this replica knows it (undefined until provisioned and replicated here). */
  cluster(): ClusterInfo | undefined {
    return this.driver?.sm.kv.get(KEYS.cluster)?.value as ClusterInfo | undefined;
  }

  nodesConfig(): NodesConfiguration | undefined {
    return this.driver?.sm.nodesConfig()?.config;
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
      this.ctx.startDriver(1);
    }
    const driver = this.driver!;
    await this.awaitOwnLeadership();
    const docs = initialDocuments({
      fingerprint: newFingerprint(this.deps.randomBytes),
      self,
      nowMs: this.deps.nowMs(),
      storageId: this.storage.identity!.storageId,
    });
    const outcome = await driver.propose({ t: "provision", id: this.ctx.newRequestId(), docs }, this.deps.requestTimeoutMs);
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
    if (this.driver === undefined) this.ctx.startDriver(this.storage.raftNodeId()!);
    await this.awaitOwnLeadership();
  }

  /** Import every key with its version; false if the store already held data (imported before). */
  async importSnapshot(snapshot: KvSnapshot, nodeId: number): Promise<boolean> {
    const driver = this.driver!;
    if (!driver.sm.kv.isEmpty()) return false;
    const outcome = await driver.propose(
      { t: "import", id: this.ctx.newRequestId(), snapshot, member: { nodeId, storageId: this.storage.identity!.storageId } },
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
        this.ctx.stopDriver();
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
    if (this.driver === undefined) this.ctx.startDriver(me.id);
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

  // ---- following the driver --------------------------------------------------------------------

  /** A driver is starting as `id`: this node's Raft id is its node id, and its replica drives the state. */
  follow(driver: RaftDriver, id: number): void {
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
      this.deps.onApplied?.();
    });
  }

  /** Checks for caught-up learners every PROMOTION_CHECK_TICKS Raft ticks (no timer of its own). */
  startPromoting(): void {
    const driver = this.driver;
    if (driver === undefined) return;
    this.promoting = true;
    let ticks = 0;
    driver.onTick(() => {
      if (!this.promoting || this.driver !== driver || ++ticks % PROMOTION_CHECK_TICKS !== 0) return;
      this.promoteLearners();
    });
  }

  stopPromoting(): void {
    this.promoting = false;
  }

  /** Derive the local state from the replica's own nodes configuration. */
  refreshState(): void {
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

  /** No transition after this: a late reconcile must not start Raft over closed storage. */
  stop(): void {
    this.stopped = true;
    this.ctx.stopDriver();
    this.stateValue = "stopped";
  }

  // ---- routing ---------------------------------------------------------------------------------

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

  /** A peer's fabric address: from this replica's nodes configuration, else the newest seen elsewhere. */
  addressOf(id: number): string | undefined {
    return (
      this.nodesConfig()?.nodes.find((n) => n.id === id)?.fabricAddress ?? this.externalConfig?.nodes.find((n) => n.id === id)?.fabricAddress
    );
  }

  /** The driver, if this node may serve: a member; otherwise refused with a leader hint. */
  memberDriver(): RaftDriver {
    if (this.driver === undefined || this.stateValue !== "member") {
      throw new CairnError("METADATA_NOT_MEMBER", `this node's metadata server is ${this.stateValue}, not a member`, {
        leaderHint: this.leaderHint() ?? null,
      });
    }
    return this.driver;
  }

  /** The driver, if this node may propose: a member that leads; otherwise refused with a leader hint. */
  leaderDriver(): RaftDriver {
    const driver = this.memberDriver();
    if (driver.leader !== driver.id) {
      throw new CairnError("METADATA_UNAVAILABLE", "this member is not the metadata leader", { leaderHint: this.leaderHint() ?? null, notLeader: true });
    }
    return driver;
  }

  // ---- as leader -------------------------------------------------------------------------------

  /** Remove a member (leader only). */
  async remove(nodeId: number): Promise<void> {
    const driver = this.leaderDriver();
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

  private async handleJoin(nodeId: number, storageId: string): Promise<{ status: "learner" | "member" }> {
    const driver = this.leaderDriver();
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

  registerHandlers(server: FabricServer): void {
    server.register(JoinRpc, async (req) => this.handleJoin(req.nodeId, req.storageId));
    server.register(RemoveRpc, async (req) => {
      await this.remove(req.nodeId);
      return {};
    });
  }
}
