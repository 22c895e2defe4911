// Drives the Raft core for the metadata server: ticks on a timer, feeds received messages, and
// handles each Ready in the order the core requires (persist with one fsync → send → apply →
// serve reads → advance). Proposals made between two Readys share one transaction: that is the
// group commit. A proposal's outcome is decided by the entry applied at its index: same term →
// applied (with the state machine's result); another term → lost (safe to retry).
import {
  RaftNode,
  Xoshiro128,
  decodeMessage,
  encodeMessage,
  type ConfChange,
  type ConfChangeResult,
  type Entry,
  type Index,
  type Message,
  type RaftId,
  type RaftStatus,
  type Ready,
  type Term,
} from "../raft/index.ts";
import { CairnError, invariant } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { Registry } from "../observability/metrics.ts";
import { MetadataMetrics } from "./metrics.ts";
import type { MetadataRaftStorage } from "./raft-storage.ts";
import { adoptIncoming, pullSnapshot, type SnapshotChunk, type SnapshotChunkRequest } from "./snapshot-transfer.ts";
import { MetadataStateMachine, ON_DISK_SNAPSHOT_MARKER, encodeCommand, legacySnapshotData, type ApplyOutcome, type MetadataCommand } from "./state-machine.ts";

export interface RaftDriverOptions {
  tickIntervalMs: number;
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  /** Take a snapshot (and compact the log) once this many entries were applied since the last. */
  snapshotIntervalEntries: number;
  /** Entries kept below a snapshot for followers slightly behind. */
  snapshotKeepEntries: number;
  /** Where latencies and snapshot counts go (a private registry when not given). */
  metrics?: MetadataMetrics;
}

/**
 * How the driver reaches its peers. Sending is fire-and-forget; failures are reported back. The
 * peer may answer with messages of its own for this node (its replies, carried on the response).
 */
export interface RaftTransport {
  send(to: RaftId, messages: Uint8Array[]): Promise<Uint8Array[]>;
  /** One page of a member's store, for installing a snapshot (snapshot-transfer.ts). */
  snapshotChunk(from: RaftId, req: SnapshotChunkRequest): Promise<SnapshotChunk>;
}

/** Bytes of rows per snapshot page (bounded memory on both sides; well under the fabric's body limit). */
const SNAPSHOT_PAGE_BYTES = 256 * 1024;
/** Pause before a failed snapshot transfer starts again. */
const SNAPSHOT_RETRY_MS = 200;
/**
 * How long the leader keeps the log entries after a snapshot it sent, for that follower to continue
 * from once it installed it. Past this the follower is presumed gone and the log is compacted again.
 */
const SNAPSHOT_HOLD_MS = 5 * 60_000;

interface PendingProposal {
  startedMs: number;
  term: Term;
  index: Index;
  id: string;
  resolve: (outcome: ApplyOutcome) => void;
  reject: (e: CairnError) => void;
}

interface PendingRead {
  ctx: string;
  resolve: () => void;
  reject: (e: CairnError) => void;
  index?: Index;
}

export class RaftDriver {
  readonly sm: MetadataStateMachine;
  private readonly node: RaftNode;
  private timer: ReturnType<typeof setInterval> | undefined;
  private scheduled = false;
  private stopped = false;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly waitingReads: Array<PendingRead & { index: Index }> = [];
  private appliedIndex: Index;
  private lastSnapshotIndex: Index;
  private readCounter = 0;
  private readonly readPrefix: string;
  private leaderValue: RaftId = 0 as RaftId;
  /** While answering a peer's request: messages for that peer go back on the response. */
  private replyTo: { peer: RaftId; buffer: Message[] } | undefined;
  private readonly appliedListeners: Array<(outcome: ApplyOutcome, entry: Entry) => void> = [];
  private readonly tickListeners: Array<() => void> = [];
  /** A Ready whose snapshot's state is being pulled from another member: nothing else is handled meanwhile. */
  private installing: Ready | undefined;
  private readonly stopSignal = new AbortController();
  /**
   * Snapshots sent, per follower: their index and when. The log is not compacted past them until the
   * follower's match reaches them: a follower that pulls a large store for seconds must find the
   * entries after its snapshot still there, or it would be sent a newer snapshot, forever.
   */
  private readonly snapshotsSent = new Map<RaftId, { index: Index; atMs: number }>();
  private readonly metrics: MetadataMetrics;

