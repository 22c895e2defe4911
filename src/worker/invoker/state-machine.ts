// The invocation state machine: how every replica of a partition applies the invocation records
// (records.ts) to the partition store's invocation tables (tables.ts), inside the transaction that
// also writes the applied LSN. It decides everything from the record and the store: admission (a
// virtual object's exclusive handlers run one at a time per key, the others wait in a FIFO inbox),
// what each journal command does (state, timers, promises, calls, signals), suspension and
// resumption, retries as the proposer decided them, completion and the result's delivery to callers.
// What only the leader does (run an attempt, fire a timer, ship the outbox, answer a waiting client)
// comes out as `InvokerAction`s; followers drop them.
// Invariants: no clock, no randomness (ids of calls are derived from the parent id and the command's
// index); an attempt's commands are stored together, in order, at the journal position the attempt
// started from (notifications that arrived meanwhile move after them: the SDK never saw them); an
// attempt whose journal no longer matches is ignored; a completed invocation is never run again.
import { invariant } from "../../observability/errors.ts";
import { encodeEnvelope } from "../envelope.ts";
import { partitionKeyOf, xxh64 } from "../key-hash.ts";
import { idempotentSeed, workflowSeed } from "./seeds.ts";
import { derivedInvocationId, formatInvocationId, parseAwakeableId, parseInvocationId, partitionKeyOfInvocation } from "./ids.ts";
import { decodeMessage, encodeFrame, MessageType, type Failure, type NotificationResult, type ProtocolMessage } from "./protocol/index.ts";
import { isJournalCommand } from "./records.ts";
import type {
  AttachRecord,
  AttemptRecord,
  ControlRecord,
  DeliverableRecord,
  FailureValue,
  InvocationRecord,
  InvokeRecord,
  NotifyRecord,
  ResolvedTarget,
  ResultValue,
  Source,
  TargetSpec,
  TimerRecord,
} from "./records.ts";
import type { Awaiting, InvocationRow, InvocationTables, JournalEntry, ResultSink } from "./tables.ts";

/** What the leader does after a record applied (followers ignore these). */
export type InvokerAction =
  | { readonly kind: "run"; readonly invocationId: string }
  | { readonly kind: "retry"; readonly invocationId: string; readonly atMs: number }
  | { readonly kind: "timer"; readonly invocationId: string; readonly completionId: number; readonly atMs: number }
  | { readonly kind: "completed"; readonly invocationId: string; readonly result: ResultValue }
  | { readonly kind: "outbox" };

export type InvocationOutcome =
  | { readonly status: "invocation"; readonly invocationId: string; readonly previously: boolean; readonly state: InvocationRow["status"] | "gone" }
  /** Also a record another partition delivered again (applied once already): its sender may move on. */
  | { readonly status: "ignored"; readonly reason: "no-effect" };

/** How the store's object state is reached (the data plane's `state` table, shared with invocations). */
export interface ObjectState {
  get(service: string, key: string, name: string): Uint8Array | undefined;
  names(service: string, key: string): string[];
  set(service: string, key: string, name: string, value: Uint8Array): void;
  delete(service: string, key: string, name: string): void;
  clear(service: string, key: string): void;
  /** Bumps the object's version once per attempt that changed its state. */
  touch(service: string, key: string): void;
  objectVersion(service: string, key: string): number;
}

export interface StateMachineOptions {
  readonly partition: number;
  /** The partition that owns a 64-bit partition key (from the fixed partition table). */
  readonly partitionOfKey: (partitionKey: bigint) => number;
  /** Most expired invocations deleted per applied invocation record (bounded work per record). */
  readonly expireBatch: number;
}

/** Ids the SDK and the ingress agree on: CANCEL is signal 1. */
export const CANCEL_SIGNAL = 1;
const OWN_OUTBOX_SOURCE = -1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export const KILLED: FailureValue = { code: 409, message: "killed", metadata: [] };
export const CANCELED: FailureValue = { code: 409, message: "canceled", metadata: [] };

/** The string id of a notification, as stored in the journal's `nid` column. */
export function notificationKey(id: { completionId: number } | { signalId: number } | { signalName: string }): string {
  if ("completionId" in id) return `c:${id.completionId}`;
  if ("signalId" in id) return `s:${id.signalId}`;
  return `n:${id.signalName}`;
}

