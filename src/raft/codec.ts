// Binary codec for messages, entries and the persisted records a driver stores (hard state, conf
// state, snapshot metadata). Compact (varints, length-prefixed bytes), versioned by a leading byte, and
// strict on decode: bytes from the network or a disk are untrusted, so every malformed input becomes a
// `RaftDecodeError` (an expected failure), never an invariant failure or an out-of-range value.

import type { Message, MessageType } from "./messages.ts";
import { MESSAGE_TYPES } from "./messages.ts";
import type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  HardState,
  Index,
  RaftId,
  Snapshot,
  SnapshotMetadata,
  Term,
} from "./types.ts";
import { unreachable } from "./assert.ts";

export class RaftDecodeError extends Error {
  override readonly name = "RaftDecodeError";
}

const FORMAT_VERSION = 1;
const CONF_CHANGE_TYPES: readonly ConfChangeType[] = ["addVoter", "addLearner", "removeNode"];
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

class Writer {
  private buf: Uint8Array;
  private pos = 0;
  constructor(initialBytes = 64) {
    this.buf = new Uint8Array(initialBytes);
  }
  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  byte(v: number): void {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }
  uint(v: number): void {
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  bool(v: boolean): void {
    this.byte(v ? 1 : 0);
  }
  bytes(v: Uint8Array): void {
    this.uint(v.byteLength);
    this.reserve(v.byteLength);
    this.buf.set(v, this.pos);
    this.pos += v.byteLength;
  }
  string(v: string): void {
    this.bytes(textEncoder.encode(v));
  }
  nullableString(v: string | null): void {
    if (v === null) {
      this.byte(0);
    } else {
      this.byte(1);
      this.string(v);
    }
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  byte(): number {
    const v = this.buf[this.pos];
    if (v === undefined) throw new RaftDecodeError(`truncated input at byte ${this.pos}`);
    this.pos++;
    return v;
  }
  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new RaftDecodeError("integer out of range");
        return result;
      }
      scale *= 0x80;
    }
    throw new RaftDecodeError("varint too long");
  }
  bool(): boolean {
    const b = this.byte();
    if (b > 1) throw new RaftDecodeError(`bad boolean ${b}`);
    return b === 1;
  }
  bytes(): Uint8Array {
    const n = this.uint();
    if (this.pos + n > this.buf.length) throw new RaftDecodeError("byte string runs past the end");
    const v = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  string(): string {
    try {
      return textDecoder.decode(this.bytes());
    } catch (e) {
      if (e instanceof RaftDecodeError) throw e;
      throw new RaftDecodeError("string is not valid UTF-8");
    }
  }
  nullableString(): string | null {
    return this.bool() ? this.string() : null;
  }
  count(maxItems: number): number {
    const n = this.uint();
    // Each item takes at least one byte: a larger count is garbage, and refusing it bounds allocation.
    if (n > maxItems || n > this.buf.length - this.pos) throw new RaftDecodeError(`bad item count ${n}`);
    return n;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new RaftDecodeError(`${this.buf.length - this.pos} trailing bytes`);
  }
}

const MAX_IDS = 1 << 16;
const MAX_ENTRIES = 1 << 24;

function writeConfState(w: Writer, cs: ConfState): void {
  w.uint(cs.voters.length);
  for (const id of cs.voters) w.uint(id);
  w.uint(cs.learners.length);
  for (const id of cs.learners) w.uint(id);
}

function readIds(r: Reader): RaftId[] {
  const n = r.count(MAX_IDS);
  const ids: RaftId[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.uint() as RaftId;
    if (id === 0) throw new RaftDecodeError("node id 0 in a configuration");
    if (i > 0 && id <= ids[i - 1]!) throw new RaftDecodeError("configuration ids not strictly ascending");
    ids.push(id);
  }
  return ids;
}

function readConfState(r: Reader): ConfState {
  const voters = readIds(r);
  const learners = readIds(r);
  for (const id of learners) {
    if (voters.includes(id)) throw new RaftDecodeError(`node ${id} is both voter and learner`);
  }
  return { voters, learners };
}

