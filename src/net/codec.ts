// The RPC body codec: JSON for structure, raw bytes for binary fields, in one frame, so log records and
// raft messages cross the wire without base64. Layout (integers u32 big-endian):
//   [json length][json: each Uint8Array replaced by {"$b": i}][flags | blob count][len 0][blob 0][len 1]...
// The top bit of the blob-count word says the JSON holds escaped objects: a value's own object whose
// only key is "$b" or "$e" is sent as {"$e": object}, so any JSON (Type.Unknown fields included)
// round-trips. Invariants: decoding never throws anything but CairnError(NET_BAD_REQUEST), every blob
// is referenced exactly once, nothing follows the last blob; decoded blobs are views of the frame.
import { CairnError, invariant } from "../observability/errors.ts";

const BLOB_KEY = "$b";
const ESCAPE_KEY = "$e";
const U32_BYTES = 4;
const ESCAPED_FLAG = 0x8000_0000;
const MAX_BLOBS = 0x7fff_ffff;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** What the encoding walk found. */
interface Lifted {
  readonly blobs: Uint8Array[];
  escaped: boolean;
}

/**
 * Encodes a value into one frame. `mayHoldBinary = false` (known from the schema) skips the walk that
 * lifts Uint8Arrays out of the value: the JSON is then written as is, and decoded as is.
 */
export function encodeFrame(value: unknown, mayHoldBinary = true): Uint8Array {
  const lifted: Lifted = { blobs: [], escaped: false };
  const json = JSON.stringify(mayHoldBinary ? liftBlobs(value, lifted) : value);
  invariant(json !== undefined, "an RPC body must be JSON-serialisable (got undefined)");
  const { blobs } = lifted;
  invariant(blobs.length <= MAX_BLOBS, "too many blobs in one frame");
  const jsonBytes = textEncoder.encode(json);
  let totalBytes = U32_BYTES + jsonBytes.length + U32_BYTES;
  for (const b of blobs) totalBytes += U32_BYTES + b.byteLength;

  const out = Buffer.allocUnsafe(totalBytes);
  let at = 0;
  out.writeUInt32BE(jsonBytes.length, at);
  at += U32_BYTES;
  out.set(jsonBytes, at);
  at += jsonBytes.length;
  out.writeUInt32BE((blobs.length | (lifted.escaped ? ESCAPED_FLAG : 0)) >>> 0, at);
  at += U32_BYTES;
  for (const b of blobs) {
    out.writeUInt32BE(b.byteLength, at);
    at += U32_BYTES;
    out.set(b, at);
    at += b.byteLength;
  }
  invariant(at === totalBytes, "frame size computed wrongly");
  return out;
}

/** Decodes a frame produced by encodeFrame. Any malformation is NET_BAD_REQUEST, never a crash. */
export function decodeFrame(frame: Uint8Array): unknown {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let at = 0;
  const readU32 = (what: string): number => {
    if (at + U32_BYTES > frame.byteLength) throw malformed(`truncated before ${what} at byte ${at}`);
    const v = view.getUint32(at, false);
    at += U32_BYTES;
    return v;
  };

  const jsonLength = readU32("the JSON length");
  if (jsonLength > frame.byteLength - at) throw malformed(`JSON length ${jsonLength} exceeds the frame`);
  const jsonBytes = frame.subarray(at, at + jsonLength);
  at += jsonLength;

  const countWord = readU32("the blob count");
  const escaped = (countWord & ESCAPED_FLAG) !== 0;
  const blobCount = countWord & MAX_BLOBS;
  // Each blob needs at least its length prefix: rejects absurd counts before allocating for them.
  if (blobCount > (frame.byteLength - at) / U32_BYTES) throw malformed(`blob count ${blobCount} exceeds the frame`);
  const blobs: Uint8Array[] = new Array(blobCount);
  for (let i = 0; i < blobCount; i++) {
    const length = readU32(`the length of blob ${i}`);
    if (length > frame.byteLength - at) throw malformed(`blob ${i} of ${length} bytes exceeds the frame`);
    blobs[i] = new Uint8Array(frame.buffer, frame.byteOffset + at, length);
    at += length;
  }
  if (at !== frame.byteLength) throw malformed(`${frame.byteLength - at} unexpected bytes after the last blob`);

  let value: unknown;
  try {
    value = JSON.parse(textDecoder.decode(jsonBytes)) as unknown;
  } catch {
    throw malformed("the JSON part is not valid UTF-8 JSON");
  }
  if (blobCount === 0 && !escaped) return value; // written without the walk: nothing to resolve

  const used = new Uint8Array(blobCount);
  let resolved: unknown;
  try {
    resolved = resolveBlobs(value, blobs, used);
  } catch (e) {
    if (e instanceof CairnError) throw e;
    throw malformed("the JSON part is nested too deeply"); // stack overflow on hostile input
  }
  const unused = used.indexOf(0);
  if (unused !== -1) throw malformed(`blob ${unused} is not referenced`);
  return resolved;
}

