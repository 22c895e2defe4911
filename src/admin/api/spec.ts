// The OpenAPI document as a build output: rendered from the route schemas without a node or a
// socket. Handlers are never called while rendering, so the dependencies only need the right shape.
import { defaultConfig } from "../../config/index.ts";
import { versionInfo } from "../../version.ts";
import { renderOpenApi } from "./app.ts";
import type { AdminDeps } from "./deps.ts";
import { PROBLEM_CONTENT_TYPE } from "./errors.ts";

function unavailable(): never {
  throw new Error("the spec renderer has no node behind it");
}

type Operation = { responses?: Record<string, { description?: string; content?: Record<string, unknown> }> };

/**
 * Finish the document Elysia emits: error responses are problem+json (that is what the error
 * handler sends), every operation documents the 500 problem, and /metrics is Prometheus text.
 */
export function finishSpec(doc: Record<string, unknown>): Record<string, unknown> {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Operation>>;
  for (const [path, methods] of Object.entries(paths)) {
    for (const op of Object.values(methods)) {
      op.responses ??= {};
      if (path !== "/health") {
        op.responses["401"] ??= {
          description: "Missing or wrong bearer token (only when the node sets admin.token)",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Problem" } } },
        };
      }
      op.responses["500"] ??= {
        description: "Internal error (a bug; the node log has details)",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Problem" } } },
      };
      for (const [status, response] of Object.entries(op.responses)) {
        const json = response.content?.["application/json"];
        if (Number(status) >= 400 && json !== undefined) {
          response.content = { [PROBLEM_CONTENT_TYPE]: json };
          response.description = "Problem: see the `code` and `hint` fields";
        } else if (path === "/metrics" && json !== undefined) {
          response.content = { "text/plain": json };
        }
      }
    }
  }
  const components = (doc.components ??= {}) as Record<string, unknown>;
  components.securitySchemes = {
    adminToken: { type: "http", scheme: "bearer", description: "admin.token of the node; needed only when it is set." },
  };
  // Optional: `{}` allows requests without the token (nodes bound to loopback without admin.token).
  doc.security = [{}, { adminToken: [] }];
  return doc;
}

export async function openApiDocument(): Promise<Record<string, unknown>> {
  const deps: AdminDeps = {
    version: versionInfo(),
    node: unavailable,
    readiness: unavailable,
    config: defaultConfig,
    metrics: unavailable,
    metricsContentType: "text/plain",
    maxBodyBytes: defaultConfig().admin["max-body-bytes"],
    token: "",
    metadata: unavailable,
    maxMetadataValueBytes: defaultConfig()["metadata-server"]["max-value-bytes"],
    cluster: unavailable,
    provision: unavailable,
    clusterStatus: unavailable,
    metadataService: unavailable,
    logs: unavailable,
    partitions: unavailable,
    invocations: unavailable,
    snapshots: unavailable,
    onBug: unavailable,
  };
  return finishSpec((await renderOpenApi(deps)) as Record<string, unknown>);
}

/** Stable text form: what `cairn openapi` prints and openapi/cairn.json holds. */
export async function openApiText(): Promise<string> {
  return JSON.stringify(await openApiDocument(), null, 2) + "\n";
}