function awaitingKeys(a: Awaiting): string[] {
  return [...a.completions.map((c) => `c:${c}`), ...a.signals.map((s) => `s:${s}`), ...a.namedSignals.map((n) => `n:${n}`)];
}

export function resultToProtocol(r: ResultValue): { value: Uint8Array } | { failure: Failure } {
  return "value" in r ? { value: r.value } : { failure: { code: r.failure.code, message: r.failure.message, metadata: [...r.failure.metadata] } };
}

function failureOf(f: Failure): FailureValue {
  return { code: f.code, message: f.message, metadata: f.metadata.map((m) => ({ key: m.key, value: m.value })) };
}

export function notificationFrame(type: number, id: { completionId: number } | { signalId: number } | { signalName: string }, result: NotificationResult): JournalEntry {
  return { type, nid: notificationKey(id), frame: encodeFrame({ kind: "notification", type, id, result }) };
}

export function inputFrame(input: Uint8Array, headers: ReadonlyArray<readonly [string, string]>): JournalEntry {
  return { type: MessageType.InputCommand, nid: null, frame: encodeFrame({ kind: "input", headers: headers.map(([key, value]) => ({ key, value })), value: input, name: "" }) };
}

function isExclusive(t: TargetSpec): boolean {
  return t.key !== null && (t.handlerType === "exclusive" || t.handlerType === "workflow");
}

export class InvocationStateMachine {
  private actions: InvokerAction[] = [];

  constructor(
    private readonly tables: InvocationTables,
    private readonly state: ObjectState,
    private readonly options: StateMachineOptions,
  ) {}

  /** Applies one record at record time `tsMs`; returns its outcome and what the leader should do. */
  apply(record: InvocationRecord, tsMs: number): { outcome: InvocationOutcome; actions: InvokerAction[] } {
    this.actions = [];
    this.expire(tsMs);
    const outcome = this.dispatch(record, tsMs);
    const actions = this.actions;
    this.actions = [];
    return { outcome, actions };
  }

  private dispatch(record: InvocationRecord, tsMs: number): InvocationOutcome {
    switch (record.kind) {
      case "invoke":
        if (!this.firstDelivery(record.source)) return { status: "ignored", reason: "no-effect" };
        return this.invoke(record, tsMs);
      case "invoker-attempt":
        return this.attempt(record, tsMs);
      case "invocation-notify":
        if (!this.firstDelivery(record.source)) return { status: "ignored", reason: "no-effect" };
        return this.notify(record, tsMs);
      case "invocation-timer":
        return this.timer(record, tsMs);
      case "invocation-control":
        if (!this.firstDelivery(record.source)) return { status: "ignored", reason: "no-effect" };
        return this.control(record, tsMs);
      case "invocation-attach":
        if (!this.firstDelivery(record.source)) return { status: "ignored", reason: "no-effect" };
        return this.attachTo(record, tsMs);
      case "outbox-truncate":
        this.tables.truncateOutbox(record.upToSeq);
        return { status: "ignored", reason: "no-effect" };
    }
  }

  /** Records from another partition's outbox apply once per (source, seq), in seq order. */
  private firstDelivery(source: Source | null): boolean {
    if (source === null) return true;
    if (source.seq <= this.tables.inboundSeq(source.partition)) return false;
    this.tables.setInboundSeq(source.partition, source.seq);
    return true;
  }

  private expire(tsMs: number): void {
    if (this.tables.oldestExpiryMs() >= tsMs) return;
    for (const id of this.tables.expiredIds(tsMs, this.options.expireBatch)) {
      const row = this.tables.get(id);
      this.tables.delete(id);
      // A workflow's state and promises live as long as its run's result.
      if (row?.target.serviceType === "workflow" && row.target.handlerType === "workflow" && row.target.key !== null) {
        this.tables.deletePromises(row.target.service, row.target.key);
        this.state.clear(row.target.service, row.target.key);
      }
    }
  }

  // ---- admission -------------------------------------------------------------------------------

