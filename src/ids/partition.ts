// Partition ids: a partition owns one range of the 64-bit key space and, by default, one log.
import { invariant } from "../observability/errors.ts";
import type { Brand } from "./brand.ts";

export type PartitionId = Brand<number, "PartitionId">;

/** At most 65 535 partitions (ids 0..65 534); the partition table is fixed at provisioning. */
export const MAX_PARTITIONS = 65_535;

export function partitionId(n: number): PartitionId {
  invariant(Number.isInteger(n) && n >= 0 && n < MAX_PARTITIONS, () => `partition id must be an integer in [0, ${MAX_PARTITIONS}), got ${n}`);
  return n as PartitionId;
}
