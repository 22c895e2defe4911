// The partition processor's decisions, pure: given the processor's metadata, a read-only view of the
// partition store and the next record of the log, what to write (effects), the outcome to answer
// the proposer with, and the new metadata. No I/O, no clock (time is the record's own tsMs), so
// every replica that applies the same log reaches the same state.
// Invariants: LSNs apply in order, each once; a record from an epoch older than the last announced
// leader's is ignored (fencing of deposed leaders); within an epoch a sequence number applies once;
// a mutation applies entirely or not at all; an object's version grows by one per applied mutation.
import type { Decoded, Envelope, MutationOp } from "./envelope.ts";
import type { InvocationRecord } from "./invoker/records.ts";
import type { InvocationOutcome } from "./invoker/state-machine.ts";

export interface ProcessorMeta {
  readonly appliedLsn: number;
  /** The epoch of the last applied announce-leader (0: none yet), and who announced it. */
  readonly leaderEpoch: number;
  readonly leaderNode: string | null;
  readonly leaderGeneration: number;
  /** Highest sequence number applied from the current leader epoch. */
  readonly lastSeq: number;
  /** The last durability marker applied (the partition's reported durable LSN). */
  readonly reportedDurableLsn: number;
}

export const INITIAL_META: ProcessorMeta = { appliedLsn: 0, leaderEpoch: 0, leaderNode: null, leaderGeneration: 0, lastSeq: 0, reportedDurableLsn: 0 };

export type Outcome =
  | { readonly status: "applied"; readonly version: number }
  | { readonly status: "version-mismatch"; readonly currentVersion: number }
  | { readonly status: "idempotency-conflict" }
  | { readonly status: "leader"; readonly epoch: number }
  /** The record changed nothing: it came from a deposed leader, was a duplicate, or is a marker. */
  | { readonly status: "ignored"; readonly reason: "stale-epoch" | "duplicate" | "no-effect" }
  | Extract<InvocationOutcome, { status: "invocation" }>;

export interface StoreView {
  objectVersion(service: string, key: string): number;
  idempotency(service: string, key: string, idempotencyKey: string): { requestHash: string; outcome: Outcome } | undefined;
}

export type Effect =
  | { readonly type: "set"; readonly service: string; readonly key: string; readonly name: string; readonly value: Uint8Array; readonly contentType: string }
  | { readonly type: "delete"; readonly service: string; readonly key: string; readonly name: string }
  | { readonly type: "clear"; readonly service: string; readonly key: string }
  | { readonly type: "version"; readonly service: string; readonly key: string; readonly version: number }
  | {
      readonly type: "remember";
      readonly service: string;
      readonly key: string;
      readonly idempotencyKey: string;
      readonly requestHash: string;
      readonly outcome: Outcome;
      readonly tsMs: number;
    }
  /** Forget idempotency results recorded before `beforeMs` (at most `limit` per record: bounded work). */
  | { readonly type: "expire-idempotency"; readonly beforeMs: number; readonly limit: number }
  /** An invocation record: applied by the invocation state machine (its outcome replaces this decision's). */
  | { readonly type: "invocation"; readonly record: InvocationRecord; readonly tsMs: number };

export interface CoreOptions {
  /** How long an idempotency key and its answer are kept, in record time. */
  readonly idempotencyRetentionMs: number;
  /** Most expired idempotency results removed per applied mutation. */
  readonly expireBatch: number;
}

export type Decision =
  | { readonly kind: "apply"; readonly effects: Effect[]; readonly outcome: Outcome; readonly meta: ProcessorMeta }
  /** The partition must stop: this build cannot apply the record (skipping it would diverge). */
  | { readonly kind: "stop"; readonly reason: string };