  private invoke(r: InvokeRecord, tsMs: number): InvocationOutcome {
    const existing = this.tables.get(r.invocationId);
    if (existing !== undefined) {
      // The same idempotency key or workflow run again: the caller attaches to the first one.
      if (r.caller !== null) this.addSink(existing, { ...r.caller, notificationType: MessageType.CallCompletion }, tsMs);
      return { status: "invocation", invocationId: r.invocationId, previously: true, state: existing.status };
    }
    const row: InvocationRow = {
      id: r.invocationId,
      status: "ready",
      target: r.target,
      idempotencyKey: r.idempotencyKey,
      createdMs: tsMs,
      modifiedMs: tsMs,
      executeAtMs: r.executeAtMs,
      attempts: 0,
      retryCount: 0,
      lastEntryMs: tsMs,
      nextRetryMs: null,
      journalLength: 1,
      commandCount: 1,
      awaiting: null,
      sinks: r.caller === null ? [] : [{ ...r.caller, notificationType: MessageType.CallCompletion }],
      lastError: null,
      completedMs: null,
      retentionMs: r.retentionMs,
      result: null,
    };
    this.tables.appendJournal(row.id, 0, inputFrame(r.input, r.headers));
    if (r.executeAtMs !== null && r.executeAtMs > tsMs) {
      this.tables.put({ ...row, status: "scheduled" });
      this.tables.addTimer(r.executeAtMs, row.id, 0);
      this.actions.push({ kind: "timer", invocationId: row.id, completionId: 0, atMs: r.executeAtMs });
      return { status: "invocation", invocationId: row.id, previously: false, state: "scheduled" };
    }
    // A first attempt already ran: its outcome applies now (no other attempt is started unless that
    // outcome asks for one), if it saw what it would see now: for a keyed target, the object
    // unlocked (no exclusive handler ran or waits) and at the version whose state it read.
    const t = r.target;
    const first =
      r.firstAttempt !== undefined && (t.key === null || (this.tables.lockHolder(t.service, t.key) === undefined && this.state.objectVersion(t.service, t.key) === r.firstAttempt.objectVersion))
        ? r.firstAttempt
        : undefined;
    const admitted = this.admit(row, tsMs, first === undefined);
    if (first !== undefined && admitted.status === "ready") {
      const outcome = this.attempt({ kind: "invoker-attempt", invocationId: row.id, journalLength: 1, commandCount: 1, frames: first.frames, targets: first.targets, outcome: first.outcome }, tsMs);
      return outcome.status === "invocation" ? outcome : { status: "invocation", invocationId: row.id, previously: false, state: "ready" };
    }
    return { status: "invocation", invocationId: row.id, previously: false, state: admitted.status };
  }

  /** Ready to run, or into its object's inbox while another exclusive handler holds the key. */
  private admit(row: InvocationRow, tsMs: number, run = true): InvocationRow {
    const t = row.target;
    if (isExclusive(t) && t.key !== null) {
      const holder = this.tables.lockHolder(t.service, t.key);
      if (holder !== undefined && holder !== row.id) {
        const inboxed: InvocationRow = { ...row, status: "inboxed", modifiedMs: tsMs };
        this.tables.put(inboxed);
        this.tables.inboxPush(t.service, t.key, row.id);
        return inboxed;
      }
      this.tables.lock(t.service, t.key, row.id);
    }
    const ready: InvocationRow = { ...row, status: "ready", modifiedMs: tsMs };
    this.tables.put(ready);
    if (run) this.actions.push({ kind: "run", invocationId: row.id });
    return ready;
  }

  // ---- attempts --------------------------------------------------------------------------------

