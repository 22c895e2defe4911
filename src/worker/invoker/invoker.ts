// The invoker of one partition's leader: runs attempts of the partition's ready invocations against
// their services' endpoints (the service protocol, request/response), proposes each attempt's
// outcome as one record, fires durable timers, ships the outbox to other partitions' leaders, and
// wakes the clients waiting for a result. It holds nothing that matters for correctness: a new
// leader's invoker rebuilds everything from the partition store.
// Invariants: at most one attempt per invocation at a time; an attempt's outcome counts only once its
// record is applied (the state machine ignores it if the journal moved on); a deposed leader's
// proposals are fenced by the log; outbox entries leave in seq order and are truncated only after
// their partition's leader accepted them.
import { createHash } from "node:crypto";
import type { Logger } from "../../observability/log.ts";
import type { InvokerSettings as InvokerConfig } from "./model.ts";
import type { RecordBody } from "../envelope.ts";
import { decodeEnvelope } from "../envelope.ts";
import type { Outcome } from "../core.ts";
import type { PartitionStore } from "../store.ts";
import { parseInvocationId } from "./ids.ts";
import type { HandlerSchema, RetryPolicy, SchemaRegistry, SchemaSource, ServiceSchema } from "./model.ts";
import { chooseProtocolVersion, decodeMessage, MessageType, type AttemptOutcome, type InvocationTransport } from "./protocol/index.ts";
import { isJournalCommand, type AttemptOutcomeRecord, type FirstAttempt, type DeliverableRecord, type FailureValue, type ResolvedTargetAt, type ResultValue, type TargetSpec } from "./records.ts";
import type { InvokerAction } from "./state-machine.ts";
import type { InvocationRow } from "./tables.ts";

export interface InvokerDeps {
  readonly partition: number;
  readonly store: () => PartitionStore;
  readonly propose: (body: RecordBody, signal: AbortSignal) => Promise<Outcome>;
  readonly transport: InvocationTransport;
  readonly schema: SchemaSource;
  readonly config: InvokerConfig;
  /** Sends records to another partition's leader (it proposes them there, in order). */
  readonly deliver: (partition: number, records: Uint8Array[]) => Promise<void>;
  readonly nowMs: () => number;
  readonly logger: Logger;
  readonly onAttempt?: (outcome: AttemptOutcome["kind"], seconds: number, journalEntries: number) => void;
  readonly onCompleted?: (result: ResultValue) => void;
}

const OUTBOX_BATCH = 100;
const OUTBOX_RETRY_MS = 200;
/** Timers further away than this are re-read from the store later instead of holding a setTimeout. */
const TIMER_HORIZON_MS = 60 * 60 * 1000;
const MAX_TIMERS_LOADED = 100_000;
const encoder = new TextEncoder();