function writeSnapshotMetadata(w: Writer, m: SnapshotMetadata): void {
  w.uint(m.index);
  w.uint(m.term);
  writeConfState(w, m.confState);
}

function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  const index = r.uint() as Index;
  const term = r.uint() as Term;
  const confState = readConfState(r);
  return { index, term, confState };
}

function writeConfChange(w: Writer, c: ConfChange): void {
  w.byte(CONF_CHANGE_TYPES.indexOf(c.type));
  w.uint(c.nodeId);
  w.bytes(c.context);
}

function readConfChange(r: Reader): ConfChange {
  const type = CONF_CHANGE_TYPES[r.byte()];
  if (type === undefined) throw new RaftDecodeError("unknown conf change type");
  const nodeId = r.uint() as RaftId;
  if (nodeId === 0) throw new RaftDecodeError("conf change for node id 0");
  return { type, nodeId, context: r.bytes() };
}

function writeEntry(w: Writer, e: Entry): void {
  w.uint(e.term);
  w.uint(e.index);
  if (e.kind === "normal") {
    w.byte(0);
    w.bytes(e.data);
  } else {
    w.byte(1);
    writeConfChange(w, e.change);
  }
}

function readEntry(r: Reader): Entry {
  const term = r.uint() as Term;
  const index = r.uint() as Index;
  if (index === 0) throw new RaftDecodeError("entry at index 0");
  const kind = r.byte();
  if (kind === 0) return { kind: "normal", term, index, data: r.bytes() };
  if (kind === 1) return { kind: "confChange", term, index, change: readConfChange(r) };
  throw new RaftDecodeError(`unknown entry kind ${kind}`);
}

function readEntries(r: Reader): Entry[] {
  const n = r.count(MAX_ENTRIES);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const e = readEntry(r);
    const prev = entries[i - 1];
    if (prev !== undefined && e.index !== prev.index + 1) throw new RaftDecodeError("entries not contiguous");
    entries.push(e);
  }
  return entries;
}

function header(r: Reader, what: string): void {
  const v = r.byte();
  if (v !== FORMAT_VERSION) throw new RaftDecodeError(`unsupported ${what} format version ${v}`);
}

/** Encodes a message for the wire. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(m.type === "append" || m.type === "snapshot" ? 256 : 32);
  w.byte(FORMAT_VERSION);
  w.byte(MESSAGE_TYPES.indexOf(m.type));
  w.uint(m.from);
  w.uint(m.to);
  w.uint(m.term);
  switch (m.type) {
    case "append":
      w.uint(m.prevIndex);
      w.uint(m.prevTerm);
      w.uint(m.commit);
      w.uint(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      break;
    case "appendResponse":
      w.uint(m.index);
      w.bool(m.reject);
      w.uint(m.rejectHint);
      w.uint(m.rejectHintTerm);
      break;
    case "vote":
    case "preVote":
      w.uint(m.lastIndex);
      w.uint(m.lastTerm);
      w.bool(m.transfer);
      break;
    case "voteResponse":
    case "preVoteResponse":
      w.bool(m.reject);
      break;
    case "heartbeat":
      w.uint(m.commit);
      w.nullableString(m.ctx);
      break;
    case "heartbeatResponse":
      w.nullableString(m.ctx);
      break;
    case "snapshot":
      writeSnapshotMetadata(w, m.snapshot.metadata);
      w.bytes(m.snapshot.data);
      break;
    case "readIndex":
      w.string(m.ctx);
      break;
    case "readIndexResponse":
      w.uint(m.index);
      w.string(m.ctx);
      break;
    case "timeoutNow":
      break;
    case "transferLeader":
      w.uint(m.transferee);
      break;
    default:
      unreachable(m, "message type");
  }
  return w.finish();
}

/** Decodes a message from the wire; throws `RaftDecodeError` on any malformed input. */
export function decodeMessage(bytes: Uint8Array): Message {
  const r = new Reader(bytes);
  header(r, "message");
  const type: MessageType | undefined = MESSAGE_TYPES[r.byte()];
  if (type === undefined) throw new RaftDecodeError("unknown message type");
  const from = r.uint() as RaftId;
  const to = r.uint() as RaftId;
  const term = r.uint() as Term;
  let m: Message;
  switch (type) {
    case "append": {
      const prevIndex = r.uint() as Index;
      const prevTerm = r.uint() as Term;
      const commit = r.uint() as Index;
      const entries = readEntries(r);
      if (entries.length > 0 && entries[0]!.index !== prevIndex + 1) {
        throw new RaftDecodeError("first entry does not follow prevIndex");
      }
      m = { type, from, to, term, prevIndex, prevTerm, commit, entries };
      break;
    }
    case "appendResponse":
      m = { type, from, to, term, index: r.uint() as Index, reject: r.bool(), rejectHint: r.uint() as Index, rejectHintTerm: r.uint() as Term };
      break;
    case "vote":
    case "preVote":
      m = { type, from, to, term, lastIndex: r.uint() as Index, lastTerm: r.uint() as Term, transfer: r.bool() };
      break;
    case "voteResponse":
    case "preVoteResponse":
      m = { type, from, to, term, reject: r.bool() };
      break;
    case "heartbeat":
      m = { type, from, to, term, commit: r.uint() as Index, ctx: r.nullableString() };
      break;
    case "heartbeatResponse":
      m = { type, from, to, term, ctx: r.nullableString() };
      break;
    case "snapshot": {
      const metadata = readSnapshotMetadata(r);
      m = { type, from, to, term, snapshot: { metadata, data: r.bytes() } };
      break;
    }
    case "readIndex":
      m = { type, from, to, term, ctx: r.string() };
      break;
    case "readIndexResponse":
      m = { type, from, to, term, index: r.uint() as Index, ctx: r.string() };
      break;
    case "timeoutNow":
      m = { type, from, to, term };
      break;
    case "transferLeader":
      m = { type, from, to, term, transferee: r.uint() as RaftId };
      break;
    default:
      unreachable(type, "message type");
  }
  r.end();
  return m;
}

