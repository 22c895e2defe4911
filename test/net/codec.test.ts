import { describe, expect, test } from "bun:test";
import { CairnError } from "../../src/observability/errors.ts";
import { decodeFrame, encodeFrame } from "../../src/net/index.ts";

/** Small seeded PRNG (mulberry32) so failures can be replayed from the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectBadRequest(frame: Uint8Array): void {
  let caught: unknown;
  try {
    decodeFrame(frame);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CairnError);
  expect((caught as CairnError).code).toBe("CAIRN-NET-0008");
}

describe("the fabric frame codec", () => {
  test("round-trips nested values with binary fields as raw bytes, not base64", () => {
    const records = Array.from({ length: 10 }, (_, i) => ({ lsn: i + 1, payload: new Uint8Array(1024).fill(i), keys: [`k${i}`] }));
    const value = { loglet: "L1", records, empty: new Uint8Array(0), nested: { deep: [new Uint8Array([1, 2, 3]), null, "s"] }, unicode: "ü€𝄞" };
    const frame = encodeFrame(value);
    // JSON part is small: blobs travel outside it.
    expect(frame.byteLength).toBeLessThan(10 * 1024 + 1024);
    const decoded = decodeFrame(frame) as typeof value;
    expect(decoded).toEqual(value);
    expect(decoded.records[3]?.payload).toBeInstanceOf(Uint8Array);
    expect(Object.getPrototypeOf(decoded.records[3]?.payload)).toBe(Uint8Array.prototype);
  });

  test("Buffers are encoded as bytes (not their toJSON form) and come back as Uint8Array", () => {
    const decoded = decodeFrame(encodeFrame({ b: Buffer.from("hello") })) as { b: Uint8Array };
    expect(decoded.b).toEqual(new Uint8Array(Buffer.from("hello")));
  });

  test("subarray views encode only their own bytes", () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const decoded = decodeFrame(encodeFrame({ v: backing.subarray(2, 5) })) as { v: Uint8Array };
    expect(decoded.v).toEqual(new Uint8Array([1, 2, 3]));
  });

  test("values without binary round-trip through the fast path", () => {
    const value = { a: 1, b: [true, null, "x"], c: { d: -0.5 } };
    expect(decodeFrame(encodeFrame(value, false))).toEqual(value);
    expect(decodeFrame(encodeFrame(value, true))).toEqual(value);
  });

  test("any JSON round-trips, including objects that look like blob references or escapes", () => {
    const lookalikes = {
      a: { $b: 0 },
      b: { $e: { $b: 1 } },
      c: [{ $b: "x" }, { $e: 5 }, { $b: 0, other: true }],
      d: { $b: new Uint8Array([7]) },
      e: new Uint8Array([8]),
    };
    expect(decodeFrame(encodeFrame(lookalikes))).toEqual(lookalikes);
    // Without binary in sight the same values travel as plain JSON.
    const plain = { a: { $b: 0 }, b: { $e: 1 } };
    expect(decodeFrame(encodeFrame(plain, false))).toEqual(plain);
    expect(decodeFrame(encodeFrame(plain, true))).toEqual(plain);
  });

  test("every truncation of a valid frame is refused with NET_BAD_REQUEST", () => {
    const frame = encodeFrame({ a: "text", blobs: [new Uint8Array([1, 2, 3]), new Uint8Array(50).fill(7)] });
    for (let length = 0; length < frame.byteLength; length++) expectBadRequest(frame.subarray(0, length));
  });

  test("trailing bytes, dangling, duplicate and unreferenced blobs are refused", () => {
    const good = encodeFrame({ a: new Uint8Array([1]) });
    const extended = new Uint8Array(good.byteLength + 1);
    extended.set(good);
    expectBadRequest(extended);
    expectBadRequest(handFrame('{"a":{"$b":1}}', [new Uint8Array([1])]));
    expectBadRequest(handFrame('{"a":{"$b":0},"b":{"$b":0}}', [new Uint8Array([1])]));
    expectBadRequest(handFrame('{"a":{"$b":0}}', [new Uint8Array([1]), new Uint8Array([2])]));
    expectBadRequest(handFrame('{"a":{"$b":-1}}', [new Uint8Array([1])]));
    expectBadRequest(handFrame("{not json", []));
    expectBadRequest(handFrame('{"a":{"$e":3}}', [], { blobCount: 0x80000000 }));
    expectBadRequest(handFrame('{"a":{"$b":"x"}}', [new Uint8Array([1])]));
    expectBadRequest(handFrame('{"a":1}', [], { blobCount: 0xffffffff }));
    expectBadRequest(handFrame('{"a":1}', [], { jsonLength: 0xffffffff }));
    const invalidUtf8 = handFrame('{"a":"xx"}', []);
    invalidUtf8[10] = 0xff;
    expectBadRequest(invalidUtf8);
    expect(decodeFrame(handFrame('{"a":{"$b":0}}', [new Uint8Array([5])]))).toEqual({ a: new Uint8Array([5]) });
  });

  test("random corruption and truncation never crash the decoder (seeded fuzz)", () => {
    const seed = Number(process.env.CAIRN_FUZZ_SEED ?? Date.now() % 1_000_000);
    const random = prng(seed);
    let refused = 0;
    try {
      for (let round = 0; round < 2000; round++) {
        const blobs = Array.from({ length: Math.floor(random() * 4) }, () => new Uint8Array(Math.floor(random() * 40)).map(() => random() * 256));
        const frame = new Uint8Array(encodeFrame({ n: round, s: "x".repeat(Math.floor(random() * 20)), blobs }));
        const mutations = 1 + Math.floor(random() * 3);
        for (let m = 0; m < mutations; m++) frame[Math.floor(random() * frame.byteLength)] = Math.floor(random() * 256);
        const cut = random() < 0.5 ? frame.subarray(0, Math.floor(random() * frame.byteLength)) : frame;
        try {
          decodeFrame(cut);
        } catch (e) {
          expect(e).toBeInstanceOf(CairnError);
          expect((e as CairnError).code).toBe("CAIRN-NET-0008");
          refused++;
        }
      }
    } catch (e) {
      console.error(`codec fuzz failed with CAIRN_FUZZ_SEED=${seed}`);
      throw e;
    }
    expect(refused).toBeGreaterThan(0);
  });
});

/** Builds a frame by hand so malformed ones can be written. */
function handFrame(json: string, blobs: Uint8Array[], override: { jsonLength?: number; blobCount?: number } = {}): Uint8Array {
  const jsonBytes = new TextEncoder().encode(json);
  const parts: number[] = [];
  const u32 = (v: number): void => {
    parts.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  };
  u32(override.jsonLength ?? jsonBytes.length);
  parts.push(...jsonBytes);
  u32(override.blobCount ?? blobs.length);
  for (const b of blobs) {
    u32(b.byteLength);
    parts.push(...b);
  }
  return new Uint8Array(parts);
}

describe("the fabric frame codec against hostile frames", () => {
  test("a __proto__ key holding a blob reference stays an own property", () => {
    const decoded = decodeFrame(handFrame('{"__proto__":{"$b":0}}', [new Uint8Array([1])])) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(decoded, "__proto__")?.value).toEqual(new Uint8Array([1]));
  });

  test("absurdly deep nesting is refused, not a stack overflow", () => {
    const depth = 200_000;
    let caught: unknown;
    try {
      decodeFrame(handFrame(`${"[".repeat(depth)}{"$b":0}${"]".repeat(depth)}`, [new Uint8Array([1])]));
    } catch (e) {
      caught = e;
    }
    // JSON.parse itself may refuse it, or the walk does; either way it is NET_BAD_REQUEST.
    expect((caught as CairnError).code).toBe("CAIRN-NET-0008");
  });
});
