// Bifrost: logs made of chains of loglets. Appends go to the tail segment's sequencer (this node's
// appender, or forwarded to the sequencer's node over the fabric); reads walk the chain across
// segments and report trim gaps explicitly; seal and reconfiguration seal the tail loglet (seal,
// find-tail, repair), record its tail in the chain and add a new segment, all by compare-and-set on
// the `logs` metadata key. Local segments are loglets with a nodeset of one node and r = 1: the same
// sequencer and record store, no second copy.
//
// Invariants: an append is acknowledged only with LSNs of records durable on r log-servers (every
// earlier LSN too); a batch is retried on a newer segment only when none of its records can be in
// the log (it never reached a log-server, or all its offsets lie at or above the sealed tail recorded
// in the chain), otherwise the caller is told the outcome is indeterminate: so an acknowledged record
// is in the log exactly once. A sequencer runs only on the node and generation named in the segment,
// and only while the chain shows that segment as the unsealed tail.
import type { MetadataApi } from "../metadata/api.ts";
import type { Version } from "../metadata/kv.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import type { BifrostConfig } from "./config.ts";
import {
  locate,
  requireLog,
  segmentParams,
  segmentSequencer,
  tailSegment,
  withFirstSegment,
  withNewSegment,
  withSealedTail,
  withTrimPoint,
  type LogChain,
  type LogletKind,
  type LogsDocument,
  type NewSegment,
  type Segment,
} from "./chain.ts";
import { ChainWriter, readLogs } from "./chain-writer.ts";
import { BifrostMetrics } from "./metrics.ts";
import { chooseNodeset, chooseSequencer, desiredNodesetSize, type Candidate } from "./placement.ts";
import { assignedOffsets, readLoglet, recoverLoglet, ReplicatedLogletAppender } from "./replicated/driver.ts";
import { systemRandom, type Random } from "./replicated/random.ts";
import type { LogServerTransport } from "./replicated/transport.ts";
import { neverSent, type AppendRequest, type AppendResponse, type BifrostPeers, type TailRequest, type TailResponse } from "./rpc.ts";
import {
  LSN_OLDEST,
  logId as toLogId,
  logletOffset,
  lsn,
  lsnToOffset,
  offsetToLsn,
  sameGenerationalNodeId,
  type GenerationalNodeId,
  type LogId,
  type LogletOffset,
  type Lsn,
  type NodeId,
} from "../ids/index.ts";

export interface BifrostOptions {
  readonly defaultProvider: LogletKind;
  readonly appendTimeoutMs: number;
  readonly maxAppendRecords: number;
  readonly maxAppendBytes: number;
  readonly maxReadRecords: number;
  readonly chainRefreshIntervalMs: number;
  readonly tickMs: number;
  readonly storeTimeoutMs: number;
  readonly maxInflightBatches: number;
  readonly maxInflightBytes: number;
  readonly maxQueuedAppends: number;
  readonly nodesetSize: number;
}

export function bifrostOptions(c: BifrostConfig): BifrostOptions {
  return {
    defaultProvider: c["default-provider"],
    appendTimeoutMs: c["append-timeout-ms"],
    maxAppendRecords: c["max-append-records"],
    maxAppendBytes: c["max-append-bytes"],
    maxReadRecords: c["max-read-records"],
    chainRefreshIntervalMs: c["chain-refresh-interval-ms"],
    tickMs: c["tick-interval-ms"],
    storeTimeoutMs: c["store-timeout-ms"],
    maxInflightBatches: c["max-inflight-batches"],
    maxInflightBytes: c["max-inflight-bytes"],
    maxQueuedAppends: c["max-queued-appends"],
    nodesetSize: c["nodeset-size"],
  };
}

/** Live log-server nodes a new segment may use (the controller passes its own view). */
export interface Placer {
  candidates(signal?: AbortSignal): Promise<Candidate[]>;
}

export interface BifrostDeps {
  readonly metadata: () => MetadataApi | undefined;
  readonly transport: LogServerTransport;
  readonly peers: BifrostPeers;
  readonly placer: Placer;
  /** This node: id once registered, and the current generation. */
  readonly self: () => { id: NodeId | undefined; generation: number };
  readonly options: BifrostOptions;
  readonly logger: Logger;
  readonly registry?: Registry;
  readonly random?: Random;
  readonly nowMs?: () => number;
}

export type LogReadEntry =
  | { readonly kind: "record"; readonly lsn: Lsn; readonly payload: Uint8Array }
  /** LSNs [from, to] were trimmed: the reader skips them knowingly. */
  | { readonly kind: "trim-gap"; readonly from: Lsn; readonly to: Lsn };

export interface LogReadResult {
  readonly entries: LogReadEntry[];
  /** Where the next read starts. */
  readonly nextLsn: Lsn;
  /** The log's tail when the read started (first LSN not yet written). */
  readonly tailLsn: Lsn;
  readonly trimPoint: Lsn;
}

export interface LogTail {
  /** First LSN not written yet (every LSN below it is durable). */
  readonly tailLsn: Lsn;
  /** The tail segment is sealed and no newer segment exists: appends wait for a reconfiguration. */
  readonly sealed: boolean;
  readonly segment: number | null;
  readonly trimPoint: Lsn;
}

