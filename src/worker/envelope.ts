// The record envelope of partition logs: every record a partition's log holds is one envelope, so a
// processor can tell who wrote it (node, leader epoch), deduplicate it (per-epoch sequence number)
// and dispatch it by kind. Layout (format 1): magic 0xCA, format byte, u32 BE length of a JSON header
// {kind, producer, seq, tsMs, body}, then the values as length-prefixed byte blobs (referenced from
// the header by index, so bytes of any content type travel unencoded).
// Invariants: decode(encode(r)) = r; a record of a format or kind this build does not know decodes
// to `unknown`, and the processor stops that partition loudly instead of skipping it.
import { invariant } from "../observability/errors.ts";
import { INVOCATION_RECORD_KINDS, type InvocationRecord } from "./invoker/records.ts";

export const ENVELOPE_MAGIC = 0xca;
export const ENVELOPE_FORMAT = 1;

/** Who proposed a record: the leader's node and generation, and the leader epoch it held. */
export interface Producer {
  readonly node: string;
  readonly generation: number;
  readonly epoch: number;
}

export type MutationOp =
  | { readonly op: "set"; readonly name: string; readonly value: Uint8Array; readonly contentType: string }
  | { readonly op: "delete"; readonly name: string }
  /** Deletes every entry of the object (its version still grows: no ABA on If-Match). */
  | { readonly op: "clear" };

/**
 * The record kinds. Numbers are not reused; a new kind gets a new name and a processor that does not
 * know it stops (see decode). Durable invocations (Restate's service protocol) will add their kinds
 * here: `invoke`, `invoker-effect` (journal entries), `timer`, `schedule-timer`,
 * `invocation-response`, `awakeable`/`signal`, `purge-invocation`, each key-scoped to one object,
 * applied into tables of the same partition store (journals, invocation status, timers, inbox).
 */
export type RecordBody =
  /** A node claims leadership of the partition at `epoch` (after bumping pp_epoch/<p> by CAS). */
  | { readonly kind: "announce-leader"; readonly epoch: number; readonly node: string; readonly generation: number }
  /**
   * One atomic change of one object's state: every op applies or none does. `expectedVersion`
   * (If-Match) makes it conditional; `idempotency` makes a retry apply once and answer as the first.
   */
  | {
      readonly kind: "mutate";
      readonly service: string;
      readonly key: string;
      readonly ops: readonly MutationOp[];
      readonly expectedVersion: number | null;
      readonly idempotency: { readonly key: string; readonly requestHash: string } | null;
    }
  /** The leader reports that processors have made the store durable up to `durableLsn` (trim marker). */
  | { readonly kind: "durability"; readonly durableLsn: number }
  /** Durable invocations (invoker/records.ts): their bytes travel as blobs, like mutation values. */
  | InvocationRecord;

export type RecordKind = RecordBody["kind"];
export const RECORD_KINDS: readonly RecordKind[] = ["announce-leader", "mutate", "durability", ...INVOCATION_RECORD_KINDS];

export interface Envelope {
  readonly producer: Producer;
  /** Per producer epoch, strictly increasing: a resent or duplicated record is applied once. */
  readonly seq: number;
  /** The producer's wall clock when it proposed (idempotency retention is measured in record time). */
  readonly tsMs: number;
  readonly body: RecordBody;
}

