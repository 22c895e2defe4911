// Public surface of the cluster controller: the role the node runs, and the log controller's pure
// planning (tests drive it directly).
export { ClusterController, type ClusterControllerDeps } from "./cluster-controller.ts";
export { LogController, planLogActions, type ControllerDeps, type ControllerOptions, type LogAction, type PlanInput, type ReconfigurationReason } from "./log-controller.ts";
export { Snapshotter, SNAPSHOTTER_RPCS, SnapshotRow, CreateJobRequest, type SnapshotterDeps } from "./snapshotter.ts";
export { SnapshotJobCore, SnapshotJobView, SnapshotTaskView, backoffMs, dueForSnapshot, type JobLimits } from "./snapshotter-core.ts";