export interface ReconfigureRequest {
  readonly kind?: LogletKind;
  readonly replication?: number;
  readonly nodeset?: readonly NodeId[];
  /** Node to sequence the new segment (at its current generation). */
  readonly sequencer?: NodeId;
}

export interface ReconfigureContext {
  /** Why (logs, metrics): "operator", "sequencer-dead", ... */
  readonly reason: string;
  /** Live log-servers, when the caller knows them (the controller); otherwise they are pinged. */
  readonly candidates?: readonly Candidate[];
  /** Do not keep the sequencer on this node (it is dead or restarting). */
  readonly avoidSequencer?: NodeId;
  /** A concurrent extension of the same segment counts as success (controller); operators get a conflict. */
  readonly acceptConcurrent?: boolean;
  /** Only act if the tail segment is still this one (the controller decided on an older view). */
  readonly expectTailIndex?: number;
  readonly signal?: AbortSignal;
}

interface SequencerSlot {
  readonly log: LogId;
  readonly segment: Segment;
  readonly appender: ReplicatedLogletAppender;
}

/** How long an append waits for a sealed tail segment to be followed by a new one. */
const SEALED_WAIT_MS = 3_000;
/** Least time between two attempts of one node to move a log off a write-unavailable segment. */
const STUCK_RETRY_MS = 1_000;
const RETRY_MIN_MS = 20;
const RETRY_MAX_MS = 250;

export class Bifrost {
  private cache: { doc: LogsDocument; version: Version } | undefined;
  private readonly refreshing = new Map<"linearizable" | "stale", Promise<{ doc: LogsDocument; version: Version }>>();
  /** Linearizable reads of the logs document, shared only among callers that arrived before they began. */
  private readonly freshReads = new FreshReads(() =>
    readLogs(this.api(), "linearizable").then((r) => {
      this.adopt(r.doc, r.version);
      return this.cache!;
    }),
  );
  private readonly writer: ChainWriter;
  private readonly slots = new Map<string, SequencerSlot>();
  /**
   * Loglets whose sequencer this process retired. Never sequenced again: a second appender would
   * restart at offset 1 under the same identity, and log-servers take a same-sequencer store at a
   * held offset as a duplicate, so its offsets would name other records.
   */
  private readonly retired = new Set<string>();
  private readonly metrics: BifrostMetrics | undefined;
  private readonly random: Random;
  private readonly nowMs: () => number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private readonly stopSignal = new AbortController();

  constructor(private readonly deps: BifrostDeps) {
    this.writer = new ChainWriter(() => this.api(), (doc, version) => this.adopt(doc, version));
    this.metrics = deps.registry ? BifrostMetrics.of(deps.registry) : undefined;
    this.random = deps.random ?? systemRandom;
    this.nowMs = deps.nowMs ?? Date.now;
  }

  get options(): BifrostOptions {
    return this.deps.options;
  }

  /** Starts the background chain refresh (keeps this node's view of every chain current). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => {
      if (this.deps.metadata() === undefined) return;
      this.logsDocument(true, "stale").catch((e: unknown) => this.deps.logger.debug({ err: e }, "refreshing the logs chain failed; will retry"));
    }, this.deps.options.chainRefreshIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopSignal.abort(new CairnError("NODE_SHUTTING_DOWN", "bifrost stopped"));
    for (const [loglet, slot] of this.slots) {
      slot.appender.stop();
      this.retired.add(loglet);
    }
    this.slots.clear();
  }

  // ---- the chain ------------------------------------------------------------------------------

  private api(): MetadataApi {
    const api = this.deps.metadata();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "logs exist only once the cluster is provisioned");
    return api;
  }

  /**
   * The logs document: the cached copy unless `fresh` (then a linearizable read, or `consistency`).
   * A linearizable read never reuses a request that began before the caller did (it could miss a
   * chain change acknowledged in between: found by the chaos log checker, seed 4101); stale reads
   * share one request.
   */
  async logsDocument(fresh = false, consistency: "linearizable" | "stale" = "linearizable"): Promise<{ doc: LogsDocument; version: Version }> {
    if (!fresh && this.cache) return this.cache;
    if (consistency === "linearizable") return this.freshReads.get();
    let pending = this.refreshing.get(consistency);
    if (pending === undefined) {
      pending = readLogs(this.api(), consistency)
        .then((r) => {
          this.adopt(r.doc, r.version);
          return this.cache!;
        })
        .finally(() => this.refreshing.delete(consistency));
      this.refreshing.set(consistency, pending);
    }
    return pending;
  }

  async chain(log: LogId, fresh = false): Promise<LogChain> {
    return requireLog((await this.logsDocument(fresh)).doc, log);
  }

  /** The cached chain, read without the two awaits of chain() (every append reads it twice). */
  private cachedChain(log: LogId): LogChain | undefined {
    return this.cache === undefined ? undefined : requireLog(this.cache.doc, log);
  }

