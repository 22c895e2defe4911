// Invocation and awakeable identifiers. An invocation id is 24 bytes: the 8-byte big-endian partition
// key of the invocation (so any node can route by id alone) and 16 bytes that make it unique. Its
// text form is `inv_1` + the partition key in 11 base62 digits + the 16 bytes in 22 base62 digits
// (Restate's SDK only requires the `inv` prefix). An awakeable id is `sign_1` + base64url of the
// invocation id bytes followed by the u32 big-endian signal index (what the SDK builds from Start.id).
// Invariants: parse(format(b)) = b for every 24-byte id; ids derived from a seed are stable across
// processes and versions (sha256), so a retried idempotent request finds the same invocation.
import { createHash } from "node:crypto";

export const INVOCATION_ID_BYTES = 24;
const PREFIX = "inv_1";
const AWAKEABLE_PREFIX = "sign_1";
const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const KEY_DIGITS = 11;
const UNIQUE_DIGITS = 22;
export const INVOCATION_ID_CHARS = PREFIX.length + KEY_DIGITS + UNIQUE_DIGITS;

function toBase62(n: bigint, width: number): string {
  let s = "";
  for (let i = 0; i < width; i++) {
    s = ALPHABET[Number(n % 62n)] + s;
    n /= 62n;
  }
  return s;
}

function fromBase62(s: string): bigint | undefined {
  let n = 0n;
  for (const c of s) {
    const d = ALPHABET.indexOf(c);
    if (d < 0) return undefined;
    n = n * 62n + BigInt(d);
  }
  return n;
}

function bytesToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

function bigintToBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** An id from a partition key and 16 unique bytes. */
export function invocationIdBytes(partitionKey: bigint, unique: Uint8Array): Uint8Array {
  if (unique.length !== 16) throw new RangeError("an invocation id's unique part is 16 bytes");
  const out = new Uint8Array(INVOCATION_ID_BYTES);
  out.set(bigintToBytes(BigInt.asUintN(64, partitionKey), 8), 0);
  out.set(unique, 8);
  return out;
}

/** A random id in the partition of `partitionKey`. */
export function randomInvocationId(partitionKey: bigint): Uint8Array {
  return invocationIdBytes(partitionKey, crypto.getRandomValues(new Uint8Array(16)));
}

/** A stable id from a seed (idempotency key, workflow key): the same seed gives the same id. */
export function derivedInvocationId(partitionKey: bigint, seed: string): Uint8Array {
  const digest = createHash("sha256").update(seed).digest();
  return invocationIdBytes(partitionKey, new Uint8Array(digest.buffer, digest.byteOffset, 16));
}

export function partitionKeyOfInvocation(id: Uint8Array): bigint {
  return bytesToBigint(id.subarray(0, 8));
}

export function formatInvocationId(id: Uint8Array): string {
  if (id.length !== INVOCATION_ID_BYTES) throw new RangeError(`an invocation id is ${INVOCATION_ID_BYTES} bytes`);
  return PREFIX + toBase62(bytesToBigint(id.subarray(0, 8)), KEY_DIGITS) + toBase62(bytesToBigint(id.subarray(8)), UNIQUE_DIGITS);
}

/** The bytes of a text id, or undefined when it is not one of ours. */
export function parseInvocationId(s: string): Uint8Array | undefined {
  if (s.length !== INVOCATION_ID_CHARS || !s.startsWith(PREFIX)) return undefined;
  const key = fromBase62(s.slice(PREFIX.length, PREFIX.length + KEY_DIGITS));
  const unique = fromBase62(s.slice(PREFIX.length + KEY_DIGITS));
  if (key === undefined || unique === undefined || key >= 1n << 64n || unique >= 1n << 128n) return undefined;
  return invocationIdBytes(key, bigintToBytes(unique, 16));
}

export function formatAwakeableId(invocationId: Uint8Array, signalIndex: number): string {
  const b = new Uint8Array(invocationId.length + 4);
  b.set(invocationId, 0);
  new DataView(b.buffer).setUint32(invocationId.length, signalIndex);
  return AWAKEABLE_PREFIX + Buffer.from(b).toString("base64url");
}

/** The invocation and signal index an awakeable id names, or undefined when it is malformed. */
export function parseAwakeableId(s: string): { invocationId: Uint8Array; signalIndex: number } | undefined {
  if (!s.startsWith(AWAKEABLE_PREFIX)) return undefined;
  const body = s.slice(AWAKEABLE_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(body)) return undefined;
  const b = new Uint8Array(Buffer.from(body, "base64url"));
  if (b.length !== INVOCATION_ID_BYTES + 4) return undefined;
  const signalIndex = new DataView(b.buffer, b.byteOffset).getUint32(INVOCATION_ID_BYTES);
  return { invocationId: b.slice(0, INVOCATION_ID_BYTES), signalIndex };
}
