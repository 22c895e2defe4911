// Public surface of the cluster controller: the role the node runs, and the log controller's pure
// planning (tests drive it directly), the trim policy's pure core and the join check it imposes.
export { ClusterController, type ClusterControllerDeps } from "./cluster-controller.ts";
export { LogController, planLogActions, type ControllerDeps, type ControllerOptions, type LogAction, type PlanInput, type ReconfigurationReason } from "./log-controller.ts";
export { decideTrims, resolveTrimPolicy, trimBound, TRIM_POLICIES, type Candidate, type ConfiguredTrimPolicy, type EffectiveTrimPolicy, type LogTrimDecision, type LogTrimInput, type PolicyInput, type TrimWindow } from "./trim-policy.ts";
export { ArchivedIndex, archivedIndexKey, archivedLsnOf, checkWorkerJoin, readArchivedIndex, repositoryConfigured, trimWarnings, uncoveredTrims, PERSISTED_LSN_USED_KEY, TRIM_STATE_KEY } from "./trim-inputs.ts";
export { Snapshotter, SNAPSHOTTER_RPCS, SnapshotRow, CreateJobRequest, type SnapshotterDeps } from "./snapshotter.ts";
export { SnapshotJobCore, SnapshotJobView, SnapshotTaskView, backoffMs, dueForSnapshot, type JobLimits } from "./snapshotter-core.ts";
