// The partition processor's driver: tails its partition's log from the applied LSN, decodes records,
// asks the pure core (core.ts) what each means, and commits a batch of effects with the new applied
// LSN in one store transaction; then it answers the proposals that batch decided. As leader it
// proposes records (announce-leader, mutations) and waits for its own apply of them.
// Invariants: a proposal is answered only after the record is durable in the log and applied here;
// a record this build cannot apply stops the partition (status `stopped`), it is never skipped; a
// deposed leader's pending proposals are failed, never answered as applied.
import type { Logger } from "../observability/log.ts";
import { CairnError, invariant } from "../observability/errors.ts";
import { decide, type CoreOptions, type Outcome, type ProcessorMeta } from "./core.ts";
import { decodeEnvelope, encodeEnvelope, type RecordBody } from "./envelope.ts";
import type { PartitionStore } from "./store.ts";
import { InvocationStateMachine, type InvokerAction } from "./invoker/state-machine.ts";

export type ReadEntry =
  | { readonly kind: "record"; readonly lsn: number; readonly payload: Uint8Array }
  | { readonly kind: "trim-gap"; readonly from: number; readonly to: number };

/** The partition's log as the processor sees it (bifrost in production). */
export interface PartitionLog {
  read(from: number, limit: number, signal: AbortSignal): Promise<{ entries: ReadEntry[]; tailLsn: number }>;
  append(payloads: Uint8Array[], signal: AbortSignal): Promise<{ first: number; last: number }>;
  /**
   * An idle follower's long poll, at most `maxWaitMs`: "records" when `from` may have been written,
   * "idle" when nothing was, "unavailable" when the log cannot be waited on that way (poll instead).
   */
  waitForRecords?(from: number, maxWaitMs: number, signal: AbortSignal): Promise<"records" | "idle" | "unavailable">;
}

export interface ProcessorOptions extends CoreOptions {
  /** Most records read and applied in one store transaction. */
  readonly readBatchRecords: number;
  /** Longest wait between two reads of an idle log (followers; a leader is woken by its appends). */
  readonly idlePollMaxMs: number;
  /** An idle follower waits this long at the sequencer for a new record (a long poll) instead of polling; 0: poll. */
  readonly followerLongPollMs?: number;
  /** Period of the store checkpoint that advances the durable LSN. */
  readonly durabilityIntervalMs: number;
  /** Most proposals of one partition waiting for their apply; more are refused (503, retry). */
  readonly maxPendingProposals: number;
  /**
   * After a read from the log returned less than a full batch, a follower waits this long before the
   * next read (records gather in between: one read and one store transaction for many of them).
   */
  readonly followerBatchDelayMs: number;
}

export type ProcessorRole =
  | { readonly kind: "follower" }
  | { readonly kind: "candidate"; readonly epoch: number }
  | { readonly kind: "leader"; readonly epoch: number };

export interface ProcessorStatus {
  readonly partition: number;
  readonly role: ProcessorRole["kind"];
  readonly epoch: number;
  readonly appliedLsn: number;
  readonly durableLsn: number;
  readonly tailLsn: number;
  readonly leaderEpoch: number;
  readonly leaderNode: string | null;
  readonly stopped: string | null;
  /**
   * What stopped it (absent while it runs): its store failed, its log is trimmed past its applied
   * LSN, or the record after its applied LSN cannot be applied (every copy stops on that one).
   */
  readonly stoppedBy?: "store" | "trim-gap" | "record";
}

export interface ProcessorDeps {
  readonly partition: number;
  readonly store: PartitionStore;
  readonly log: PartitionLog;
  readonly self: () => { node: string; generation: number };
  readonly options: ProcessorOptions;
  readonly logger: Logger;
  readonly nowMs: () => number;
  /** Called after each applied batch (metrics): records, seconds spent applying. */
  readonly onApplied?: (records: number, seconds: number) => void;
  readonly onLeaderChange?: () => void;
  /** The partition owning a 64-bit partition key (invocations address other partitions by key). */
  readonly partitionOfKey?: (partitionKey: bigint) => number;
  /** After a batch applied: what the invocation state machine asks the leader to do. */
  readonly onInvokerActions?: (actions: InvokerAction[]) => void;
  /** Most expired invocations deleted per applied invocation record. */
  readonly invocationExpireBatch?: number;
}

interface Pending {
  readonly epoch: number;
  readonly seq: number;
  /** Set once the append returned: if the applied LSN passes it unresolved, the record was ignored. */
  lastLsn: number;
  resolve(o: Outcome): void;
  reject(e: Error): void;
}

