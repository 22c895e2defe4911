// Drivers: run a pure core against real I/O. `CoreDriver` ticks the core on a timer, sends the
// requests it emits through a LogServerTransport (each with a deadline matching the core's timeout)
// and feeds the answers back; events go to a callback. On top of it: an appender for the sequencer
// (promises that resolve once an append is committed) and one-shot seal, recovery and read helpers.
//
// Invariants: an append promise resolves only after the sequencer core reported its batch
// committed (durable on r servers, every earlier offset too); after stop() no answer reaches the
// core and every timer and in-flight request is released.
import { CairnError, type ErrorName } from "../../observability/errors.ts";
import type { Logger } from "../../observability/log.ts";
import type { SealResponse } from "../../logserver/protocol.ts";
import { logletOffset, type LogletOffset, type NodeId } from "../../ids/index.ts";
import type { ReplicatedLogletParams } from "./params.ts";
import { CopyTask, type CopyEvent, type CopyOptions, type CopyPlanParams } from "./copy.ts";
import { systemRandom, type Random } from "./random.ts";
import { ReaderCore, type ReaderEvent, type ReaderOptions } from "./reader.ts";
import { TailRecovery, type RecoveryEvent, type RecoveryOptions, type RecoveryResult } from "./recovery.ts";
import type { ProtocolCore, RpcOutcome } from "./requests.ts";
import { SealTask, type SealEvent, type SealOptions } from "./seal.ts";
import { SequencerCore, type AppendRefusal, type SequencerEvent, type SequencerOptions } from "./sequencer.ts";
import { sendCoreRequest, type LogServerTransport } from "./transport.ts";

export interface DriverOptions {
  /** Real time per core tick. Core timeouts are in ticks. */
  readonly tickMs: number;
  readonly logger?: Logger;
  /** Called before every tick with how late the timer fired (ms beyond tickMs): the loop's lag. */
  readonly beforeTick?: (lateMs: number) => void;
}

export const DRIVER_DEFAULTS: DriverOptions = { tickMs: 10 };

export class CoreDriver<Event> {
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly abort = new AbortController();
  private started = false;
  private stopped = false;

  constructor(
    private readonly core: ProtocolCore<Event>,
    private readonly transport: LogServerTransport,
    private readonly onEvent: (event: Event) => void,
    private readonly options: DriverOptions = DRIVER_DEFAULTS,
  ) {}

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.flush();
  }

  /** Whether the tick timer runs now (a quiescent core is not ticked; for tests). */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  /** Ticks while the core has something to time out or retry; idle between its bursts of work. */
  private schedule(): void {
    if (!this.started || this.stopped) return;
    const idle = this.core.quiescent?.() ?? false;
    if (idle && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    } else if (!idle && this.timer === undefined) {
      let lastTickMs = performance.now();
      this.timer = setInterval(() => {
        const now = performance.now();
        this.options.beforeTick?.(now - lastTickMs - this.options.tickMs);
        lastTickMs = now;
        this.core.tick();
        this.flush();
      }, this.options.tickMs);
    }
  }

  /** Sends what the core has ready and delivers its events. Call after feeding the core input. */
  flush(): void {
    this.pumpReady();
    this.schedule();
  }

  private pumpReady(): void {
    while (!this.stopped && this.core.hasReady()) {
      const ready = this.core.ready();
      this.core.advance();
      for (const r of ready.requests) {
        sendCoreRequest(this.transport, r, this.abort.signal, r.timeoutTicks * this.options.tickMs).then(
          (response) => this.deliver(r.id, { ok: true, rpc: r.rpc, response } as RpcOutcome),
          (error: unknown) => this.deliver(r.id, { ok: false, error: error instanceof Error ? error.message : String(error) }),
        );
      }
      for (const e of ready.events) this.onEvent(e);
    }
  }

  private deliver(id: number, outcome: RpcOutcome): void {
    if (this.stopped) return;
    this.core.receive(id, outcome);
    this.flush();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort(new CairnError("NODE_SHUTTING_DOWN", "the loglet driver stopped"));
  }
}

export interface AppenderOptions extends DriverOptions {
  readonly sequencer: Partial<SequencerOptions>;
  /** Appends waiting for in-flight capacity; beyond this append() fails with LOG_BACKPRESSURE. */
  readonly maxQueuedAppends: number;
  /**
   * Appends waiting in the same turn of the event loop are joined into one sequencer batch (one
   * store per log-server) of at most this many records and bytes; 1 record turns joining off.
   */
  readonly maxBatchRecords: number;
  readonly maxBatchBytes: number;
  readonly random: Random;
  /** Called after the committed tail moved or the appender closed (wakes long polls of the tail). */
  readonly onTailChange?: () => void;
}

