// The names of the lifecycle states that several modules report (the admin API's models, metrics,
// `cairn ctl`). Which transitions between them are legal is decided where each state machine lives:
// the node's in src/node/lifecycle.ts, a metadata server's in src/metadata/server-state.ts.

/** A node process: starting → running → stopping → stopped, or failed on the way. */
export const NODE_STATES = ["starting", "running", "stopping", "stopped", "failed"] as const;
export type NodeLifecycleState = (typeof NODE_STATES)[number];

/**
 * A node's metadata-server role as written in the nodes configuration: `auto-join` (joins the
 * metadata cluster by itself), `member` (a voter), `standby` (serves nothing until an operator adds it).
 */
export const METADATA_SERVER_STATES = ["auto-join", "member", "standby"] as const;
export type MetadataServerState = (typeof METADATA_SERVER_STATES)[number];