  private attempt(r: AttemptRecord, tsMs: number): InvocationOutcome {
    const row = this.tables.get(r.invocationId);
    if (row === undefined || (row.status !== "ready" && row.status !== "backing-off")) return { status: "ignored", reason: "no-effect" };
    // Started from a journal that has since changed (another attempt's result came first): stale.
    if (row.commandCount !== r.commandCount || r.journalLength > row.journalLength) return { status: "ignored", reason: "no-effect" };
    const o = r.outcome;
    if (o.kind === "error") {
      const failed: InvocationRow = { ...row, attempts: row.attempts + 1, retryCount: row.retryCount + 1, lastError: o.message, modifiedMs: tsMs };
      if (o.fail !== null) this.complete(failed, { failure: o.fail }, tsMs);
      else if (o.retryAtMs === null) this.tables.put({ ...failed, status: "paused", nextRetryMs: null });
      else {
        this.tables.put({ ...failed, status: "backing-off", nextRetryMs: o.retryAtMs });
        this.actions.push({ kind: "retry", invocationId: row.id, atMs: o.retryAtMs });
      }
      return { status: "invocation", invocationId: row.id, previously: false, state: this.tables.get(row.id)?.status ?? "gone" };
    }
    const entries: JournalEntry[] = [];
    let commands = 0;
    let output: ResultValue | null = null;
    let stateChanged = false;
    let index = row.commandCount;
    const violation = this.checkCommands(row, r.frames);
    if (violation !== undefined) {
      // Nothing of the attempt is kept, and retrying would repeat it exactly: the invocation fails.
      const failed: InvocationRow = { ...row, attempts: row.attempts + 1, retryCount: row.retryCount + 1, lastError: violation, modifiedMs: tsMs };
      this.complete(failed, { failure: { code: 500, message: violation, metadata: [] } }, tsMs);
      return { status: "invocation", invocationId: row.id, previously: false, state: "completed" };
    }
    this.resolvedTargets = new Map(r.targets.map((t) => [t.commandIndex, t.resolved]));
    for (const frame of r.frames) {
      const type = frameType(frame);
      const msg = decodeMessage(type, frame.subarray(8));
      if (msg.kind === "proposeRunCompletion") {
        entries.push(notificationFrame(MessageType.RunCompletion, { completionId: msg.resultCompletionId }, msg.result));
        continue;
      }
      // Control messages and hints are not journal entries; the SDK never sends notifications.
      if (!isJournalCommand(type)) continue;
      entries.push({ type, nid: null, frame });
      commands++;
      const cmdIndex = index++;
      const immediate = this.command(row, msg, cmdIndex, tsMs);
      if (immediate.stateChanged) stateChanged = true;
      entries.push(...immediate.notifications);
      if (msg.kind === "output") output = "value" in msg.result ? { value: msg.result.value } : { failure: failureOf(msg.result.failure) };
    }
    if (stateChanged && row.target.key !== null) this.state.touch(row.target.service, row.target.key);
    this.tables.insertJournal(row.id, r.journalLength, entries);
    const grown = entries.length > 0;
    this.resolvedTargets = new Map();
    // Re-read: processing may have added sinks or notifications (a signal to itself) to this row.
    const current = this.tables.get(row.id)!;
    const next: InvocationRow = {
      ...current,
      attempts: row.attempts + 1,
      journalLength: current.journalLength + entries.length,
      commandCount: row.commandCount + commands,
      retryCount: grown ? 0 : row.retryCount,
      lastEntryMs: grown ? tsMs : row.lastEntryMs,
      nextRetryMs: null,
      modifiedMs: tsMs,
    };
    if (o.kind === "end") {
      this.complete(next, output ?? { failure: { code: 500, message: "the handler ended without an output", metadata: [] } }, tsMs);
      return { status: "invocation", invocationId: row.id, previously: false, state: "completed" };
    }
    const awaiting: Awaiting = { completions: [...o.completions], signals: [...o.signals], namedSignals: [...o.namedSignals] };
    if (this.resolved(row.id, awaiting)) {
      this.tables.put({ ...next, status: "ready", awaiting: null });
      this.actions.push({ kind: "run", invocationId: row.id });
    } else this.tables.put({ ...next, status: "suspended", awaiting });
    return { status: "invocation", invocationId: row.id, previously: false, state: this.tables.get(row.id)?.status ?? "gone" };
  }

  /** Why the attempt's commands may not be applied (state writes from a handler that may not write). */
  private checkCommands(row: InvocationRow, frames: readonly Uint8Array[]): string | undefined {
    const t = row.target;
    const writes = t.key !== null && (t.handlerType === "exclusive" || t.handlerType === "workflow");
    for (const frame of frames) {
      const type = frameType(frame);
      if (type === MessageType.SetStateCommand || type === MessageType.ClearStateCommand || type === MessageType.ClearAllStateCommand) {
        if (!writes) return `${t.service}/${t.handler} may not write state (only exclusive handlers of virtual objects and a workflow's run may)`;
      }
      if ((type === MessageType.GetLazyStateCommand || type === MessageType.GetLazyStateKeysCommand) && t.key === null) {
        return `${t.service}/${t.handler} has no state (plain services are stateless)`;
      }
    }
    return undefined;
  }