export function decide(meta: ProcessorMeta, view: StoreView, lsn: number, record: Decoded, options: CoreOptions): Decision {
  if (lsn !== meta.appliedLsn + 1) return { kind: "stop", reason: `record at LSN ${lsn} does not follow applied LSN ${meta.appliedLsn}` };
  if (record.kind === "unknown") return { kind: "stop", reason: `unknown record at LSN ${lsn}: ${record.reason}` };
  const e = record.envelope;
  const at = { ...meta, appliedLsn: lsn };
  const ignored = (reason: "stale-epoch" | "duplicate" | "no-effect"): Decision => ({ kind: "apply", effects: [], outcome: { status: "ignored", reason }, meta: at });
  switch (e.body.kind) {
    case "announce-leader": {
      // The log order decides between two candidates: a lower or equal epoch than applied loses.
      if (e.body.epoch <= meta.leaderEpoch) return ignored("stale-epoch");
      const next = { ...at, leaderEpoch: e.body.epoch, leaderNode: e.body.node, leaderGeneration: e.body.generation, lastSeq: e.seq };
      return { kind: "apply", effects: [], outcome: { status: "leader", epoch: e.body.epoch }, meta: next };
    }
    case "durability": {
      if (!fromCurrentLeader(meta, e)) return ignored("stale-epoch");
      if (e.seq <= meta.lastSeq) return ignored("duplicate");
      return { kind: "apply", effects: [], outcome: { status: "ignored", reason: "no-effect" }, meta: { ...at, lastSeq: e.seq, reportedDurableLsn: Math.max(meta.reportedDurableLsn, e.body.durableLsn) } };
    }
    case "mutate": {
      if (!fromCurrentLeader(meta, e)) return ignored("stale-epoch");
      if (e.seq <= meta.lastSeq) return ignored("duplicate");
      const next = { ...at, lastSeq: e.seq };
      const { service, key, ops, expectedVersion, idempotency } = e.body;
      const effects: Effect[] = [{ type: "expire-idempotency", beforeMs: e.tsMs - options.idempotencyRetentionMs, limit: options.expireBatch }];
      if (idempotency !== null) {
        const seen = view.idempotency(service, key, idempotency.key);
        if (seen !== undefined) {
          const outcome: Outcome = seen.requestHash === idempotency.requestHash ? seen.outcome : { status: "idempotency-conflict" };
          return { kind: "apply", effects: [], outcome, meta: next };
        }
      }
      const current = view.objectVersion(service, key);
      let outcome: Outcome;
      if (expectedVersion !== null && expectedVersion !== current) outcome = { status: "version-mismatch", currentVersion: current };
      else {
        outcome = { status: "applied", version: current + 1 };
        for (const op of ops) effects.push(effectOf(service, key, op));
        effects.push({ type: "version", service, key, version: current + 1 });
      }
      if (idempotency !== null) effects.push({ type: "remember", service, key, idempotencyKey: idempotency.key, requestHash: idempotency.requestHash, outcome, tsMs: e.tsMs });
      return { kind: "apply", effects, outcome, meta: next };
    }
    default: {
      // Durable invocations: fenced and deduplicated like mutations, applied by invoker/state-machine.ts.
      if (!fromCurrentLeader(meta, e)) return ignored("stale-epoch");
      if (e.seq <= meta.lastSeq) return ignored("duplicate");
      return { kind: "apply", effects: [{ type: "invocation", record: e.body, tsMs: e.tsMs }], outcome: { status: "ignored", reason: "no-effect" }, meta: { ...at, lastSeq: e.seq } };
    }
  }
}

function fromCurrentLeader(meta: ProcessorMeta, e: Envelope): boolean {
  return meta.leaderEpoch > 0 && e.producer.epoch === meta.leaderEpoch;
}

function effectOf(service: string, key: string, op: MutationOp): Effect {
  switch (op.op) {
    case "set":
      return { type: "set", service, key, name: op.name, value: op.value, contentType: op.contentType };
    case "delete":
      return { type: "delete", service, key, name: op.name };
    case "clear":
      return { type: "clear", service, key };
  }
}
