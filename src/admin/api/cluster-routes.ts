// Cluster routes: the cluster's identity, its lifecycle state and overview, provisioning (once per
// cluster) and its settings (replication, nodeset size), changed by compare-and-set on `cluster`; the
// log controller then moves every log to them by itself.
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import type { LogsDocument } from "../../bifrost/index.ts";
import { nodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { matchesVersion } from "../../metadata/kv.ts";
import { clusterSettings, KEYS, withClusterSettings, type ClusterInfo, type NodesConfiguration } from "../../metadata/nodes-config.ts";
import { CairnError, isCairnError } from "../../observability/errors.ts";
import { replicationProgress } from "../status/progress.ts";
import { checkSettingsChange } from "./cluster-operations.ts";
import { ClusterStatus, ClusterStatusLog, ReplicationProgressSchema, ClusterStatusMetadata, ClusterStatusNode, StatusItemSchema } from "../status/schema.ts";
import { closed, models } from "./models.ts";
import { requireMetadata, type AdminDeps } from "./deps.ts";

const ClusterConfig = Type.Object(
  {
    replication: Type.Integer({ minimum: 1, description: "Default replication of logs and partitions; the log controller raises every automatically placed log below it to it (logs above it stay)." }),
    nodesetSize: Type.Integer({ minimum: 0, description: "Log-servers in a new nodeset; 0: automatic (each node's bifrost.nodeset-size, itself 0 = 2r − 1)." }),
    version: Type.Integer({ description: "Version of the `cluster` metadata key." }),
    progress: Type.Union([ReplicationProgressSchema, Type.Null()], { description: "Logs at the replication setting; null when the logs could not be read." }),
  },
  { description: "The cluster's settings and how far the logs are on their way to them." },
);

const ClusterConfigPatch = Type.Object(
  {
    replication: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, description: "Refused (409) above the number of live log-server nodes." })),
    nodesetSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 64, description: "0: automatic; otherwise at least the replication." })),
  },
  { description: "Settings to change; absent fields stay." },
);

const statusModels = new Elysia({ name: "cluster-status-models" }).model(
  closed({ ClusterStatus, ClusterStatusNode, ClusterStatusMetadata, ClusterStatusLog, StatusItem: StatusItemSchema, ClusterConfig, ClusterConfigPatch }),
);

/** Attempts of a settings compare-and-set before answering with a conflict. */
const SETTINGS_CAS_ATTEMPTS = 5;