  /** Applies one command; returns the notifications it produces at once. */
  private command(row: InvocationRow, msg: ProtocolMessage, cmdIndex: number, tsMs: number): { notifications: JournalEntry[]; stateChanged: boolean } {
    const t = row.target;
    const none = { notifications: [] as JournalEntry[], stateChanged: false };
    const key = t.key ?? "";
    switch (msg.kind) {
      case "setState":
        this.state.set(t.service, key, fromUtf8.decode(msg.key), msg.value);
        return { notifications: [], stateChanged: true };
      case "clearState":
        this.state.delete(t.service, key, fromUtf8.decode(msg.key));
        return { notifications: [], stateChanged: true };
      case "clearAllState":
        this.state.clear(t.service, key);
        return { notifications: [], stateChanged: true };
      case "getLazyState": {
        const v = this.state.get(t.service, key, fromUtf8.decode(msg.key));
        return { notifications: [notificationFrame(MessageType.GetLazyStateCompletion, { completionId: msg.resultCompletionId }, v === undefined ? { void: true } : { value: v })], stateChanged: false };
      }
      case "getLazyStateKeys": {
        const keys = this.state.names(t.service, key).map((n) => utf8.encode(n));
        return { notifications: [notificationFrame(MessageType.GetLazyStateKeysCompletion, { completionId: msg.resultCompletionId }, { stateKeys: keys })], stateChanged: false };
      }
      case "sleep":
        this.tables.addTimer(msg.wakeUpTimeMs, row.id, msg.resultCompletionId);
        this.actions.push({ kind: "timer", invocationId: row.id, completionId: msg.resultCompletionId, atMs: msg.wakeUpTimeMs });
        return none;
      case "getPromise": {
        const p = this.tables.promise(t.service, key, msg.key);
        if (p !== undefined && "completed" in p) {
          return { notifications: [notificationFrame(MessageType.GetPromiseCompletion, { completionId: msg.resultCompletionId }, resultToProtocol(p.completed))], stateChanged: false };
        }
        const waiters = [...(p?.waiters ?? []), { invocationId: row.id, completionId: msg.resultCompletionId }];
        this.tables.putPromise(t.service, key, msg.key, { waiters });
        return none;
      }
      case "peekPromise": {
        const p = this.tables.promise(t.service, key, msg.key);
        const result = p !== undefined && "completed" in p ? resultToProtocol(p.completed) : { void: true as const };
        return { notifications: [notificationFrame(MessageType.PeekPromiseCompletion, { completionId: msg.resultCompletionId }, result)], stateChanged: false };
      }
      case "completePromise": {
        const p = this.tables.promise(t.service, key, msg.key);
        const id = { completionId: msg.resultCompletionId };
        if (p !== undefined && "completed" in p) {
          return { notifications: [notificationFrame(MessageType.CompletePromiseCompletion, id, { failure: { code: 409, message: "promise was already completed", metadata: [] } })], stateChanged: false };
        }
        const completed: ResultValue = "value" in msg.completion ? { value: msg.completion.value } : { failure: failureOf(msg.completion.failure) };
        this.tables.putPromise(t.service, key, msg.key, { completed });
        for (const w of p?.waiters ?? []) {
          this.deliver(w.invocationId, notificationFrame(MessageType.GetPromiseCompletion, { completionId: w.completionId }, resultToProtocol(completed)), tsMs);
        }
        return { notifications: [notificationFrame(MessageType.CompletePromiseCompletion, id, { void: true })], stateChanged: false };
      }
      case "call":
      case "oneWayCall":
        return { notifications: this.call(row, msg, cmdIndex, tsMs), stateChanged: false };
      case "sendSignal": {
        const signalId = "idx" in msg.signal ? { signalId: msg.signal.idx } : { signalName: msg.signal.name };
        this.deliver(msg.targetInvocationId, notificationFrame(MessageType.Signal, signalId, msg.result), tsMs);
        return none;
      }
      case "completeAwakeable": {
        const a = parseAwakeableId(msg.awakeableId);
        // A malformed id completes nothing (the SDK built it; Restate ignores it too).
        if (a !== undefined) this.deliver(formatInvocationId(a.invocationId), notificationFrame(MessageType.Signal, { signalId: a.signalIndex }, msg.result), tsMs);
        return none;
      }
      case "attachInvocation":
      case "getInvocationOutput":
        return { notifications: this.attachOrOutput(row, msg, tsMs), stateChanged: false };
      default:
        return none;
    }
  }

