// Routes every node answers whatever its roles: liveness, readiness, version, metrics.
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { CairnError } from "../../observability/errors.ts";
import { models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

export function systemRoutes(deps: AdminDeps) {
  return new Elysia({ name: "system-routes" })
    .use(models)
    .get("/health", () => ({ status: "ok" as const }), {
      response: { 200: "Health" },
      detail: {
        operationId: "getHealth",
        tags: ["system"],
        summary: "Liveness: the process is alive and answering",
        description: "Always 200 while the process runs. Use /ready to know whether the node serves its roles.",
      },
    })
    .get(
      "/ready",
      () => {
        const r = deps.readiness();
        if (!r.ready) {
          throw new CairnError("NODE_NOT_READY", `node is not ready: ${r.reasons.join("; ")}`, {
            state: r.state,
            reasons: r.reasons,
          });
        }
        return r;
      },
      {
        response: { 200: "Readiness", 503: "Problem" },
        detail: {
          operationId: "getReadiness",
          tags: ["system"],
          summary: "Readiness: the node serves its roles",
          description: "200 when the node is running and every role it runs is ready; otherwise 503 with the reasons.",
        },
      },
    )
    .get("/version", () => deps.version, {
      response: { 200: "Version" },
      detail: { operationId: "getVersion", tags: ["system"], summary: "Version of the cairn binary" },
    })
    .get(
      "/metrics",
      async ({ set }) => {
        set.headers["content-type"] = deps.metricsContentType;
        return await deps.metrics();
      },
      {
        response: { 200: Type.String({ description: "Prometheus text exposition format." }) },
        detail: { operationId: "getMetrics", tags: ["system"], summary: "Prometheus metrics of this node" },
      },
    );
}
