// Node-service routes: identity, roles, lifecycle and effective configuration of the node answering.
import { Elysia } from "elysia";
import { models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

export function nodeRoutes(deps: AdminDeps) {
  return new Elysia({ name: "node-routes" })
    .use(models)
    .get("/v1/node", () => deps.node(), {
      response: { 200: "NodeInfo" },
      detail: {
        operationId: "getNode",
        tags: ["node"],
        summary: "Identity, roles and lifecycle state of this node",
      },
    })
    .get("/v1/node/config", () => deps.config(), {
      response: { 200: "Config" },
      detail: {
        operationId: "getNodeConfig",
        tags: ["node"],
        summary: "The effective configuration of this node",
        description: "Defaults merged with the config file, CAIRN_* environment and flags, as the node uses them.",
      },
    });
}
