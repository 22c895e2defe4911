import { describe, expect, test } from "bun:test";
import { evenPartitionTable } from "../../src/worker/partition-table.ts";
import { partitionKeyOf, partitionOfObject, xxh64 } from "../../src/worker/key-hash.ts";

describe("keys to partitions", () => {
  test("the hash is XXH64 with seed 0 (published reference vectors)", () => {
    expect(xxh64("")).toBe(0xef46db3751d8e999n);
    expect(xxh64("a")).toBe(0xd24ec4f1a98c6e5bn);
    expect(xxh64("abc")).toBe(0x44bc2cf5ad770999n);
  });

  test("the mapping of objects to partitions never changes (pinned vectors)", () => {
    const t8 = evenPartitionTable(8);
    const t24 = evenPartitionTable(24);
    const vectors: Array<[string, string, bigint, number, number]> = [];
    for (const [s, k] of [["counter", "a"], ["cart", "user-17"], ["greeter", ""], ["svc.v2", "ключ/ü"], ["x", "y/z"]] as const) {
      vectors.push([s, k, partitionKeyOf(s, k), partitionOfObject(t8, s, k), partitionOfObject(t24, s, k)]);
    }
    expect(vectors.map(([s, k, h, p8, p24]) => `${s}/${k} ${h.toString(16)} ${p8} ${p24}`)).toEqual(PINNED);
  });

  test("keys spread over every partition", () => {
    const t = evenPartitionTable(8);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[partitionOfObject(t, "svc", `k${i}`)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  test("a service name with a slash is refused (the split would be ambiguous)", () => {
    expect(() => partitionKeyOf("a/b", "c")).toThrow();
  });
});

// service/key, partition key (hex), partition of 8, partition of 24
const PINNED: string[] = [
  "counter/a c991d66715b970a2 6 18",
  "cart/user-17 e323c729207d5c67 7 21",
  "greeter/ 4adc5c7a51f15fa6 2 7",
  "svc.v2/ключ/ü cccf96ef2a6c9722 6 19",
  "x/y/z 31563e26734a7801 1 4",
];
