// The two metadata documents of partition leadership. `partition_placement` is written by the
// cluster controller only: for every partition, the worker that should lead it and its followers.
// `pp_epoch/<partition>` is written by would-be leaders only, by compare-and-set: the epoch grows by
// one per claim, so two claimants never hold the same epoch, and the log order of their
// announce-leader records decides which one leads (see core.ts).
import { Type, type Static } from "@sinclair/typebox";

export const PLACEMENT_KEY = "partition_placement";

export function epochKey(partition: number): string {
  return `pp_epoch/${partition}`;
}

export const PartitionPlacementEntry = Type.Object({
  id: Type.Integer({ minimum: 0 }),
  /** The node that should lead the partition (`N<n>`), or null when no worker is alive. */
  leader: Type.Union([Type.String(), Type.Null()]),
  /** Nodes that replay the partition's log as hot standbys. */
  followers: Type.Array(Type.String()),
});
export type PartitionPlacementEntry = Static<typeof PartitionPlacementEntry>;

export const PartitionPlacement = Type.Object({
  partitions: Type.Array(PartitionPlacementEntry),
});
export type PartitionPlacement = Static<typeof PartitionPlacement>;

export const EpochRecord = Type.Object({
  epoch: Type.Integer({ minimum: 1 }),
  /** The claimant: node id and the generation it ran (a restarted node is a new claimant). */
  node: Type.String(),
  generation: Type.Integer({ minimum: 1 }),
});
export type EpochRecord = Static<typeof EpochRecord>;
