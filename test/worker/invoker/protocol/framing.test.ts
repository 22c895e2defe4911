// Framing: the 8-byte header, and a decoder that yields the same frames whatever way the transport cuts
// the byte stream, keeps each frame's exact bytes, and refuses frames over its bound.
import { describe, expect, test } from "bun:test";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  frameBytes,
  MessageType,
  ProtocolError,
  REQUESTED_ACK_FLAG,
  type Frame,
} from "../../../../src/worker/invoker/protocol/index.ts";

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

const FRAMES = [
  encodeFrame({ kind: "run", resultCompletionId: 1, name: "first" }),
  encodeFrame({ kind: "proposeRunCompletion", resultCompletionId: 1, result: { value: b('"x-a"') } }, REQUESTED_ACK_FLAG),
  encodeFrame({ kind: "end" }),
  frameBytes(0xfc00, 0, new Uint8Array(300).fill(9)),
  encodeFrame({ kind: "output", result: { value: new Uint8Array(70_000).fill(1) }, name: "" }),
];
const STREAM = concat(FRAMES);

function expectFrames(got: Frame[]): void {
  expect(got.length).toBe(FRAMES.length);
  got.forEach((frame, i) => {
    expect(frame.raw).toEqual(FRAMES[i]!);
    expect(frame.payload).toEqual(FRAMES[i]!.subarray(FRAME_HEADER_BYTES));
  });
  expect(got.map((f) => f.type)).toEqual([MessageType.RunCommand, MessageType.ProposeRunCompletion, MessageType.End, 0xfc00, MessageType.OutputCommand]);
  expect(got.map((f) => f.flags)).toEqual([0, REQUESTED_ACK_FLAG, 0, 0, 0]);
}

describe("frame header", () => {
  test("type in bits 63..48, the ack flag at bit 47, the payload length in bits 31..0", () => {
    const raw = frameBytes(0x0005, REQUESTED_ACK_FLAG, Uint8Array.from([1, 2, 3]));
    expect([...raw]).toEqual([0x00, 0x05, 0x80, 0x00, 0x00, 0x00, 0x00, 0x03, 1, 2, 3]);
    expect(() => frameBytes(0x10000, 0, new Uint8Array(0))).toThrow(ProtocolError);
  });
});

describe("FrameDecoder", () => {
  test("many frames in one chunk", () => {
    const decoder = new FrameDecoder();
    expectFrames(decoder.push(STREAM));
    expect(decoder.pendingBytes).toBe(0);
  });

  test("split at every byte boundary into two chunks", () => {
    // Frames up to the split come from the first push, the rest from the second.
    for (let cut = 0; cut <= STREAM.byteLength; cut += cut < 400 ? 1 : 997) {
      const decoder = new FrameDecoder();
      const frames = [...decoder.push(STREAM.subarray(0, cut)), ...decoder.push(STREAM.subarray(cut))];
      expectFrames(frames);
      expect(decoder.pendingBytes).toBe(0);
    }
  });

  test("one byte at a time, in a reused buffer", () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const scratch = new Uint8Array(1);
    for (const byte of STREAM) {
      scratch[0] = byte;
      frames.push(...decoder.push(scratch));
    }
    expectFrames(frames);
  });

  test("a truncated stream leaves pending bytes", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(STREAM.subarray(0, FRAMES[0]!.byteLength + 5)).length).toBe(1);
    expect(decoder.pendingBytes).toBe(5);
  });

  test("a frame over maxFrameBytes is refused from its header alone", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const header = frameBytes(MessageType.OutputCommand, 0, new Uint8Array(0));
    new DataView(header.buffer).setUint32(4, 0xffffffff);
    expect(() => decoder.push(header)).toThrow(ProtocolError);
    const small = new FrameDecoder({ maxFrameBytes: FRAMES[0]!.byteLength });
    expect(small.push(FRAMES[0]!).length).toBe(1);
    expect(() => small.push(FRAMES[4]!.subarray(0, 8))).toThrow(ProtocolError);
  });
});