export class PartitionInvoker {
  private readonly inFlight = new Set<string>();
  private readonly rerun = new Set<string>();
  private readonly queue = new Set<string>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly waiters = new Map<string, Set<(r: ResultValue) => void>>();
  private readonly stopping = new AbortController();
  private shipping = false;
  /** First attempts running before their invocation is recorded, by object (or id): they count against the limit. */
  private readonly speculating = new Set<string>();
  private horizonTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: InvokerDeps) {}

  /** Resumes everything the store says is pending: ready and backing-off invocations, timers, the outbox. */
  start(): void {
    const tables = this.deps.store().invocations;
    for (const id of tables.activeIds()) {
      const row = tables.get(id);
      if (row === undefined) continue;
      if (row.status === "ready") this.run(id);
      else if (row.status === "backing-off") this.schedule(`retry:${id}`, row.nextRetryMs ?? this.deps.nowMs(), () => this.run(id));
    }
    this.loadTimers();
    this.horizonTimer = setInterval(() => this.loadTimers(), TIMER_HORIZON_MS / 2);
    this.shipOutbox();
  }

  stop(): void {
    this.stopping.abort();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.horizonTimer) clearInterval(this.horizonTimer);
    this.queue.clear();
    this.waiters.clear();
  }

  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /** What the state machine asked for after a batch applied. */
  handle(actions: readonly InvokerAction[]): void {
    if (this.stopped) return;
    for (const a of actions) {
      switch (a.kind) {
        case "run":
          this.run(a.invocationId);
          break;
        case "retry":
          this.schedule(`retry:${a.invocationId}`, a.atMs, () => this.run(a.invocationId));
          break;
        case "timer":
          this.scheduleTimer(a.invocationId, a.completionId, a.atMs);
          break;
        case "completed":
          this.deps.onCompleted?.(a.result);
          this.resolveWaiters(a.invocationId, a.result);
          break;
        case "outbox":
          this.shipOutbox();
          break;
      }
    }
  }

  /**
   * Waits for the invocation's result, up to `timeoutMs` (then undefined). Register before the
   * invocation can complete (before proposing it) so the completion is not missed.
   */
  waitFor(invocationId: string, timeoutMs: number): { promise: Promise<ResultValue | undefined>; cancel: () => void } {
    let set = this.waiters.get(invocationId);
    if (set === undefined) this.waiters.set(invocationId, (set = new Set()));
    let resolveFn!: (r: ResultValue | undefined) => void;
    const promise = new Promise<ResultValue | undefined>((resolve) => (resolveFn = resolve));
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const waiters = set;
    const finish = (r: ResultValue | undefined) => {
      clearTimeout(timer);
      waiters.delete(finish);
      if (waiters.size === 0 && this.waiters.get(invocationId) === waiters) this.waiters.delete(invocationId);
      resolveFn(r);
    };
    waiters.add(finish);
    return { promise, cancel: () => finish(undefined) };
  }

  private resolveWaiters(invocationId: string, result: ResultValue): void {
    const set = this.waiters.get(invocationId);
    if (set === undefined) return;
    for (const w of [...set]) w(result);
  }

  // ---- attempts ----------------------------------------------------------------------------------

  private run(id: string): void {
    if (this.stopped) return;
    if (this.inFlight.has(id)) {
      this.rerun.add(id);
      return;
    }
    if (this.inFlight.size >= this.deps.config["max-concurrent-attempts"]) {
      this.queue.add(id);
      return;
    }
    this.inFlight.add(id);
    void this.attempt(id)
      .catch((e: unknown) => {
        if (!this.stopped) this.deps.logger.warn({ err: e, invocation: id, partition: this.deps.partition }, "an invocation attempt could not be recorded; retrying");
        if (!this.stopped) this.schedule(`retry:${id}`, this.deps.nowMs() + this.deps.config["retry-initial-interval-ms"], () => this.run(id));
      })
      .finally(() => {
        this.inFlight.delete(id);
        if (this.rerun.delete(id)) this.run(id);
        const next = this.queue.values().next();
        if (!next.done) {
          this.queue.delete(next.value);
          this.run(next.value);
        }
      });
  }

  private async attempt(id: string): Promise<void> {
    const store = this.deps.store();
    const row = store.invocations.get(id);
    if (row === undefined || (row.status !== "ready" && row.status !== "backing-off")) return;
    if (row.status === "backing-off" && row.nextRetryMs !== null && row.nextRetryMs > this.deps.nowMs()) {
      this.schedule(`retry:${id}`, row.nextRetryMs, () => this.run(id));
      return;
    }
    const journal = store.invocations.journal(id);
    const t = row.target;
    const executed = await this.execute(row, journal.map((e) => e.frame), t.key === null ? [] : this.stateMap(t.service, t.key));
    if (executed === undefined) return;
    await this.propose({ kind: "invoker-attempt", invocationId: id, journalLength: journal.length, commandCount: row.commandCount, ...executed });
  }

  /**
   * The first attempt of a plain service's call, run before the invocation is recorded: when it ends
   * or suspends, the invocation and the attempt's outcome go into the log as one record (one log
   * write for a call that needs no other). Undefined when it failed (the invocation is then recorded
   * alone and retried as usual) or when the invoker is at its concurrency limit.
   */
  async firstAttempt(row: InvocationRow, input: Uint8Array): Promise<FirstAttempt | undefined> {
    if (this.stopped || this.inFlight.size + this.speculating.size >= this.deps.config["max-concurrent-attempts"]) return undefined;
    const t = row.target;
    const store = this.deps.store();
    // One at a time per object, and only while no exclusive handler holds it (else it would only be dropped).
    const objectKey = t.key === null ? undefined : `${t.service}/${t.key}`;
    if (objectKey !== undefined && (this.speculating.has(objectKey) || store.invocations.lockHolder(t.service, t.key!) !== undefined)) return undefined;
    const token = objectKey ?? `#${row.id}`;
    this.speculating.add(token);
    try {
      const objectVersion = t.key === null ? undefined : store.objectVersion(t.service, t.key);
      const stateMap = t.key === null ? [] : this.stateMap(t.service, t.key);
      const executed = await this.execute(row, [input], stateMap);
      if (executed === undefined || executed.outcome.kind === "error") return undefined;
      return { frames: executed.frames, targets: executed.targets, outcome: executed.outcome, ...(objectVersion === undefined ? {} : { objectVersion }) };
    } finally {
      this.speculating.delete(token);
    }
  }

  private stateMap(service: string, key: string): Array<{ key: Uint8Array; value: Uint8Array }> {
    const store = this.deps.store();
    return store.names(service, key).map((name) => ({ key: encoder.encode(name), value: store.get(service, key, name) ?? new Uint8Array() }));
  }

  /** Runs one attempt from `journal` (raw frames) and says what to record; undefined once stopped. */
  private async execute(
    row: InvocationRow,
    journal: readonly Uint8Array[],
    stateMap: Array<{ key: Uint8Array; value: Uint8Array }>,
  ): Promise<{ frames: Uint8Array[]; targets: ResolvedTargetAt[]; outcome: AttemptOutcomeRecord } | undefined> {
    const id = row.id;
    const registry = await this.deps.schema.get();
    const service = registry.services.find((s) => s.name === row.target.service);
    const deployment = service === undefined ? undefined : registry.deployments.find((d) => d.id === service.deploymentId);
    const handler = service?.handlers.find((h) => h.name === row.target.handler);
    if (service === undefined || deployment === undefined || handler === undefined) {
      const reason = `no deployment serves ${row.target.service}/${row.target.handler} (register one with cairn ctl deployments register)`;
      return { frames: [], targets: [], outcome: this.retryOutcome(row, service, handler, reason, undefined) };
    }
    const version = chooseProtocolVersion(deployment.minProtocolVersion, deployment.maxProtocolVersion);
    if (version === undefined) {
      const reason = `deployment ${deployment.id} speaks service protocol ${deployment.minProtocolVersion}..${deployment.maxProtocolVersion}; cairn speaks 5..7`;
      return { frames: [], targets: [], outcome: this.retryOutcome(row, service, handler, reason, undefined) };
    }
    const idBytes = parseInvocationId(id)!;
    const t = row.target;
    const started = performance.now();
    const outcome = await this.deps.transport.attempt({
      endpoint: { uri: deployment.uri, http: deployment.http, headers: deployment.additionalHeaders },
      service: t.service,
      handler: t.handler,
      key: t.key,
      invocationId: id,
      protocolVersion: version,
      start: {
        id: idBytes,
        debugId: id,
        knownEntries: journal.length,
        stateMap,
        partialState: false,
        key: t.key ?? "",
        retryCountSinceLastStoredEntry: row.retryCount,
        durationSinceLastStoredEntryMs: Math.max(0, this.deps.nowMs() - row.lastEntryMs),
        randomSeed: seedOf(idBytes),
      },
      journal,
      timeoutMs: this.deps.config["attempt-timeout-ms"],
      signal: this.stopping.signal,
    });
    if (this.stopped) return undefined;
    this.deps.onAttempt?.(outcome.kind, (performance.now() - started) / 1000, journal.length);
    let record: AttemptOutcomeRecord;
    let frames: Uint8Array[] = outcome.frames.map((f) => f.raw);
    switch (outcome.kind) {
      case "end":
        record = { kind: "end" };
        break;
      case "suspended":
        record = { kind: "suspended", completions: outcome.awaiting.completions, signals: outcome.awaiting.signals, namedSignals: outcome.awaiting.namedSignals };
        break;
      case "error": {
        frames = [];
        const e = outcome.error;
        const message = `${e.code} ${e.message}${e.relatedCommandName ? ` (at ${e.relatedCommandName})` : ""}`;
        if (e.behavior === "fail") record = { kind: "error", message, retryAtMs: null, fail: { code: e.code, message: e.message, metadata: [] } };
        else if (e.behavior === "pause") record = { kind: "error", message, retryAtMs: null, fail: null };
        else record = this.retryOutcome(row, service, handler, message, e.nextRetryDelayMs);
        break;
      }
      case "failed":
        frames = [];
        record = this.retryOutcome(row, service, handler, outcome.reason, outcome.retryAfterMs);
        break;
    }
    const targets = record.kind === "error" ? [] : this.resolveTargets(registry, row, frames);
    return { frames, targets, outcome: record };
  }

  private async propose(body: RecordBody): Promise<void> {
    await this.deps.propose(body, AbortSignal.any([this.stopping.signal, AbortSignal.timeout(30_000)]));
  }

  /** The next retry of a failed attempt under the handler's (or service's, or cluster's) retry policy. */
  private retryOutcome(row: InvocationRow, service: ServiceSchema | undefined, handler: HandlerSchema | undefined, message: string, delayOverrideMs: number | undefined): AttemptOutcomeRecord {
    const c = this.deps.config;
    const policy: RetryPolicy = {
      initialIntervalMs: c["retry-initial-interval-ms"],
      maxIntervalMs: c["retry-max-interval-ms"],
      factor: c["retry-factor"],
      maxAttempts: c["retry-max-attempts"] === 0 ? null : c["retry-max-attempts"],
      onMaxAttempts: c["retry-on-max-attempts"],
      ...definedOnly(service?.retryPolicy),
      ...definedOnly(handler?.retryPolicy),
    };
    const failures = row.retryCount + 1;
    if (policy.maxAttempts !== null && failures >= policy.maxAttempts) {
      if (policy.onMaxAttempts === "kill") return { kind: "error", message, retryAtMs: null, fail: { code: 500, message: `gave up after ${failures} attempts: ${message}`, metadata: [] } };
      return { kind: "error", message: `paused after ${failures} attempts: ${message}`, retryAtMs: null, fail: null };
    }
    const delayMs = delayOverrideMs ?? Math.min(policy.maxIntervalMs, policy.initialIntervalMs * policy.factor ** (failures - 1));
    return { kind: "error", message, retryAtMs: this.deps.nowMs() + Math.round(delayMs), fail: null };
  }

  /** The types and retention of every Call/OneWayCall target among the attempt's frames. */
  private resolveTargets(registry: SchemaRegistry, row: InvocationRow, frames: readonly Uint8Array[]): ResolvedTargetAt[] {
    const out: ResolvedTargetAt[] = [];
    let index = row.commandCount;
    for (const frame of frames) {
      const type = (frame[0]! << 8) | frame[1]!;
      if (!isJournalCommand(type)) continue;
      const commandIndex = index++;
      if (type !== MessageType.CallCommand && type !== MessageType.OneWayCallCommand) continue;
      const msg = decodeMessage(type, frame.subarray(8));
      if (msg.kind !== "call" && msg.kind !== "oneWayCall") continue;
      out.push({ commandIndex, resolved: resolveTarget(registry, msg.serviceName, msg.handlerName, msg.key === "" ? null : msg.key, msg.idempotencyKey !== undefined, this.deps.config) });
    }
    return out;
  }

  // ---- timers --------------------------------------------------------------------------------------

  private loadTimers(): void {
    if (this.stopped) return;
    const horizon = this.deps.nowMs() + TIMER_HORIZON_MS;
    for (const t of this.deps.store().invocations.timers(MAX_TIMERS_LOADED)) {
      if (t.fireMs > horizon) break;
      this.scheduleTimer(t.invocationId, t.completionId, t.fireMs);
    }
  }

  private scheduleTimer(invocationId: string, completionId: number, atMs: number): void {
    if (atMs > this.deps.nowMs() + TIMER_HORIZON_MS) return;
    this.schedule(`timer:${invocationId}:${completionId}`, atMs, () => {
      void this.propose({ kind: "invocation-timer", invocationId, completionId }).catch((e: unknown) => {
        if (this.stopped) return;
        this.deps.logger.warn({ err: e, invocation: invocationId }, "firing a timer failed; retrying");
        this.scheduleTimer(invocationId, completionId, this.deps.nowMs() + OUTBOX_RETRY_MS);
      });
    });
  }

  private schedule(key: string, atMs: number, fn: () => void): void {
    if (this.stopped) return;
    const old = this.timers.get(key);
    if (old !== undefined) clearTimeout(old);
    const t = setTimeout(() => {
      this.timers.delete(key);
      fn();
    }, Math.max(0, atMs - this.deps.nowMs()));
    this.timers.set(key, t);
  }

  // ---- outbox --------------------------------------------------------------------------------------

  private shipOutbox(): void {
    if (this.shipping || this.stopped) return;
    this.shipping = true;
    void this.shipLoop()
      .catch((e: unknown) => {
        if (!this.stopped) this.deps.logger.warn({ err: e, partition: this.deps.partition }, "shipping the outbox failed; retrying");
        if (!this.stopped) setTimeout(() => this.shipOutbox(), OUTBOX_RETRY_MS);
      })
      .finally(() => (this.shipping = false));
  }

  private async shipLoop(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const entries = this.deps.store().invocations.outbox(OUTBOX_BATCH);
      if (entries.length === 0) return;
      const byPartition = new Map<number, Uint8Array[]>();
      for (const e of entries) {
        const list = byPartition.get(e.partition) ?? [];
        list.push(e.record);
        byPartition.set(e.partition, list);
      }
      const results = await Promise.allSettled([...byPartition].map(([p, records]) => this.deps.deliver(p, records).then(() => p)));
      const failed = new Set<number>();
      results.forEach((r, i) => {
        if (r.status === "rejected") failed.add([...byPartition.keys()][i]!);
      });
      // Truncate the prefix every target accepted; the rest is sent again (the targets deduplicate).
      let upTo = 0;
      for (const e of entries) {
        if (failed.has(e.partition)) break;
        upTo = e.seq;
      }
      if (upTo > 0) await this.propose({ kind: "outbox-truncate", upToSeq: upTo });
      if (failed.size > 0) throw new Error(`partitions ${[...failed].join(", ")} did not accept deliveries`);
    }
  }
}

