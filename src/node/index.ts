// Public surface of the node module.
export { Node, type NodeOptions, splitHostPort } from "./node.ts";
export { DataDir, FILES, type Addresses, type ClusterMarker } from "./datadir.ts";
export { NodeLifecycle, NODE_STATES, isLegalTransition, type NodeLifecycleState } from "./lifecycle.ts";
export { autoReplication } from "./provision.ts";
