// Cluster routes: the cluster's identity, and provisioning (once per cluster).
import { Elysia } from "elysia";
import { CairnError } from "../../observability/errors.ts";
import { models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

export function clusterRoutes(deps: AdminDeps) {
  return new Elysia({ name: "cluster-routes" })
    .use(models)
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
