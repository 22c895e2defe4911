// The partition table: a fixed number of partitions, each owning a contiguous, inclusive range of
// the 64-bit key space. Ranges are decimal strings because JSON numbers cannot hold 64-bit integers.
// Invariant: ranges are disjoint, in id order, and together cover [0, 2^64 - 1].
import { Type, type Static } from "@sinclair/typebox";
import { MAX_PARTITIONS } from "../ids/index.ts";
import { invariant } from "../observability/errors.ts";

export { MAX_PARTITIONS };
const KEY_SPACE = 1n << 64n;

export const PartitionTable = Type.Object({
  numPartitions: Type.Integer({ minimum: 1, maximum: MAX_PARTITIONS }),
  partitions: Type.Array(
    Type.Object({
      id: Type.Integer({ minimum: 0 }),
      keyRange: Type.Object({ start: Type.String(), end: Type.String() }, { description: "Inclusive, decimal u64." }),
    }),
  ),
});
export type PartitionTable = Static<typeof PartitionTable>;

export function evenPartitionTable(numPartitions: number): PartitionTable {
  invariant(Number.isInteger(numPartitions) && numPartitions >= 1 && numPartitions <= MAX_PARTITIONS, "partition count out of range");
  const n = BigInt(numPartitions);
  const partitions = [];
  for (let i = 0n; i < n; i++) {
    const start = (KEY_SPACE * i) / n;
    const end = (KEY_SPACE * (i + 1n)) / n - 1n;
    partitions.push({ id: Number(i), keyRange: { start: start.toString(), end: end.toString() } });
  }
  return { numPartitions, partitions };
}

/** The partition owning a 64-bit key (binary search over the ranges). */
export function partitionForKey(table: PartitionTable, key: bigint): number {
  invariant(key >= 0n && key < KEY_SPACE, "key outside the 64-bit key space");
  let lo = 0;
  let hi = table.partitions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = table.partitions[mid]!;
    if (key < BigInt(p.keyRange.start)) hi = mid - 1;
    else if (key > BigInt(p.keyRange.end)) lo = mid + 1;
    else return p.id;
  }
  invariant(false, "partition table does not cover the key space");
}