async function readCluster(api: MetadataApi) {
  const v = await api.get(KEYS.cluster, { consistency: "linearizable" });
  if (v === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
  return { cluster: v.value as ClusterInfo, version: v.version };
}

async function configView(api: MetadataApi, cluster: ClusterInfo, version: number) {
  const settings = clusterSettings(cluster);
  const [logs, nodes] = await Promise.all([
    api.get(KEYS.logs, { consistency: "linearizable" }).catch(() => undefined),
    api.get(KEYS.nodesConfig, { consistency: "linearizable" }).catch(() => undefined),
  ]);
  const known = new Set(((nodes?.value as NodesConfiguration | undefined)?.nodes ?? []).map((n) => nodeId(n.id) as string));
  const progress = logs === undefined || nodes === undefined ? null : replicationProgress(logs.value as LogsDocument, settings.replication, (n) => known.has(n));
  return { replication: settings.replication, nodesetSize: settings.nodesetSize, version, progress };
}

/**
 * The logs document's default replication follows the setting (first segments, `logs list`). The
 * setting in `cluster` is what the controller acts on; this copy is best effort, retried on conflict.
 */
async function followInLogs(api: MetadataApi, replication: number): Promise<void> {
  for (let attempt = 0; attempt < SETTINGS_CAS_ATTEMPTS; attempt++) {
    const v = await api.get(KEYS.logs, { consistency: "linearizable" });
    const doc = v?.value as LogsDocument | undefined;
    if (v === undefined || doc === undefined || doc.defaultReplication === replication) return;
    try {
      await api.put(KEYS.logs, { ...doc, defaultReplication: replication }, matchesVersion(v.version));
      return;
    } catch (e) {
      if (!isCairnError(e, "METADATA_VERSION_MISMATCH")) throw e;
    }
  }
}

export function clusterRoutes(deps: AdminDeps) {
  return new Elysia({ name: "cluster-routes" })
    .use(models)
    .use(statusModels)
    .get(
      "/v1/cluster/status",
      ({ query }) => deps.clusterStatus({ tails: query.tails ?? true }),
      {
        query: t.Object({
          tails: t.Optional(t.Boolean({ description: "Find every log's tail (one request per log, up to 1.5 s). Default true." })),
        }),
        response: { 200: "ClusterStatus", 422: "Problem", 503: "Problem" },
        detail: {
          operationId: "getClusterStatus",
          tags: ["cluster"],
          summary: "The cluster's lifecycle state, its reasons and warnings, and an overview of nodes, metadata and logs",
          description:
            "Any node answers, including one without the metadata-server role, from its own copy of the metadata and pings of every node. " +
            "States: starting, awaiting-provisioning, running, degraded, unavailable, stopping. Each reason and warning carries its CAIRN code (docs/errors.md).",
        },
      },
    )
    .get(
      "/v1/cluster",
      async () => {
        const c = deps.cluster();
        if (c === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
        // The node keeps the document it first saw; the settings may have changed since. This
        // node's copy suffices (and answers without a metadata quorum, as this route always did).
        const current = await deps.metadata()?.get(KEYS.cluster, { consistency: "stale" }).catch(() => undefined);
        return (current?.value as ClusterInfo | undefined) ?? c;
      },
      {
        response: { 200: "ClusterInfo", 503: "Problem" },
        detail: { operationId: "getCluster", tags: ["cluster"], summary: "The cluster's identity and settings" },
      },
    )
    .get(
      "/v1/cluster/config",
      async () => {
        const api = requireMetadata(deps);
        const { cluster, version } = await readCluster(api);
        return configView(api, cluster, version);
      },
      {
        response: { 200: "ClusterConfig", 503: "Problem" },
        detail: {
          operationId: "getClusterConfig",
          tags: ["cluster"],
          summary: "The cluster's settings (replication, nodeset size) and how many logs are at them",
        },
      },
    )
    .patch(
      "/v1/cluster/config",
      async ({ body }) => {
        const api = requireMetadata(deps);
        const status = await deps.clusterStatus({ tails: false });
        const liveLogServers = status.nodes.filter((n) => n.alive === true && n.roles.includes("log-server")).length;
        for (let attempt = 0; attempt < SETTINGS_CAS_ATTEMPTS; attempt++) {
          const { cluster, version } = await readCluster(api);
          const settings = checkSettingsChange(cluster, body, liveLogServers);
          const next = withClusterSettings(cluster, settings);
          let written: number;
          try {
            written = await api.put(KEYS.cluster, next, matchesVersion(version));
          } catch (e) {
            if (isCairnError(e, "METADATA_VERSION_MISMATCH")) continue;
            throw e;
          }
          // The setting is written; the controller acts on it even if this copy cannot be updated now.
          await followInLogs(api, settings.replication).catch(() => undefined);
          return configView(api, next, written);
        }
        throw new CairnError("CLUSTER_SETTINGS_CONFLICT", `the cluster settings kept changing during ${SETTINGS_CAS_ATTEMPTS} attempts`);
      },
      {
        parse: "json",
        body: "ClusterConfigPatch",
        response: { 200: "ClusterConfig", 400: "Problem", 409: "Problem", 503: "Problem" },
        detail: {
          operationId: "patchClusterConfig",
          tags: ["cluster"],
          summary: "Change the cluster's replication or nodeset size; the log controller reconfigures every log to them by itself",
          description:
            "A replication above the live log-server nodes is refused (409, CAIRN-CLUSTER-0017). Logs move a few per controller round " +
            "(bifrost.max-replication-changes-per-round); sealed segments are re-replicated in the background. Progress: `progress` here and in /v1/cluster/status.",
        },
      },
    )
    .post(
      "/v1/cluster/provision",
      ({ body }) => deps.provision({ numPartitions: body?.numPartitions, replication: body?.replication }),
      {
        parse: "json",
        body: "ProvisionRequest",
        response: { 200: "ClusterInfo", 400: "Problem", 409: "Problem", 503: "Problem" },
        detail: {
          operationId: "provisionCluster",
          tags: ["cluster"],
          summary: "Provision the cluster with this node as its first metadata member",
          description: "Writes the nodes configuration, logs and partition table. A second provisioning is refused with 409.",
        },
      },
    );
}
