// The data-plane HTTP API: keyed object state, `(service, key) → {name → bytes}` with per-object
// versions. Validates names and sizes, turns If-Match and Idempotency-Key into the write's
// condition, and hands the request to the StateRouter (which finds the partition's leader). Errors
// are application/problem+json with catalogue codes; a 503 carries Retry-After.
// Invariants: nothing is written before the request is fully validated; a write is answered 200
// only once the leader applied it; a value's content type is kept with its bytes.
import { Elysia, t } from "elysia";
import { openapi } from "@elysiajs/openapi";
import { Type } from "@sinclair/typebox";
import { CairnError, isCairnError } from "../observability/errors.ts";
import { VERSION } from "../version.ts";
import { OBJECT_KEY_MAX_BYTES, SERVICE_NAME_PATTERN, type MutateAnswer, type ObjectAnswer, type StateRouter } from "../worker/index.ts";
import type { InvocationClient, SchemaSource } from "../worker/invoker/model.ts";
import { RestateIngress } from "./restate/index.ts";
import { ingressError } from "./restate/respond.ts";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";
export const DATA_PLANE_SPEC_PATH = "/openapi.json";
const RAW_SPEC_PATH = "/openapi-raw.json";
const MAX_IDEMPOTENCY_KEY_CHARS = 256;
const MAX_PATCH_ENTRIES = 1_000;
const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export interface IngressDeps {
  readonly router: () => StateRouter | undefined;
  readonly maxValueBytes: number;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly onBug: (e: unknown) => void;
  /**
   * Restate's ingress API (handler calls, sends, attach, awakeables) on the same port, served when both
   * are given. Its paths are the catch-all: every cairn route (/v1/…, /openapi.json) wins over them.
   */
  readonly invocations?: () => InvocationClient | undefined;
  readonly schema?: () => SchemaSource | undefined;
  /** How long a Restate call or attach waits for its result (ingress.invocation-wait-ms). */
  readonly invocationWaitMs?: number;
}

const DEFAULT_INVOCATION_WAIT_MS = 10 * 60 * 1000;

const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: "Stable cairn error code (docs/errors.md)." }),
    detail: Type.String(),
    hint: Type.String(),
    currentVersion: Type.Optional(Type.Integer({ description: "With 412: the object's current version." })),
    retryAfterSeconds: Type.Optional(Type.Integer({ description: "With 503: when to retry." })),
  },
  { additionalProperties: true },
);
// Response objects say additionalProperties themselves: Elysia adds `false` to a response schema
// without it, in place and depending on what the process did before, and the published document
// must not depend on that.
const Written = Type.Object({ version: Type.Integer({ minimum: 1, description: "The object's version after the write." }) }, { additionalProperties: false });
const Entry = Type.Object({
  name: Type.String(),
  contentType: Type.String(),
  data: Type.String({ description: "The value: UTF-8 text, or base64 when it is not valid UTF-8 (see encoding)." }),
  encoding: Type.Union([Type.Literal("utf8"), Type.Literal("base64")]),
}, { additionalProperties: false });
const ObjectState = Type.Object({
  service: Type.String(),
  key: Type.String(),
  version: Type.Integer({ minimum: 0, description: "Grows by one with every applied write of the object." }),
  entries: Type.Array(Entry),
}, { additionalProperties: false });
const PatchValue = Type.Object({
  data: Type.String(),
  encoding: Type.Optional(Type.Union([Type.Literal("utf8"), Type.Literal("base64")])),
  contentType: Type.Optional(Type.String()),
});
const PatchBody = Type.Object(
  {
    set: Type.Optional(Type.Record(Type.String(), PatchValue)),
    delete: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false, description: "Entries to set and to delete, applied atomically." },
);
const Params = t.Object({ service: t.String(), key: t.String() });
const EntryParams = t.Object({ service: t.String(), key: t.String(), name: t.String() });
const problems = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Problem]));
const WriteHeaders = t.Object({
  "if-match": t.Optional(t.String({ description: "Apply only if the object is at this version (412 otherwise)." })),
  "idempotency-key": t.Optional(
    t.String({
      maxLength: MAX_IDEMPOTENCY_KEY_CHARS,
      description: "A retry with the same key and request applies once and gets the first answer; the same key with another request is refused (422).",
    }),
  ),
});

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