export const APPENDER_DEFAULTS: AppenderOptions = {
  ...DRIVER_DEFAULTS,
  sequencer: {},
  maxQueuedAppends: 1024,
  maxBatchRecords: 4096,
  maxBatchBytes: 1024 * 1024,
  random: systemRandom,
};

interface Waiting {
  readonly payloads: readonly Uint8Array[];
  readonly bytes: number;
  /** Offsets the sequencer assigned (once it took the batch). */
  assigned?: { first: LogletOffset; last: LogletOffset };
  resolve(range: { first: LogletOffset; last: LogletOffset }): void;
  reject(error: unknown): void;
}

/**
 * The offsets a failed append had been given, if any (from the error's details). An append that
 * failed without offsets was never sent to a log-server: none of its records can be in the loglet.
 */
export function assignedOffsets(error: unknown): { first: LogletOffset; last: LogletOffset } | undefined {
  if (!(error instanceof CairnError)) return undefined;
  const a = (error.details as { assigned?: { first: LogletOffset; last: LogletOffset } } | undefined)?.assigned;
  return a;
}

/**
 * The sequencer of one replicated loglet on this node: append() resolves once the batch is committed.
 * Appends that arrive in the same turn of the event loop (or wait for in-flight room together) go
 * to the sequencer as one batch: one store per log-server and one SQLite transaction there for all
 * of them, instead of one each. Each caller still gets exactly its own offsets, in call order.
 */
export class ReplicatedLogletAppender {
  readonly core: SequencerCore;
  private readonly driver: CoreDriver<SequencerEvent>;
  private readonly options: AppenderOptions;
  private readonly queued: Waiting[] = [];
  /** Batches in flight by first offset: the appends joined into each, in offset order. */
  private readonly inflight = new Map<number, Waiting[]>();
  private closedWith: CairnError | undefined;
  private drainScheduled = false;
  /** The sequencer refused the queue's head for lack of in-flight room: appends now wait for commits. */
  private blocked = false;

  constructor(params: ReplicatedLogletParams, transport: LogServerTransport, options: Partial<AppenderOptions> = {}) {
    this.options = { ...APPENDER_DEFAULTS, ...options };
    this.core = new SequencerCore(params, this.options.random, this.options.sequencer);
    this.driver = new CoreDriver(this.core, transport, (e) => this.onEvent(e), this.options);
  }

  start(): void {
    this.driver.start();
  }