  /** A Call or OneWayCall: the child invocation (here or through the outbox) and its id at once. */
  private call(row: InvocationRow, msg: Extract<ProtocolMessage, { kind: "call" | "oneWayCall" }>, cmdIndex: number, tsMs: number): JournalEntry[] {
    const resolved = this.resolvedTargets.get(cmdIndex);
    const childId = this.childId(row, msg, cmdIndex);
    const notifications: JournalEntry[] = [notificationFrame(MessageType.CallInvocationIdCompletion, { completionId: msg.invocationIdNotificationIdx }, { invocationId: childId })];
    if (resolved === undefined || "unknown" in resolved) {
      const failure: FailureValue = { code: 404, message: resolved?.unknown ?? `no service ${msg.serviceName} with a handler ${msg.handlerName} is registered`, metadata: [] };
      if (msg.kind === "call") notifications.push(notificationFrame(MessageType.CallCompletion, { completionId: msg.resultCompletionId }, resultToProtocol({ failure })));
      return notifications;
    }
    const executeAtMs = msg.kind === "oneWayCall" && msg.invokeTimeMs > 0 ? msg.invokeTimeMs : null;
    const invoke: InvokeRecord = {
      kind: "invoke",
      invocationId: childId,
      target: resolved.target,
      input: msg.parameter,
      headers: msg.headers.map((h) => [h.key, h.value] as const),
      idempotencyKey: msg.idempotencyKey ?? null,
      executeAtMs,
      caller: msg.kind === "call" ? { invocationId: row.id, completionId: msg.resultCompletionId } : null,
      retentionMs: resolved.retentionMs,
      source: null,
    };
    this.route(childId, invoke, tsMs);
    return notifications;
  }

  private childId(row: InvocationRow, msg: Extract<ProtocolMessage, { kind: "call" | "oneWayCall" }>, cmdIndex: number): string {
    const resolved = this.resolvedTargets.get(cmdIndex);
    const target = resolved !== undefined && !("unknown" in resolved) ? resolved.target : undefined;
    const keyed = msg.key !== "" ? partitionKeyOf(msg.serviceName, msg.key) : undefined;
    if (target?.handlerType === "workflow" && msg.key !== "") return formatInvocationId(derivedInvocationId(keyed!, workflowSeed(msg.serviceName, msg.key)));
    if (msg.idempotencyKey !== undefined) {
      const seed = idempotentSeed(msg.serviceName, msg.key, msg.handlerName, msg.idempotencyKey);
      return formatInvocationId(derivedInvocationId(keyed ?? xxh64(seed), seed));
    }
    // Plain service calls stay in the caller's partition: no hop through another partition's log.
    const parentKey = partitionKeyOfInvocation(parseInvocationId(row.id)!);
    return formatInvocationId(derivedInvocationId(keyed ?? parentKey, `call:${row.id}:${cmdIndex}`));
  }

  private attachOrOutput(row: InvocationRow, msg: Extract<ProtocolMessage, { kind: "attachInvocation" | "getInvocationOutput" }>, tsMs: number): JournalEntry[] {
    const type = msg.kind === "attachInvocation" ? MessageType.AttachInvocationCompletion : MessageType.GetInvocationOutputCompletion;
    const targetId = this.targetId(msg.target);
    const sink: ResultSink = { invocationId: row.id, completionId: msg.resultCompletionId, notificationType: type };
    if (targetId === undefined) return [notificationFrame(type, { completionId: sink.completionId }, { failure: { code: 404, message: "malformed invocation id", metadata: [] } })];
    // The target's partition answers (here at once, or later through the outboxes both ways).
    this.route(targetId, { kind: "invocation-attach", invocationId: targetId, sink, waitForResult: msg.kind === "attachInvocation", source: null }, tsMs);
    return [];
  }

  /** Another invocation asks for this one's result: now if it has one, else (attach) when it completes. */
  private attachTo(r: AttachRecord, tsMs: number): InvocationOutcome {
    const target = this.tables.get(r.invocationId);
    const reply = (result: { void: true } | ResultValue) =>
      this.deliver(r.sink.invocationId, notificationFrame(r.sink.notificationType, { completionId: r.sink.completionId }, "void" in result ? result : resultToProtocol(result)), tsMs);
    if (target === undefined) reply({ failure: { code: 404, message: `invocation ${r.invocationId} not found`, metadata: [] } });
    else if (target.status === "completed" && target.result !== null) reply(target.result);
    else if (!r.waitForResult) reply({ void: true });
    else this.addSink(target, r.sink, tsMs);
    return { status: "invocation", invocationId: r.invocationId, previously: false, state: target?.status ?? "gone" };
  }