  constructor(
    readonly id: RaftId,
    private readonly storage: MetadataRaftStorage,
    private readonly transport: RaftTransport,
    private readonly options: RaftDriverOptions,
    private readonly log: Logger,
    seed: number,
    /** What to do when the driver cannot go on (default: exit the process with status 70). */
    private readonly onFatal: (e: unknown) => void = () => process.exit(70),
  ) {
    this.readPrefix = seed.toString(36);
    this.metrics = options.metrics ?? MetadataMetrics.for(new Registry());
    this.sm = new MetadataStateMachine(storage.kv, storage.db);
    const snapshot = storage.mirror.snapshot();
    // The store's own applied index: a restart applies only what comes after it (nothing is replayed
    // into memory). It may be ahead of the snapshot (compaction lags) and, after a snapshot pulled
    // from a member further ahead, of the durable commit index: the core starts at the lesser, and
    // entries the store already holds are skipped when they are delivered again.
    const kvApplied = this.sm.appliedIndex();
    invariant(kvApplied >= snapshot.metadata.index, () => `metadata store applied ${kvApplied} is behind its snapshot ${snapshot.metadata.index}`);
    this.appliedIndex = kvApplied as Index;
    this.lastSnapshotIndex = snapshot.metadata.index;
    const commit = Math.max(storage.mirror.hardState().commit, snapshot.metadata.index);
    this.node = new RaftNode({
      config: {
        id,
        electionTimeoutTicks: options.electionTimeoutTicks,
        heartbeatIntervalTicks: options.heartbeatIntervalTicks,
        appliedIndex: Math.min(kvApplied, commit) as Index,
      },
      storage: storage.mirror,
      random: new Xoshiro128(seed),
    });
  }

  start(): void {
    this.timer = setInterval(() => {
      this.node.tick();
      this.schedule();
      for (const l of this.tickListeners) l();
    }, this.options.tickIntervalMs);
    this.schedule();
  }