  /** Resolves with the batch's offsets once it is durable on r log-servers (and everything before it). */
  append(payloads: readonly Uint8Array[]): Promise<{ first: LogletOffset; last: LogletOffset }> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      if (this.blocked && this.queued.length >= this.options.maxQueuedAppends) {
        reject(new CairnError("LOG_BACKPRESSURE", `loglet ${this.core.params.loglet}: ${this.queued.length} appends already wait`));
        return;
      }
      let bytes = 0;
      for (const p of payloads) bytes += p.byteLength;
      this.queued.push({ payloads, bytes, resolve, reject });
      // While blocked, the next commit drains the queue.
      if (!this.drainScheduled && !this.blocked) {
        // After this turn's I/O callbacks: every append that arrived meanwhile joins the batch.
        this.drainScheduled = true;
        setImmediate(() => {
          this.drainScheduled = false;
          this.drain();
        });
      }
    });
  }

  /** Stops the sequencer; appends not yet committed fail (they may or may not be committed). */
  stop(): void {
    this.driver.stop();
    this.close({ name: "NODE_SHUTTING_DOWN", message: `the sequencer of loglet ${this.core.params.loglet} stopped`, details: { loglet: this.core.params.loglet } });
  }

  /** The loglet is known sealed (e.g. recorded in the chain): fail pending appends now, commit nothing more. */
  markSealed(): void {
    this.core.markSealed();
    this.driver.flush();
  }

  /** Whether the sequencer's tick timer runs (not while nothing is in flight). */
  get ticking(): boolean {
    return this.driver.ticking;
  }

  /** True once the appender takes no more appends (sealed, write-unavailable or stopped). */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Hands queued appends to the sequencer, joined into batches, while it has in-flight room. */
  private drain(): void {
    const { maxBatchRecords, maxBatchBytes } = this.options;
    while (this.queued.length > 0 && this.closedWith === undefined) {
      // The longest prefix of the queue that fits one batch (at least one append, even a large one).
      let n = 0;
      let records = 0;
      let bytes = 0;
      while (n < this.queued.length) {
        const w = this.queued[n]!;
        if (n > 0 && (records + w.payloads.length > maxBatchRecords || bytes + w.bytes > maxBatchBytes)) break;
        records += w.payloads.length;
        bytes += w.bytes;
        n++;
      }
      const group = this.queued.slice(0, n);
      const payloads = n === 1 ? group[0]!.payloads : group.flatMap((w) => w.payloads);
      const outcome = this.core.append(payloads);
      if (!outcome.ok && outcome.reason === "backpressure") {
        this.blocked = true; // a commit makes room, then drain() runs again
        return;
      }
      this.queued.splice(0, n);
      if (!outcome.ok) {
        const error = refusalError(outcome.reason, this.core.params.loglet);
        for (const w of group) w.reject(error);
        continue;
      }
      let next: number = outcome.first;
      for (const w of group) {
        w.assigned = { first: logletOffset(next), last: logletOffset(next + w.payloads.length - 1) };
        next += w.payloads.length;
      }
      this.inflight.set(outcome.first, group);
      this.driver.flush();
    }
    this.blocked = false;
  }

  private onEvent(e: SequencerEvent): void {
    switch (e.kind) {
      case "committed": {
        const group = this.inflight.get(e.first);
        this.inflight.delete(e.first);
        for (const w of group ?? []) w.resolve(w.assigned!);
        this.options.onTailChange?.();
        break;
      }
      case "failed": {
        const group = this.inflight.get(e.first);
        this.inflight.delete(e.first);
        for (const w of group ?? []) w.reject(refusalError(e.reason, this.core.params.loglet, w.assigned));
        break;
      }
      case "sealed":
      case "write-unavailable":
        this.close(refusal(e.kind, this.core.params.loglet));
        return;
      case "server-refused":
        this.options.logger?.warn({ loglet: this.core.params.loglet, node: e.node, status: e.status }, "log-server refused this sequencer");
        return;
    }
    if (this.queued.length > 0 && !this.drainScheduled) this.drain();
  }

  private close(failure: { name: ErrorName; message: string; details: Record<string, unknown> }): void {
    const error = new CairnError(failure.name, failure.message, failure.details);
    this.closedWith ??= error;
    this.options.onTailChange?.();
    for (const w of this.queued.splice(0)) w.reject(error);
    for (const group of this.inflight.values()) {
      for (const w of group) {
        // Plus the offsets this append had: the caller may learn its fate from the sealed tail.
        w.reject(w.assigned ? new CairnError(failure.name, failure.message, { ...failure.details, assigned: w.assigned }) : error);
      }
    }
    this.inflight.clear();
  }
}

function refusalError(reason: AppendRefusal, loglet: string, assigned?: { first: LogletOffset; last: LogletOffset }): CairnError {
  const r = refusal(reason, loglet, assigned);
  return new CairnError(r.name, r.message, r.details);
}

function refusal(
  reason: AppendRefusal,
  loglet: string,
  assigned?: { first: LogletOffset; last: LogletOffset },
): { name: ErrorName; message: string; details: Record<string, unknown> } {
  const names: Record<AppendRefusal, ErrorName> = {
    sealed: "LOG_SEALED",
    "write-unavailable": "LOG_WRITE_UNAVAILABLE",
    "loglet-full": "LOG_LOGLET_FULL",
    backpressure: "LOG_BACKPRESSURE",
    "too-large": "LOG_MALFORMED_REQUEST",
    empty: "LOG_MALFORMED_REQUEST",
  };
  return {
    name: names[reason],
    message: `loglet ${loglet}: append ${assigned ? "failed" : "refused"} (${reason})`,
    details: { loglet, reason, ...(assigned ? { assigned } : {}) },
  };
}

/** Runs a one-shot core until it reports a final event. */
function runToEnd<Event, T>(
  core: ProtocolCore<Event>,
  transport: LogServerTransport,
  options: DriverOptions,
  onEvent: (e: Event) => { done: true; value: T } | { done: true; error: unknown } | undefined,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = (r: { done: true; value: T } | { done: true; error: unknown }) => {
      driver.stop();
      signal?.removeEventListener("abort", onAbort);
      if ("error" in r) reject(r.error);
      else resolve(r.value);
    };
    const onAbort = () => finish({ done: true, error: signal?.reason });
    const driver = new CoreDriver(core, transport, (e) => {
      const r = onEvent(e);
      if (r) finish(r);
    }, options);
    if (signal?.aborted) return reject(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    driver.start();
  });
}

