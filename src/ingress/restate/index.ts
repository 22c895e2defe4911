// Public surface of Restate's ingress API on the data plane (used by the ingress app and, for the
// reserved names, by the deployments API).
export { RestateIngress, type RestateIngressDeps } from "./handler.ts";
export { RESERVED_NAMES } from "./paths.ts";
export { parseDelayMs } from "./duration.ts";