  /** Takes a newer document; retires sequencers of segments that are no longer the open tail. */
  private adopt(doc: LogsDocument, version: Version): void {
    if (this.cache && this.cache.version > version) return;
    this.cache = { doc, version };
    for (const log of doc.logs) this.metrics?.trimPoint.set({ log: String(log.id) }, log.trimPoint);
    for (const [loglet, slot] of this.slots) {
      const log = doc.logs.find((l) => l.id === slot.log);
      const current = log?.segments.find((s) => s.index === slot.segment.index);
      const tail = log ? tailSegment(log) : undefined;
      if (current?.sealedTail !== undefined || tail?.index !== slot.segment.index) {
        // The chain has its tail: pending appends learn their fate from it (resolveAfterSeal).
        slot.appender.markSealed();
        slot.appender.stop();
        this.slots.delete(loglet);
        this.retired.add(loglet);
      }
    }
  }

  // ---- append ---------------------------------------------------------------------------------

  /**
   * Appends a batch; resolves with its LSNs once every record is durable on r log-servers (and every
   * earlier LSN too). Waits (up to bifrost.append-timeout-ms) through reconfigurations.
   */
  async append(log: LogId, payloads: readonly Uint8Array[], signal?: AbortSignal): Promise<{ first: Lsn; last: Lsn }> {
    this.checkBatch(log, payloads);
    const started = performance.now();
    const deadlineAtMs = started + this.deps.options.appendTimeoutMs;
    // The signal (a timer and listeners) is made only when something waits on it: the common
    // append to this node's own sequencer never does.
    let deadlineSignal: AbortSignal | undefined;
    const deadline = (): AbortSignal =>
      (deadlineSignal ??= AbortSignal.any([
        AbortSignal.timeout(Math.max(1, Math.ceil(deadlineAtMs - performance.now()))),
        this.stopSignal.signal,
        ...(signal ? [signal] : []),
      ]));
    const expired = () => performance.now() >= deadlineAtMs || this.stopSignal.signal.aborted || signal?.aborted === true || deadlineSignal?.aborted === true;
    let fresh = false;
    let attempt = 0;
    let waitingFor = "a writable segment";
    let sealedSinceMs: number | undefined;
    try {
      for (;;) {
        if (sealedSinceMs !== undefined && performance.now() - sealedSinceMs > SEALED_WAIT_MS) {
          // A reconfiguration adds the next segment right after sealing; a log that stays sealed was
          // sealed by an operator and waits for `reconfigure`.
          throw new CairnError("LOG_SEALED", `log ${log} is sealed and was not reconfigured within ${SEALED_WAIT_MS} ms`, { log });
        }
        if (expired()) {
          throw new CairnError(
            waitingFor.startsWith("reconfiguration of sealed") ? "LOG_SEALED" : "LOG_WRITE_UNAVAILABLE",
            `log ${log}: no append within ${this.deps.options.appendTimeoutMs} ms, waiting for ${waitingFor}`,
            { log },
          );
        }
        const chain = (fresh ? undefined : this.cachedChain(log)) ?? (await this.chain(log, fresh));
        const seg = tailSegment(chain);
        let res: AppendResponse;
        if (seg === undefined) {
          res = { status: "retry", first: 0, last: 0, reason: "the log has no segment yet (the log controller adds the first one)" };
        } else if (seg.sealedTail !== undefined) {
          sealedSinceMs ??= performance.now();
          res = { status: "retry", first: 0, last: 0, reason: `reconfiguration of sealed segment ${seg.index}` };
        } else {
          sealedSinceMs = undefined;
          res = await this.sendAppend(log, seg, payloads, deadline);
        }
        switch (res.status) {
          case "ok": {
            const labels = { log: String(log) };
            this.metrics?.appends.inc(labels);
            this.metrics?.records.inc(labels, payloads.length);
            this.metrics?.appendSeconds.observe(labels, (performance.now() - started) / 1000);
            return { first: lsn(res.first), last: lsn(res.last) };
          }
          case "indeterminate":
            throw new CairnError("LOG_APPEND_INDETERMINATE", `log ${log}: ${res.reason}`, { log });
          case "retry":
            waitingFor = res.reason;
            fresh = true;
            attempt++;
            await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 8)) * (0.5 + this.random.float() / 2), deadline());
        }
      }
    } catch (e) {
      this.metrics?.appendFailures.inc({ log: String(log), code: e instanceof CairnError ? e.code : "other" });
      throw e;
    }
  }

  private checkBatch(log: LogId, payloads: readonly Uint8Array[]): void {
    const o = this.deps.options;
    let bytes = 0;
    for (const p of payloads) bytes += p.byteLength;
    if (payloads.length === 0) throw new CairnError("LOG_INVALID_RECORD", "an append needs at least one record", { log });
    if (payloads.length > o.maxAppendRecords || bytes > o.maxAppendBytes) {
      throw new CairnError(
        "LOG_BATCH_TOO_LARGE",
        `the batch has ${payloads.length} records and ${bytes} bytes; the bounds are ${o.maxAppendRecords} records and ${o.maxAppendBytes} bytes`,
        { log, records: payloads.length, bytes },
      );
    }
  }

  private isSelf(g: GenerationalNodeId): boolean {
    const self = this.deps.self();
    return self.id !== undefined && sameGenerationalNodeId(g, { id: self.id, generation: self.generation });
  }

  private async sendAppend(log: LogId, seg: Segment, payloads: readonly Uint8Array[], deadline: () => AbortSignal): Promise<AppendResponse> {
    const sequencer = segmentSequencer(seg);
    const request: AppendRequest = { log, segment: seg.index, payloads: [...payloads] };
    if (this.isSelf(sequencer)) return this.appendAsSequencer(request, deadline);
    const signal = deadline();
    if (!this.deps.peers.mayReach(sequencer.id)) {
      return { status: "retry", first: 0, last: 0, reason: `the sequencer ${sequencer.id} is unreachable (the log is reconfigured when it stays so)` };
    }
    try {
      return await this.deps.peers.append(sequencer.id, request, signal);
    } catch (e) {
      // Refused by the sequencer's bifrost before appending (its own error codes), or never sent.
      if (e instanceof CairnError && (e.code.startsWith("CAIRN-LOG-") || isCairnError(e, "CLUSTER_NOT_PROVISIONED"))) throw e;
      if (isCairnError(e, "NET_OVERLOADED") || isCairnError(e, "NET_REQUEST_TOO_LARGE")) throw e;
      if (neverSent(e)) return { status: "retry", first: 0, last: 0, reason: `the sequencer ${sequencer.id} is unreachable: ${(e as Error).message}` };
      return { status: "indeterminate", first: 0, last: 0, reason: `forwarding to the sequencer ${sequencer.id} failed: ${(e as Error).message}` };
    }
  }

  /**
   * Appends as the sequencer of `request.segment` (this node's own appends and forwarded ones).
   * `signal` bounds the wait for a sealed segment's tail (a function: made only if needed).
   */
  async appendAsSequencer(request: AppendRequest, signal: AbortSignal | (() => AbortSignal)): Promise<AppendResponse> {
    const log = toLogId(request.log);
    const retry = (reason: string): AppendResponse => ({ status: "retry", first: 0, last: 0, reason });
    let chain = this.cachedChain(log) ?? (await this.chain(log));
    let seg = chain.segments.find((s) => s.index === request.segment);
    if (seg === undefined || tailSegment(chain) !== seg) {
      chain = await this.chain(log, true); // the sender may know a newer chain than this node's cache
      seg = chain.segments.find((s) => s.index === request.segment);
    }
    if (seg === undefined) return retry(`segment ${request.segment} of log ${log} is not in the chain`);
    if (seg.sealedTail !== undefined || tailSegment(chain) !== seg) return retry(`segment ${seg.index} of log ${log} is sealed`);
    if (!this.isSelf(segmentSequencer(seg))) {
      const self = this.deps.self();
      return retry(`${self.id ?? "this node"}:${self.generation} is not the sequencer ${seg.params.sequencer} of segment ${seg.index}`);
    }
    this.checkBatch(log, request.payloads);
    const slot = this.slotFor(log, seg);
    if (slot === undefined) return retry(`the sequencer of segment ${seg.index} of log ${log} was retired`);
    let range: { first: LogletOffset; last: LogletOffset };
    try {
      range = await slot.appender.append(request.payloads);
    } catch (e) {
      if (isCairnError(e, "LOG_WRITE_UNAVAILABLE") && !this.retired.has(seg.params.loglet)) this.moveOffStuckSegment(log, seg);
      const assigned = assignedOffsets(e);
      if (assigned === undefined) {
        // Never sent to a log-server: safe to send again on the segment that follows.
        if (isCairnError(e, "LOG_SEALED") || isCairnError(e, "LOG_WRITE_UNAVAILABLE") || isCairnError(e, "LOG_LOGLET_FULL") || isCairnError(e, "NODE_SHUTTING_DOWN")) {
          return retry((e as Error).message);
        }
        throw e;
      }
      if (isCairnError(e, "NODE_SHUTTING_DOWN")) {
        return { status: "indeterminate", first: 0, last: 0, reason: "the sequencer stopped with the batch in flight" };
      }
      return this.resolveAfterSeal(log, seg, assigned, typeof signal === "function" ? signal() : signal);
    }
    return { status: "ok", first: offsetToLsn(lsn(seg.baseLsn), range.first), last: offsetToLsn(lsn(seg.baseLsn), range.last), reason: "" };
  }

  private readonly stuckMoves = new Map<LogId, number>();

  /**
   * This node's sequencer of `seg` went write-unavailable: fewer than r nodeset members take its
   * stores (their stores refused writes, or fenced it) although they may all be alive, so the log
   * controller, which watches liveness, would never move the log. Seal the segment and continue in
   * a new one (log-servers whose store refuses writes are not chosen), at most every
   * STUCK_RETRY_MS per log while appends keep arriving. Found by the chaos fsync-error nemesis
   * (seeds 101, 112): two of three log-servers disabled their stores after a failed fsync, and the
   * log took no appends for the rest of the run although every node was up again.
   */
  private moveOffStuckSegment(log: LogId, seg: Segment): void {
    const now = performance.now();
    const last = this.stuckMoves.get(log);
    if (last !== undefined && now - last < STUCK_RETRY_MS) return;
    this.stuckMoves.set(log, now);
    this.deps.logger.warn(
      { log, segment: seg.index, loglet: seg.params.loglet },
      "the sequencer cannot store to enough log-servers of its nodeset: sealing the segment and continuing the log in a new one",
    );
    void this.reconfigure(log, {}, { reason: "sequencer-write-unavailable", expectTailIndex: seg.index, acceptConcurrent: true, signal: this.stopSignal.signal }).catch(
      (e: unknown) => this.deps.logger.warn({ err: e, log, segment: seg.index }, "moving the log off a write-unavailable segment failed; the next append tries again"),
    );
  }

  /**
   * A batch with offsets failed because its loglet was sealed (or could not be written): the sealed
   * tail in the chain says whether its records are part of the log. Waits for it.
   */
  private async resolveAfterSeal(
    log: LogId,
    seg: Segment,
    assigned: { first: LogletOffset; last: LogletOffset },
    signal: AbortSignal,
  ): Promise<AppendResponse> {
    const base = lsn(seg.baseLsn);
    const first = offsetToLsn(base, assigned.first);
    const last = offsetToLsn(base, assigned.last);
    for (let attempt = 0; !signal.aborted; attempt++) {
      const chain = await this.chain(log, attempt > 0);
      const now = chain.segments.find((s) => s.index === seg.index);
      const sealedTail = now?.sealedTail;
      if (now === undefined && chain.segments.length > 0 && chain.segments[0]!.index > seg.index) {
        // Trimmed away meanwhile: only possible if the trim point passed it, so it was committed.
        return { status: "ok", first, last, reason: "" };
      }
      if (sealedTail !== undefined) {
        if (last < sealedTail) return { status: "ok", first, last, reason: "" };
        if (first >= sealedTail) return { status: "retry", first: 0, last: 0, reason: `segment ${seg.index} was sealed at LSN ${sealedTail}, before the batch` };
        return {
          status: "indeterminate",
          first: 0,
          last: 0,
          reason: `segment ${seg.index} was sealed at LSN ${sealedTail}, inside the batch [${first}, ${last}]: LSNs ${first}..${sealedTail - 1} are in the log, the rest is not`,
        };
      }
      await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 8)), signal);
    }
    return { status: "indeterminate", first: 0, last: 0, reason: `segment ${seg.index} was sealed with the batch in flight and its tail was not recorded in time` };
  }

  private slotFor(log: LogId, seg: Segment): SequencerSlot | undefined {
    const existing = this.slots.get(seg.params.loglet);
    if (existing) return existing;
    if (this.retired.has(seg.params.loglet) || this.stopped) return undefined;
    const params = segmentParams(seg);
    const o = this.deps.options;
    const tickMs = o.tickMs;
    let appender: ReplicatedLogletAppender | undefined;
    const labels = String(log);
    const transport: LogServerTransport = this.metrics
      ? {
          ...this.deps.transport,
          store: async (to, request, sig, timeoutMs) => {
            const r = await this.deps.transport.store(to, request, sig, timeoutMs);
            if (appender && !request.repair) {
              this.metrics!.replicationLag.set({ log: labels, node: to }, Math.max(0, appender.core.committedTail() - r.localTail));
            }
            return r;
          },
        }
      : this.deps.transport;
    appender = new ReplicatedLogletAppender(params, transport, {
      tickMs,
      maxQueuedAppends: o.maxQueuedAppends,
      random: this.random,
      logger: this.deps.logger,
      sequencer: {
        maxInflightBatches: o.maxInflightBatches,
        maxInflightBytes: o.maxInflightBytes,
        storeTimeoutTicks: Math.max(1, Math.ceil(o.storeTimeoutMs / tickMs)),
      },
    });
    appender.start();
    const slot = { log, segment: seg, appender };
    this.slots.set(seg.params.loglet, slot);
    this.deps.logger.info({ log, segment: seg.index, loglet: seg.params.loglet, nodeset: seg.params.nodeset }, "sequencing a new segment");
    return slot;
  }

  /** The sequencer's committed tail of a segment (answers the `tail` RPC). */
  async sequencerTail(request: TailRequest): Promise<TailResponse> {
    let chain = await this.chain(toLogId(request.log));
    let seg = chain.segments.find((s) => s.index === request.segment);
    if (seg === undefined || !this.isSelf(segmentSequencer(seg))) {
      // The asker may know a newer chain (a segment just created with this node as sequencer).
      chain = await this.chain(toLogId(request.log), true);
      seg = chain.segments.find((s) => s.index === request.segment);
    }
    if (seg === undefined || !this.isSelf(segmentSequencer(seg))) return { status: "not-sequencer", committedTail: 0, sealed: false };
    return { status: "ok", ...this.ownCommittedTail(seg) };
  }

  /**
   * This node's sequencer's committed tail of `seg`. `sealed`: the segment is sealed or being sealed
   * (its sequencer retired or closed), so the committed tail is only a lower bound of the tail the
   * seal records: the caller must read the chain again. Found by the chaos log checker (seed 4103):
   * a sequencer whose slot was retired answered offset 1, as if nothing had been appended.
   */
  private ownCommittedTail(seg: Segment): { committedTail: LogletOffset; sealed: boolean } {
    const slot = this.slots.get(seg.params.loglet);
    return {
      // No appender in this generation yet: nothing was appended (the sequencer starts at offset 1).
      committedTail: slot ? slot.appender.core.committedTail() : logletOffset(1),
      sealed: seg.sealedTail !== undefined || this.retired.has(seg.params.loglet) || slot?.appender.closed === true,
    };
  }

  // ---- tail, read -----------------------------------------------------------------------------

  /** The committed tail of an open segment: from its sequencer, else a lower bound from the log-servers. */
  /**
   * The committed tail of an open segment. `exact` only when the sequencer (this node, or asked over
   * the fabric) answered; otherwise the highest known global tail of the log-servers: every offset
   * below it is committed, but records above it may be too, so it is only a lower bound.
   */
  private async committedTail(log: LogId, seg: Segment, signal?: AbortSignal): Promise<{ offset: LogletOffset; exact: boolean; sealed: boolean }> {
    const sequencer = segmentSequencer(seg);
    if (this.isSelf(sequencer)) {
      const own = this.ownCommittedTail(seg);
      return { offset: own.committedTail, exact: !own.sealed, sealed: own.sealed };
    }
    const budget = AbortSignal.any([AbortSignal.timeout(1000), ...(signal ? [signal] : [])]);
    try {
      const r = await this.deps.peers.tail(sequencer.id, { log, segment: seg.index }, budget);
      if (r.status === "ok") return { offset: logletOffset(r.committedTail), exact: !r.sealed, sealed: r.sealed };
    } catch {
      // Fall back on the log-servers below.
    }
    const params = segmentParams(seg);
    const answers = await Promise.allSettled(
      params.nodeset.map((n) => this.deps.transport.getLogletInfo(n, { loglet: params.loglet }, AbortSignal.any([AbortSignal.timeout(1000), ...(signal ? [signal] : [])]))),
    );
    let best = 1;
    for (const a of answers) if (a.status === "fulfilled") best = Math.max(best, a.value.knownGlobalTail);
    return { offset: logletOffset(best), exact: false, sealed: false };
  }

  async findTail(log: LogId, signal?: AbortSignal): Promise<LogTail> {
    const chain = await this.chain(log, true);
    return this.tailOf(chain, signal);
  }

  private async tailOf(chain: LogChain, signal?: AbortSignal): Promise<LogTail> {
    return (await this.chainTail(chain, signal)).tail;
  }

  /** The tail, and the chain it belongs to (re-read once when a seal was under way). */
  private async chainTail(given: LogChain, signal?: AbortSignal): Promise<{ tail: LogTail; chain: LogChain }> {
    let chain = given;
    let tail = await this.tailOfChain(chain, signal);
    if (tail === "being-sealed") {
      chain = await this.chain(toLogId(chain.id), true);
      tail = await this.tailOfChain(chain, signal);
    }
    if (tail !== "being-sealed") return { tail, chain };
    throw new CairnError("LOG_TAIL_UNKNOWN", `the tail of log ${chain.id} cannot be determined right now: its tail segment is being sealed`, { log: chain.id });
  }

  private async tailOfChain(chain: LogChain, signal?: AbortSignal): Promise<LogTail | "being-sealed"> {
    const seg = tailSegment(chain);
    const trimPoint = lsn(chain.trimPoint);
    if (seg === undefined) return { tailLsn: lsn(Math.max(LSN_OLDEST, chain.trimPoint + 1)), sealed: false, segment: null, trimPoint };
    if (seg.sealedTail !== undefined) return { tailLsn: lsn(seg.sealedTail), sealed: true, segment: seg.index, trimPoint };
    const committed = await this.committedTail(toLogId(chain.id), seg, signal);
    // The segment is being sealed: its tail is in (or about to be in) the chain.
    if (committed.sealed) return "being-sealed";
    if (!committed.exact) {
      // A lower bound presented as the tail would hide acknowledged records: say so instead.
      throw new CairnError(
        "LOG_TAIL_UNKNOWN",
        `the tail of log ${chain.id} cannot be determined right now: its sequencer ${segmentSequencer(seg).id} did not answer (at least LSN ${offsetToLsn(lsn(seg.baseLsn), committed.offset)})`,
        { log: chain.id, tailAtLeast: offsetToLsn(lsn(seg.baseLsn), committed.offset) },
      );
    }
    return { tailLsn: offsetToLsn(lsn(seg.baseLsn), committed.offset), sealed: false, segment: seg.index, trimPoint };
  }

  /**
   * Reads committed records from `from` on (up to `limit` entries, never past the tail), crossing
   * segments. LSNs at or below the trim point come back as one trim gap, never skipped silently.
   */
  async read(log: LogId, from: Lsn, options: { limit?: number; signal?: AbortSignal } = {}): Promise<LogReadResult> {
    const limit = Math.max(1, Math.min(options.limit ?? this.deps.options.maxReadRecords, this.deps.options.maxReadRecords));
    const { chain, tail } = await this.chainTail(await this.chain(log, true), options.signal);
    const entries: LogReadEntry[] = [];
    let cursor: number = Math.max(LSN_OLDEST, from);
    const self = this.deps.self().id;
    while (entries.length < limit && cursor < tail.tailLsn) {
      if (cursor <= chain.trimPoint) {
        const to = Math.min(chain.trimPoint, tail.tailLsn - 1);
        entries.push({ kind: "trim-gap", from: lsn(cursor), to: lsn(to) });
        cursor = to + 1;
        continue;
      }
      const where = locate(chain, lsn(cursor));
      if (where.kind === "empty") break;
      if (where.kind === "trimmed") {
        entries.push({ kind: "trim-gap", from: lsn(cursor), to: where.to });
        cursor = where.to + 1;
        continue;
      }
      const seg = where.segment;
      const end = where.end ?? tail.tailLsn;
      if (cursor >= end) break;
      const to = Math.min(end, cursor + (limit - entries.length));
      const base = lsn(seg.baseLsn);
      const got = await readLoglet(
        segmentParams(seg),
        this.deps.transport,
        lsnToOffset(base, lsn(cursor)),
        lsnToOffset(base, lsn(to)),
        { tickMs: this.deps.options.tickMs, ...(self ? { preferred: self } : {}), random: this.random },
        options.signal,
      );
      for (const e of got) {
        if (e.kind === "record") entries.push({ kind: "record", lsn: offsetToLsn(base, e.offset), payload: e.payload });
        else entries.push({ kind: "trim-gap", from: offsetToLsn(base, e.from), to: offsetToLsn(base, e.to) });
      }
      cursor = to;
    }
    return { entries, nextLsn: lsn(cursor), tailLsn: tail.tailLsn, trimPoint: lsn(chain.trimPoint) };
  }

  // ---- trim, seal, reconfigure ------------------------------------------------------------------

  /**
   * Trims the log up to `upTo` (inclusive, clipped below the tail): the chain records the trim point
   * first (reads honour it at once), then the log-servers delete the records in the background.
   */
  async trim(log: LogId, upTo: Lsn, signal?: AbortSignal): Promise<{ trimPoint: Lsn }> {
    const { chain: before, tail } = await this.chainTail(await this.chain(log, true), signal);
    const target = Math.min(upTo, tail.tailLsn - 1);
    if (target <= before.trimPoint) return { trimPoint: lsn(before.trimPoint) };
    const after = await this.writer.update(log, (l) => withTrimPoint(l, lsn(target)));
    this.metrics?.trimPoint.set({ log: String(log) }, after.trimPoint);
    // Physical deletion, best effort: the chain already hides the records.
    const jobs: Promise<unknown>[] = [];
    for (const seg of before.segments) {
      if (seg.baseLsn > target) continue;
      const segEnd = seg.sealedTail ?? tail.tailLsn;
      const last = Math.min(target, segEnd - 1);
      if (last < seg.baseLsn) continue;
      const params = segmentParams(seg);
      const upToOffset = lsnToOffset(lsn(seg.baseLsn), lsn(last));
      for (const n of params.nodeset) {
        jobs.push(
          this.deps.transport.trim(n, { loglet: params.loglet, upTo: upToOffset }, AbortSignal.timeout(5000)).catch((e: unknown) =>
            this.deps.logger.warn({ err: e, log, loglet: params.loglet, node: n }, "log-server did not trim; its copies stay until a later trim"),
          ),
        );
      }
    }
    await Promise.all(jobs);
    return { trimPoint: lsn(after.trimPoint) };
  }

  /** Seals the tail segment (seal, find its tail, repair) and records its tail. Appends then wait for a reconfiguration. */
  async seal(log: LogId, signal?: AbortSignal): Promise<LogChain> {
    const chain = await this.chain(log, true);
    const seg = tailSegment(chain);
    if (seg === undefined) throw new CairnError("LOG_WRITE_UNAVAILABLE", `log ${log} has no segment to seal yet`, { log });
    if (seg.sealedTail !== undefined) return chain;
    return this.sealSegment(log, seg, signal);
  }

  private async sealSegment(log: LogId, seg: Segment, signal?: AbortSignal): Promise<LogChain> {
    const params = segmentParams(seg);
    const started = performance.now();
    const result = await recoverLoglet(params, this.deps.transport, { tickMs: this.deps.options.tickMs, random: this.random }, signal);
    const tail = offsetToLsn(lsn(seg.baseLsn), result.tail);
    if (result.lost.length > 0) {
      this.deps.logger.error({ log, loglet: params.loglet, lost: result.lost }, "committed records of the loglet are on no answering log-server");
    }
    if (result.underReplicated.length > 0) {
      this.deps.logger.warn(
        { log, loglet: params.loglet, underReplicated: result.underReplicated, replication: params.replication, nodeset: params.nodeset },
        "sealed with records on fewer than r log-servers: every other nodeset member that lacks them is unreachable; they stay readable but one more lost server may lose them (a nodeset larger than r avoids this)",
      );
    }
    const chain = await this.writer.update(log, (l) => withSealedTail(l, seg.index, tail));
    this.deps.logger.info(
      { log, segment: seg.index, sealedTail: chain.segments.find((s) => s.index === seg.index)?.sealedTail, repaired: result.copiesWritten, ms: Math.round(performance.now() - started) },
      "sealed segment",
    );
    return chain;
  }

  /**
   * Seals the tail segment if needed and adds a new one at its sealed tail, with the requested (or
   * chosen) kind, replication, nodeset and sequencer. On an empty chain, adds the first segment.
   */
  async reconfigure(log: LogId, request: ReconfigureRequest, context: ReconfigureContext): Promise<LogChain> {
    let chain = await this.chain(log, true);
    let seg = tailSegment(chain);
    if (context.expectTailIndex !== undefined && (seg?.index ?? -1) !== context.expectTailIndex) return chain;
    if (seg !== undefined && seg.sealedTail === undefined) {
      chain = await this.sealSegment(log, seg, context.signal);
      seg = tailSegment(chain);
    }
    const doc = (await this.logsDocument()).doc;
    const planned = await this.planSegment(chain, seg, doc, request, context);
    const now = this.nowMs();
    try {
      const after = await this.writer.update(log, (l) => (seg === undefined ? withFirstSegment(l, planned, now) : withNewSegment(l, seg.index, planned, now)));
      this.metrics?.reconfigurations.inc({ log: String(log), reason: context.reason });
      const added = tailSegment(after)!;
      this.deps.logger.info(
        { log, reason: context.reason, segment: added.index, baseLsn: added.baseLsn, kind: added.kind, sequencer: added.params.sequencer, nodeset: added.params.nodeset, replication: added.params.replication },
        "log reconfigured",
      );
      return after;
    } catch (e) {
      if (context.acceptConcurrent && isCairnError(e, "LOG_CHAIN_CONFLICT")) return this.chain(log, true);
      throw e;
    }
  }

  private async planSegment(
    chain: LogChain,
    previous: Segment | undefined,
    doc: LogsDocument,
    request: ReconfigureRequest,
    context: ReconfigureContext,
  ): Promise<NewSegment> {
    const candidates = context.candidates ?? (await this.deps.placer.candidates(context.signal));
    // A first segment of a single-node cluster with replication 1 is local (DESIGN §5): there is
    // nothing to replicate to, and the local loglet skips the replication machinery.
    const singleNode = previous === undefined && doc.defaultReplication === 1 && candidates.length === 1;
    const kind = request.kind ?? previous?.kind ?? (singleNode ? "local" : this.deps.options.defaultProvider);
    const live = new Map(candidates.map((c) => [c.id, c]));
    const requireLive = (n: NodeId, what: string): Candidate => {
      const c = live.get(n);
      if (c === undefined) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", `${what} ${n} is not a live log-server node (live: ${[...live.keys()].join(", ") || "none"})`, {
          log: chain.id,
          node: n,
        });
      }
      return c;
    };
    const load = new Map<NodeId, number>();
    for (const l of doc.logs) {
      const t = tailSegment(l);
      if (t && t.sealedTail === undefined && l.id !== chain.id) {
        const s = segmentSequencer(t);
        load.set(s.id, (load.get(s.id) ?? 0) + 1);
      }
    }
    const previousSequencer = previous ? segmentSequencer(previous) : undefined;
    if (kind === "local") {
      if (request.replication !== undefined && request.replication !== 1) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", "a local segment has exactly one copy (replication 1)", { log: chain.id });
      }
      if (request.nodeset !== undefined && request.nodeset.length !== 1) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", "a local segment lives on exactly one node: give a nodeset of one", { log: chain.id });
      }
      const node = request.nodeset?.[0] ?? request.sequencer;
      const sequencer = node !== undefined
        ? requireLive(node, "node")
        : chooseSequencer({ log: chain.id, candidates, load, ...(previousSequencer ? { previous: previousSequencer } : {}), ...(context.avoidSequencer ? { avoid: context.avoidSequencer } : {}) });
      return { kind, sequencer: { id: sequencer.id, generation: sequencer.generation }, nodeset: [sequencer.id], replication: 1, placement: node !== undefined ? "manual" : "auto" };
    }
    const replication = request.replication ?? (previous?.kind === "replicated" ? previous.params.replication : doc.defaultReplication);
    let nodeset: NodeId[];
    if (request.nodeset !== undefined) {
      if (new Set(request.nodeset).size !== request.nodeset.length) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", "the nodeset names a node twice", { log: chain.id });
      }
      for (const n of request.nodeset) requireLive(n, "nodeset member");
      if (replication > request.nodeset.length) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", `replication ${replication} needs a nodeset of at least ${replication} nodes, got ${request.nodeset.length}`, {
          log: chain.id,
        });
      }
      nodeset = [...request.nodeset];
    } else {
      const keepManual = previous?.placement === "manual" && previous.kind === "replicated" && request.replication === undefined;
      nodeset = chooseNodeset({
        log: chain.id,
        candidates,
        replication,
        size: keepManual ? previous.params.nodeset.length : desiredNodesetSize(replication, this.deps.options.nodesetSize),
        ...(previous ? { previous: previous.params.nodeset as NodeId[] } : {}),
      });
    }
    const sequencer = request.sequencer !== undefined
      ? requireLive(request.sequencer, "sequencer")
      : chooseSequencer({ log: chain.id, candidates, load, ...(previousSequencer ? { previous: previousSequencer } : {}), ...(context.avoidSequencer ? { avoid: context.avoidSequencer } : {}) });
    const manual = request.nodeset !== undefined || (previous?.placement === "manual" && request.replication === undefined && request.kind === undefined);
    return { kind, sequencer: { id: sequencer.id, generation: sequencer.generation }, nodeset, replication, placement: manual ? "manual" : "auto" };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Coalesces reads that must reflect everything completed before each caller began: a caller
 * arriving while a read is in flight waits for the next read, which starts after it arrived, and
 * shares that one with everyone else who arrived meanwhile.
 */
class FreshReads<T> {
  private inFlight: Promise<T> | undefined;
  private queued: Promise<T> | undefined;

  constructor(private readonly read: () => Promise<T>) {}

  get(): Promise<T> {
    if (this.inFlight === undefined) return this.start();
    this.queued ??= this.inFlight
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<T> {
    const p: Promise<T> = this.read().finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }
}