  /** Stop ticking and fail every waiting request (their outcome is unknown to the caller). */
  stop(): void {
    this.stopped = true;
    this.stopSignal.abort();
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const p of this.proposals.values()) {
      p.reject(new CairnError("METADATA_INDETERMINATE", "the metadata server stopped before the write was known to be applied"));
    }
    this.proposals.clear();
    for (const r of [...this.reads.values(), ...this.waitingReads]) {
      r.reject(new CairnError("METADATA_UNAVAILABLE", "the metadata server is stopping"));
    }
    this.reads.clear();
    this.waitingReads.length = 0;
  }

  /** Called after every tick: periodic checks of the server ride on it instead of waking the process themselves. */
  onTick(listener: () => void): void {
    this.tickListeners.push(listener);
  }

  /** Learn of every applied entry (the server refreshes peer addresses from nodes_config). */
  onApplied(listener: (outcome: ApplyOutcome, entry: Entry) => void): void {
    this.appliedListeners.push(listener);
  }

  get leader(): RaftId {
    return this.leaderValue;
  }

  get applied(): Index {
    return this.appliedIndex;
  }

  get proposalsInFlight(): number {
    return this.proposals.size;
  }

  status(): RaftStatus {
    return this.node.status();
  }

  /**
   * A batch from peer `from`: step it and handle the resulting Ready at once; the messages that
   * Ready has for `from` (typically its answers) are returned to travel back on the response
   * instead of as a request of their own.
   */
  receiveAndReply(from: RaftId, messages: readonly Uint8Array[]): Uint8Array[] {
    if (this.stopped) return [];
    this.stepAll(messages);
    const reply: Message[] = [];
    this.replyTo = { peer: from, buffer: reply };
    try {
      this.processReady();
    } finally {
      this.replyTo = undefined;
    }
    return reply.map(encodeMessage);
  }

  /** Messages from a peer (already decoded from the fabric). */
  receive(messages: readonly Uint8Array[]): void {
    if (this.stopped) return;
    this.stepAll(messages);
    this.schedule();
  }

  private stepAll(messages: readonly Uint8Array[]): void {
    for (const bytes of messages) {
      let m: Message;
      try {
        m = decodeMessage(bytes);
      } catch (e) {
        this.log.warn({ err: e }, "dropping an undecodable raft message");
        continue;
      }
      if (m.to !== this.id) continue; // Addressed to a previous owner of this address.
      this.node.step(m);
    }
  }

  /**
   * Propose a command; resolves with its outcome once applied. A refusal (not the leader) rejects
   * with METADATA_UNAVAILABLE and a leader hint: nothing was proposed. Past the deadline the
   * outcome is unknown: METADATA_INDETERMINATE.
   */
  propose(cmd: MetadataCommand, deadlineMs: number): Promise<ApplyOutcome> {
    if (this.stopped) return Promise.reject(new CairnError("METADATA_UNAVAILABLE", "the metadata server is stopping"));
    const r = this.node.propose(encodeCommand(cmd));
    if (!r.ok) return Promise.reject(this.notLeader(r.reason, r.leader));
    return new Promise<ApplyOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.proposals.get(r.firstIndex)?.id !== cmd.id) return;
        this.proposals.delete(r.firstIndex);
        reject(new CairnError("METADATA_INDETERMINATE", `the write was proposed but not seen applied within ${deadlineMs} ms`));
      }, deadlineMs);
      this.proposals.set(r.firstIndex, {
        startedMs: performance.now(),
        term: r.term,
        index: r.firstIndex,
        id: cmd.id,
        resolve: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.schedule();
    });
  }

  proposeConfChange(change: ConfChange): ConfChangeResult {
    const r = this.node.proposeConfChange(change);
    this.schedule();
    return r;
  }

  transferLeader(to: RaftId): void {
    this.node.transferLeader(to);
    this.schedule();
  }

  /** Resolves when this member's state reflects every write committed before the call. */
  linearizableBarrier(deadlineMs: number): Promise<void> {
    if (this.stopped) return Promise.reject(new CairnError("METADATA_UNAVAILABLE", "the metadata server is stopping"));
    // Unique across restarts too: a late answer to a read of an earlier process must match nothing.
    const ctx = `${this.id}-${this.readPrefix}-${++this.readCounter}`;
    const r = this.node.readIndex(ctx);
    if (!r.ok) {
      return Promise.reject(
        new CairnError("METADATA_UNAVAILABLE", r.reason === "noLeader" ? "the metadata cluster has no leader right now" : `read refused: ${r.reason}`, {
          leaderHint: this.leaderValue || null,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Forget the read: a late ReadState for this ctx finds nothing and is dropped.
        this.reads.delete(ctx);
        const k = this.waitingReads.findIndex((w) => w.ctx === ctx);
        if (k >= 0) this.waitingReads.splice(k, 1);
        reject(new CairnError("METADATA_UNAVAILABLE", `no read index from a leader within ${deadlineMs} ms`, { leaderHint: this.leaderValue || null }));
      }, deadlineMs);
      this.reads.set(ctx, {
        ctx,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.schedule();
    });
  }

  private notLeader(reason: string, leader: RaftId): CairnError {
    return new CairnError("METADATA_UNAVAILABLE", reason === "notLeader" ? "this member is not the leader" : `proposal refused: ${reason}`, {
      reason,
      leaderHint: leader || null,
    });
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    // After the current turn of the event loop, not in a microtask: every request that arrived in
    // this turn gets proposed first, so they share one Ready and one fsync (group commit).
    setImmediate(() => {
      this.scheduled = false;
      this.processReady();
    });
  }

  /**
   * Handle every pending Ready. A failure half-way (a disk error while persisting, a broken
   * invariant while applying) would leave the core waiting for an advance() that never comes,
   * silently wedged: it is fatal instead, and the process restarts from its durable state.
   */
  private processReady(): void {
    try {
      this.processReadyUnguarded();
    } catch (e) {
      this.log.fatal({ err: e }, "metadata raft: failure while handling a Ready; stopping the process (it restarts from its durable state)");
      this.stop();
      this.onFatal(e);
    }
  }

  private processReadyUnguarded(): void {
    while (!this.stopped && this.installing === undefined && this.node.hasReady()) {
      const rd = this.node.ready();
      if (rd.snapshot !== null && legacySnapshotData(rd.snapshot.data) === undefined && rd.snapshot.metadata.index > this.appliedIndex) {
        // The state behind this snapshot is another member's store: pull it, then finish this Ready.
        this.installing = rd;
        void this.installSnapshot(rd);
        return;
      }
      this.handleReady(rd, undefined);
    }
  }

  /**
   * Persist → send → apply → reads → advance, for one Ready. `pulled`: the store pulled for this
   * Ready's snapshot, adopted in the transaction that records the snapshot.
   */
  private handleReady(rd: Ready, pulled: { appliedIndex: number; versionFloor: number } | undefined): void {
    // 0. A leader's appends leave before its own fsync, so the followers' fsyncs overlap it (Raft
    //    thesis §10.2.1): 0.88 → 0.68 ms from proposal to apply at one write in flight. Safe here
    //    because persisting is synchronous, in this same turn of the event loop: no answer to
    //    these appends can be handled (and counted together with the leader's own copy, which
    //    the core counts at append) before that copy is durable, and a process that dies in
    //    between takes that count with it. Only when the term and vote the appends carry are
    //    already durable; every other message waits for the fsync, as the core's contract says.
    const early = this.earlyAppends(rd);
    if (early.length > 0) this.send(early);
    // 1. Persist (one transaction, fsynced) before anything else depending on it leaves this node.
    //    A snapshot's state goes in with it: the store and the Raft metadata change together.
    //    Applying the committed entries rides in the same transaction (one transaction and at most
    //    one fsync per Ready, not two): they are committed, so durable on a quorum already, and any
    //    of them this Ready also persists (a cluster of one) become durable atomically with it. The
    //    liberty: followers' answers leave after this apply instead of before (tens of µs an entry).
    const legacy = rd.snapshot === null ? undefined : legacySnapshotData(rd.snapshot.data);
    const snapshotIndex = rd.snapshot?.metadata.index ?? 0;
    let adopt: (() => void) | undefined;
    if (pulled !== undefined) adopt = () => adoptIncoming(this.storage.db, pulled);
    else if (legacy !== undefined && snapshotIndex > this.appliedIndex) adopt = () => this.sm.restoreLegacy(legacy, snapshotIndex);
    const appliedBase = pulled !== undefined ? pulled.appliedIndex : adopt !== undefined ? snapshotIndex : this.appliedIndex;
    const fresh = rd.committedEntries.filter((e) => e.index > appliedBase);
    let outcomes: ApplyOutcome[] = [];
    const inTransaction =
      adopt === undefined && fresh.length === 0
        ? undefined
        : () => {
            if (adopt !== undefined) {
              adopt();
              this.storage.kv.reload(); // the tables were replaced: cached documents are stale
            }
            outcomes = this.sm.applyWithin(fresh);
          };
    this.storage.persist(rd, inTransaction);
    // 2. Send.
    this.send(early.length === 0 ? rd.messages : rd.messages.filter((m) => m.type !== "append"));
    // 3. Answer what was applied.
    if (adopt !== undefined) {
      this.appliedIndex = appliedBase as Index;
      this.lastSnapshotIndex = rd.snapshot!.metadata.index;
      this.failProposalsUpTo(this.appliedIndex);
      this.log.info({ index: snapshotIndex, applied: this.appliedIndex }, "metadata snapshot installed");
    }
    this.answerApplied(rd.committedEntries, outcomes);
    // 4. Reads.
    for (const rs of rd.readStates) {
      const pending = this.reads.get(rs.ctx);
      if (pending === undefined) continue;
      this.reads.delete(rs.ctx);
      this.waitingReads.push({ ...pending, index: rs.index });
    }
    this.serveReads();
    if (rd.softState !== null) this.onSoftState(rd.softState.leader, rd.softState.role);
    this.node.advance();
    this.maybeSnapshot();
  }

  /**
   * Pull the store from a member (the leader, or whoever leads when a try fails), retrying until it
   * arrives or the driver stops; then finish the Ready that asked for it. Meanwhile this member
   * handles no Ready: it neither answers nor votes, as if its disk were slow.
   */
  private async installSnapshot(rd: Ready): Promise<void> {
    const snap = rd.snapshot!;
    const startedMs = Date.now();
    for (let attempt = 1; !this.stopped; attempt++) {
      const source = this.node.status().leader;
      try {
        if (source === 0 || source === this.id) throw new CairnError("METADATA_UNAVAILABLE", "no leader to pull the snapshot from");
        const transfer = `${this.id}-${this.readPrefix}-${snap.metadata.index}-${attempt}`;
        const pulled = await pullSnapshot({
          db: this.storage.db,
          transfer,
          fetch: (req) => this.transport.snapshotChunk(source, req),
          maxBytes: SNAPSHOT_PAGE_BYTES,
          signal: this.stopSignal.signal,
          transaction: (fn) => this.storage.applyTransaction(fn),
        });
        if (pulled.appliedIndex < snap.metadata.index) {
          throw new CairnError("METADATA_SNAPSHOT_TRANSFER", `N${source} holds index ${pulled.appliedIndex}, behind the snapshot at ${snap.metadata.index}`);
        }
        if (this.stopped) return;
        this.log.info({ from: `N${source}`, index: snap.metadata.index, applied: pulled.appliedIndex, rows: pulled.rows, ms: Date.now() - startedMs }, "metadata snapshot pulled");
        this.metrics.snapshotInstalls.inc();
        this.metrics.snapshotInstallRows.inc(pulled.rows);
        this.metrics.snapshotInstallSeconds.observe((Date.now() - startedMs) / 1000);
        this.installing = undefined;
        try {
          this.handleReady(rd, pulled);
        } catch (e) {
          this.log.fatal({ err: e }, "metadata raft: failure while installing a snapshot; stopping the process (it restarts from its durable state)");
          this.stop();
          this.onFatal(e);
          return;
        }
        this.schedule();
        return;
      } catch (e) {
        if (this.stopped) return;
        this.log.warn({ err: e, attempt, from: source ? `N${source}` : null }, "metadata snapshot transfer failed; starting again");
        await Bun.sleep(SNAPSHOT_RETRY_MS);
      }
    }
  }

  /** A leader's appends that may leave before this Ready is persisted (see processReady). */
  private earlyAppends(rd: Ready): Message[] {
    if (rd.snapshot !== null) return [];
    const durable = this.storage.mirror.hardState();
    if (rd.hardState !== null && (rd.hardState.term !== durable.term || rd.hardState.vote !== durable.vote)) return [];
    return rd.messages.filter((m) => m.type === "append");
  }

  /** Answers the proposers of committed entries (`outcomes`: of those above the store's index, in order). */
  private answerApplied(entries: readonly Entry[], outcomes: readonly ApplyOutcome[]): void {
    if (entries.length === 0) return;
    let k = 0;
    for (const entry of entries) {
      // Entries at or below the store's index came with a pulled snapshot: their effects are in it.
      const outcome: ApplyOutcome = entry.index > this.appliedIndex ? outcomes[k++]! : { kind: "noop" };
      if (entry.index > this.appliedIndex) this.appliedIndex = entry.index;
      const p = this.proposals.get(entry.index);
      if (p !== undefined) {
        this.proposals.delete(entry.index);
        if (entry.term === p.term && "id" in outcome && outcome.id === p.id) {
          this.metrics.proposalSeconds.observe((performance.now() - p.startedMs) / 1000);
          p.resolve(outcome);
        } else p.reject(new CairnError("METADATA_UNAVAILABLE", "leadership changed before the write committed; it was not applied", { retryable: true }));
      }
      for (const l of this.appliedListeners) l(outcome, entry);
    }
  }

  private failProposalsUpTo(index: Index): void {
    for (const [i, p] of this.proposals) {
      if (i <= index) {
        this.proposals.delete(i);
        p.reject(new CairnError("METADATA_INDETERMINATE", "a snapshot replaced the log before the write's outcome was seen"));
      }
    }
  }

  private serveReads(): void {
    for (let k = this.waitingReads.length - 1; k >= 0; k--) {
      const r = this.waitingReads[k]!;
      if (this.appliedIndex >= r.index) {
        this.waitingReads.splice(k, 1);
        r.resolve();
      }
    }
  }

  private onSoftState(leader: RaftId, role: string): void {
    const previous = this.leaderValue;
    this.leaderValue = leader;
    if (previous === leader) return;
    this.log.info({ leader: leader ? `N${leader}` : null, role }, "metadata raft leadership changed");
    // A read index request still unanswered went to the old leader (or was taken by it) and may
    // never be answered: fail it now so the client retries at once (on the new leader) instead of
    // waiting for its whole deadline. A new metadata leader's first reads took 4.5 s before this.
    if (this.reads.size > 0) {
      const pending = [...this.reads.values()];
      this.reads.clear();
      for (const r of pending) {
        r.reject(new CairnError("METADATA_UNAVAILABLE", "the metadata leader changed before the read got its read index", { leaderHint: leader || null }));
      }
    }
  }

  private send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<RaftId, Message[]>();
    for (const m of messages) {
      if (this.replyTo !== undefined && m.to === this.replyTo.peer && m.type !== "snapshot") {
        this.replyTo.buffer.push(m);
        continue;
      }
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [to, batch] of byPeer) {
      const hasSnapshot = batch.some((m) => m.type === "snapshot");
      for (const m of batch) if (m.type === "snapshot") this.snapshotsSent.set(to, { index: m.snapshot.metadata.index, atMs: Date.now() });
      this.transport.send(to, batch.map(encodeMessage)).then(
        (replies) => {
          if (this.stopped) return;
          if (hasSnapshot) this.node.reportSnapshot(to, true);
          if (replies.length > 0) this.receive(replies);
        },
        () => {
          if (this.stopped) return;
          this.node.reportUnreachable(to);
          if (hasSnapshot) this.node.reportSnapshot(to, false);
          this.schedule();
        },
      );
    }
  }

  /** The lowest index the log must keep entries after, for followers installing a snapshot sent to them. */
  private heldIndex(): number {
    if (this.snapshotsSent.size === 0) return Number.MAX_SAFE_INTEGER;
    const status = this.node.status();
    if (status.role !== "leader") {
      // Only a leader sends entries; a former one keeps nothing for anyone.
      this.snapshotsSent.clear();
      return Number.MAX_SAFE_INTEGER;
    }
    const progress = status.progress;
    let held = Number.MAX_SAFE_INTEGER;
    for (const [peer, sent] of this.snapshotsSent) {
      const match = progress.get(peer)?.match ?? 0;
      if (match >= sent.index || Date.now() - sent.atMs > SNAPSHOT_HOLD_MS) {
        this.snapshotsSent.delete(peer);
        continue;
      }
      held = Math.min(held, sent.index);
    }
    return held;
  }

  private maybeSnapshot(): void {
    if (this.appliedIndex - this.lastSnapshotIndex < this.options.snapshotIntervalEntries) return;
    // The store is the state: a snapshot is its Raft metadata and a marker, and costs nothing to take.
    // The core's applied index (not the store's, which may be ahead after a pulled snapshot) bounds it.
    const index = Math.min(this.appliedIndex, this.node.inspect.applied()) as Index;
    if (index <= this.lastSnapshotIndex) return;
    this.storage.saveSnapshot(index, this.node.appliedConfState(), ON_DISK_SNAPSHOT_MARKER, Math.max(this.options.snapshotKeepEntries, index - this.heldIndex()));
    this.lastSnapshotIndex = index;
    this.metrics.snapshotsTaken.inc();
    this.log.debug({ index }, "metadata snapshot taken, log compacted");
  }
}
