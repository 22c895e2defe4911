// The admin HTTP API: an Elysia app assembled from per-area route plugins, with one error mapping
// (problem+json, catalogue codes) and an OpenAPI document generated from the same schemas.
import { timingSafeEqual } from "node:crypto";
import { Elysia, type AnyElysia } from "elysia";
import { openapi } from "@elysiajs/openapi";
import { CairnError } from "../../observability/errors.ts";
import { VERSION } from "../../version.ts";
import type { AdminDeps } from "./deps.ts";
import { problemResponse, toCairnError } from "./errors.ts";
import { clusterRoutes } from "./cluster-routes.ts";
import { metadataRoutes } from "./metadata-routes.ts";
import { metadataServerRoutes } from "./metadata-server-routes.ts";
import { logRoutes } from "./log-routes.ts";
import { partitionRoutes } from "./partition-routes.ts";
import { snapshotRoutes } from "./snapshot-routes.ts";
import { deploymentRoutes } from "./deployment-routes.ts";
import { invocationRoutes } from "./invocation-routes.ts";
import { nodeRoutes } from "./node-routes.ts";
import { nodeAdminRoutes } from "./node-admin-routes.ts";
import { systemRoutes } from "./system-routes.ts";

export const OPENAPI_PATH = "/openapi.json";
/** Where the OpenAPI plugin serves Elysia's raw document, only inside the spec renderer. */
const RAW_SPEC_PATH = "/openapi-raw.json";

/**
 * The admin app. `spec` is how /openapi.json is answered: the live node passes the finished
 * document (see spec.ts); the renderer passes nothing and gets Elysia's raw document instead.
 */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

export function createAdminApp(deps: AdminDeps, spec?: () => Promise<unknown>) {
  const specRoute: AnyElysia =
    spec === undefined
      ? specPlugin()
      : new Elysia({ name: "openapi-document" }).get(OPENAPI_PATH, () => spec(), { detail: { hide: true } });
  return new Elysia({ name: "cairn-admin", normalize: false })
    .use(specRoute)
    .onRequest(({ request }) => {
      if (deps.token !== "" && new URL(request.url).pathname !== "/health") {
        const auth = request.headers.get("authorization") ?? "";
        if (!constantTimeEqual(auth, `Bearer ${deps.token}`)) {
          return problemResponse(new CairnError("API_UNAUTHORIZED", auth === "" ? "the admin API requires a bearer token" : "wrong admin token"));
        }
      }
      const length = Number(request.headers.get("content-length") ?? "0");
      if (length > deps.maxBodyBytes) {
        return problemResponse(
          new CairnError("API_BODY_TOO_LARGE", `request body of ${length} bytes exceeds admin.max-body-bytes (${deps.maxBodyBytes})`),
        );
      }
    })
    .onParse({ as: "global" }, async ({ request, contentType }) => {
      // JSON bodies are parsed here so their nesting is bounded before any schema walks them:
      // validating a document nested 100 000 levels deep costs seconds of the only thread.
      if (!contentType.startsWith("application/json")) return;
      // Decoded strictly: bytes that are not UTF-8 are not JSON (RFC 8259 §8.1) and must not be
      // stored with U+FFFD in their place.
      let text: string;
      try {
        text = STRICT_UTF8.decode(await request.arrayBuffer());
      } catch {
        throw new CairnError("API_MALFORMED_BODY", "the request body is not valid UTF-8 (JSON must be UTF-8)");
      }
      if (text === "") return null;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new CairnError("API_MALFORMED_BODY", "the request body is not valid JSON");
      }
      checkDepth(value, MAX_BODY_DEPTH);
      return value;
    })
    .onError({ as: "global" }, ({ code, error }) => problemResponse(toCairnError(code, error, deps.onBug)))
    .use(systemRoutes(deps))
    .use(nodeRoutes(deps))
    .use(nodeAdminRoutes(deps))
    .use(clusterRoutes(deps))
    .use(metadataRoutes(deps))
    .use(metadataServerRoutes(deps))
    .use(logRoutes(deps))
    .use(partitionRoutes(deps))
    .use(snapshotRoutes(deps))
    .use(deploymentRoutes(deps))
    .use(invocationRoutes(deps));
}

function specPlugin() {
  return openapi({
    provider: null,
    specPath: RAW_SPEC_PATH,
    documentation: {
      info: {
        title: "cairn admin API",
        version: VERSION,
        description:
          "Operate a cairn node and its cluster. Errors are application/problem+json with a stable `code` (docs/errors.md).",
        license: { name: "Apache-2.0" },
      },
      servers: [{ url: "http://127.0.0.1:9070", description: "A local node with the default admin port" }],
      tags: [
        { name: "system", description: "Liveness, readiness, version and metrics" },
        { name: "node", description: "The node answering the request" },
        { name: "cluster", description: "The cluster's identity and provisioning" },
        { name: "metadata", description: "The versioned metadata store (any node answers)" },
        { name: "metadata-server", description: "The metadata cluster's servers and membership" },
        { name: "logs", description: "Logs (chains of segments): tail, seal, trim, reconfigure, append and read" },
        { name: "partitions", description: "Partitions: placement, leader epochs, processors' applied and durable LSNs" },
        { name: "snapshots", description: "Partition snapshots: jobs (create, progress) and the repository's contents" },
        { name: "deployments", description: "Restate SDK endpoints registered by discovery (Restate's routes, no /v1 prefix)" },
        { name: "services", description: "The services and handlers the registered deployments serve" },
        { name: "invocations", description: "Durable invocations: list, describe, cancel, kill, resume, purge (also Restate's PATCH/DELETE /invocations paths)" },
      ],
    },
  });
}

/** Deepest JSON nesting any admin request body may have (metadata values: 64, plus a margin). */
const MAX_BODY_DEPTH = 72;

function checkDepth(value: unknown, max: number): void {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) throw new CairnError("API_MALFORMED_BODY", `the request body is nested more than ${max} levels deep`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export type AdminApp = ReturnType<typeof createAdminApp>;

/** The OpenAPI document of the admin API, produced without opening a socket. */
export async function renderOpenApi(deps: AdminDeps): Promise<unknown> {
  const app = createAdminApp(deps);
  const res = await app.handle(new Request(`http://localhost${RAW_SPEC_PATH}`));
  if (!res.ok) throw new Error(`OpenAPI generation failed with HTTP ${res.status}`);
  return await res.json();
}
