// Cluster routes: the cluster's identity, its lifecycle state and overview, and provisioning
// (once per cluster).
import { Elysia, t } from "elysia";
import { CairnError } from "../../observability/errors.ts";
import { ClusterStatus, ClusterStatusLog, ClusterStatusMetadata, ClusterStatusNode, StatusItemSchema } from "../status/schema.ts";
import { closed, models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

const statusModels = new Elysia({ name: "cluster-status-models" }).model(
  closed({ ClusterStatus, ClusterStatusNode, ClusterStatusMetadata, ClusterStatusLog, StatusItem: StatusItemSchema }),
);

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
      () => {
        const c = deps.cluster();
        if (c === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
        return c;
      },
      {
        response: { 200: "ClusterInfo", 503: "Problem" },
        detail: { operationId: "getCluster", tags: ["cluster"], summary: "The cluster's identity and settings" },
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
