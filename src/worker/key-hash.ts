// Keys to partitions: the partition key of an object is XXH64 (seed 0) of the UTF-8 bytes of
// `<service>/<key>`, read as an unsigned 64-bit integer; the partition is the one whose inclusive
// range of the partition table holds it. Invariant: this mapping never changes for a given table
// (test/worker/key-hash.test.ts pins vectors); a service name holds no `/`, so the split is unambiguous.
import { invariant } from "../observability/errors.ts";
import { partitionForKey, type PartitionTable } from "./partition-table.ts";

export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
/** Object keys: any printable text without control characters, bounded. */
export const OBJECT_KEY_MAX_BYTES = 512;

const encoder = new TextEncoder();

/** XXH64 with seed 0: a published, stable algorithm (not a runtime's choice of hash). */
export function xxh64(bytes: Uint8Array | string): bigint {
  const h = Bun.hash.xxHash64(typeof bytes === "string" ? encoder.encode(bytes) : bytes, 0n);
  return BigInt.asUintN(64, BigInt(h));
}

/** The 64-bit partition key of object `key` of `service`. */
export function partitionKeyOf(service: string, key: string): bigint {
  invariant(SERVICE_NAME_PATTERN.test(service), () => `service name ${JSON.stringify(service)} is malformed`);
  return xxh64(`${service}/${key}`);
}

export function partitionOfObject(table: PartitionTable, service: string, key: string): number {
  return partitionForKey(table, partitionKeyOf(service, key));
}