/** A target's types and result retention from the registry, or why it cannot be called. */
export function resolveTarget(registry: SchemaRegistry, service: string, handler: string, key: string | null, idempotent: boolean, config: InvokerConfig): { target: TargetSpec; retentionMs: number } | { unknown: string } {
  const s = registry.services.find((x) => x.name === service);
  const h = s?.handlers.find((x) => x.name === handler);
  if (s === undefined || h === undefined) return { unknown: `no service ${service} with a handler ${handler} is registered` };
  const keyed = s.ty !== "service";
  if (keyed !== (key !== null)) return { unknown: keyed ? `${service} is keyed: calls need a key` : `${service} is a plain service: calls take no key` };
  const handlerType = s.ty === "service" ? null : (h.ty ?? (s.ty === "workflow" ? "workflow" : "exclusive"));
  const retentionMs =
    handlerType === "workflow"
      ? (h.workflowCompletionRetentionMs ?? config["workflow-retention-ms"])
      : idempotent
        ? (h.idempotencyRetentionMs ?? s.idempotencyRetentionMs ?? config["idempotency-retention-ms"])
        : config["completed-retention-ms"];
  return { target: { service, handler, key, serviceType: s.ty, handlerType }, retentionMs };
}

/** A stable 64-bit seed per invocation (ctx.rand): the same on every attempt and every leader. */
function seedOf(id: Uint8Array): bigint {
  return createHash("sha256").update(id).digest().readBigUInt64BE(0);
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  if (o === undefined) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Decodes records another partition sent (the envelope encoding of encodeDeliverable). */
export function decodeDeliverable(bytes: Uint8Array): DeliverableRecord | undefined {
  const d = decodeEnvelope(bytes);
  if (d.kind !== "ok") return undefined;
  const b = d.envelope.body;
  return b.kind === "invoke" || b.kind === "invocation-notify" || b.kind === "invocation-control" || b.kind === "invocation-attach" ? b : undefined;
}

export type { FailureValue };