export class PartitionProcessor {
  private meta: ProcessorMeta;
  private roleValue: ProcessorRole = { kind: "follower" };
  private nextSeq = 0;
  /** Proposals waiting for their apply, by `epoch:seq`. */
  private readonly pending = new Map<string, Pending>();
  private readonly stopping = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private durabilityTimer: ReturnType<typeof setInterval> | undefined;
  private tailLsn = 0;
  /**
   * Records this leader appended, by LSN, until applied. The log holds exactly these bytes at these
   * LSNs (the appends were acknowledged there), so when the next LSN to apply is one of them it is
   * applied from here instead of being read back from the log-servers: one network round trip less
   * per write on the leader. Followers, and anything another producer wrote, are read from the log.
   */
  private readonly ownRecords = new Map<number, Uint8Array>();
  private stoppedReason: string | null = null;
  /** When the store failed under this processor (disk full, I/O error), if that is why it stopped. */
  private storeFailedAt: number | undefined;
  /** The trim gap that stopped it, if that is why (the worker bootstraps from a snapshot then). */
  private trimGapValue: { from: number; to: number } | undefined;
  private readonly appliedWaiters: Array<{ lsn: number; resolve: () => void; reject: (e: Error) => void }> = [];

  private readonly invocations: InvocationStateMachine;

  constructor(private readonly deps: ProcessorDeps) {
    this.meta = deps.store.meta();
    this.invocations = new InvocationStateMachine(deps.store.invocations, deps.store, {
      partition: deps.partition,
      partitionOfKey: deps.partitionOfKey ?? (() => deps.partition),
      expireBatch: deps.invocationExpireBatch ?? 100,
    });
  }

  get partition(): number {
    return this.deps.partition;
  }

  get role(): ProcessorRole {
    return this.roleValue;
  }

  get appliedLsn(): number {
    return this.meta.appliedLsn;
  }

  status(): ProcessorStatus {
    const r = this.roleValue;
    return {
      partition: this.deps.partition,
      role: r.kind,
      epoch: r.kind === "follower" ? 0 : r.epoch,
      appliedLsn: this.meta.appliedLsn,
      durableLsn: this.deps.store.durableLsn,
      tailLsn: Math.max(this.tailLsn, this.meta.appliedLsn + 1),
      leaderEpoch: this.meta.leaderEpoch,
      leaderNode: this.meta.leaderNode,
      stopped: this.stoppedReason,
      ...(this.stoppedReason === null ? {} : { stoppedBy: this.storeFailedAt !== undefined ? "store" : this.trimGapValue !== undefined ? "trim-gap" : "record" }),
    };
  }

  start(): void {
    invariant(this.loop === undefined, "processor started twice");
    this.loop = this.run();
    this.durabilityTimer = setInterval(() => this.syncStore(), this.deps.options.durabilityIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.durabilityTimer) clearInterval(this.durabilityTimer);
    this.stopping.abort();
    this.wake?.();
    await this.loop;
    await this.syncing;
    this.failPending();
    this.checkpoint();
    this.deps.store.close();
  }

  /** Becomes a candidate at `epoch` (already won in metadata) and appends announce-leader. */
  async announce(epoch: number): Promise<void> {
    invariant(epoch > 0, "epochs start at 1");
    this.roleValue = { kind: "candidate", epoch };
    this.nextSeq = 1;
    const self = this.deps.self();
    const body: RecordBody = { kind: "announce-leader", epoch, node: self.node, generation: self.generation };
    const payload = encodeEnvelope({ producer: { ...self, epoch }, seq: 1, tsMs: this.deps.nowMs(), body });
    let last: number;
    try {
      ({ last } = await this.deps.log.append([payload], this.stopping.signal));
    } catch (e) {
      // Back to follower, so the worker claims again (a new epoch) instead of leaving a candidate
      // that nothing ever promotes: partition 1 of chaos seed 20240601 had no leader for the rest of
      // the run after one announce append failed. Should the announce have reached the log after all,
      // a follower applying it stays a follower, and the next claim's epoch supersedes it.
      if (this.roleValue.kind === "candidate" && this.roleValue.epoch === epoch) this.roleValue = { kind: "follower" };
      throw e;
    }
    this.kick();
    await this.appliedUpTo(last);
  }

  /**
   * Steps down (the placement moved leadership away, or a newer epoch exists): no new proposals.
   * Proposals already appended keep waiting for their apply: applied under this epoch they are
   * answered as applied, fenced by a newer announce they are answered "not applied".
   */
  stepDown(): void {
    if (this.roleValue.kind === "follower") return;
    this.roleValue = { kind: "follower" };
    this.deps.onLeaderChange?.();
  }

