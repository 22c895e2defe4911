// Metadata-server routes: this node's server status, every server's state, and the operator's
// membership changes (add a standby node, remove a member).
import { Elysia, t } from "elysia";
import { CairnError } from "../../observability/errors.ts";
import type { MetadataService } from "../../metadata/service.ts";
import { models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

export function metadataServerRoutes(deps: AdminDeps) {
  const service = (): MetadataService => {
    const s = deps.metadataService();
    if (s === undefined) {
      throw new CairnError("METADATA_NOT_MEMBER", "this node has no metadata service (it does not run the metadata-server role)");
    }
    return s;
  };
  const NodeParams = t.Object({ node: t.String({ description: "Node id (`N2`) or name." }) });
  // The change is applied once add/remove returned: the answer must not turn into an error because
  // the linearizable read of the list that follows timed out (a new leader being elected); the
  // list then comes from this node's copy. (The chaos membership nemesis got 503 for removals that
  // had been applied.)
  const listAfterChange = () => service().listServers().catch(() => service().listServers("stale"));
  return new Elysia({ name: "metadata-server-routes" })
    .use(models)
    .get(
      "/v1/metadata-server/status",
      () => {
        const status = service().serverStatus();
        if (status === undefined) throw new CairnError("METADATA_NOT_MEMBER", "this node does not run the metadata-server role");
        return status;
      },
      {
        response: { 200: "MetadataServerStatus", 503: "Problem" },
        detail: {
          operationId: "getMetadataServerStatus",
          tags: ["metadata-server"],
          summary: "This node's metadata server: state, raft role, term, leader, indexes, members, storage health",
        },
      },
    )
    .get("/v1/metadata-servers", async () => ({ servers: await service().listServers() }), {
      response: { 200: "MetadataServerList", 503: "Problem", 504: "Problem" },
      detail: { operationId: "listMetadataServers", tags: ["metadata-server"], summary: "Every metadata server of the cluster and its state" },
    })
    .post(
      "/v1/metadata-servers/:node/add",
      async ({ params }) => {
        await service().addServer(params.node);
        return { servers: await listAfterChange() };
      },
      {
        params: NodeParams,
        response: { 200: "MetadataServerList", 409: "Problem", 503: "Problem", 504: "Problem" },
        detail: {
          operationId: "addMetadataServer",
          tags: ["metadata-server"],
          summary: "Ask a standby node to join the metadata cluster",
          description: "The node's state goes standby → auto-join; it then joins as a learner and is promoted to member once caught up.",
        },
      },
    )
    .post(
      "/v1/metadata-servers/:node/remove",
      async ({ params }) => {
        await service().removeServer(params.node);
        return { servers: await listAfterChange() };
      },
      {
        params: NodeParams,
        response: { 200: "MetadataServerList", 409: "Problem", 503: "Problem", 504: "Problem" },
        detail: {
          operationId: "removeMetadataServer",
          tags: ["metadata-server"],
          summary: "Remove a member from the metadata cluster (it becomes standby)",
          description: "Refused for the last member and for nodes that are not members (an auto-join node is never demoted).",
        },
      },
    );
}
