// Public surface of the admin role: the HTTP API and the cluster controller.
export { createAdminApp, renderOpenApi, OPENAPI_PATH, type AdminApp } from "./api/app.ts";
export type { AdminDeps } from "./api/deps.ts";
export { InvocationOperations } from "./api/invocation-operations.ts";
export { NodeInfo, Problem, type ProblemBody } from "./api/models.ts";
export { PROBLEM_CONTENT_TYPE, problemResponse } from "./api/errors.ts";
export { openApiDocument, openApiText } from "./api/spec.ts";
export { checkWorkerJoin, ClusterController, repositoryConfigured, type ClusterControllerDeps } from "./controller/index.ts";
export { ClusterStatusMonitor, type StatusSources } from "./status/monitor.ts";
export { CLUSTER_STATES, decideClusterStatus, type ClusterState, type ClusterSignals, type StatusItem } from "./status/cluster-state.ts";
export type { ClusterStatus } from "./status/schema.ts";