  /** Proposes a record as leader; resolves with its outcome once it is durable and applied here. */
  async propose(body: RecordBody, signal: AbortSignal): Promise<Outcome> {
    this.checkRunning();
    const role = this.roleValue;
    if (role.kind !== "leader") throw this.notLeader();
    if (this.pending.size >= this.deps.options.maxPendingProposals) {
      throw new CairnError("PARTITION_OVERLOADED", `partition ${this.deps.partition} has ${this.pending.size} writes in flight (worker.max-pending-proposals)`, {
        partition: this.deps.partition,
        retryAfterSeconds: 1,
      });
    }
    const seq = ++this.nextSeq;
    const self = this.deps.self();
    const payload = encodeEnvelope({ producer: { ...self, epoch: role.epoch }, seq, tsMs: this.deps.nowMs(), body });
    const id = `${role.epoch}:${seq}`;
    const outcome = new Promise<Outcome>((resolve, reject) => this.pending.set(id, { epoch: role.epoch, seq, lastLsn: Number.MAX_SAFE_INTEGER, resolve, reject }));
    // It may be failed (processor stopping) while the append is still awaited, before the caller
    // awaits it: that rejection is handled where `outcome` is returned, never left unhandled.
    outcome.catch(() => {});
    let appended: { first: number; last: number };
    try {
      appended = await this.deps.log.append([payload], AbortSignal.any([signal, this.stopping.signal]));
    } catch (e) {
      this.pending.delete(id);
      // The append may have reached the log: the outcome is unknown, not "not applied".
      throw new CairnError("PARTITION_WRITE_INDETERMINATE", `the write to partition ${this.deps.partition} may or may not have been applied: ${(e as Error).message}`, {
        partition: this.deps.partition,
      });
    }
    const p = this.pending.get(id);
    if (p !== undefined) p.lastLsn = appended.last;
    if (appended.first === appended.last && appended.last > this.meta.appliedLsn) this.ownRecords.set(appended.last, payload);
    this.kick();
    this.settleIgnored();
    return outcome;
  }

  /** Resolves once everything up to `lsn` is applied. */
  appliedUpTo(lsn: number): Promise<void> {
    this.checkRunning();
    if (this.meta.appliedLsn >= lsn) return Promise.resolve();
    return new Promise((resolve, reject) => this.appliedWaiters.push({ lsn, resolve, reject }));
  }

  /** Whether it stopped (status().stopped says why) and applies nothing more. */
  get stopped(): boolean {
    return this.stoppedReason !== null;
  }

  /** When a store failure stopped this processor (deps.nowMs), or undefined when none did. */
  get storeFailedAtMs(): number | undefined {
    return this.stoppedReason === null ? undefined : this.storeFailedAt;
  }

  /** The trim gap past the applied LSN that stopped this processor (undefined: none met). */
  get trimGap(): { from: number; to: number } | undefined {
    return this.trimGapValue;
  }

  /** Replaces the reason a stopped processor reports (the worker knows why no bootstrap helps). */
  explainStop(reason: string): void {
    invariant(this.stoppedReason !== null, "only a stopped processor's reason is explained");
    this.stoppedReason = reason;
  }

  /** Reads from the store; callers check leadership first (see WorkerRole.confirm). */
  get store(): PartitionStore {
    this.checkRunning();
    return this.deps.store;
  }

  private checkRunning(): void {
    if (this.stoppedReason !== null) {
      throw new CairnError("PARTITION_STOPPED", `partition ${this.deps.partition} stopped: ${this.stoppedReason}`, { partition: this.deps.partition });
    }
  }

  private notLeader(): CairnError {
    return new CairnError("PARTITION_NOT_LEADER", `this node does not lead partition ${this.deps.partition}`, { partition: this.deps.partition });
  }

