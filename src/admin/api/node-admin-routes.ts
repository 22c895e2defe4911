// Node administration routes: every node of the cluster (removed ones too) and the removal of a dead
// node that holds nothing it would lose. Removal is a compare-and-set on `nodes_config`: the node
// leaves `nodes` for `removed`, so it is never placed again, its id is never reused, and a process
// coming back under its name is refused registration (CAIRN-NODE-0008) by the cluster.
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { type LogsDocument } from "../../bifrost/index.ts";
import { nodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { matchesVersion } from "../../metadata/kv.ts";
import { findNode, KEYS, removeNode, type NodesConfiguration } from "../../metadata/nodes-config.ts";
import { CairnError, isCairnError } from "../../observability/errors.ts";
import { PLACEMENT_KEY, type PartitionPlacement } from "../../worker/index.ts";
import { removalRefusal } from "./cluster-operations.ts";
import { requireMetadata, type AdminDeps } from "./deps.ts";
import { closed, models } from "./models.ts";

const NodeListEntry = Type.Object(
  {
    id: Type.String({ description: "`N<id>`." }),
    name: Type.String(),
    state: Type.Union([Type.Literal("active"), Type.Literal("removed")], { description: "removed: retired by an operator; never placed again." }),
    generation: Type.Union([Type.Integer(), Type.Null()], { description: "The generation that last registered; null for a removed node." }),
    roles: Type.Array(Type.String()),
    fabricAddress: Type.Union([Type.String(), Type.Null()]),
    adminAddress: Type.Union([Type.String(), Type.Null()]),
    metadataServer: Type.Union([Type.String(), Type.Null()], { description: "State in the nodes configuration (auto-join, member, standby); null for a removed node." }),
    alive: Type.Union([Type.Boolean(), Type.Null()], { description: "Answered a ping just now; null when not asked (removed)." }),
    removedAtMs: Type.Union([Type.Integer(), Type.Null()]),
  },
  { description: "One node of the nodes configuration." },
);

const NodeList = Type.Object(
  { nodes: Type.Array(NodeListEntry), version: Type.Integer({ description: "Version of the `nodes_config` metadata key." }) },
  { description: "Every node the cluster has known, active and removed, by id." },
);

const nodeModels = new Elysia({ name: "node-admin-models" }).model(closed({ NodeList, NodeListEntry }));

/** Attempts of the compare-and-set on nodes_config before answering with a conflict. */
const REMOVE_CAS_ATTEMPTS = 5;

async function readNodesConfig(api: MetadataApi) {
  const v = await api.get(KEYS.nodesConfig, { consistency: "linearizable" });
  if (v === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster has no nodes configuration yet");
  return { config: v.value as NodesConfiguration, version: v.version };
}

/** Which nodes answer pings now (the status monitor's view, without log tails). */
async function aliveNodes(deps: AdminDeps): Promise<Map<string, boolean | null>> {
  const status = await deps.clusterStatus({ tails: false });
  return new Map(status.nodes.map((n) => [n.id, n.alive]));
}

export function nodeAdminRoutes(deps: AdminDeps) {
  return new Elysia({ name: "node-admin-routes" })
    .use(models)
    .use(nodeModels)
    .get(
      "/v1/nodes",
      async () => {
        const api = requireMetadata(deps);
        const [{ config, version }, alive] = await Promise.all([readNodesConfig(api), aliveNodes(deps)]);
        return nodeList(config, version, alive);
      },
      {
        response: { 200: "NodeList", 503: "Problem" },
        detail: {
          operationId: "listNodes",
          tags: ["node"],
          summary: "Every node of the cluster: id, name, roles, addresses, metadata-server state, whether it answers; removed nodes too",
        },
      },
    )
    .post(
      "/v1/nodes/:node/remove",
      async ({ params }) => {
        const api = requireMetadata(deps);
        for (let attempt = 0; attempt < REMOVE_CAS_ATTEMPTS; attempt++) {
          const { config, version } = await readNodesConfig(api);
          const node = findNode(config, params.node);
          if (node === undefined) {
            const gone = config.removed?.find((r) => nodeId(r.id) === params.node || r.name === params.node);
            throw new CairnError(
              "CLUSTER_UNKNOWN_NODE",
              gone !== undefined ? `node ${nodeId(gone.id)} (${gone.name}) was already removed` : `no node of the cluster is named or numbered '${params.node}'`,
              { node: params.node },
            );
          }
          const [logs, placement, alive] = await Promise.all([
            api.get(KEYS.logs, { consistency: "linearizable" }),
            api.get(PLACEMENT_KEY, { consistency: "linearizable" }),
            aliveNodes(deps),
          ]);
          const refusal = removalRefusal({
            config,
            node,
            logs: logs?.value as LogsDocument | undefined,
            placement: placement?.value as PartitionPlacement | undefined,
            alive: alive.get(nodeId(node.id)) ?? null,
          });
          if (refusal !== undefined) throw refusal;
          try {
            const next = removeNode(config, node.id, Date.now());
            const written = await api.put(KEYS.nodesConfig, next, matchesVersion(version));
            return nodeList(next, written, new Map());
          } catch (e) {
            if (isCairnError(e, "METADATA_VERSION_MISMATCH")) continue; // a node registered meanwhile: check again
            throw e;
          }
        }
        throw new CairnError("CLUSTER_SETTINGS_CONFLICT", `the nodes configuration kept changing during ${REMOVE_CAS_ATTEMPTS} attempts to remove ${params.node}`);
      },
      {
        params: t.Object({ node: t.String({ minLength: 1, maxLength: 256, description: "`N<id>` or the node's name." }) }),
        response: { 200: "NodeList", 404: "Problem", 409: "Problem", 503: "Problem" },
        detail: {
          operationId: "removeNode",
          tags: ["node"],
          summary: "Remove a stopped node that holds nothing it would lose; it is never placed again and its id is never reused",
          description:
            "Refused (409) while the node answers pings (CAIRN-CLUSTER-0014), is a metadata member (CAIRN-CLUSTER-0011), leads a partition (CAIRN-CLUSTER-0013), " +
            "or sequences a log or holds the only copy of a log's records (CAIRN-CLUSTER-0012). Copies it held of sealed segments are re-replicated by the log controller.",
        },
      },
    );
}

/** The node list: active nodes with what the pings found (`alive`), then removed ones, by id. */
function nodeList(config: NodesConfiguration, version: number, alive: ReadonlyMap<string, boolean | null>) {
  const active = config.nodes.map((n) => {
    const id: string = nodeId(n.id);
    return {
      id,
      name: n.name,
      state: "active" as const,
      generation: n.generation as number | null,
      roles: [...n.roles] as string[],
      fabricAddress: n.fabricAddress as string | null,
      adminAddress: n.adminAddress as string | null,
      metadataServer: n.metadataServer.state as string | null,
      alive: alive.get(id) ?? null,
      removedAtMs: null as number | null,
    };
  });
  const removed = (config.removed ?? []).map((r) => ({
    id: nodeId(r.id) as string,
    name: r.name,
    state: "removed" as const,
    generation: null,
    roles: [],
    fabricAddress: null,
    adminAddress: null,
    metadataServer: null,
    alive: null,
    removedAtMs: r.removedAtMs,
  }));
  const nodes = [...active, ...removed].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
  return { nodes, version };
}