  private targetId(t: Extract<ProtocolMessage, { kind: "attachInvocation" }>["target"]): string | undefined {
    if ("invocationId" in t) return parseInvocationId(t.invocationId) === undefined ? undefined : t.invocationId;
    if ("workflow" in t) {
      const w = t.workflow;
      return formatInvocationId(derivedInvocationId(partitionKeyOf(w.workflowName, w.workflowKey), workflowSeed(w.workflowName, w.workflowKey)));
    }
    const i = t.idempotentRequest;
    const key = i.serviceKey ?? "";
    const seed = idempotentSeed(i.serviceName, key, i.handlerName, i.idempotencyKey);
    return formatInvocationId(derivedInvocationId(key !== "" ? partitionKeyOf(i.serviceName, key) : xxh64(seed), seed));
  }

  // ---- notifications, timers, control -------------------------------------------------------------

  private notify(r: NotifyRecord, tsMs: number): InvocationOutcome {
    this.appendNotification(r.invocationId, { type: frameType(r.frame), nid: nidOfFrame(r.frame), frame: r.frame }, tsMs);
    return { status: "invocation", invocationId: r.invocationId, previously: false, state: this.tables.get(r.invocationId)?.status ?? "gone" };
  }

  private timer(r: TimerRecord, tsMs: number): InvocationOutcome {
    this.tables.deleteTimer(r.invocationId, r.completionId);
    const row = this.tables.get(r.invocationId);
    if (row === undefined || row.status === "completed") return { status: "ignored", reason: "no-effect" };
    if (r.completionId === 0) {
      if (row.status === "scheduled") this.admit(row, tsMs);
    } else {
      this.appendNotification(row.id, notificationFrame(MessageType.SleepCompletion, { completionId: r.completionId }, { void: true }), tsMs);
    }
    return { status: "invocation", invocationId: row.id, previously: false, state: this.tables.get(row.id)?.status ?? "gone" };
  }

  private control(r: ControlRecord, tsMs: number): InvocationOutcome {
    const row = this.tables.get(r.invocationId);
    if (row === undefined) return { status: "invocation", invocationId: r.invocationId, previously: false, state: "gone" };
    switch (r.action) {
      case "kill":
        if (row.status !== "completed") this.complete(row, { failure: KILLED }, tsMs);
        break;
      case "cancel":
        if (row.status === "inboxed" || row.status === "scheduled" || row.status === "paused") this.complete(row, { failure: CANCELED }, tsMs);
        else if (row.status !== "completed") this.appendNotification(row.id, notificationFrame(MessageType.Signal, { signalId: CANCEL_SIGNAL }, { void: true }), tsMs);
        break;
      case "resume":
        if (row.status === "paused" || row.status === "backing-off") {
          this.tables.put({ ...row, status: "ready", nextRetryMs: null, modifiedMs: tsMs });
          this.actions.push({ kind: "run", invocationId: row.id });
        }
        break;
      case "purge":
        if (row.status === "completed") this.tables.delete(row.id);
        break;
    }
    return { status: "invocation", invocationId: row.id, previously: false, state: this.tables.get(row.id)?.status ?? "gone" };
  }

  /** Appends a notification to a local invocation's journal, and wakes it if it waits for it. */
  private appendNotification(id: string, entry: JournalEntry, tsMs: number): void {
    const row = this.tables.get(id);
    if (row === undefined || row.status === "completed") return;
    // A sleep completion or signal delivered twice (a timer fired again after failover) is stored once.
    if (entry.nid !== null && entry.type !== MessageType.Signal && this.tables.hasNotification(id, entry.nid)) return;
    this.tables.appendJournal(id, row.journalLength, entry);
    const grown: InvocationRow = { ...row, journalLength: row.journalLength + 1, modifiedMs: tsMs };
    if (row.status === "suspended" && row.awaiting !== null && entry.nid !== null && awaitingKeys(row.awaiting).includes(entry.nid)) {
      this.tables.put({ ...grown, status: "ready", awaiting: null });
      this.actions.push({ kind: "run", invocationId: id });
    } else this.tables.put(grown);
  }