/**
 * Copies a sealed loglet onto more log-servers (re-replication); resolves with the records copied
 * once every target holds every record durably. `onProgress` sees the records copied so far.
 */
export function copyLoglet(
  params: CopyPlanParams,
  transport: LogServerTransport,
  options: Partial<CopyOptions & DriverOptions> & { onProgress?: (copiedRecords: number) => void; maxLoopLagMs?: number } = {},
  signal?: AbortSignal,
): Promise<number> {
  const core = new CopyTask(params, options);
  // A late tick means this node's event loop is busy (its appends wait too): that tick adds no credit.
  const maxLoopLagMs = options.maxLoopLagMs;
  const beforeTick = maxLoopLagMs === undefined ? undefined : (lateMs: number) => (lateMs > maxLoopLagMs ? core.lagged() : undefined);
  return runToEnd<CopyEvent, number>(core, transport, { ...DRIVER_DEFAULTS, ...options, ...(beforeTick ? { beforeTick } : {}) }, (e) => {
    if (e.kind === "progress") {
      options.onProgress?.(e.copiedRecords);
      return undefined;
    }
    if (e.kind === "done") return { done: true, value: e.copiedRecords };
    const code = e.reason === "source-missing" ? "LOG_REREPLICATION_SOURCE_MISSING" : "LOG_REREPLICATION_TARGET_FAILED";
    return {
      done: true,
      error: new CairnError(code, e.detail, { loglet: params.loglet, ...(e.node !== undefined ? { node: e.node } : {}), ...(e.offset !== undefined ? { offset: e.offset } : {}) }),
    };
  }, signal);
}

/** Seals the loglet on an f-majority of its nodeset; answers per server. */
export function sealLoglet(
  params: ReplicatedLogletParams,
  transport: LogServerTransport,
  options: Partial<SealOptions & DriverOptions> = {},
  signal?: AbortSignal,
): Promise<ReadonlyMap<NodeId, SealResponse>> {
  return runToEnd<SealEvent, ReadonlyMap<NodeId, SealResponse>>(new SealTask(params, options), transport, { ...DRIVER_DEFAULTS, ...options }, (e) =>
    e.kind === "sealed"
      ? { done: true, value: e.responses }
      : { done: true, error: new CairnError("LOG_RECOVERY_FAILED", `sealing loglet ${params.loglet}: ${e.reason}`, { loglet: params.loglet }) },
  signal);
}

/** Seal, find the tail, repair: the loglet's final tail once every record below it has r copies. */
export function recoverLoglet(
  params: ReplicatedLogletParams,
  transport: LogServerTransport,
  options: Partial<RecoveryOptions & DriverOptions> & { random?: Random } = {},
  signal?: AbortSignal,
): Promise<RecoveryResult> {
  const core = new TailRecovery(params, options.random ?? systemRandom, options);
  return runToEnd<RecoveryEvent, RecoveryResult>(core, transport, { ...DRIVER_DEFAULTS, ...options }, (e) =>
    e.kind === "done"
      ? { done: true, value: e.result }
      : {
          done: true,
          error: new CairnError("LOG_RECOVERY_FAILED", `recovering loglet ${params.loglet} (${e.phase}): ${e.reason}`, {
            loglet: params.loglet,
            phase: e.phase,
          }),
        },
  signal);
}

export type ReadEntryOut =
  | { readonly kind: "record"; readonly offset: LogletOffset; readonly payload: Uint8Array }
  | { readonly kind: "trim-gap"; readonly from: LogletOffset; readonly to: LogletOffset };

/** Reads the committed range [from, toExclusive) (below a known committed or sealed tail). */
export function readLoglet(
  params: ReplicatedLogletParams,
  transport: LogServerTransport,
  from: LogletOffset,
  toExclusive: LogletOffset,
  options: Partial<ReaderOptions & DriverOptions> & { random?: Random } = {},
  signal?: AbortSignal,
): Promise<ReadEntryOut[]> {
  const entries: ReadEntryOut[] = [];
  const core = new ReaderCore(params, from, toExclusive, options.random ?? systemRandom, options);
  return runToEnd<ReaderEvent, ReadEntryOut[]>(core, transport, { ...DRIVER_DEFAULTS, ...options }, (e) => {
    switch (e.kind) {
      case "record":
      case "trim-gap":
        entries.push(e);
        return undefined;
      case "done":
        return { done: true, value: entries };
      case "failed":
        return {
          done: true,
          error: new CairnError("LOG_RECOVERY_FAILED", `reading loglet ${params.loglet}: ${e.reason}`, { loglet: params.loglet, at: e.at }),
        };
    }
  }, signal);
}