  private kick(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    const { options, log } = this.deps;
    let idleMs = 1;
    // A long poll that came back without a record to read (a stale chain, a sealed segment): the
    // next idle wait is a plain sleep, so such a poll can never spin.
    let longPollIdle = false;
    while (!this.stopping.signal.aborted && this.stoppedReason === null) {
      let entries: ReadEntry[] = this.takeOwnRecords(options.readBatchRecords);
      let fromLog = false;
      if (entries.length === 0) {
        fromLog = true;
        try {
          const r = await log.read(this.meta.appliedLsn + 1, options.readBatchRecords, this.stopping.signal);
          entries = r.entries;
          this.tailLsn = r.tailLsn;
        } catch (e) {
          if (this.stopping.signal.aborted) break;
          this.deps.logger.debug({ err: e, partition: this.deps.partition }, "reading the partition log failed; retrying");
        }
      }
      if (entries.length > 0) {
        try {
          this.applyBatch(entries);
        } catch (e) {
          // The store failed (disk full, I/O error): the transaction rolled back, nothing of the batch
          // counts as applied. This processor stops here, loudly, rather than retrying blindly; the
          // worker reopens the store later (a new processor from the store's applied LSN).
          this.storeFailedAt = this.deps.nowMs();
          this.halt(`the partition store failed: ${(e as Error).message}`);
        }
        idleMs = 1;
        longPollIdle = false;
        // A follower (or a candidate catching up) that got a partial batch waits for more records
        // to gather; a leader is woken at once by its own appends.
        if (fromLog && entries.length < options.readBatchRecords && this.roleValue.kind === "follower" && options.followerBatchDelayMs > 0) {
          await this.sleep(options.followerBatchDelayMs);
        }
        continue;
      }
      const longPollMs = options.followerLongPollMs ?? 0;
      if (idleMs >= options.idlePollMaxMs && longPollMs > 0 && log.waitForRecords && !longPollIdle) {
        let r: "records" | "idle" | "unavailable" = "idle";
        while (r === "idle" && this.roleValue.kind === "follower" && !this.stopping.signal.aborted) r = await this.longPoll(log.waitForRecords.bind(log), longPollMs);
        if (r !== "unavailable") {
          // Read now; if that finds nothing after all, the next idle wait is a sleep (no spinning).
          longPollIdle = true;
          continue;
        }
      } else longPollIdle = false;
      await this.sleep(idleMs);
      idleMs = Math.min(options.idlePollMaxMs, idleMs * 2);
    }
  }

  /** Waits at the log for the next record; a kick (an own append, a stop) ends it as "records". */
  private async longPoll(wait: NonNullable<PartitionLog["waitForRecords"]>, ms: number): Promise<"records" | "idle" | "unavailable"> {
    const ac = new AbortController();
    this.wake = () => ac.abort();
    try {
      const r = await wait(this.meta.appliedLsn + 1, ms, AbortSignal.any([ac.signal, this.stopping.signal]));
      return ac.signal.aborted ? "records" : r;
    } catch {
      return ac.signal.aborted ? "records" : "unavailable";
    } finally {
      this.wake = undefined;
    }
  }

  /** Waits `ms`, or less when kicked (an own append, a stop). */
  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /** The run of this leader's own records that starts at the next LSN to apply (possibly none). */
  private takeOwnRecords(limit: number): ReadEntry[] {
    if (this.ownRecords.size === 0) return [];
    const out: ReadEntry[] = [];
    let at = this.meta.appliedLsn + 1;
    for (; out.length < limit; at++) {
      const payload = this.ownRecords.get(at);
      if (payload === undefined) break;
      out.push({ kind: "record", lsn: at, payload });
    }
    if (out.length > 0) this.tailLsn = Math.max(this.tailLsn, at);
    return out;
  }

  private applyBatch(entries: ReadEntry[]): void {
    const started = performance.now();
    const outcomes: Array<{ seq: number; epoch: number; outcome: Outcome }> = [];
    const actions: InvokerAction[] = [];
    const { store, options } = this.deps;
    let stop: string | undefined;
    const before = this.meta;
    store.transaction(() => {
      let meta = this.meta;
      for (const entry of entries) {
        if (entry.kind === "trim-gap") {
          this.trimGapValue = { from: entry.from, to: entry.to };
          stop = `the log is trimmed over LSNs ${entry.from}..${entry.to}, past the applied LSN ${meta.appliedLsn}, and no snapshot is available to bootstrap from`;
          break;
        }
        const decoded = decodeEnvelope(entry.payload);
        const d = decide(meta, store, entry.lsn, decoded, options);
        if (d.kind === "stop") {
          stop = d.reason;
          break;
        }
        store.execute(d.effects);
        let outcome = d.outcome;
        for (const effect of d.effects) {
          if (effect.type !== "invocation") continue;
          const applied = this.invocations.apply(effect.record, effect.tsMs);
          outcome = applied.outcome;
          actions.push(...applied.actions);
        }
        meta = d.meta;
        if (decoded.kind === "ok") outcomes.push({ seq: decoded.envelope.seq, epoch: decoded.envelope.producer.epoch, outcome });
      }
      store.writeMeta(meta);
      this.meta = meta;
    });
    for (const at of this.ownRecords.keys()) if (at <= this.meta.appliedLsn) this.ownRecords.delete(at);
    this.deps.onApplied?.(this.meta.appliedLsn - before.appliedLsn, (performance.now() - started) / 1000);
    this.afterApply(outcomes);
    if (actions.length > 0) this.deps.onInvokerActions?.(actions);
    if (stop !== undefined) this.halt(stop);
  }