  /** Whether the journal already holds a notification the suspension waits for (the suspension race). */
  private resolved(id: string, awaiting: Awaiting): boolean {
    return awaitingKeys(awaiting).some((k) => this.tables.hasNotification(id, k));
  }

  // ---- completion ---------------------------------------------------------------------------------

  private complete(row: InvocationRow, result: ResultValue, tsMs: number): void {
    const t = row.target;
    if (row.status === "inboxed" && t.key !== null) this.tables.inboxRemove(t.service, t.key, row.id);
    this.tables.put({ ...row, status: "completed", result, completedMs: tsMs, modifiedMs: tsMs, awaiting: null, nextRetryMs: null });
    this.tables.deleteJournal(row.id);
    for (const sink of row.sinks) this.deliverResult(sink, result, tsMs);
    this.actions.push({ kind: "completed", invocationId: row.id, result });
    if (isExclusive(t) && t.key !== null && this.tables.lockHolder(t.service, t.key) === row.id) {
      this.tables.unlock(t.service, t.key);
      const next = this.tables.inboxHead(t.service, t.key);
      if (next !== undefined) {
        this.tables.inboxRemove(t.service, t.key, next);
        const nextRow = this.tables.get(next);
        if (nextRow !== undefined && nextRow.status === "inboxed") this.admit(nextRow, tsMs);
      }
    }
  }

  private addSink(target: InvocationRow, sink: ResultSink, tsMs: number): void {
    if (target.status === "completed" && target.result !== null) {
      this.deliverResult(sink, target.result, tsMs);
      return;
    }
    this.tables.put({ ...target, sinks: [...target.sinks, sink] });
  }

  private deliverResult(sink: ResultSink, result: ResultValue, tsMs: number): void {
    this.deliver(sink.invocationId, notificationFrame(sink.notificationType, { completionId: sink.completionId }, resultToProtocol(result)), tsMs);
  }

  // ---- routing between partitions -------------------------------------------------------------------

  private partitionOf(invocationId: string): number {
    const bytes = parseInvocationId(invocationId);
    invariant(bytes !== undefined, () => `malformed invocation id ${invocationId}`);
    return this.options.partitionOfKey(partitionKeyOfInvocation(bytes));
  }

  /** A notification for an invocation here, or through the outbox for one elsewhere. */
  private deliver(invocationId: string, entry: JournalEntry, tsMs: number): void {
    if (parseInvocationId(invocationId) === undefined) return;
    if (this.partitionOf(invocationId) === this.options.partition) this.appendNotification(invocationId, entry, tsMs);
    else this.route(invocationId, { kind: "invocation-notify", invocationId, frame: entry.frame, source: null }, tsMs);
  }

  /** Applies a record for a local invocation now, or queues it for its partition's leader. */
  private route(invocationId: string, record: DeliverableRecord, tsMs: number): void {
    const partition = this.partitionOf(invocationId);
    if (partition === this.options.partition) {
      this.dispatch(record, tsMs);
      return;
    }
    const seq = this.tables.inboundSeq(OWN_OUTBOX_SOURCE) + 1;
    this.tables.setInboundSeq(OWN_OUTBOX_SOURCE, seq);
    const withSource = { ...record, source: { partition: this.options.partition, seq } } as DeliverableRecord;
    this.tables.pushOutbox(seq, partition, encodeDeliverable(withSource, tsMs));
    this.actions.push({ kind: "outbox" });
  }

  /** Targets of the calls of the attempt being applied, as its proposer resolved them (by command index). */
  private resolvedTargets = new Map<number, ResolvedTarget>();
}

function frameType(frame: Uint8Array): number {
  return (frame[0]! << 8) | frame[1]!;
}

function nidOfFrame(frame: Uint8Array): string | null {
  const msg = decodeMessage(frameType(frame), frame.subarray(8));
  return msg.kind === "notification" ? notificationKey(msg.id) : null;
}

/** Records cross partitions in the envelope encoding (producer fields unused: dedup is by source). */
export function encodeDeliverable(record: DeliverableRecord, tsMs: number): Uint8Array {
  return encodeEnvelope({ producer: { node: "outbox", generation: 0, epoch: 0 }, seq: 0, tsMs, body: record });
}
