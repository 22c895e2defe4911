// The service protocol's framing: an 8-byte big-endian header (u16 type, u16 flags, u32 payload length)
// before each protobuf payload, and a streaming decoder for frames cut anywhere by the transport.
// Invariants: a decoded frame's `raw` is exactly the bytes received for it (header + payload), frames come
// out in arrival order, and no frame (or length claim) above maxFrameBytes is buffered.
import { ProtocolError } from "./errors.ts";
import { encodeMessage, messageTypeOf, type ProtocolMessage } from "./messages.ts";

export const FRAME_HEADER_BYTES = 8;
/** Bit 47 of the header = bit 15 of the flags u16: the SDK asks for an ack (V7 ProposeRunCompletion). */
export const REQUESTED_ACK_FLAG = 0x8000;
/** Default bound on one frame (header + payload). */
export const DEFAULT_MAX_FRAME_BYTES = 32 * 1024 * 1024;

export interface Frame {
  type: number;
  flags: number;
  payload: Uint8Array;
  /** Header + payload exactly as received; stored and replayed verbatim. */
  raw: Uint8Array;
}

/** One frame from its parts: the 8-byte header followed by `payload`. */
export function frameBytes(type: number, flags: number, payload: Uint8Array): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw new ProtocolError(`message type ${type} is not a u16`);
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new ProtocolError(`frame flags ${flags} are not a u16`);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  const view = new DataView(out.buffer);
  view.setUint16(0, type);
  view.setUint16(2, flags);
  view.setUint32(4, payload.byteLength);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A message as a frame (header + payload). */
export function encodeFrame(msg: ProtocolMessage, flags = 0): Uint8Array {
  return frameBytes(messageTypeOf(msg), flags, encodeMessage(msg));
}

/** Parses one complete frame (exactly one, nothing after it). */
export function parseFrame(raw: Uint8Array): Frame {
  const frames = new FrameDecoder({ maxFrameBytes: Math.max(raw.byteLength, FRAME_HEADER_BYTES) }).push(raw);
  if (frames.length !== 1 || frames[0]!.raw.byteLength !== raw.byteLength) throw new ProtocolError("not exactly one frame");
  return frames[0]!;
}

/** Cuts a byte stream into frames; keeps the incomplete tail between pushes. */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private buffered: Uint8Array = new Uint8Array(0);

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes held that do not yet form a frame (a stream that ends with some is truncated). */
  get pendingBytes(): number {
    return this.buffered.byteLength;
  }

  push(chunk: Uint8Array): Frame[] {
    let data: Uint8Array;
    if (this.buffered.byteLength === 0) data = chunk;
    else {
      data = new Uint8Array(this.buffered.byteLength + chunk.byteLength);
      data.set(this.buffered, 0);
      data.set(chunk, this.buffered.byteLength);
    }
    const frames: Frame[] = [];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let at = 0;
    while (data.byteLength - at >= FRAME_HEADER_BYTES) {
      const length = view.getUint32(at + 4);
      const total = FRAME_HEADER_BYTES + length;
      if (total > this.maxFrameBytes) {
        throw new ProtocolError(`frame of ${total} bytes (type 0x${view.getUint16(at).toString(16)}) is over the ${this.maxFrameBytes}-byte bound`);
      }
      if (data.byteLength - at < total) break;
      // Copy: the transport may reuse its chunk buffers, and the raw bytes outlive this call.
      const raw = data.slice(at, at + total);
      frames.push({ type: view.getUint16(at), flags: view.getUint16(at + 2), payload: raw.subarray(FRAME_HEADER_BYTES), raw });
      at += total;
    }
    this.buffered = at === data.byteLength ? new Uint8Array(0) : data.slice(at);
    return frames;
  }
}
