// The record kinds of durable invocations in a partition's log. Each is applied by every replica of
// the partition through the invocation state machine (state-machine.ts) into the partition store, in
// the same transaction as the applied LSN. Ids travel as text (`inv_1…`), bytes as envelope blobs.
// Invariants: a record names everything its application needs (no clock, no schema lookup at apply
// time: the proposer resolved types, retry delays and deadlines), so replicas stay identical;
// records delivered from another partition carry (source partition, outbox seq) and apply once.
import type { ServiceType, HandlerType } from "./model.ts";

export interface TargetSpec {
  readonly service: string;
  readonly handler: string;
  readonly key: string | null;
  readonly serviceType: ServiceType;
  /** Null for plain services. */
  readonly handlerType: HandlerType | null;
}

export interface FailureValue {
  readonly code: number;
  readonly message: string;
  readonly metadata: ReadonlyArray<{ readonly key: string; readonly value: string }>;
}

export type ResultValue = { readonly value: Uint8Array } | { readonly failure: FailureValue };

/** Where a record that crossed partitions came from: applied once per (partition, seq). */
export interface Source {
  readonly partition: number;
  readonly seq: number;
}

/** Who waits for an invocation's result inside the cluster: a parent's journal completion. */
export interface CallerSink {
  readonly invocationId: string;
  readonly completionId: number;
}

export type InvokeRecord = {
  readonly kind: "invoke";
  readonly invocationId: string;
  readonly target: TargetSpec;
  readonly input: Uint8Array;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly idempotencyKey: string | null;
  /** Start no earlier than this (record time, ms since the epoch); null: at once. */
  readonly executeAtMs: number | null;
  /** A parent invocation waiting for the result (Call), or null. */
  readonly caller: CallerSink | null;
  /** How long the result is kept after completion (idempotency key or workflow: longer). */
  readonly retentionMs: number;
  readonly source: Source | null;
  /**
   * The outcome of a first attempt the leader ran before recording the invocation (a call without an
   * idempotency key): applied right after admission, as if the attempt had run from the journal
   * [Input]. For a keyed target it counts only if the object is still unlocked and at
   * `objectVersion` (the state the attempt saw); otherwise it is dropped and the invocation runs anew.
   */
  readonly firstAttempt?: FirstAttempt;
};

export type AttemptOutcomeRecord =
  | { readonly kind: "end" }
  | { readonly kind: "suspended"; readonly completions: readonly number[]; readonly signals: readonly number[]; readonly namedSignals: readonly string[] }
  /** Failed attempt: retry at `retryAtMs`, or pause (null), or end the invocation with `fail`. */
  | { readonly kind: "error"; readonly message: string; readonly retryAtMs: number | null; readonly fail: FailureValue | null };

export type AttemptRecord = {
  readonly kind: "invoker-attempt";
  readonly invocationId: string;
  /** The journal the attempt was started with: its length and how many commands it held. */
  readonly journalLength: number;
  readonly commandCount: number;
  /** Raw protocol frames the SDK sent, in order (commands, run proposals, hints). */
  readonly frames: readonly Uint8Array[];
  readonly outcome: AttemptOutcomeRecord;
  /** The targets of the attempt's Call and OneWayCall commands, resolved by the proposer from the schema. */
  readonly targets: readonly ResolvedTargetAt[];
};

export type ResolvedTarget = { readonly target: TargetSpec; readonly retentionMs: number } | { readonly unknown: string };
export interface ResolvedTargetAt {
  /** The command's index in the journal (Input is command 0). */
  readonly commandIndex: number;
  readonly resolved: ResolvedTarget;
}

export interface FirstAttempt extends Pick<AttemptRecord, "frames" | "targets" | "outcome"> {
  /** The object's version the attempt read its state at (keyed targets only). */
  readonly objectVersion?: number;
}

/** Whether a frame of this type is stored as a command of the journal (the SDK replays it). */
export function isJournalCommand(type: number): boolean {
  return (type > 0x0400 && type < 0x8000) || type >= 0xfc00;
}

/** A notification for an invocation's journal (call completion, signal, awakeable, sleep). */
export type NotifyRecord = {
  readonly kind: "invocation-notify";
  readonly invocationId: string;
  /** A raw notification frame, stored verbatim in the journal. */
  readonly frame: Uint8Array;
  readonly source: Source | null;
};

/** A durable timer came due: a sleep completion, or a delayed invocation's start. */
export type TimerRecord = {
  readonly kind: "invocation-timer";
  readonly invocationId: string;
  /** The sleep's completion id; 0: the invocation's scheduled start. */
  readonly completionId: number;
};

export type ControlRecord = {
  readonly kind: "invocation-control";
  readonly invocationId: string;
  readonly action: "cancel" | "kill" | "purge" | "resume";
  readonly source: Source | null;
};

/** An invocation asks for another's result (AttachInvocation waits for it, GetInvocationOutput does not). */
export type AttachRecord = {
  readonly kind: "invocation-attach";
  /** The invocation whose result is asked for. */
  readonly invocationId: string;
  /** Where the answer goes: a completion in the asking invocation's journal. */
  readonly sink: CallerSink & { readonly notificationType: number };
  readonly waitForResult: boolean;
  readonly source: Source | null;
};

/** The leader delivered outbox entries up to `upToSeq` to their partitions. */
export type OutboxTruncateRecord = { readonly kind: "outbox-truncate"; readonly upToSeq: number };

export type InvocationRecord = InvokeRecord | AttemptRecord | NotifyRecord | TimerRecord | ControlRecord | AttachRecord | OutboxTruncateRecord;
export const INVOCATION_RECORD_KINDS = ["invoke", "invoker-attempt", "invocation-notify", "invocation-timer", "invocation-control", "invocation-attach", "outbox-truncate"] as const;

/** Record kinds another partition may send through the outbox. */
export type DeliverableRecord = InvokeRecord | NotifyRecord | ControlRecord | AttachRecord;
