// The address model of logs, shared by bifrost (the client) and the log-servers (the store): branded
// ids and positions so the compiler never lets an LSN pass for a loglet offset. Every constructor
// asserts its range; the LSN ↔ offset mapping lives here and nowhere else.
//
// Invariants: Lsn and LogletOffset are safe non-negative integers; 0 means "none" for both and the
// first real value is 1; a loglet offset never exceeds MAX_LOGLET_OFFSET; a tail is the first
// unwritten slot and a sealed tail is final.
import { invariant } from "../observability/errors.ts";

import type { Brand } from "./brand.ts";

/** One virtual log (by default one per partition). */
export type LogId = Brand<number, "LogId">;
/** A position in a virtual log. 0 = none; the first record is 1. */
export type Lsn = Brand<number, "Lsn">;
/** A position inside one loglet (segment). 0 = none; the first record is 1. */
export type LogletOffset = Brand<number, "LogletOffset">;
/** Position of a segment in a log's chain; starts at 0 and only grows. */
export type SegmentIndex = Brand<number, "SegmentIndex">;
/** Globally unique id of a loglet: `"<log>_<segment>"`. */
export type LogletId = Brand<string, "LogletId">;
export const LSN_INVALID = 0 as Lsn;
export const LSN_OLDEST = 1 as Lsn;
export const OFFSET_INVALID = 0 as LogletOffset;
export const OFFSET_OLDEST = 1 as LogletOffset;
/** A loglet refuses to grow past this and asks for a new segment instead (Restate uses i32::MAX). */
export const MAX_LOGLET_OFFSET = 2 ** 31 - 1;
const MAX_U32 = 2 ** 32 - 1;

export function logId(n: number): LogId {
  invariant(Number.isSafeInteger(n) && n >= 0 && n <= MAX_U32, () => `log id must be a u32, got ${n}`);
  return n as LogId;
}

export function lsn(n: number): Lsn {
  invariant(Number.isSafeInteger(n) && n >= 0, () => `LSN must be a non-negative safe integer, got ${n}`);
  return n as Lsn;
}

export function logletOffset(n: number): LogletOffset {
  invariant(
    Number.isSafeInteger(n) && n >= 0 && n <= MAX_LOGLET_OFFSET + 1,
    () => `loglet offset must be an integer in [0, ${MAX_LOGLET_OFFSET + 1}], got ${n}`,
  );
  return n as LogletOffset;
}

export function segmentIndex(n: number): SegmentIndex {
  invariant(Number.isSafeInteger(n) && n >= 0 && n <= MAX_U32, () => `segment index must be a u32, got ${n}`);
  return n as SegmentIndex;
}

const LOGLET_ID_PATTERN = /^(0|[1-9]\d*)_(0|[1-9]\d*)$/;

export function logletId(log: LogId, segment: SegmentIndex): LogletId {
  return `${log}_${segment}` as LogletId;
}

/** Parses `"<log>_<segment>"`; returns undefined for anything else (input from the wire). */
export function parseLogletId(text: string): { log: LogId; segment: SegmentIndex; id: LogletId } | undefined {
  const m = LOGLET_ID_PATTERN.exec(text);
  if (!m) return undefined;
  const log = Number(m[1]);
  const segment = Number(m[2]);
  if (log > MAX_U32 || segment > MAX_U32) return undefined;
  return { log: log as LogId, segment: segment as SegmentIndex, id: text as LogletId };
}

export function asLogletId(text: string): LogletId {
  const parsed = parseLogletId(text);
  invariant(parsed !== undefined, () => `loglet id must look like "<log>_<segment>", got "${text}"`);
  return parsed.id;
}

// ---- LSN ↔ offset: the only place the mapping is written down ----------------------------------

/** `lsn = baseLsn + offset − 1` for a segment whose first record has LSN `baseLsn`. */
export function offsetToLsn(baseLsn: Lsn, offset: LogletOffset): Lsn {
  invariant(baseLsn >= LSN_OLDEST, () => `segment base LSN must be ≥ 1, got ${baseLsn}`);
  invariant(offset >= OFFSET_OLDEST, () => `offset ${offset} has no LSN (offsets start at 1)`);
  return lsn(baseLsn + offset - 1);
}

/** `offset = lsn − baseLsn + 1`; the LSN must lie in the segment (≥ its base). */
export function lsnToOffset(baseLsn: Lsn, at: Lsn): LogletOffset {
  invariant(baseLsn >= LSN_OLDEST, () => `segment base LSN must be ≥ 1, got ${baseLsn}`);
  invariant(at >= baseLsn, () => `LSN ${at} lies before the segment starting at LSN ${baseLsn}`);
  return logletOffset(at - baseLsn + 1);
}

// ---- tails and records ------------------------------------------------------------------------

/** The first unwritten offset, and whether the loglet is sealed (then the offset is final). */
export interface TailState {
  readonly offset: LogletOffset;
  readonly sealed: boolean;
}

/** Combines two observations of the same loglet's tail: the offset only moves forward, a seal sticks. */
export function combineTails(a: TailState, b: TailState): TailState {
  return { offset: (a.offset >= b.offset ? a.offset : b.offset) as LogletOffset, sealed: a.sealed || b.sealed };
}

/**
 * Keys attached to a record, for filtered reads (a record without keys matches every filter).
 * Loglets store payloads opaquely; keys travel in the bifrost record envelope (see the README of
 * this folder: server-side filtering is not implemented yet).
 */
export type Keys =
  | { readonly kind: "none" }
  | { readonly kind: "single"; readonly key: bigint }
  | { readonly kind: "pair"; readonly a: bigint; readonly b: bigint }
  | { readonly kind: "range"; readonly from: bigint; readonly to: bigint };

export type KeyFilter =
  | { readonly kind: "any" }
  | { readonly kind: "include"; readonly key: bigint }
  | { readonly kind: "within"; readonly from: bigint; readonly to: bigint };

export function matchesKeyFilter(keys: Keys, filter: KeyFilter): boolean {
  if (filter.kind === "any" || keys.kind === "none") return true;
  const [lo, hi] = filter.kind === "include" ? [filter.key, filter.key] : [filter.from, filter.to];
  const inRange = (k: bigint) => k >= lo && k <= hi;
  switch (keys.kind) {
    case "single":
      return inRange(keys.key);
    case "pair":
      return inRange(keys.a) || inRange(keys.b);
    case "range":
      return keys.from <= hi && lo <= keys.to;
  }
}

/** One record of a loglet. */
export interface LogletRecord {
  readonly offset: LogletOffset;
  readonly payload: Uint8Array;
  readonly keys?: Keys;
}

/** Inclusive offset range `[from, to]`. */
export interface OffsetRange {
  readonly from: LogletOffset;
  readonly to: LogletOffset;
}

export function nextOffset(o: LogletOffset): LogletOffset {
  return logletOffset(o + 1);
}

export function maxOffset(a: LogletOffset, b: LogletOffset): LogletOffset {
  return (a >= b ? a : b) as LogletOffset;
}

export function minOffset(a: LogletOffset, b: LogletOffset): LogletOffset {
  return (a <= b ? a : b) as LogletOffset;
}
