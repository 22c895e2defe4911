// Partition routes: the cluster-wide view of partitions (placement, epochs, every worker's processor
// status, log tails and lag). Any node answers; workers that do not answer in time are left out.
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { CairnError } from "../../observability/errors.ts";
import type { AdminDeps } from "./deps.ts";

const Lsn = (description: string) => Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description });

export const PartitionRow = Type.Object(
  {
    id: Type.Integer({ minimum: 0 }),
    leader: Type.Union([Type.String(), Type.Null()], { description: "The worker placed as leader (`N<n>`), null when none is alive." }),
    followers: Type.Array(Type.String(), { description: "Workers replaying the log as hot standbys." }),
    epoch: Type.Integer({ minimum: 0, description: "The partition's leader epoch in metadata (pp_epoch/<p>)." }),
    epochHolder: Type.Union([Type.String(), Type.Null()], { description: "The node that claimed that epoch." }),
    leaderApplied: Type.Boolean({ description: "The placed leader leads: it applied its own announce-leader record." }),
    appliedLsn: Lsn("The leader's applied LSN."),
    durableLsn: Lsn("The leader's durable LSN (applied LSN at the last fsync of its store)."),
    tailLsn: Lsn("The log's tail (first unwritten LSN); null when it cannot be found right now."),
    lag: Lsn("Records in the log the leader has not applied."),
    replicas: Type.Array(
      Type.Object({
        node: Type.String(),
        role: Type.String({ description: "follower, candidate or leader" }),
        appliedLsn: Type.Integer({ minimum: 0 }),
        durableLsn: Type.Integer({ minimum: 0 }),
        stopped: Type.Union([Type.String(), Type.Null()], { description: "Why the processor stopped (a record it cannot apply); null while it runs." }),
      }),
    ),
  },
  { additionalProperties: false },
);
export const PartitionList = Type.Object({ partitions: Type.Array(PartitionRow) }, { additionalProperties: false });

export function partitionRoutes(deps: AdminDeps) {
  return new Elysia({ name: "partition-routes" }).get(
    "/v1/partitions",
    async () => {
      const partitions = await deps.partitions();
      if (partitions === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
      return { partitions };
    },
    {
      response: { 200: PartitionList },
      detail: { operationId: "listPartitions", summary: "Partitions: leader, followers, epoch, applied/durable LSN, log tail, lag", tags: ["partitions"] },
    },
  );
}