export function createIngressApp(deps: IngressDeps, spec?: () => Promise<unknown>) {
  const specRoute =
    spec === undefined
      ? openapi({
          provider: null,
          specPath: RAW_SPEC_PATH,
          documentation: {
            info: {
              title: "cairn data-plane API",
              version: VERSION,
              description: "Keyed object state. Errors are application/problem+json with a stable `code` (docs/errors.md).",
              license: { name: "Apache-2.0" },
            },
            servers: [{ url: "http://127.0.0.1:8080", description: "A local node with the default data-plane port" }],
            tags: [{ name: "state", description: "Object state: entries of bytes under (service, key), versioned per object" }],
          },
        })
      : new Elysia({ name: "data-plane-document" }).get(DATA_PLANE_SPEC_PATH, () => spec(), { detail: { hide: true } });
  const router = (): StateRouter => {
    const r = deps.router();
    if (r === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "this node does not know the cluster yet");
    return r;
  };
  const deadline = () => Date.now() + deps.requestTimeoutMs;

  const write = async (request: Request, service: string, key: string, ops: MutateOps, what: string): Promise<Response> => {
    checkObject(service, key);
    const expectedVersion = ifMatch(request.headers.get("if-match"));
    const ikey = request.headers.get("idempotency-key");
    if (ikey !== null && (ikey.length === 0 || ikey.length > MAX_IDEMPOTENCY_KEY_CHARS)) {
      throw invalid(`Idempotency-Key must be 1..${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
    }
    const r = router();
    const partition = await r.partitionOf(service, key);
    const idempotency = ikey === null ? null : { key: ikey, requestHash: requestHash(what, service, key, expectedVersion, ops) };
    const answer = await r.mutate({ partition, service, key, ops, expectedVersion, idempotency }, deadline());
    return writeAnswer(answer, service, key);
  };

  const restate =
    deps.invocations !== undefined && deps.schema !== undefined
      ? new RestateIngress({
          invocations: deps.invocations,
          schema: deps.schema,
          maxBodyBytes: deps.maxBodyBytes,
          requestTimeoutMs: deps.requestTimeoutMs,
          invocationWaitMs: deps.invocationWaitMs ?? DEFAULT_INVOCATION_WAIT_MS,
          onBug: deps.onBug,
        })
      : undefined;
  // Restate's paths are its API, not cairn's: they are served by one hidden catch-all route and kept
  // out of the data-plane OpenAPI document.
  const restateRoutes = new Elysia({ name: "restate-ingress" });
  if (restate !== undefined) {
    restateRoutes.all(
      "/*",
      async ({ request, server }) => {
        // A call waits for its handler up to ingress.invocation-wait-ms: the server's idle timeout
        // (meant for silent keep-alive connections) must not cut it off.
        server?.timeout(request, 0);
        return (await restate.handle(request)) ?? problem(new CairnError("API_NOT_FOUND", "no route matches this method and path"));
      },
      { parse: "none", detail: { hide: true } },
    );
  }

  return new Elysia({ name: "cairn-data-plane", normalize: false })
    .use(specRoute)
    .onRequest(({ request }) => {
      const length = Number(request.headers.get("content-length") ?? "0");
      if (length > deps.maxBodyBytes) {
        const limit = `request body of ${length} bytes exceeds ingress.max-body-bytes (${deps.maxBodyBytes})`;
        if (restate !== undefined && !new URL(request.url).pathname.startsWith("/v1/")) {
          return ingressError(new CairnError("INVOKE_BODY_TOO_LARGE", limit, { limitBytes: deps.maxBodyBytes }));
        }
        return problem(new CairnError("STATE_VALUE_TOO_LARGE", limit, { limitBytes: deps.maxBodyBytes }));
      }
    })
    .onError({ as: "global" }, ({ code, error }) => problem(toCairnError(code, error, deps.onBug)))
    .get(
      "/v1/objects/:service/:key/state",
      async ({ params }) => {
        checkObject(params.service, params.key);
        const r = router();
        const answer = await r.read({ partition: await r.partitionOf(params.service, params.key), service: params.service, key: params.key, name: null }, deadline());
        if (answer.version === 0) throw new CairnError("STATE_NOT_FOUND", `no object ${params.service}/${params.key}`, { currentVersion: 0 });
        return Response.json(objectBody(params.service, params.key, answer), { headers: { etag: `"${answer.version}"` } });
      },
      { params: Params, response: { 200: ObjectState, ...problems(400, 404, 503) }, detail: { operationId: "getObjectState", summary: "All entries of an object and its version", tags: ["state"] } },
    )
    .get(
      "/v1/objects/:service/:key/state/:name",
      async ({ params }) => {
        checkObject(params.service, params.key);
        checkName(params.name);
        const r = router();
        const answer = await r.read({ partition: await r.partitionOf(params.service, params.key), service: params.service, key: params.key, name: params.name }, deadline());
        const entry = answer.entries[0];
        if (entry === undefined) throw new CairnError("STATE_NOT_FOUND", `object ${params.service}/${params.key} has no entry '${params.name}'`, { currentVersion: answer.version });
        return new Response(entry.value, { headers: { "content-type": entry.contentType, etag: `"${answer.version}"` } });
      },
      {
        params: EntryParams,
        response: { 200: t.Any({ description: "The value's bytes, with the content type it was written with; ETag: the object's version." }), ...problems(400, 404, 503) },
        detail: { operationId: "getStateEntry", summary: "One entry's value (raw bytes)", tags: ["state"] },
      },
    )
    .put(
      "/v1/objects/:service/:key/state/:name",
      async ({ params, request }) => {
        checkName(params.name);
        const value = new Uint8Array(await request.arrayBuffer());
        if (value.length > deps.maxValueBytes) {
          throw new CairnError("STATE_VALUE_TOO_LARGE", `value of ${value.length} bytes exceeds ingress.max-value-bytes (${deps.maxValueBytes})`, { limitBytes: deps.maxValueBytes });
        }
        const contentType = request.headers.get("content-type") || DEFAULT_CONTENT_TYPE;
        return write(request, params.service, params.key, [{ op: "set", name: params.name, value, contentType }], "put");
      },
      {
        params: EntryParams,
        headers: WriteHeaders,
        parse: "none",
        response: { 200: Written, ...problems(400, 412, 413, 422, 503, 504) },
        detail: {
          operationId: "putStateEntry",
          summary: "Set one entry (the body's bytes and content type)",
          tags: ["state"],
          requestBody: { required: true, content: { "application/octet-stream": { schema: { type: "string" as const, format: "binary" } }, "*/*": { schema: {} } } },
        },
      },
    )
    .delete(
      "/v1/objects/:service/:key/state/:name",
      ({ params, request }) => {
        checkName(params.name);
        return write(request, params.service, params.key, [{ op: "delete", name: params.name }], "delete-entry");
      },
      { params: EntryParams, headers: WriteHeaders, response: { 200: Written, ...problems(400, 412, 422, 503, 504) }, detail: { operationId: "deleteStateEntry", summary: "Delete one entry", tags: ["state"] } },
    )
    .patch(
      "/v1/objects/:service/:key/state",
      async ({ params, request }) => {
        const body = await jsonBody(request);
        const ops: MutateOps = [];
        const set = body.set ?? {};
        const deletes = body.delete ?? [];
        if (Object.keys(set).length + deletes.length === 0) throw invalid("a PATCH must set or delete at least one entry");
        if (Object.keys(set).length + deletes.length > MAX_PATCH_ENTRIES) throw invalid(`a PATCH changes at most ${MAX_PATCH_ENTRIES} entries`);
        for (const [name, v] of Object.entries(set)) {
          checkName(name);
          const value = v.encoding === "base64" ? new Uint8Array(Buffer.from(v.data, "base64")) : new TextEncoder().encode(v.data);
          if (value.length > deps.maxValueBytes) {
            throw new CairnError("STATE_VALUE_TOO_LARGE", `value of '${name}' is ${value.length} bytes, over ingress.max-value-bytes (${deps.maxValueBytes})`, { limitBytes: deps.maxValueBytes });
          }
          ops.push({ op: "set", name, value, contentType: v.contentType ?? (v.encoding === "base64" ? DEFAULT_CONTENT_TYPE : "text/plain; charset=utf-8") });
        }
        for (const name of deletes) {
          checkName(name);
          if (name in set) throw invalid(`entry '${name}' is both set and deleted`);
          ops.push({ op: "delete", name });
        }
        return write(request, params.service, params.key, ops, "patch");
      },
      {
        params: Params,
        headers: WriteHeaders,
        parse: "none",
        response: { 200: Written, ...problems(400, 412, 413, 422, 503, 504) },
        detail: {
          operationId: "patchObjectState",
          summary: "Set and delete several entries atomically",
          tags: ["state"],
          requestBody: { required: true, content: { "application/json": { schema: PatchBody } } },
        },
      },
    )
    .delete(
      "/v1/objects/:service/:key/state",
      ({ params, request }) => write(request, params.service, params.key, [{ op: "clear" }], "clear"),
      { params: Params, headers: WriteHeaders, response: { 200: Written, ...problems(400, 412, 422, 503, 504) }, detail: { operationId: "clearObjectState", summary: "Delete every entry of the object", tags: ["state"] } },
    )
    .use(restateRoutes);
}

type MutateOps = Array<{ op: "set"; name: string; value: Uint8Array; contentType: string } | { op: "delete"; name: string } | { op: "clear" }>;

const PATCH_CHECK = (() => {
  // Compiled once: PATCH bodies are validated by hand (the route reads raw bytes to bound them first).
  const { TypeCompiler } = require("@sinclair/typebox/compiler") as typeof import("@sinclair/typebox/compiler");
  return TypeCompiler.Compile(PatchBody);
})();

async function jsonBody(request: Request): Promise<{ set?: Record<string, { data: string; encoding?: "utf8" | "base64"; contentType?: string }>; delete?: string[] }> {
  let value: unknown;
  try {
    value = JSON.parse(STRICT_UTF8.decode(await request.arrayBuffer()));
  } catch {
    throw invalid("the PATCH body is not valid JSON");
  }
  if (!PATCH_CHECK.Check(value)) {
    const first = PATCH_CHECK.Errors(value).First();
    throw invalid(`the PATCH body does not match {"set": {name: {data, encoding?, contentType?}}, "delete": [names]}${first ? ` at '${first.path}': ${first.message}` : ""}`);
  }
  return value;
}

function writeAnswer(answer: MutateAnswer, service: string, key: string): Response {
  switch (answer.status) {
    case "applied":
      return Response.json({ version: answer.version }, { headers: { etag: `"${answer.version}"` } });
    case "version-mismatch":
      throw new CairnError("STATE_VERSION_MISMATCH", `object ${service}/${key} is at version ${answer.currentVersion}`, { currentVersion: answer.currentVersion });
    case "idempotency-conflict":
      throw new CairnError("STATE_IDEMPOTENCY_CONFLICT", `the Idempotency-Key was used before with a different request on ${service}/${key}`);
  }
}

function objectBody(service: string, key: string, answer: ObjectAnswer) {
  return {
    service,
    key,
    version: answer.version,
    entries: answer.entries.map((e) => {
      const text = asText(e.value);
      return text === undefined
        ? { name: e.name, contentType: e.contentType, data: Buffer.from(e.value).toString("base64"), encoding: "base64" as const }
        : { name: e.name, contentType: e.contentType, data: text, encoding: "utf8" as const };
    }),
  };
}

/** The value as text when it is UTF-8 without control characters (tab and newlines allowed). */
function asText(value: Uint8Array): string | undefined {
  try {
    const text = STRICT_UTF8.decode(value);
    return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

function requestHash(what: string, service: string, key: string, expectedVersion: number | null, ops: MutateOps): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(JSON.stringify([what, service, key, expectedVersion]));
  for (const op of ops) {
    h.update(JSON.stringify([op.op, "name" in op ? op.name : null, op.op === "set" ? op.contentType : null, op.op === "set" ? op.value.length : 0]));
    if (op.op === "set") h.update(op.value);
  }
  return h.digest("hex");
}

function ifMatch(header: string | null): number | null {
  if (header === null) return null;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (m === null) throw invalid(`If-Match must hold an object version (a non-negative integer), got ${JSON.stringify(header.slice(0, 64))}`);
  return Number(m[1]);
}

// Names and keys: 1..512 bytes of UTF-8 without control characters (they travel in URLs and logs).
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkObject(service: string, key: string): void {
  if (!SERVICE_NAME_PATTERN.test(service)) throw invalid(`service name ${JSON.stringify(service.slice(0, 140))} must match ${SERVICE_NAME_PATTERN.source}`);
  checkText("object key", key);
}

function checkName(name: string): void {
  checkText("entry name", name);
}

function checkText(what: string, text: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes === 0 || bytes > OBJECT_KEY_MAX_BYTES || CONTROL.test(text)) {
    throw invalid(`${what} must be 1..${OBJECT_KEY_MAX_BYTES} bytes without control characters`);
  }
}

function invalid(message: string): CairnError {
  return new CairnError("STATE_INVALID_REQUEST", message);
}

function problem(error: CairnError): Response {
  const headers: Record<string, string> = { "content-type": PROBLEM_CONTENT_TYPE };
  if (error.status === 503) headers["retry-after"] = String(error.details.retryAfterSeconds ?? 1);
  return new Response(JSON.stringify(error.toProblem()), { status: error.status, headers });
}

function toCairnError(code: string | number, error: unknown, onBug: (e: unknown) => void): CairnError {
  if (error instanceof CairnError) {
    // A partition that stays without a leader is unavailable for the client, whatever the cause.
    if (isCairnError(error, "PARTITION_NOT_LEADER")) return new CairnError("PARTITION_UNAVAILABLE", error.message, { ...error.details, retryAfterSeconds: 1 });
    return error;
  }
  switch (code) {
    case "VALIDATION":
    case "PARSE":
      return invalid(`the request is malformed: ${(error as Error).message?.slice(0, 200) ?? ""}`);
    case "NOT_FOUND":
      return new CairnError("API_NOT_FOUND", "no route matches this method and path");
    default:
      onBug(error);
      return new CairnError("API_INTERNAL", "internal error while handling the request");
  }
}

/** The OpenAPI document of the data plane, produced without opening a socket. */
export async function renderDataPlaneOpenApi(): Promise<Record<string, unknown>> {
  const app = createIngressApp({ router: () => undefined, maxValueBytes: 1, maxBodyBytes: 1, requestTimeoutMs: 1, onBug: () => {} });
  const res = await app.handle(new Request(`http://localhost${RAW_SPEC_PATH}`));
  if (!res.ok) throw new Error(`OpenAPI generation failed with HTTP ${res.status}`);
  const doc = (await res.json()) as Record<string, unknown>;
  // Error answers are problem+json (what the error handler sends).
  const paths = (doc.paths ?? {}) as Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown>; description?: string }> }>>;
  for (const methods of Object.values(paths)) {
    for (const op of Object.values(methods)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        const json = response.content?.["application/json"];
        if (Number(status) >= 400 && json !== undefined) {
          response.content = { [PROBLEM_CONTENT_TYPE]: json };
          response.description = "Problem: see the `code` and `hint` fields";
        }
      }
    }
  }
  return doc;
}

/** The data-plane document as committed in openapi/data-plane.json (`bun run openapi`). */
export async function dataPlaneOpenApiText(): Promise<string> {
  return JSON.stringify(await renderDataPlaneOpenApi(), null, 2) + "\n";
}
