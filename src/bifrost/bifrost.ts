// Bifrost: logs made of chains of loglets (local segments are loglets with a nodeset of one and r = 1).
// This class is the facade: it builds the parts (chain view, sequencer slots, appends, find-tail, reads,
// trim, seal/reconfigure) around one shared context and hands each part the others it needs, so no
// part reaches into another's state.
import type { Version } from "../metadata/kv.ts";
import { CairnError } from "../observability/errors.ts";
import { Appender } from "./appender.ts";
import { requireLog, type LogChain, type LogsDocument } from "./chain.ts";
import { ChainView } from "./chain-view.ts";
import { BifrostContext, type BifrostDeps, type BifrostOptions } from "./context.ts";
import { Reader, type LogReadResult } from "./reader.ts";
import { Reconfigurer, type ReconfigureContext, type ReconfigureRequest } from "./reconfigure.ts";
import type { AppendRequest, AppendResponse, TailRequest, TailResponse } from "./rpc.ts";
import { Rereplicator, type RereplicationProgress } from "./rereplicator.ts";
import { planRereplication, type SegmentCopyPlan } from "./rereplication-plan.ts";
import { Sequencers } from "./sequencers.ts";
import { TailFinder, type LogTail } from "./tail.ts";
import { Trimmer } from "./trim.ts";
import type { LogId, Lsn } from "../ids/index.ts";

export { bifrostOptions, type BifrostDeps, type BifrostOptions, type Placer } from "./context.ts";
export type { LogReadEntry, LogReadResult } from "./reader.ts";
export type { ReconfigureContext, ReconfigureRequest } from "./reconfigure.ts";
export type { LogTail } from "./tail.ts";
export type { RereplicationProgress } from "./rereplicator.ts";

export class Bifrost {
  private readonly stopping = new AbortController();
  private readonly reconfigured = new Set<(log: LogId, reason: string) => void>();
  private readonly view: ChainView;
  private readonly sequencers: Sequencers;
  private readonly appender: Appender;
  private readonly tails: TailFinder;
  private readonly reader: Reader;
  private readonly trimmer: Trimmer;
  private readonly reconfigurer: Reconfigurer;
  private readonly rereplicator: Rereplicator;
  private readonly ctx: BifrostContext;

  constructor(private readonly deps: BifrostDeps) {
    const ctx = new BifrostContext(deps, this.stopping.signal);
    this.ctx = ctx;
    this.sequencers = new Sequencers(ctx);
    // Every document this node adopts retires the sequencers of segments it no longer shows as the open tail.
    this.view = new ChainView(ctx, (doc) => this.sequencers.retireSuperseded(doc));
    this.reconfigurer = new Reconfigurer(ctx, this.view);
    this.appender = new Appender(ctx, this.view, this.sequencers, this.reconfigurer);
    this.tails = new TailFinder(ctx, this.view, this.sequencers);
    this.reader = new Reader(ctx, this.view, this.tails);
    this.trimmer = new Trimmer(ctx, this.view, this.tails);
    this.rereplicator = new Rereplicator(ctx, this.view);
  }

  get options(): BifrostOptions {
    return this.deps.options;
  }

  /** Starts the background chain refresh (keeps this node's view of every chain current). */
  start(): void {
    this.view.start();
  }

  stop(): void {
    this.view.stop();
    this.stopping.abort(new CairnError("NODE_SHUTTING_DOWN", "bifrost stopped"));
    this.sequencers.stop();
  }

  /** The logs document: the cached copy unless `fresh` (then a linearizable read, or `consistency`). */
  logsDocument(fresh = false, consistency: "linearizable" | "stale" = "linearizable"): Promise<{ doc: LogsDocument; version: Version }> {
    return this.view.logsDocument(fresh, consistency);
  }

  chain(log: LogId, fresh = false): Promise<LogChain> {
    return this.view.chain(log, fresh);
  }

  /**
   * Appends a batch; resolves with its LSNs once every record is durable on r log-servers (and every
   * earlier LSN too). Waits (up to bifrost.append-timeout-ms) through reconfigurations.
   */
  append(log: LogId, payloads: readonly Uint8Array[], signal?: AbortSignal): Promise<{ first: Lsn; last: Lsn }> {
    return this.appender.append(log, payloads, signal);
  }

  /**
   * Appends as the sequencer of `request.segment` (this node's own appends and forwarded ones).
   * `signal` bounds the wait for a sealed segment's tail (a function: made only if needed).
   */
  appendAsSequencer(request: AppendRequest, signal: AbortSignal | (() => AbortSignal)): Promise<AppendResponse> {
    return this.appender.appendAsSequencer(request, signal);
  }