export type Decoded = { readonly kind: "ok"; readonly envelope: Envelope } | { readonly kind: "unknown"; readonly reason: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEnvelope(e: Envelope): Uint8Array {
  const blobs: Uint8Array[] = [];
  let body: unknown = e.body;
  if (e.body.kind === "mutate") {
    body = {
      ...e.body,
      ops: e.body.ops.map((op) => {
        if (op.op !== "set") return op;
        blobs.push(op.value);
        return { op: "set", name: op.name, blob: blobs.length - 1, contentType: op.contentType };
      }),
    };
  }
  else if (e.body.kind !== "announce-leader" && e.body.kind !== "durability") body = withBlobRefs(e.body, blobs);
  const header = encoder.encode(JSON.stringify({ producer: e.producer, seq: e.seq, tsMs: e.tsMs, body, blobs: blobs.length }));
  const size = 6 + header.length + blobs.reduce((n, b) => n + 4 + b.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = ENVELOPE_MAGIC;
  out[1] = ENVELOPE_FORMAT;
  view.setUint32(2, header.length);
  out.set(header, 6);
  let at = 6 + header.length;
  for (const b of blobs) {
    view.setUint32(at, b.length);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  invariant(at === size, "envelope size mismatch");
  return out;
}

/** Decodes a record; a format or kind this build does not know is `unknown`, never an exception. */
export function decodeEnvelope(bytes: Uint8Array): Decoded {
  if (bytes.length < 6 || bytes[0] !== ENVELOPE_MAGIC) return { kind: "unknown", reason: "not a partition record envelope (bad magic)" };
  if (bytes[1] !== ENVELOPE_FORMAT) return { kind: "unknown", reason: `envelope format ${bytes[1]} (this build reads format ${ENVELOPE_FORMAT})` };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(2);
  if (6 + headerLength > bytes.length) return { kind: "unknown", reason: "truncated envelope header" };
  let header: { producer: Producer; seq: number; tsMs: number; body: { kind: string; ops?: unknown[] }; blobs: number };
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(6, 6 + headerLength)));
  } catch {
    return { kind: "unknown", reason: "envelope header is not JSON" };
  }
  if (!RECORD_KINDS.includes(header.body?.kind as RecordKind)) return { kind: "unknown", reason: `record kind ${JSON.stringify(header.body?.kind)}` };
  const blobs: Uint8Array[] = [];
  let at = 6 + headerLength;
  for (let i = 0; i < header.blobs; i++) {
    if (at + 4 > bytes.length) return { kind: "unknown", reason: "truncated envelope blob" };
    const n = view.getUint32(at);
    if (at + 4 + n > bytes.length) return { kind: "unknown", reason: "truncated envelope blob" };
    blobs.push(bytes.slice(at + 4, at + 4 + n));
    at += 4 + n;
  }
  let body = header.body as unknown as RecordBody;
  if (body.kind === "mutate") {
    const ops = (header.body.ops ?? []) as Array<{ op: string; name?: string; blob?: number; contentType?: string }>;
    const decodedOps: MutationOp[] = [];
    for (const op of ops) {
      if (op.op === "set") {
        const value = blobs[op.blob ?? -1];
        if (value === undefined) return { kind: "unknown", reason: "mutation refers to a missing blob" };
        decodedOps.push({ op: "set", name: op.name ?? "", value, contentType: op.contentType ?? "application/octet-stream" });
      } else if (op.op === "delete") decodedOps.push({ op: "delete", name: op.name ?? "" });
      else if (op.op === "clear") decodedOps.push({ op: "clear" });
      else return { kind: "unknown", reason: `mutation op ${JSON.stringify(op.op)}` };
    }
    body = { ...body, ops: decodedOps };
  } else if (body.kind !== "announce-leader" && body.kind !== "durability") {
    const revived = withBlobs(body, blobs);
    if (revived === undefined) return { kind: "unknown", reason: "record refers to a missing blob" };
    body = revived as RecordBody;
  }
  return { kind: "ok", envelope: { producer: header.producer, seq: header.seq, tsMs: header.tsMs, body } };
}

/** A copy of `value` with every Uint8Array replaced by `{ $blob: i }` (its bytes appended to `blobs`). */
function withBlobRefs(value: unknown, blobs: Uint8Array[]): unknown {
  if (value instanceof Uint8Array) {
    blobs.push(value);
    return { $blob: blobs.length - 1 };
  }
  if (Array.isArray(value)) return value.map((v) => withBlobRefs(v, blobs));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withBlobRefs(v, blobs);
    return out;
  }
  return value;
}

/** The inverse of withBlobRefs; undefined when a reference names no blob. */
function withBlobs(value: unknown, blobs: readonly Uint8Array[]): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const v of value) {
      const r = withBlobs(v, blobs);
      if (r === undefined && v !== undefined) return undefined;
      out.push(r);
    }
    return out;
  }
  if (value !== null && typeof value === "object") {
    const ref = (value as { $blob?: unknown }).$blob;
    if (typeof ref === "number") return blobs[ref];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = withBlobs(v, blobs);
      if (r === undefined) return undefined;
      out[k] = r;
    }
    return out;
  }
  return value;
}
