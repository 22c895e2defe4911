// The cluster-wide view of partitions for operators (GET /v1/partitions, `cairn ctl partitions
// list`): the placement, each partition's epoch, every worker's processor status (asked over the
// fabric, bounded by a deadline: a silent node shows as unknown, never stalls the answer), and each
// log's tail. Read-only; lag = tail − 1 − the leader's applied LSN.
import { logId, type NodeId } from "../ids/index.ts";
import type { Bifrost, NodeDirectory } from "../bifrost/index.ts";
import type { MetadataApi } from "../metadata/api.ts";
import type { FabricClient } from "../net/index.ts";
import type { PartitionTable } from "./partition-table.ts";
import { epochKey, PLACEMENT_KEY, type EpochRecord, type PartitionPlacement } from "./placement.ts";
import type { ProcessorStatus } from "./processor.ts";
import { WORKER_RPCS } from "./rpc.ts";
import type { WorkerRole } from "./role.ts";

export interface PartitionOverview {
  id: number;
  leader: string | null;
  followers: string[];
  epoch: number;
  /** The node holding the epoch in metadata (the last claimant). */
  epochHolder: string | null;
  /** The placed leader's processor leads (it applied its own announce). */
  leaderApplied: boolean;
  appliedLsn: number | null;
  durableLsn: number | null;
  tailLsn: number | null;
  lag: number | null;
  replicas: Array<{ node: string; role: string; appliedLsn: number; durableLsn: number; stopped: string | null }>;
}

export interface OverviewDeps {
  readonly metadata: MetadataApi;
  readonly bifrost: Bifrost | undefined;
  readonly directory: NodeDirectory;
  readonly fabricClient: FabricClient;
  readonly self: NodeId | undefined;
  readonly localWorker: WorkerRole | undefined;
  readonly deadlineMs: number;
}

export async function partitionsOverview(deps: OverviewDeps): Promise<PartitionOverview[]> {
  const [tableV, placementV] = await Promise.all([deps.metadata.get("partition_table", { consistency: "stale" }), deps.metadata.get(PLACEMENT_KEY, { consistency: "stale" })]);
  if (tableV === undefined) return [];
  const table = tableV.value as PartitionTable;
  const placement = new Map(((placementV?.value as PartitionPlacement | undefined)?.partitions ?? []).map((p) => [p.id, p]));
  const statuses = new Map<string, ProcessorStatus[]>();
  await Promise.all(
    deps.directory.workers().map(async (n) => {
      if (n.id === deps.self && deps.localWorker !== undefined) statuses.set(n.id, deps.localWorker.statuses());
      else {
        const r = await deps.fabricClient.call(n.fabricAddress, WORKER_RPCS.status, {}, { deadlineMs: deps.deadlineMs }).catch(() => undefined);
        if (r !== undefined) statuses.set(n.id, r.processors);
      }
    }),
  );
  return Promise.all(
    table.partitions.map(async (p) => {
      const placed = placement.get(p.id);
      const [epochV, tail] = await Promise.all([
        deps.metadata.get(epochKey(p.id), { consistency: "stale" }),
        deps.bifrost?.findTail(logId(p.id), AbortSignal.timeout(deps.deadlineMs)).catch(() => undefined),
      ]);
      const epoch = epochV?.value as EpochRecord | undefined;
      const replicas = [...statuses.entries()].flatMap(([node, list]) =>
        list.filter((s) => s.partition === p.id).map((s) => ({ node, role: s.role, appliedLsn: s.appliedLsn, durableLsn: s.durableLsn, stopped: s.stopped })),
      );
      const leader = replicas.find((r) => r.node === placed?.leader);
      const tailLsn = tail?.tailLsn ?? null;
      return {
        id: p.id,
        leader: placed?.leader ?? null,
        followers: placed?.followers ?? [],
        epoch: epoch?.epoch ?? 0,
        epochHolder: epoch?.node ?? null,
        leaderApplied: leader?.role === "leader",
        appliedLsn: leader?.appliedLsn ?? null,
        durableLsn: leader?.durableLsn ?? null,
        tailLsn,
        lag: tailLsn !== null && leader !== undefined ? Math.max(0, tailLsn - 1 - leader.appliedLsn) : null,
        replicas,
      };
    }),
  );
}
