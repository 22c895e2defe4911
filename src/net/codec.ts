// The RPC body codec: JSON for structure, raw bytes for binary fields, in one frame, so log records and
// raft messages cross the wire without base64. Layout (integers u32 big-endian):
//   [json length][json: each Uint8Array replaced by {"$b": i}][blob count][len 0][blob 0][len 1][blob 1]...
// Invariants: decoding never throws anything but CairnError(NET_BAD_REQUEST) on any input, every blob
// is referenced exactly once, and nothing follows the last blob. Decoded blobs are views of the frame.
import { CairnError, invariant } from "../observability/errors.ts";

/** Key marking a blob reference; reserved: values to encode must not have objects with this key. */
const BLOB_KEY = "$b";
const U32_BYTES = 4;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a value into one frame. `mayHoldBinary = false` (known from the schema) skips the walk that
 * lifts Uint8Arrays out of the value: the JSON is then written as is.
 */
export function encodeFrame(value: unknown, mayHoldBinary = true): Uint8Array {
  const blobs: Uint8Array[] = [];
  const json = JSON.stringify(mayHoldBinary ? liftBlobs(value, blobs) : value);
  invariant(json !== undefined, "an RPC body must be JSON-serialisable (got undefined)");
  const jsonBytes = textEncoder.encode(json);
  let totalBytes = U32_BYTES + jsonBytes.length + U32_BYTES;
  for (const b of blobs) totalBytes += U32_BYTES + b.byteLength;

  const out = Buffer.allocUnsafe(totalBytes);
  let at = 0;
  out.writeUInt32BE(jsonBytes.length, at);
  at += U32_BYTES;
  out.set(jsonBytes, at);
  at += jsonBytes.length;
  out.writeUInt32BE(blobs.length, at);
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

  const blobCount = readU32("the blob count");
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

  let text: string;
  try {
    text = textDecoder.decode(jsonBytes);
  } catch {
    throw malformed("the JSON part is not valid UTF-8");
  }
  if (blobCount === 0) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw malformed("the JSON part does not parse");
    }
  }

  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw malformed("the JSON part does not parse");
  }
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

/** Replaces blob references in a parsed value (in place) by the blobs; marks each blob used once.
 *  A walk of our own: JSON.parse with a reviver is several times slower in JSC. */
function resolveBlobs(value: unknown, blobs: Uint8Array[], used: Uint8Array): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = resolveBlobs(value[i], blobs, used);
    return value;
  }
  const record = value as Record<string, unknown>;
  if (isBlobReference(record)) {
    const i = record[BLOB_KEY];
    if (!Number.isInteger(i) || i < 0 || i >= blobs.length) throw malformed(`blob reference ${String(i)} is out of range`);
    if (used[i] === 1) throw malformed(`blob ${i} is referenced twice`);
    used[i] = 1;
    return blobs[i];
  }
  for (const key in record) {
    const before = record[key];
    const after = resolveBlobs(before, blobs, used);
    if (after === before) continue;
    // Assigning to "__proto__" would set the prototype: define the own property instead.
    if (key === "__proto__") Object.defineProperty(record, key, { value: after, writable: true, enumerable: true, configurable: true });
    else record[key] = after;
  }
  return record;
}

/** Deep copy of `value` with every Uint8Array (Buffer included) moved to `blobs` and replaced by a reference. */
function liftBlobs(value: unknown, blobs: Uint8Array[]): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) {
    blobs.push(value);
    return { [BLOB_KEY]: blobs.length - 1 };
  }
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = liftBlobs(value[i], blobs);
    return out;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
    return value; // Date and other classes serialise through their own toJSON
  }
  invariant(!Object.hasOwn(value, BLOB_KEY), `the key "${BLOB_KEY}" is reserved by the fabric codec`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = liftBlobs(v, blobs);
  }
  return out;
}

function isBlobReference(v: unknown): v is { [BLOB_KEY]: number } {
  if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.hasOwn(v, BLOB_KEY)) return false;
  return Object.keys(v).length === 1 && typeof (v as Record<string, unknown>)[BLOB_KEY] === "number";
}

function malformed(reason: string): CairnError {
  return new CairnError("NET_BAD_REQUEST", `malformed RPC frame: ${reason}`, { reason });
}
