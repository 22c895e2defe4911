// The worker role: runs a partition processor for every partition the placement gives this node
// (leader or follower), claims leadership where the placement names it leader (bump pp_epoch/<p> by
// CAS, move the log's sequencer here, append announce-leader), steps down where it no longer does,
// and answers the `worker` RPCs: reads and writes of objects of the partitions it leads.
// Invariants (leases: lease.ts): a read is answered only while this node holds a leader lease of the partition: a
// linearizable read of pp_epoch/<p> that showed this node's epoch, started less than
// `leaderLeaseMs` ago by this node's monotonic clock (a deposed leader, paused or cut off, finds its
// lease expired and asks metadata before it answers); a new leader answers nothing, read or write,
// until `leaderLeaseMs` (plus a clock-rate margin) has passed since its epoch bump, so every lease of
// an older epoch has run out first; a write is answered only once applied here (processor.ts).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { segmentSequencer, tailSegment, type Bifrost } from "../bifrost/index.ts";
import { logId, lsn, type NodeId } from "../ids/index.ts";
import type { MetadataApi } from "../metadata/api.ts";
import { DOES_NOT_EXIST, matchesVersion } from "../metadata/kv.ts";
import type { FabricClient, FabricServer } from "../net/index.ts";
import { CairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";
import type { Outcome } from "./core.ts";
import { epochKey, PLACEMENT_KEY, type EpochRecord, type PartitionPlacement } from "./placement.ts";
import { PartitionProcessor, type PartitionLog, type ProcessorOptions, type ProcessorStatus } from "./processor.ts";
import { WORKER_RPCS, type MutateAnswer, type MutateRequest, type ObjectAnswer, type ReadRequest, type SnapshotAnswer, type SnapshotRequest } from "./rpc.ts";
import { PartitionStore } from "./store.ts";
import { LeaderLeases } from "./lease.ts";
import { WorkerSnapshots, type WorkerSnapshotSettings } from "./snapshots.ts";
import { PartitionBootstrap, type StorePeer } from "./bootstrap.ts";
import { DEFAULT_STORE_TRANSFER_LIMITS, StoreTransferSource, type StoreTransferLimits } from "./peer-transfer.ts";
import type { InvokerSettings as InvokerConfig } from "./invoker/model.ts";
import type { SchemaSource } from "./invoker/model.ts";
import { PartitionInvoker } from "./invoker/invoker.ts";
import { InvocationService } from "./invoker/service.ts";
import { InvocationTransport } from "./invoker/protocol/index.ts";
import { INVOCATION_RPCS } from "./rpc.ts";
import { partitionForKey, type PartitionTable } from "./partition-table.ts";

export interface WorkerOptions extends ProcessorOptions {
  /** Period of the placement check (start/stop processors, claim or give up leadership). */
  readonly reconcileIntervalMs: number;
  /**
   * How long a confirmation of the epoch in metadata lets the leader answer reads without asking
   * again (counted from when the confirmation started), and how long a new leader waits after its
   * epoch bump before it answers anything.
   */
  readonly leaderLeaseMs: number;
  /** First wait before reopening a partition store that failed (disk full, I/O error); doubles per failure. */
  readonly storeFailureRetryMs?: number;
  /** Longest wait between two reopenings of a failing partition store. */
  readonly storeFailureRetryMaxMs?: number;
}

/** Failures further apart than this count as a new streak (the wait starts again from the first). */
const STORE_FAILURE_STREAK_MS = 5 * 60_000;

/** How long to wait before reopening a store after its `failures`-th failure in a row (1-based). */
export function storeReopenDelayMs(failures: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

export interface WorkerRoleDeps {
  readonly dataDir: string;
  readonly options: WorkerOptions;
  readonly metadata: () => MetadataApi | undefined;
  /**
   * This node's metadata replica, when it has one: `subscribe` hears of every entry it applies, and
   * `current` says whether it is a member's (it then applies every change as it comes). While it is,
   * the placement is checked on each applied entry and otherwise only every PUSHED_RECONCILE_MS.
   */
  readonly metadataPushes?: { readonly subscribe: (listener: () => void) => () => void; readonly current: () => boolean };
  readonly bifrost: () => Bifrost | undefined;
  readonly self: () => { id: NodeId | undefined; generation: number };
  readonly fabricServer: FabricServer;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly nowMs?: () => number;
  /** The snapshot repository and this node's export limit (none: `worker/snapshot` is refused). */
  readonly snapshots?: WorkerSnapshotSettings;
  /** How peers' stores are reached for a bootstrap without a covering snapshot (none: no peer transfer). */
  readonly peerTransfer?: {
    readonly fabricClient: FabricClient;
    readonly addressOf: (node: NodeId) => string | undefined;
    readonly limits: StoreTransferLimits;
    /** Deadline of one chunk request (the first one waits for the peer's export). */
    readonly requestTimeoutMs: number;
  };
  /** Durable invocations: the registry of services, the invoker settings, and the way to other partitions' leaders. */
  readonly invocations?: {
    readonly schema: SchemaSource;
    readonly config: InvokerConfig;
    /** Sends records to the leader of `partition` (the router: here, or over the fabric). */
    readonly deliver: (partition: number, records: Uint8Array[]) => Promise<void>;
  };
}

/** Least time between two moves of one partition log's sequencer back to its leader. */
const SEQUENCER_RETURN_MS = 2_000;
/** A partition stopped by a trim gap is bootstrapped from a snapshot at most this often. */
const BOOTSTRAP_RETRY_MS = 5_000;
/** Longest wait of a stopping worker for its leadership claims in flight. */
const STOP_CLAIMS_WAIT_MS = 2_000;
/** A claim that failed is retried at the next reconcile, but not sooner than this. */
const CLAIM_RETRY_MS = 200;
/**
 * Placement checks between pushes from a current metadata replica: a placement change starts one at
 * once; the rest of a check (claim retries, stopped processors, the sequencer's return) can wait this
 * long. Ten checks a second were a third of an idle node's timer work.
 */
const PUSHED_RECONCILE_MS = 500;

export class WorkerRole {
  private readonly processors = new Map<number, PartitionProcessor>();
  private readonly claiming = new Map<number, Promise<void>>();
  private readonly lastClaimFailedMs = new Map<number, number>();
  /** Store failures in a row per partition: when the last one was seen, and when to open the store again. */
  private readonly storeFailures = new Map<number, { count: number; lastAtMs: number; retryAtMs: number }>();
  private readonly movingSequencer = new Set<number>();
  private readonly lastSequencerMoveMs = new Map<number, number>();
  /** Leadership confirmations in flight per partition (reads arriving meanwhile wait for the next). */
  private readonly confirms = new Map<number, { running: Promise<void>; next: Promise<void> | undefined }>();
  /** Leader leases and new-leadership gates, in performance.now() ms. */
  private readonly leases: LeaderLeases;
  private timer: ReturnType<typeof setInterval> | undefined;
  private reconciling = false;
  /** An applied metadata entry arrived during a placement check: run another right after it. */
  private reconcileAgain = false;
  private lastReconcileMs = Number.NEGATIVE_INFINITY;
  private unsubscribeApplied: (() => void) | undefined;
  private pushedTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private readonly nowMs: () => number;
  private readonly metrics;
  private readonly snapshots: WorkerSnapshots;
  private readonly bootstrap: PartitionBootstrap;
  private readonly storeSource: StoreTransferSource;
  private readonly invokers = new Map<number, PartitionInvoker>();
  private readonly transport = new InvocationTransport({});
  private readonly invocationService: InvocationService | undefined;
  /** The partition table (fixed at provisioning), read once before the first processor starts. */
  private table: PartitionTable | undefined;

  constructor(private readonly deps: WorkerRoleDeps) {
    this.nowMs = deps.nowMs ?? Date.now;
    this.leases = new LeaderLeases(deps.options.leaderLeaseMs);
    this.snapshots = new WorkerSnapshots({
      settings: deps.snapshots ?? { repository: undefined, maxConcurrent: 1 },
      dataDir: deps.dataDir,
      leading: (partition) => this.leading(partition),
      metadata: deps.metadata,
      node: () => deps.self().id ?? "?",
      nowMs: this.nowMs,
      logger: deps.logger,
    });
    this.bootstrap = new PartitionBootstrap({
      repository: deps.snapshots?.repository,
      storePath: (partition) => this.storePath(partition),
      logger: deps.logger,
      nowMs: this.nowMs,
      retryMs: BOOTSTRAP_RETRY_MS,
      peers: (partition) => this.storePeers(partition),
      chunkBytes: (deps.peerTransfer?.limits ?? DEFAULT_STORE_TRANSFER_LIMITS).chunkBytes,
    });
    this.storeSource = new StoreTransferSource({
      scratchDir: join(deps.dataDir, "snapshot-scratch"),
      limits: deps.peerTransfer?.limits ?? DEFAULT_STORE_TRANSFER_LIMITS,
      storeOf: (partition) => {
        const p = this.processors.get(partition);
        return p !== undefined && p.status().stopped === null ? p.store.path : undefined;
      },
      node: () => deps.self().id ?? "?",
      exportOptions: deps.snapshots?.export,
    });
    const inv = deps.invocations;
    this.invocationService =
      inv === undefined
        ? undefined
        : new InvocationService({
            leader: (partition) => this.servingLeader(partition),
            invoker: (partition) => this.invokers.get(partition),
            leadingPartitions: () => [...this.processors.values()].filter((p) => p.role.kind === "leader"),
            schema: inv.schema,
            config: inv.config,
            nowMs: this.nowMs,
          });
    const registers = [deps.registry];
    this.metrics = {
      applySeconds: new Histogram({
        name: "cairn_partition_apply_seconds",
        help: "Time to apply one batch of records into the partition store, per partition",
        labelNames: ["partition"],
        buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5],
        registers,
      }),
      attempts: new Counter({ name: "cairn_invocation_attempts_total", help: "Invocation attempts run by this node's invokers, by outcome (end, suspended, error, failed)", labelNames: ["outcome"], registers }),
      attemptSeconds: new Histogram({
        name: "cairn_invoker_attempt_seconds",
        help: "Time of one invocation attempt against the service endpoint (request to End, Suspension or Error)",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
        registers,
      }),
      journalEntries: new Histogram({ name: "cairn_invocation_journal_entries", help: "Journal length replayed at the start of an attempt", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 512, 2048], registers }),
      active: new Gauge({
        name: "cairn_invocations",
        help: "Invocations not completed yet on the partitions this node leads, by status (scheduled, inboxed, ready, suspended, backing-off, paused)",
        labelNames: ["status"],
        registers,
        collect: () => {
          const g = this.metrics.active;
          g.reset();
          for (const [status, n] of Object.entries(this.activeInvocations())) g.set({ status }, n);
        },
      }),
      completed: new Counter({ name: "cairn_invocations_completed_total", help: "Invocations completed on partitions this node leads, by result (success, failure)", labelNames: ["result"], registers }),
      takeoverSeconds: new Histogram({
        name: "cairn_partition_takeover_seconds",
        help: "Time of each phase of a partition leadership takeover on this node: claim (epoch CAS), sequencer (seal and move the log's sequencer here), announce (catch-up read and own announce applied), total",
        labelNames: ["phase"],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
        registers,
      }),
      leaderChanges: new Counter({ name: "cairn_partition_leader_changes_total", help: "Times this node's processor became or stopped being leader, per partition", labelNames: ["partition"], registers }),
    };
    // Computed when scraped (not on every placement check: prom-client's labelled sets are costly).
    this.partitionGauge("cairn_partition_applied_lsn", "Last LSN applied by this node's processor, per partition", (s) => s.appliedLsn);
    this.partitionGauge("cairn_partition_durable_lsn", "Applied LSN at the last fsync of the partition store, per partition", (s) => s.durableLsn);
    this.partitionGauge("cairn_partition_lag_records", "Records in the log not applied yet by this node's processor, per partition", (s) => Math.max(0, s.tailLsn - 1 - s.appliedLsn));
    this.partitionGauge("cairn_partition_leader", "1 when this node leads the partition", (s) => (s.role === "leader" ? 1 : 0));
  }

  start(): void {
    mkdirSync(this.partitionsDir(), { recursive: true });
    this.deps.fabricServer
      .register(WORKER_RPCS.read, (req) => this.read(req))
      .register(WORKER_RPCS.mutate, (req) => this.mutate(req))
      .register(WORKER_RPCS.status, () => ({ processors: this.statuses() }))
      .register(WORKER_RPCS.snapshot, (req) => this.snapshot(req))
      .register(WORKER_RPCS.fetchStore, (req) => this.storeSource.chunk(req));
    const service = this.invocationService;
    if (service !== undefined) {
      this.deps.fabricServer
        .register(INVOCATION_RPCS.invoke, (req) => service.invoke(req))
        .register(INVOCATION_RPCS.attach, (req) => service.attach(req))
        .register(INVOCATION_RPCS.signal, (req) => service.signal(req))
        .register(INVOCATION_RPCS.control, (req) => service.control(req))
        .register(INVOCATION_RPCS.deliver, (req) => service.deliver(req))
        .register(INVOCATION_RPCS.list, (req) => service.list(req))
        .register(INVOCATION_RPCS.describe, (req) => service.describe(req));
    }
    this.unsubscribeApplied = this.deps.metadataPushes?.subscribe(() => this.requestReconcile());
    this.scheduleReconcile();
  }

  /** The periodic placement check: every reconcile-interval-ms, or PUSHED_RECONCILE_MS while pushes are complete. */
  private scheduleReconcile(): void {
    if (this.stopped) return;
    const pushes = this.deps.metadataPushes?.current() === true;
    const periodMs = pushes ? Math.max(PUSHED_RECONCILE_MS, this.deps.options.reconcileIntervalMs) : this.deps.options.reconcileIntervalMs;
    const dueInMs = Math.max(0, this.lastReconcileMs + periodMs - performance.now());
    this.timer = setTimeout(() => {
      if (performance.now() - this.lastReconcileMs >= periodMs - 1) void this.reconcile();
      this.scheduleReconcile();
    }, Math.min(dueInMs, periodMs));
  }

  /**
   * A placement check now (an applied metadata entry may be a new placement), or right after the one
   * running; at most one per reconcile-interval-ms, so a burst of metadata writes (any key) costs no
   * more than the polling did.
   */
  private requestReconcile(): void {
    if (this.stopped || this.pushedTimer !== undefined) return;
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    const waitMs = this.lastReconcileMs + this.deps.options.reconcileIntervalMs - performance.now();
    if (waitMs <= 0) {
      void this.reconcile();
      return;
    }
    this.pushedTimer = setTimeout(() => {
      this.pushedTimer = undefined;
      this.requestReconcile();
    }, waitMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.unsubscribeApplied?.();
    if (this.pushedTimer) clearTimeout(this.pushedTimer);
    // Claims in flight wait on metadata and the log; when the whole cluster stops at once they wait
    // for a quorum that is gone (up to their timeouts). A claim left running ends as a crash would
    // end it: its epoch is a compare-and-set, its announce an append the new processor re-reads.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled(this.claiming.values()), new Promise((resolve) => (timer = setTimeout(resolve, STOP_CLAIMS_WAIT_MS)))]);
    clearTimeout(timer);
    await this.bootstrap.stop();
    await this.storeSource.close();
    this.snapshots.stop();
    for (const i of this.invokers.values()) i.stop();
    this.invokers.clear();
    await Promise.all([...this.processors.values()].map((p) => p.stop()));
    this.processors.clear();
    this.transport.close();
  }

  /** The invocation RPCs of this node (also called directly by a local router). */
  get invocations(): InvocationService | undefined {
    return this.invocationService;
  }

  /** The leader of `partition` once it may answer (its new-leadership gate has passed). */
  private async servingLeader(partition: number): Promise<PartitionProcessor> {
    let p = this.requireLeader(partition);
    if (await this.waitForGate(partition, p)) p = this.requireLeader(partition);
    return p;
  }

  /** Starts the invoker of a partition this node now leads, stops it where it no longer does. */
  private syncInvoker(partition: number, p: PartitionProcessor): void {
    const inv = this.deps.invocations;
    const current = this.invokers.get(partition);
    const leads = p.role.kind === "leader" && this.processors.get(partition) === p && !this.stopped;
    if (!leads || inv === undefined) {
      if (current !== undefined) {
        current.stop();
        this.invokers.delete(partition);
      }
      return;
    }
    if (current !== undefined && !current.stopped) return;
    const invoker = new PartitionInvoker({
      partition,
      store: () => p.store,
      propose: (body, signal) => p.propose(body, signal),
      transport: this.transport,
      schema: inv.schema,
      config: inv.config,
      deliver: inv.deliver,
      nowMs: this.nowMs,
      logger: this.deps.logger,
      onAttempt: (outcome, seconds, journalEntries) => {
        this.metrics.attempts.inc({ outcome });
        this.metrics.attemptSeconds.observe(seconds);
        this.metrics.journalEntries.observe(journalEntries);
      },
      onCompleted: (result) => this.metrics.completed.inc({ result: "value" in result ? "success" : "failure" }),
    });
    this.invokers.set(partition, invoker);
    invoker.start();
  }

  /** Invocations not completed yet on the partitions this node leads, by status (a gauge read at scrape time). */
  private activeInvocations(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const p of this.processors.values()) {
      if (p.role.kind !== "leader" || p.status().stopped !== null) continue;
      for (const [k, n] of Object.entries(p.store.invocations.countActiveByStatus())) counts[k] = (counts[k] ?? 0) + n;
    }
    return counts;
  }

  /** A stopped partition (a record it cannot apply) keeps the node from being ready: it needs an operator. */
  notReadyReasons(): string[] {
    return [...this.processors.values()].flatMap((p) => {
      const stopped = p.status().stopped;
      return stopped === null ? [] : [`partition ${p.partition} stopped: ${stopped}`];
    });
  }

  /** Status of every processor on this node (GET /v1/partitions merges them across nodes). */
  statuses(): ProcessorStatus[] {
    return [...this.processors.values()].map((p) => p.status()).sort((a, b) => a.partition - b.partition);
  }

  /** Partitions whose processor here stopped (reported in this node's pings). */
  stoppedPartitions(): number[] {
    const out: number[] = [];
    for (const [id, p] of this.processors) if (p.stopped) out.push(id);
    return out;
  }

  /** Snapshots a partition this node leads (the controller's request, here or over the fabric). */
  snapshot(req: SnapshotRequest): Promise<SnapshotAnswer> {
    return this.snapshots.handle(req);
  }

  /** The processor if this node leads `partition` right now (as far as it knows). */
  leading(partition: number): PartitionProcessor | undefined {
    const p = this.processors.get(partition);
    return p?.role.kind === "leader" ? p : undefined;
  }

  /** The other nodes the placement gives `partition`, followers first (the leader serves the data plane). */
  private async storePeers(partition: number): Promise<StorePeer[]> {
    const transfer = this.deps.peerTransfer;
    const api = this.deps.metadata();
    const self = this.deps.self().id;
    if (transfer === undefined || api === undefined) return [];
    const entry = ((await api.get(PLACEMENT_KEY, { consistency: "stale" }))?.value as PartitionPlacement | undefined)?.partitions.find((e) => e.id === partition);
    if (entry === undefined) return [];
    const nodes = [...entry.followers, ...(entry.leader === undefined || entry.leader === null ? [] : [entry.leader])].filter((n) => n !== self);
    return [...new Set(nodes)].map((node) => ({
      node,
      fetch: (req) => {
        const address = transfer.addressOf(node as NodeId);
        if (address === undefined) throw new CairnError("SNAPSHOT_PEER_TRANSFER", `the address of node ${node} is not known`);
        return transfer.fabricClient.call(address, WORKER_RPCS.fetchStore, req, { deadlineMs: transfer.requestTimeoutMs });
      },
    }));
  }

  // ---- the data plane, on the leader ------------------------------------------------------------

  async read(req: ReadRequest): Promise<ObjectAnswer> {
    let p = this.requireLeader(req.partition);
    if (await this.waitForGate(req.partition, p)) p = this.requireLeader(req.partition);
    if (!this.holdsLease(req.partition, p)) await this.confirmLeadership(req.partition, p);
    const store = p.store;
    if (req.name === null) return store.object(req.service, req.key);
    const entry = store.entry(req.service, req.key, req.name);
    return { version: store.objectVersion(req.service, req.key), entries: entry === undefined ? [] : [entry] };
  }

  async mutate(req: MutateRequest): Promise<MutateAnswer> {
    let p = this.requireLeader(req.partition);
    this.snapshots.noteWrite();
    if (await this.waitForGate(req.partition, p)) p = this.requireLeader(req.partition);
    const outcome: Outcome = await p.propose(
      { kind: "mutate", service: req.service, key: req.key, ops: req.ops, expectedVersion: req.expectedVersion, idempotency: req.idempotency },
      AbortSignal.timeout(req.timeoutMs),
    );
    switch (outcome.status) {
      case "applied":
      case "version-mismatch":
      case "idempotency-conflict":
        return outcome;
      default:
        throw new CairnError("PARTITION_NOT_LEADER", `partition ${req.partition}: the write was not applied (${outcome.status})`, { partition: req.partition });
    }
  }

  private requireLeader(partition: number): PartitionProcessor {
    const p = this.leading(partition);
    if (p === undefined) throw new CairnError("PARTITION_NOT_LEADER", `node ${this.deps.self().id ?? "?"} does not lead partition ${partition}`, { partition });
    return p;
  }

  /**
   * Waits until a leadership this node won recently may answer (see `gates`); true when it waited
   * (the caller checks leadership again: it may have been lost meanwhile).
   */
  private async waitForGate(partition: number, p: PartitionProcessor): Promise<boolean> {
    const role = p.role;
    if (role.kind !== "leader") return false;
    const waitMs = this.leases.waitMs(partition, role.epoch, performance.now());
    if (waitMs <= 0) return false;
    await Bun.sleep(waitMs);
    return true;
  }

  /** Whether a confirmation of the current epoch started less than a lease ago. */
  private holdsLease(partition: number, p: PartitionProcessor): boolean {
    const role = p.role;
    return role.kind === "leader" && this.leases.holds(partition, role.epoch, performance.now());
  }

  /**
   * Confirms that this node still holds the partition's epoch, by a linearizable read started after
   * the caller arrived: reads that arrive while a check runs share the next one (bounded cost). A
   * confirmation grants a lease from its start: reads within it need no other.
   */
  private confirmLeadership(partition: number, p: PartitionProcessor): Promise<void> {
    const role = p.role;
    if (role.kind !== "leader") return Promise.reject(this.notLeader(partition));
    const check = async () => {
      const api = this.deps.metadata();
      if (api === undefined) throw this.notLeader(partition);
      const startedMs = performance.now();
      const v = await api.get(epochKey(partition), { consistency: "linearizable" });
      const rec = v?.value as EpochRecord | undefined;
      const self = this.deps.self();
      if (rec === undefined || rec.epoch !== role.epoch || rec.node !== self.id || rec.generation !== self.generation) {
        // Only the leadership this check was made for: the processor may have claimed a newer epoch since.
        const now = p.role;
        if (now.kind !== "follower" && now.epoch === role.epoch) {
          this.deps.logger.info({ partition, epoch: role.epoch, current: rec }, "a newer leader holds the partition's epoch: stepping down");
          p.stepDown();
        }
        throw this.notLeader(partition);
      }
      this.leases.confirmed(partition, role.epoch, startedMs);
    };
    let slot = this.confirms.get(partition);
    if (slot === undefined) {
      const running = check().finally(() => this.advanceConfirm(partition));
      this.confirms.set(partition, { running, next: undefined });
      return running;
    }
    slot.next ??= slot.running.catch(() => {}).then(check);
    return slot.next;
  }

  private advanceConfirm(partition: number): void {
    const slot = this.confirms.get(partition);
    if (slot === undefined) return;
    if (slot.next === undefined) this.confirms.delete(partition);
    else {
      const running = slot.next.finally(() => this.advanceConfirm(partition));
      // Its waiters hold `slot.next`; this derived promise only sequences the next check.
      running.catch(() => {});
      this.confirms.set(partition, { running, next: undefined });
    }
  }

  private notLeader(partition: number): CairnError {
    return new CairnError("PARTITION_NOT_LEADER", `node ${this.deps.self().id ?? "?"} does not lead partition ${partition}`, { partition });
  }

  // ---- placement and leadership -----------------------------------------------------------------

  /** One placement check (tests call it directly); a tick that finds one running is dropped. */
  async reconcile(): Promise<void> {
    if (this.reconciling || this.stopped) return;
    this.reconciling = true;
    this.reconcileAgain = false;
    this.lastReconcileMs = performance.now();
    try {
      const api = this.deps.metadata();
      const bifrost = this.deps.bifrost();
      const self = this.deps.self().id;
      if (api === undefined || bifrost === undefined || self === undefined) return;
      const v = await api.get(PLACEMENT_KEY, { consistency: "stale" });
      if (v === undefined) return;
      if (this.table === undefined) {
        const t = await api.get("partition_table", { consistency: "stale" });
        if (t === undefined) return;
        this.table = t.value as PartitionTable;
      }
      const placement = v.value as PartitionPlacement;
      const wanted = new Set<number>();
      for (const entry of placement.partitions) {
        const leads = entry.leader === self;
        if (!leads && !entry.followers.includes(self)) continue;
        wanted.add(entry.id);
        if (!this.processors.has(entry.id) && this.bootstrap.holdsBack(entry.id)) continue;
        const failing = this.storeFailures.get(entry.id);
        if (!this.processors.has(entry.id) && failing !== undefined && this.nowMs() < failing.retryAtMs) continue;
        let p: PartitionProcessor;
        try {
          p = this.ensureProcessor(entry.id, bifrost);
        } catch (e) {
          const f = this.noteStoreFailure(entry.id, this.nowMs());
          this.deps.logger.error({ err: e, partition: entry.id, failures: f.count }, `partition ${entry.id}: opening its store failed; trying again in ${Math.round(f.retryAtMs - this.nowMs())} ms`);
          continue;
        }
        const failedAt = p.storeFailedAtMs;
        if (failedAt !== undefined) {
          // Its store failed (disk full, I/O error): once the wait is over, the processor goes and the
          // next round opens the store again from its applied LSN. A fault that is gone heals without
          // a restart; one that stays fails the first batch again, and the wait doubles.
          const f = this.noteStoreFailure(entry.id, failedAt);
          if (this.nowMs() >= f.retryAtMs) await this.detachFailedStore(entry.id, p, f.count);
          continue;
        }
        if (p.trimGap !== undefined && p.status().stopped !== null) {
          this.bootstrap.recover(p, async () => {
            if (this.processors.get(entry.id) === p) this.processors.delete(entry.id);
            await p.stop();
          });
          continue;
        }
        if (!leads) p.stepDown();
        else if (p.role.kind === "leader") this.keepSequencerHere(entry.id, bifrost);
        else if (p.role.kind === "follower" && !this.claiming.has(entry.id) && p.status().stopped === null) {
          if (this.nowMs() - (this.lastClaimFailedMs.get(entry.id) ?? 0) < CLAIM_RETRY_MS) continue;
          const job = this.claim(entry.id, p, api, bifrost)
            .catch((e: unknown) => {
              this.lastClaimFailedMs.set(entry.id, this.nowMs());
              this.deps.logger.warn({ err: e, partition: entry.id }, "claiming partition leadership failed; retrying");
            })
            .finally(() => this.claiming.delete(entry.id));
          this.claiming.set(entry.id, job);
        }
      }
      for (const [id, p] of this.processors) {
        if (wanted.has(id) || this.claiming.has(id)) continue;
        this.processors.delete(id);
        this.syncInvoker(id, p);
        await p.stop();
      }
    } catch (e) {
      this.deps.logger.debug({ err: e }, "worker reconcile failed; retrying next round");
    } finally {
      this.reconciling = false;
      if (this.reconcileAgain && !this.stopped) {
        this.reconcileAgain = false;
        this.requestReconcile();
      }
    }
  }

  /** Counts a store failure of `partition` seen at `atMs` (once per failure) and sets when to try again. */
  private noteStoreFailure(partition: number, atMs: number): { count: number; retryAtMs: number } {
    const prior = this.storeFailures.get(partition);
    if (prior !== undefined && prior.lastAtMs === atMs) return prior;
    const count = prior !== undefined && atMs - prior.lastAtMs < STORE_FAILURE_STREAK_MS ? prior.count + 1 : 1;
    const waitMs = storeReopenDelayMs(count, this.deps.options.storeFailureRetryMs ?? 1_000, this.deps.options.storeFailureRetryMaxMs ?? 30_000);
    const next = { count, lastAtMs: atMs, retryAtMs: atMs + waitMs };
    this.storeFailures.set(partition, next);
    return next;
  }

  /** Takes down a processor whose store failed, so that the next round opens the store again. */
  private async detachFailedStore(partition: number, p: PartitionProcessor, failures: number): Promise<void> {
    this.deps.logger.warn({ partition, failures }, `partition ${partition}: opening its store again after a store failure`);
    if (this.processors.get(partition) === p) this.processors.delete(partition);
    this.syncInvoker(partition, p);
    try {
      await p.stop();
    } catch (e) {
      this.deps.logger.warn({ err: e, partition }, "closing the failed partition store failed; opening it again anyway");
    }
  }

  private ensureProcessor(partition: number, bifrost: Bifrost): PartitionProcessor {
    let p = this.processors.get(partition);
    if (p !== undefined) return p;
    const store = new PartitionStore(this.storePath(partition));
    const label = { partition: String(partition) };
    p = new PartitionProcessor({
      partition,
      store,
      log: partitionLog(bifrost, partition),
      self: () => ({ node: this.deps.self().id ?? "", generation: this.deps.self().generation }),
      options: this.deps.options,
      logger: this.deps.logger,
      nowMs: this.nowMs,
      onApplied: (_records, seconds) => this.metrics.applySeconds.observe(label, seconds),
      onLeaderChange: () => {
        this.metrics.leaderChanges.inc(label);
        if (p !== undefined) this.syncInvoker(partition, p);
      },
      partitionOfKey: (key) => partitionForKey(this.table!, key),
      onInvokerActions: (actions) => this.invokers.get(partition)?.handle(actions),
    });
    this.processors.set(partition, p);
    p.start();
    return p;
  }

  /** Bump the epoch by CAS, bring the log's sequencer here, announce; leader once the announce applies. */
  private async claim(partition: number, p: PartitionProcessor, api: MetadataApi, bifrost: Bifrost): Promise<void> {
    const self = this.deps.self();
    if (self.id === undefined) return;
    // Each phase of a takeover is timed and logged: an operator (and the failover benchmark) can
    // tell a slow epoch claim from a slow seal / sequencer move or a slow catch-up and announce.
    const startedMs = performance.now();
    // The placement that named this node came from its own replica (a stale read): a node that just
    // restarted may still see a leadership it held before, and claiming it would take the partition
    // from its current leader only for the controller to move it back (two needless takeovers).
    // A linearizable read, once per claim, confirms the placement still names this node.
    const placed = (await api.get(PLACEMENT_KEY, { consistency: "linearizable" }))?.value as PartitionPlacement | undefined;
    if (placed?.partitions.find((e) => e.id === partition)?.leader !== self.id) {
      this.deps.logger.info({ partition }, "the current partition placement no longer names this node leader: not claiming");
      return;
    }
    const current = await api.get(epochKey(partition), { consistency: "linearizable" });
    const prev = current?.value as EpochRecord | undefined;
    const next: EpochRecord = { epoch: (prev?.epoch ?? 0) + 1, node: self.id, generation: self.generation };
    await api.put(epochKey(partition), next, current === undefined ? DOES_NOT_EXIST : matchesVersion(current.version));
    // Leases of older epochs began before this bump took effect: once a lease (with the margin) has
    // passed since it returned, all of them have run out.
    const claimedMs = performance.now();
    this.leases.won(partition, next.epoch, claimedMs);
    this.observeTakeover("claim", claimedMs - startedMs);
    this.deps.logger.info({ partition, epoch: next.epoch, previous: prev, claimMs: Math.round(claimedMs - startedMs) }, "claimed partition leadership epoch");
    await this.moveSequencerHere(partition, bifrost, self.id, self.generation);
    const movedMs = performance.now();
    this.observeTakeover("sequencer", movedMs - claimedMs);
    const appliedBefore = p.status().appliedLsn;
    await p.announce(next.epoch);
    const announcedMs = performance.now();
    this.observeTakeover("announce", announcedMs - movedMs);
    this.observeTakeover("total", announcedMs - startedMs);
    this.deps.logger.info(
      {
        partition,
        epoch: next.epoch,
        claimMs: Math.round(claimedMs - startedMs),
        sequencerMs: Math.round(movedMs - claimedMs),
        announceMs: Math.round(announcedMs - movedMs),
        caughtUpRecords: p.status().appliedLsn - appliedBefore,
        totalMs: Math.round(announcedMs - startedMs),
      },
      "partition leadership taken over: announce applied",
    );
  }

  private observeTakeover(phase: "claim" | "sequencer" | "announce" | "total", ms: number): void {
    this.metrics.takeoverSeconds.observe({ phase }, ms / 1000);
  }

  /**
   * A leader whose log's sequencer moved away since its claim (the log controller replaced the
   * segment after a node died or joined, choosing its sequencer without regard to partitions) brings
   * it back: every append from elsewhere pays a forwarding hop. At most once per SEQUENCER_RETURN_MS.
   */
  private keepSequencerHere(partition: number, bifrost: Bifrost): void {
    if (this.movingSequencer.has(partition) || this.nowMs() - (this.lastSequencerMoveMs.get(partition) ?? 0) < SEQUENCER_RETURN_MS) return;
    const self = this.deps.self();
    if (self.id === undefined) return;
    const me = self.id;
    this.movingSequencer.add(partition);
    void (async () => {
      const tail = tailSegment(await bifrost.chain(logId(partition), false));
      if (tail === undefined || tail.kind !== "replicated" || tail.sealedTail !== undefined) return;
      const seq = segmentSequencer(tail);
      if (seq.id === me && seq.generation === self.generation) return;
      this.lastSequencerMoveMs.set(partition, this.nowMs());
      this.deps.logger.info({ partition, sequencer: `${seq.id}:${seq.generation}` }, "the partition log's sequencer is elsewhere: moving it back to its leader");
      await this.moveSequencerHere(partition, bifrost, me, self.generation);
    })()
      .catch((e: unknown) => this.deps.logger.warn({ err: e, partition }, "moving the partition log's sequencer to its leader failed; retrying later"))
      .finally(() => this.movingSequencer.delete(partition));
  }

  /**
   * Appends from the leader are cheapest when it sequences the log itself: if the open segment's
   * sequencer is another node, add a segment sequenced here (seals the old one). Local segments stay.
   */
  private async moveSequencerHere(partition: number, bifrost: Bifrost, self: NodeId, generation: number): Promise<void> {
    const chain = await bifrost.chain(logId(partition), true);
    const tail = tailSegment(chain);
    if (tail === undefined || tail.kind !== "replicated") return;
    const seq = segmentSequencer(tail);
    if (seq.id === self && seq.generation === generation && tail.sealedTail === undefined) return;
    await bifrost.reconfigure(logId(partition), { sequencer: self }, { reason: "partition-leader", acceptConcurrent: true, expectTailIndex: tail.index });
  }

  /** A per-partition gauge filled from the processors running now when scraped (a stopped one disappears). */
  private partitionGauge(name: string, help: string, value: (s: ReturnType<PartitionProcessor["status"]>) => number): void {
    const processors = () => this.processors.values();
    new Gauge({
      name,
      help,
      labelNames: ["partition"],
      registers: [this.deps.registry],
      collect() {
        this.reset();
        for (const p of processors()) {
          const s = p.status();
          this.set({ partition: String(s.partition) }, value(s));
        }
      },
    });
  }

  private storePath(partition: number): string {
    return join(this.partitionsDir(), `p${partition}.sqlite`);
  }

  private partitionsDir(): string {
    return join(this.deps.dataDir, "partitions");
  }
}

/** The partition's log through bifrost (log id = partition id). */
function partitionLog(bifrost: Bifrost, partition: number): PartitionLog {
  const log = logId(partition);
  return {
    read: async (from, limit, signal) => {
      // The cached chain: a processor polls its log often; freshness is not needed for correctness
      // (leadership is confirmed in metadata, writes by their own apply).
      const r = await bifrost.read(log, lsn(from), { limit, signal, fresh: false });
      return { entries: r.entries.map((e) => (e.kind === "record" ? e : { kind: "trim-gap", from: e.from, to: e.to })), tailLsn: r.tailLsn };
    },
    append: (payloads, signal) => bifrost.append(log, payloads, signal),
    waitForRecords: (from, maxWaitMs, signal) => bifrost.waitForRecords(log, lsn(from), maxWaitMs, signal),
  };
}
