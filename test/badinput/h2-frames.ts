// Hand-made HTTP/2 cleartext traffic for bad-input tests: frames built byte by byte (RFC 9113 §4),
// header blocks as HPACK literals (RFC 7541 §6.2.2, no Huffman, no table), and a raw client that
// sends a preface and any frames, acknowledges the server's SETTINGS, and reports what came back
// (responses, stream resets, GOAWAY and its code, or the connection's end). Loopback only.
import net from "node:net";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const MAX_FRAME_LENGTH = 0xffffff;

/** One frame: 24-bit length, type, flags, 31-bit stream id, payload. `length` overrides the real one (lies). */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0), length = payload.length): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new Error("frame length beyond 24 bits");
  const head = Buffer.alloc(9);
  head.writeUIntBE(length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, Buffer.from(payload)]);
}

export function settings(pairs: ReadonlyArray<readonly [number, number]> = []): Buffer {
  const p = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByteFlags | value];
  const out = [firstByteFlags | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function hpackString(s: string | Uint8Array): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "latin1") : Buffer.from(s);
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7, 0)), bytes]);
}

/** A header block of literal fields without indexing, new names (every field spelled out). */
export function headerBlock(fields: ReadonlyArray<readonly [string, string | Uint8Array]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

export function requestFields(method: string, path: string, extra: ReadonlyArray<readonly [string, string]> = []): Array<readonly [string, string]> {
  return [[":method", method], [":scheme", "http"], [":path", path], [":authority", "127.0.0.1"], ...extra];
}

/** HEADERS (one frame, END_HEADERS) for a request; END_STREAM unless a body follows. */
export function requestHeaders(streamId: number, method: string, path: string, options: { endStream?: boolean; extra?: ReadonlyArray<readonly [string, string]> } = {}): Buffer {
  const flags = FLAG.END_HEADERS | ((options.endStream ?? true) ? FLAG.END_STREAM : 0);
  return frame(FRAME.HEADERS, flags, streamId, headerBlock(requestFields(method, path, options.extra)));
}

export interface RawH2Result {
  /** Response HEADERS frames received (any stream). */
  readonly responses: number;
  /** Their :status where it can be read without Huffman decoding (static-table index or plain literal), else -1. */
  readonly statuses: readonly number[];
  /** RST_STREAM frames received. */
  readonly rstStreams: number;
  /** GOAWAY's error code (RFC 9113 §7), if one came. */
  readonly goawayCode: number | undefined;
  /** How the connection ended: "closed" by the server, "reset", or still open at our deadline ("open"). */
  readonly end: "closed" | "reset" | "open";
  readonly bytesReceived: number;
  /** Bytes of ours the server did not take before the connection ended. */
  readonly unsent: number;
}

/**
 * Sends the preface, our SETTINGS and then `chunks` (written with backpressure, stopping if the
 * server ends the connection), acknowledges the server's SETTINGS, and waits until the server closes
 * the connection or it has been quiet for `quietMs` after our last byte, at most `timeoutMs`.
 */
export async function rawH2(
  host: string,
  port: number,
  chunks: Iterable<Uint8Array>,
  options: { quietMs?: number; timeoutMs?: number; preface?: boolean } = {},
): Promise<RawH2Result> {
  const quietMs = options.quietMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  let received = Buffer.alloc(0);
  let bytesReceived = 0;
  let responses = 0;
  const statuses: number[] = [];
  let rstStreams = 0;
  let goawayCode: number | undefined;
  let ended: "closed" | "reset" | undefined;
  let lastActivity = performance.now();
  let unsent = 0;
  socket.on("data", (d: Buffer) => {
    lastActivity = performance.now();
    bytesReceived += d.length;
    received = Buffer.concat([received, d]);
    while (received.length >= 9) {
      const len = received.readUIntBE(0, 3);
      if (received.length < 9 + len) break;
      const type = received[3]!;
      const flags = received[4]!;
      const payload = received.subarray(9, 9 + len);
      if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0 && !socket.destroyed) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (type === FRAME.HEADERS) {
        responses++;
        statuses.push(responseStatus(payload, flags));
      }
      if (type === FRAME.RST_STREAM) rstStreams++;
      if (type === FRAME.GOAWAY && payload.length >= 8) goawayCode = payload.readUInt32BE(4);
      received = received.subarray(9 + len);
    }
  });
  const closed = new Promise<void>((resolve) => {
    socket.on("error", () => {
      ended ??= "reset";
      resolve();
    });
    socket.on("close", () => {
      ended ??= "closed";
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const deadline = performance.now() + timeoutMs;
  const write = async (bytes: Uint8Array): Promise<boolean> => {
    if (ended !== undefined || socket.destroyed) {
      unsent += bytes.length;
      return false;
    }
    if (!socket.write(bytes)) {
      await Promise.race([new Promise((r) => socket.once("drain", r)), closed, Bun.sleep(Math.max(0, deadline - performance.now()))]);
    }
    lastActivity = performance.now();
    return true;
  };
  if (options.preface ?? true) await write(Buffer.concat([PREFACE, settings()]));
  for (const c of chunks) {
    if (performance.now() > deadline) {
      unsent += c.length;
      continue;
    }
    await write(c);
  }
  while (ended === undefined && performance.now() < deadline && performance.now() - lastActivity < quietMs) await Bun.sleep(25);
  const end = ended ?? "open";
  socket.destroy();
  await closed;
  return { responses, statuses, rstStreams, goawayCode, end, bytesReceived, unsent };
}

/** HPACK static-table entries 8–14 are `:status` 200, 204, 206, 304, 400, 404, 500 (RFC 7541 Appendix A). */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/** The :status a response header block starts with (servers send it first), or -1 when it cannot be read simply. */
function responseStatus(payload: Buffer, flags: number): number {
  let p = 0;
  if (flags & 0x8) p += 1; // PADDED: pad length byte
  if (flags & 0x20) p += 5; // PRIORITY
  const b = payload[p];
  if (b === undefined) return -1;
  if (b & 0x80) return STATIC_STATUS[b & 0x7f] ?? -1; // indexed field
  // A literal whose name is static entry 8..14 (:status), with (0x40) or without (0x00/0x10) indexing.
  const nameIndex = b & 0x40 ? b & 0x3f : b & 0x0f;
  if (STATIC_STATUS[nameIndex] === undefined) return -1;
  const len = payload[p + 1];
  if (len === undefined || len & 0x80) return -1; // Huffman-coded value
  const value = Number(payload.subarray(p + 2, p + 2 + len).toString("latin1"));
  return Number.isInteger(value) ? value : -1;
}