/** Encodes one log entry (for a driver's durable log). */
export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(e.kind === "normal" ? e.data.byteLength + 16 : 32);
  w.byte(FORMAT_VERSION);
  writeEntry(w, e);
  return w.finish();
}

export function decodeEntry(bytes: Uint8Array): Entry {
  const r = new Reader(bytes);
  header(r, "entry");
  const e = readEntry(r);
  r.end();
  return e;
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w = new Writer(16);
  w.byte(FORMAT_VERSION);
  w.uint(hs.term);
  w.uint(hs.vote);
  w.uint(hs.commit);
  return w.finish();
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const r = new Reader(bytes);
  header(r, "hard state");
  const hs: HardState = { term: r.uint() as Term, vote: r.uint() as RaftId, commit: r.uint() as Index };
  r.end();
  return hs;
}

export function encodeConfState(cs: ConfState): Uint8Array {
  const w = new Writer(16);
  w.byte(FORMAT_VERSION);
  writeConfState(w, cs);
  return w.finish();
}

export function decodeConfState(bytes: Uint8Array): ConfState {
  const r = new Reader(bytes);
  header(r, "conf state");
  const cs = readConfState(r);
  r.end();
  return cs;
}

/** Snapshot metadata alone (the driver usually stores the state machine image separately). */
export function encodeSnapshotMetadata(m: SnapshotMetadata): Uint8Array {
  const w = new Writer(32);
  w.byte(FORMAT_VERSION);
  writeSnapshotMetadata(w, m);
  return w.finish();
}

export function decodeSnapshotMetadata(bytes: Uint8Array): SnapshotMetadata {
  const r = new Reader(bytes);
  header(r, "snapshot metadata");
  const m = readSnapshotMetadata(r);
  r.end();
  return m;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new Writer(s.data.byteLength + 32);
  w.byte(FORMAT_VERSION);
  writeSnapshotMetadata(w, s.metadata);
  w.bytes(s.data);
  return w.finish();
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const r = new Reader(bytes);
  header(r, "snapshot");
  const metadata = readSnapshotMetadata(r);
  const data = r.bytes();
  r.end();
  return { metadata, data };
}