  /** The sequencer's committed tail of a segment (answers the `tail` RPC). */
  sequencerTail(request: TailRequest): Promise<TailResponse> {
    return this.tails.sequencerTail(request);
  }

  /** An idle reader's long poll (see TailFinder.waitForRecords). */
  waitForRecords(log: LogId, from: Lsn, maxWaitMs: number, signal: AbortSignal): Promise<"records" | "idle" | "unavailable"> {
    return this.tails.waitForRecords(log, from, maxWaitMs, signal);
  }

  findTail(log: LogId, signal?: AbortSignal): Promise<LogTail> {
    return this.tails.findTail(log, signal);
  }

  /**
   * Reads committed records from `from` on (up to `limit` entries, never past the tail), crossing
   * segments. LSNs at or below the trim point come back as one trim gap, never skipped silently.
   * `fresh: false`: from the cached chain (see Reader.read).
   */
  read(log: LogId, from: Lsn, options: { limit?: number; signal?: AbortSignal; fresh?: boolean } = {}): Promise<LogReadResult> {
    return this.reader.read(log, from, options);
  }

  /** Trims the log up to `upTo` (inclusive, clipped below the tail); log-servers delete in the background. */
  trim(log: LogId, upTo: Lsn, signal?: AbortSignal): Promise<{ trimPoint: Lsn }> {
    return this.trimmer.trim(log, upTo, signal);
  }

  /** Seals the tail segment (seal, find its tail, repair) and records its tail. Appends then wait for a reconfiguration. */
  seal(log: LogId, signal?: AbortSignal): Promise<LogChain> {
    return this.reconfigurer.seal(log, signal);
  }

  /**
   * Seals the tail segment if needed and adds a new one at its sealed tail, with the requested (or
   * chosen) kind, replication, nodeset and sequencer. On an empty chain, adds the first segment.
   */
  async reconfigure(log: LogId, request: ReconfigureRequest, context: ReconfigureContext): Promise<LogChain> {
    const chain = await this.reconfigurer.reconfigure(log, request, context);
    for (const listener of this.reconfigured) listener(log, context.reason);
    return chain;
  }

  /**
   * `listener` hears every log this node reconfigured (e.g. the log controller, which then plans
   * at once instead of at its next round: a sealed segment may now need copies). Returns the unsubscribe.
   */
  onReconfigured(listener: (log: LogId, reason: string) => void): () => void {
    this.reconfigured.add(listener);
    return () => void this.reconfigured.delete(listener);
  }

  /**
   * Copies a sealed segment onto more log-servers (re-replication) and, once every copy is durable,
   * records its new nodeset and replication by compare-and-set.
   */
  rereplicate(plan: SegmentCopyPlan, signal?: AbortSignal): Promise<void> {
    return this.rereplicator.copy(plan, signal);
  }

  /**
   * The operator's trigger: plans re-replication of one log now (candidates: the log-servers that
   * answer a ping) and copies its first under-replicated segment. Resolves with the plan it ran,
   * or undefined when nothing needs copies; fails with CAIRN-LOG-0024 when no log-server can take them.
   */
  async rereplicateLog(log: LogId, signal?: AbortSignal): Promise<SegmentCopyPlan | undefined> {
    const { doc } = await this.view.logsDocument(true);
    requireLog(doc, log);
    const candidates = (await this.deps.placer.candidates(signal)).map((c) => c.id);
    const plan = planRereplication({ doc, candidates, lost: () => false, inflight: new Set(), maxPlans: 1, only: log });
    const first = plan.copies[0];
    if (first === undefined) {
      const b = plan.blocked[0];
      if (b === undefined) return undefined;
      throw new CairnError("LOG_REREPLICATION_NO_TARGETS", `segment ${b.segment} of log ${log} has ${b.copies} copies of each record and needs ${b.wanted}, but no live log-server outside its nodeset can take one`, {
        log,
        segment: b.segment,
      });
    }
    if (this.rereplicator.running(log)) throw new CairnError("LOG_CHAIN_CONFLICT", `a re-replication of log ${log} is already running on this node`, { log });
    await this.rereplicator.copy(first, signal);
    return first;
  }

  /** Publishes the under-replicated records per log (the controller's count; logs absent have none). */
  noteUnderReplicated(doc: LogsDocument, counts: ReadonlyMap<number, number>): void {
    const gauge = this.ctx.metrics?.underReplicatedRecords;
    if (gauge === undefined) return;
    for (const l of doc.logs) gauge.set({ log: String(l.id) }, counts.get(l.id) ?? 0);
  }

  /** This node's latest re-replication of a log (running or finished), if any. */
  rereplicationProgress(log: LogId): RereplicationProgress | undefined {
    return this.rereplicator.progress(log);
  }
}