/** Deep copy of `value` with every Uint8Array (Buffer included) moved to `blobs` and replaced by a
 *  reference, and objects that would read as a reference or an escape wrapped in an escape. */
function liftBlobs(value: unknown, lifted: Lifted): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) {
    lifted.blobs.push(value);
    return { [BLOB_KEY]: lifted.blobs.length - 1 };
  }
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = liftBlobs(value[i], lifted);
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // Date and other classes: their own toJSON
  const out: Record<string, unknown> = {};
  let keys = 0;
  let onlyKey = "";
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[k] = liftBlobs(v, lifted);
    keys++;
    onlyKey = k;
  }
  if (keys === 1 && (onlyKey === BLOB_KEY || onlyKey === ESCAPE_KEY)) {
    lifted.escaped = true;
    return { [ESCAPE_KEY]: out };
  }
  return out;
}

/** Replaces blob references in a parsed value (in place) and unwraps escapes; marks each blob used.
 *  A walk of our own: JSON.parse with a reviver is several times slower in JSC. */
function resolveBlobs(value: unknown, blobs: Uint8Array[], used: Uint8Array): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = resolveBlobs(value[i], blobs, used);
    return value;
  }
  const record = value as Record<string, unknown>;
  const single = singleKey(record);
  if (single === BLOB_KEY) {
    const i = record[BLOB_KEY];
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= blobs.length) throw malformed(`blob reference ${JSON.stringify(i)} is invalid`);
    if (used[i] === 1) throw malformed(`blob ${i} is referenced twice`);
    used[i] = 1;
    return blobs[i];
  }
  if (single === ESCAPE_KEY) {
    const inner = record[ESCAPE_KEY];
    if (inner === null || typeof inner !== "object" || Array.isArray(inner)) throw malformed("an escape does not wrap an object");
    resolveMembers(inner as Record<string, unknown>, blobs, used);
    return inner;
  }
  resolveMembers(record, blobs, used);
  return record;
}

function resolveMembers(record: Record<string, unknown>, blobs: Uint8Array[], used: Uint8Array): void {
  for (const key in record) {
    const before = record[key];
    const after = resolveBlobs(before, blobs, used);
    if (after === before) continue;
    // Assigning to "__proto__" would set the prototype: define the own property instead.
    if (key === "__proto__") Object.defineProperty(record, key, { value: after, writable: true, enumerable: true, configurable: true });
    else record[key] = after;
  }
}

/** The key of a one-key object, or null. */
function singleKey(record: Record<string, unknown>): string | null {
  let found: string | null = null;
  for (const key in record) {
    if (found !== null) return null;
    found = key;
  }
  return found;
}

function malformed(reason: string): CairnError {
  return new CairnError("NET_BAD_REQUEST", `malformed RPC frame: ${reason}`, { reason });
}