  private halt(reason: string): void {
    this.stoppedReason = reason;
    this.deps.logger.error({ partition: this.deps.partition, appliedLsn: this.meta.appliedLsn, reason }, `partition ${this.deps.partition} STOPPED: ${reason}`);
    const led = this.roleValue.kind !== "follower";
    this.roleValue = { kind: "follower" };
    this.failPending();
    // What runs only on a leader (the invoker) stops too: it would retry against a stopped store.
    if (led) this.deps.onLeaderChange?.();
  }

  private afterApply(outcomes: Array<{ seq: number; epoch: number; outcome: Outcome }>): void {
    const role = this.roleValue;
    const self = this.deps.self();
    const meta = this.meta;
    if (role.kind !== "follower") {
      if (meta.leaderEpoch > role.epoch || (meta.leaderEpoch === role.epoch && (meta.leaderNode !== self.node || meta.leaderGeneration !== self.generation))) {
        this.deps.logger.info({ partition: this.deps.partition, epoch: role.epoch, newEpoch: meta.leaderEpoch, newLeader: meta.leaderNode }, "a newer leader announced itself: stepping down");
        this.stepDown();
      } else if (role.kind === "candidate" && meta.leaderEpoch === role.epoch) {
        this.roleValue = { kind: "leader", epoch: role.epoch };
        this.deps.logger.info({ partition: this.deps.partition, epoch: role.epoch, appliedLsn: meta.appliedLsn }, `leading partition ${this.deps.partition}`);
        this.deps.onLeaderChange?.();
      }
    }
    for (const o of outcomes) {
      if (o.outcome.status === "ignored" && o.outcome.reason !== "no-effect") continue;
      const id = `${o.epoch}:${o.seq}`;
      const p = this.pending.get(id);
      if (p === undefined) continue;
      this.pending.delete(id);
      p.resolve(o.outcome);
    }
    this.settleIgnored();
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.appliedWaiters[i]!;
      if (w.lsn <= meta.appliedLsn) {
        this.appliedWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** A proposal whose appended LSN is applied without an outcome was ignored (a newer epoch fenced it). */
  private settleIgnored(): void {
    for (const p of this.pending.values()) {
      if (p.lastLsn <= this.meta.appliedLsn) {
        this.pending.delete(`${p.epoch}:${p.seq}`);
        p.reject(this.notLeader());
      }
    }
  }

  /**
   * Fails the proposals still waiting: their records may be in the log and still apply (nothing
   * fenced them yet), so the answer is "unknown outcome", never "not applied".
   */
  private failPending(): void {
    for (const p of this.pending.values()) {
      p.reject(new CairnError("PARTITION_WRITE_INDETERMINATE", `the write to partition ${this.deps.partition} may or may not have been applied: this node stopped leading it`, { partition: this.deps.partition }));
    }
    this.pending.clear();
    // A waiter for an LSN (an announce) would otherwise wait forever on a processor that applies
    // nothing more: the claim that awaits it fails and is retried with the next processor.
    const waiters = this.appliedWaiters.splice(0);
    const reason = this.stoppedReason ?? "the processor is stopping";
    for (const w of waiters) w.reject(new CairnError("PARTITION_STOPPED", `partition ${this.deps.partition} stopped before LSN ${w.lsn} was applied: ${reason}`, { partition: this.deps.partition }));
  }

  private syncing: Promise<void> | undefined;

  /** Advances the durable LSN off the event loop (a sync still running skips this tick). */
  private syncStore(): void {
    if (this.syncing !== undefined || this.stopping.signal.aborted) return;
    this.syncing = this.deps.store
      .sync()
      .then(
        () => undefined,
        (e: unknown) => this.deps.logger.warn({ err: e, partition: this.deps.partition }, "syncing the partition store failed"),
      )
      .finally(() => (this.syncing = undefined));
  }

  private checkpoint(): void {
    try {
      this.deps.store.checkpoint();
    } catch (e) {
      this.deps.logger.warn({ err: e, partition: this.deps.partition }, "checkpointing the partition store failed");
    }
  }
}
