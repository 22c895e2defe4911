// The cluster status document (`GET /v1/cluster/status`, `cairn ctl status`): the state with its
// reasons and warnings, and the overview they were decided from (nodes, metadata service, logs,
// partitions).
// Snapshots join as a field of their own once those exist.
import { Type, type Static } from "@sinclair/typebox";
import { ROLES, StringEnum } from "../../ids/index.ts";
import { CLUSTER_STATES } from "./cluster-state.ts";

export const StatusItemSchema = Type.Object(
  {
    code: Type.String({ description: "Catalogue code (docs/errors.md) naming the condition and what to do.", examples: ["CAIRN-CLUSTER-0005"] }),
    subject: Type.String({ description: "What it is about: `N2`, `log 3`, `metadata`, `cluster`." }),
    message: Type.String(),
  },
  { description: "A reason for the state, or a warning." },
);

const NullableInt = (description: string) => Type.Union([Type.Integer(), Type.Null()], { description });

export const ClusterStatusNode = Type.Object(
  {
    id: Type.String({ description: "`N<id>`." }),
    name: Type.String(),
    generation: Type.Integer({ description: "The generation that last registered (the nodes configuration)." }),
    roles: Type.Array(StringEnum(ROLES)),
    alive: Type.Union([Type.Boolean(), Type.Null()], { description: "Answered a ping just now; null when not asked." }),
    uptimeMs: NullableInt("How long the answering process has run; null when it did not answer."),
    adminAddress: Type.String(),
    fabricAddress: Type.String(),
    metadataServer: Type.Object({
      state: StringEnum(["auto-join", "member", "standby"] as const, { description: "Its state in the nodes configuration." }),
      local: Type.Union([Type.String(), Type.Null()], { description: "What its server reports (`member`, `joining`, …); null when unknown." }),
      raftRole: Type.Union([Type.String(), Type.Null()]),
    }),
    storeWritable: Type.Union([Type.Boolean(), Type.Null()], { description: "false: its log-server store refuses writes; null: unknown or no log-server." }),
    storeRecovering: Type.Union([Type.Boolean(), Type.Null()], {
      description: "true: its log-server store came back empty and is in data-loss mode (CAIRN-LOG-0025) until every segment naming it was moved or re-replicated; null: unknown or no log-server.",
    }),
  },
  { description: "One node of the nodes configuration as this node sees it now." },
);

export const ClusterStatusMetadata = Type.Object(
  {
    leader: Type.Union([Type.String(), Type.Null()]),
    members: Type.Array(Type.String()),
    term: NullableInt("The leader's term (the highest any member reports)."),
    commitIndex: NullableInt("The leader's commit index."),
    appliedIndex: NullableInt("The leader's applied index."),
  },
  { description: "The metadata service." },
);

export const ClusterStatusLog = Type.Object(
  {
    id: Type.Integer({ minimum: 0 }),
    segments: Type.Integer({ minimum: 0 }),
    sequencer: Type.Union([Type.String(), Type.Null()], { description: "The tail segment's sequencer `N<id>:<generation>`." }),
    replication: NullableInt("The tail segment's replication."),
    nodeset: Type.Array(Type.String()),
    sealed: Type.Boolean(),
    writable: Type.Boolean({ description: "The tail segment takes appends, as far as the node can tell." }),
    tailLsn: NullableInt("First LSN not yet written; null when not asked for or not found in time."),
    trimPoint: Type.Integer({ minimum: 0 }),
  },
  { description: "One log." },
);

export const ClusterStatusPartition = Type.Object(
  {
    id: Type.Integer({ minimum: 0 }),
    leader: Type.Union([Type.String(), Type.Null()], { description: "The placed leader `N<id>`." }),
    followers: Type.Array(Type.String()),
    epoch: Type.Integer({ minimum: 0, description: "Its leader epoch in metadata (0: never led)." }),
    leading: Type.Boolean({ description: "The placed leader's processor leads (it applied its own announce)." }),
    appliedLsn: NullableInt("The leader's applied LSN."),
    durableLsn: NullableInt("The leader's durable LSN (applied LSN at its store's last sync)."),
    tailLsn: NullableInt("The log's tail; null when not asked for or not found in time."),
    lag: NullableInt("Records in the log the leader has not applied yet."),
    stopped: Type.Array(Type.String(), { description: "Why processors of it stopped (`N2: …`); empty when none did." }),
  },
  { description: "One partition." },
);

export const ReplicationProgressSchema = Type.Object(
  {
    target: Type.Integer({ minimum: 1, description: "The cluster's replication setting." }),
    logs: Type.Integer({ minimum: 0 }),
    logsAtTarget: Type.Integer({ minimum: 0, description: "Logs whose tail segment and sealed segments (with records) have at least the target replication." }),
  },
  { description: "How far the logs are on their way to the cluster's replication setting." },
);

export const ClusterStatus = Type.Object(
  {
    state: StringEnum(CLUSTER_STATES, {
      description:
        "starting, awaiting-provisioning, running, degraded (serves, but something is down), unavailable (no metadata quorum), stopping (this node).",
    }),
    sinceMs: Type.Integer({ description: "When this node first saw the cluster in this state (Unix ms)." }),
    reasons: Type.Array(StatusItemSchema, { description: "Why the state is not `running` (empty when it is)." }),
    warnings: Type.Array(StatusItemSchema, { description: "What is not fault tolerant (single replica, single metadata member), and what keeps logs from being trimmed (CAIRN-TRIM-…)." }),
    observedBy: Type.Object({ node: Type.Union([Type.String(), Type.Null()]), name: Type.String(), adminAddress: Type.String() }),
    cluster: Type.Union(
      [Type.Object({ name: Type.String(), fingerprint: Type.String(), numPartitions: Type.Integer(), replication: Type.Integer() }), Type.Null()],
      { description: "Null before provisioning." },
    ),
    nodes: Type.Array(ClusterStatusNode),
    metadata: Type.Union([ClusterStatusMetadata, Type.Null()], { description: "Null when it could not be reached or before provisioning." }),
    logs: Type.Union([Type.Array(ClusterStatusLog), Type.Null()], { description: "Null when the logs could not be read." }),
    partitions: Type.Union([Type.Array(ClusterStatusPartition), Type.Null()], { description: "Null when the partitions could not be read." }),
    replication: Type.Union([ReplicationProgressSchema, Type.Null()], { description: "Progress towards the replication setting; null when the logs could not be read." }),
  },
  { description: "The cluster's lifecycle state, why, and the overview it was decided from." },
);
export type ClusterStatus = Static<typeof ClusterStatus>;
export type ClusterStatusNode = Static<typeof ClusterStatusNode>;
export type ClusterStatusLog = Static<typeof ClusterStatusLog>;
export type ClusterStatusPartition = Static<typeof ClusterStatusPartition>;
