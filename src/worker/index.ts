// Public surface of the worker (partitions and their processors) for the node, the ingress and the
// admin API: the partition table, keys to partitions, the placement documents, the worker role and
// the router that sends object requests to a partition's leader.
export * from "./partition-table.ts";
export { partitionKeyOf, partitionOfObject, SERVICE_NAME_PATTERN, OBJECT_KEY_MAX_BYTES } from "./key-hash.ts";
export { PLACEMENT_KEY, epochKey, PartitionPlacement, EpochRecord, type PartitionPlacementEntry } from "./placement.ts";
export { WorkerRole, type WorkerOptions, type WorkerRoleDeps } from "./role.ts";
export { StateRouter, RETRY_AFTER_SECONDS, type StateRouterDeps } from "./router.ts";
export type { ProcessorStatus } from "./processor.ts";
export type { MutateAnswer, ObjectAnswer } from "./rpc.ts";
export { partitionsOverview, type OverviewDeps, type PartitionOverview } from "./overview.ts";
export { WORKER_RPCS, type SnapshotAnswer, type SnapshotRequest } from "./rpc.ts";
export { defaultSnapshotConcurrency, restAfterSnapshotMs, uploadRateNow, RecentCount, DEFAULT_SNAPSHOT_PACING, type SnapshotPacing, type WorkerSnapshotSettings } from "./snapshots.ts";
export { INVOCATION_RPCS, type InvocationSummary, type ListInvocationsAnswer, type ListInvocationsRequest, type ControlRpcAnswer, type ControlRpcRequest } from "./rpc.ts";
export { INVOCATION_STATUSES, type InvocationStatus } from "./invoker/tables.ts";
export { parseInvocationId, partitionKeyOfInvocation } from "./invoker/ids.ts";
export { InvocationRouter } from "./invoker/router.ts";
export { SchemaCache } from "./invoker/registry-cache.ts";
export * from "./invoker/model.ts";
