// The throughput cells of the metadata benchmarks: one kind of request, to the leader or to a
// follower, at a number of closed-loop clients. The put cells are shared, so that
// bench/metadata.ts and bench/metadata-growth.ts measure the same thing at different state sizes.
import type { ReadMode } from "./cluster.ts";

export interface CellSpec {
  id: string;
  label: string;
  op: "put" | "get";
  /** For gets. */
  mode?: ReadMode;
  target: "leader" | "follower";
  concurrency: number;
}

export const PUT_CELLS: CellSpec[] = [
  { id: "put-leader-c1", label: "put → leader", op: "put", target: "leader", concurrency: 1 },
  { id: "put-leader-c16", label: "put → leader", op: "put", target: "leader", concurrency: 16 },
  { id: "put-leader-c64", label: "put → leader", op: "put", target: "leader", concurrency: 64 },
  { id: "put-follower-c16", label: "put → follower (forwarded)", op: "put", target: "follower", concurrency: 16 },
];
