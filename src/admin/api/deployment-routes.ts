// Restate-compatible deployment and service routes (no /v1 prefix, snake_case bodies, as Restate's
// admin API has them, so the SDK's docs and curl examples work): register an SDK endpoint by
// discovery, list and remove deployments, list services and handlers. Any node answers: the registry
// lives in metadata (key `schema`) and every write is a compare-and-set, so no leader is involved.
import { randomBytes } from "node:crypto";
import { Elysia, t } from "elysia";
import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_DISCOVERY_TIMEOUT_MS, discover, normalizeDeploymentUri, checkAdditionalHeaders } from "../../worker/invoker/discovery.ts";
import type { DeploymentSchema, HandlerSchema, RetryPolicy, SchemaRegistry, ServiceSchema } from "../../worker/invoker/model.ts";
import { readRegistry, updateRegistry } from "../../worker/invoker/registry-cache.ts";
import { deploymentOf, handlerOf, newDeploymentId, registerDeployment, removeDeployment, serviceOf, servicesOfDeployment } from "../../worker/invoker/registry.ts";
import { closed, models } from "./models.ts";
import { requireMetadata, type AdminDeps } from "./deps.ts";

const Ms = (description: string) => Type.Optional(Type.Integer({ minimum: 0, description }));
const StringMap = (description: string) => Type.Record(Type.String(), Type.String(), { description });

const RetryPolicyMetadata = Type.Object(
  {
    initial_interval_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    max_interval_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    exponentiation_factor: Type.Optional(Type.Number({ minimum: 1 })),
    max_attempts: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: "null: unlimited." })),
    on_max_attempts: Type.Optional(Type.Union([Type.Literal("Pause"), Type.Literal("Kill")])),
  },
  { description: "The retry policy the endpoint declared (absent fields: the cluster's defaults)." },
);

/** Options a service or a handler may carry; durations are whole milliseconds (`_ms`). */
const optionFields = {
  retry_policy: Type.Optional(RetryPolicyMetadata),
  inactivity_timeout_ms: Ms("Idle time after which an attempt is asked to suspend."),
  abort_timeout_ms: Ms("Time after the inactivity timeout after which an attempt is aborted."),
  journal_retention_ms: Ms("How long a finished invocation's journal is kept."),
  idempotency_retention_ms: Ms("How long the result of an idempotent invocation is kept."),
  enable_lazy_state: Type.Optional(Type.Boolean()),
  documentation: Type.Optional(Type.String()),
  metadata: Type.Optional(StringMap("Free-form metadata from the endpoint.")),
};

const HandlerMetadata = Type.Object(
  {
    name: Type.String(),
    ty: Type.Union([Type.Literal("Exclusive"), Type.Literal("Shared"), Type.Literal("Workflow"), Type.Null()], { description: "null for the handlers of plain services." }),
    input_required: Type.Boolean(),
    input_content_type: Type.Union([Type.String(), Type.Null()], { description: "null: any content type is accepted." }),
    output_content_type: Type.Union([Type.String(), Type.Null()]),
    set_content_type_if_empty: Type.Boolean(),
    workflow_completion_retention_ms: Ms("How long a workflow's result and state are kept after its run ends."),
    ...optionFields,
  },
  { description: "A handler as registered." },
);

const ServiceMetadata = Type.Object(
  {
    name: Type.String(),
    ty: Type.Union([Type.Literal("Service"), Type.Literal("VirtualObject"), Type.Literal("Workflow")]),
    handlers: Type.Array(HandlerMetadata),
    deployment_id: Type.String({ description: "The deployment serving the latest revision." }),
    revision: Type.Integer({ minimum: 1, description: "Grows by one each time a deployment registers the service." }),
    public: Type.Boolean({ description: "False when the endpoint marked it ingress-private." }),
    ...optionFields,
  },
  { description: "A service as registered (Restate's ServiceMetadata, durations in ms)." },
);

const deploymentFields = {
  id: Type.String({ examples: ["dp_abcdefghijklmnopqrstuvwxyz"] }),
  uri: Type.String(),
  protocol_type: Type.Union([Type.Literal("BidiStream"), Type.Literal("RequestResponse")]),
  http_version: Type.Union([Type.Literal("HTTP/2.0"), Type.Literal("HTTP/1.1")], { description: "HTTP/2.0: h2c with prior knowledge." }),
  additional_headers: StringMap("Headers sent with every request to the endpoint."),
  created_at: Type.String({ description: "RFC 3339 time of the first registration." }),
  min_protocol_version: Type.Integer(),
  max_protocol_version: Type.Integer(),
  sdk_version: Type.Union([Type.String(), Type.Null()]),
  metadata: StringMap("Operator-supplied metadata."),
};

const DeploymentSummary = Type.Object(
  {
    ...deploymentFields,
    services: Type.Array(Type.Object({ name: Type.String(), revision: Type.Integer() }), { description: "The services this deployment serves the latest revision of." }),
  },
  { description: "A deployment: an SDK endpoint cairn invokes." },
);
const DeploymentDetail = Type.Object({ ...deploymentFields, services: Type.Array(ServiceMetadata) }, { description: "A deployment with the services it serves the latest revision of." });
const DeploymentList = Type.Object({ deployments: Type.Array(DeploymentSummary) });
const ServiceList = Type.Object({ services: Type.Array(ServiceMetadata) });
const HandlerList = Type.Object({ handlers: Type.Array(HandlerMetadata) });

const RegisterDeploymentRequest = Type.Object(
  {
    uri: Type.String({ maxLength: 2048, description: "The SDK endpoint (http:// or https://), path prefix included.", examples: ["http://127.0.0.1:9080"] }),
    additional_headers: Type.Optional(Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 8192 }), { maxProperties: 64, description: "Sent with discovery and every invocation." })),
    use_http_11: Type.Optional(Type.Boolean({ description: "Talk HTTP/1.1 (request-response) instead of h2c." })),
    force: Type.Optional(Type.Boolean({ description: "Overwrite a changed deployment at the same URI; allow changing a service's type." })),
    breaking: Type.Optional(Type.Boolean({ description: "Accepted for compatibility with Restate's clients; force covers it." })),
    dry_run: Type.Optional(Type.Boolean({ description: "Discover and check, but write nothing." })),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 4096 }), { maxProperties: 64 })),
  },
  { additionalProperties: false, description: "Restate's registration body (snake_case). Lambda deployments (arn) are not supported." },
);
const RegisterDeploymentResponse = Type.Object(
  {
    id: Type.String(),
    services: Type.Array(ServiceMetadata),
    min_protocol_version: Type.Integer(),
    max_protocol_version: Type.Integer(),
    sdk_version: Type.Union([Type.String(), Type.Null()]),
  },
  { description: "The registered deployment and its services." },
);
const RemoveDeploymentResponse = Type.Object(
  { id: Type.String(), removed_services: Type.Array(Type.String(), { description: "Services unregistered with it (only with force)." }) },
  { description: "The deployment was removed." },
);

const deploymentModels = new Elysia({ name: "deployment-models" }).model(
  closed({ ServiceMetadata, HandlerMetadata, DeploymentSummary, DeploymentDetail, DeploymentList, ServiceList, HandlerList, RegisterDeploymentRequest, RegisterDeploymentResponse, RemoveDeploymentResponse }),
);

export type ServiceMetadataBody = Static<typeof ServiceMetadata>;

// ---- registry → Restate's shapes ----

function retryView(p: Partial<RetryPolicy>): Static<typeof RetryPolicyMetadata> {
  const out: Static<typeof RetryPolicyMetadata> = {};
  if (p.initialIntervalMs !== undefined) out.initial_interval_ms = p.initialIntervalMs;
  if (p.maxIntervalMs !== undefined) out.max_interval_ms = p.maxIntervalMs;
  if (p.factor !== undefined) out.exponentiation_factor = p.factor;
  if (p.maxAttempts !== undefined) out.max_attempts = p.maxAttempts;
  if (p.onMaxAttempts !== undefined) out.on_max_attempts = p.onMaxAttempts === "pause" ? "Pause" : "Kill";
  return out;
}

function optionsView(o: HandlerSchema | ServiceSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.retryPolicy !== undefined) out.retry_policy = retryView(o.retryPolicy);
  if (o.inactivityTimeoutMs !== undefined) out.inactivity_timeout_ms = o.inactivityTimeoutMs;
  if (o.abortTimeoutMs !== undefined) out.abort_timeout_ms = o.abortTimeoutMs;
  if (o.journalRetentionMs !== undefined) out.journal_retention_ms = o.journalRetentionMs;
  if (o.idempotencyRetentionMs !== undefined) out.idempotency_retention_ms = o.idempotencyRetentionMs;
  if (o.enableLazyState !== undefined) out.enable_lazy_state = o.enableLazyState;
  if (o.documentation !== undefined) out.documentation = o.documentation;
  if (o.metadata !== undefined) out.metadata = o.metadata;
  return out;
}

const HANDLER_TY = { exclusive: "Exclusive", shared: "Shared", workflow: "Workflow" } as const;
const SERVICE_TY = { service: "Service", "virtual-object": "VirtualObject", workflow: "Workflow" } as const;

function handlerView(h: HandlerSchema): Static<typeof HandlerMetadata> {
  return {
    name: h.name,
    ty: h.ty === null ? null : HANDLER_TY[h.ty],
    input_required: h.inputRequired,
    input_content_type: h.inputContentType,
    output_content_type: h.outputContentType,
    set_content_type_if_empty: h.setContentTypeIfEmpty,
    ...(h.workflowCompletionRetentionMs === undefined ? {} : { workflow_completion_retention_ms: h.workflowCompletionRetentionMs }),
    ...optionsView(h),
  };
}

export function serviceView(s: ServiceSchema): ServiceMetadataBody {
  return {
    name: s.name,
    ty: SERVICE_TY[s.ty],
    handlers: s.handlers.map(handlerView),
    deployment_id: s.deploymentId,
    revision: s.revision,
    public: s.public,
    ...optionsView(s),
  };
}

function deploymentFieldsView(d: DeploymentSchema) {
  return {
    id: d.id,
    uri: d.uri,
    protocol_type: d.protocolMode === "bidi-stream" ? ("BidiStream" as const) : ("RequestResponse" as const),
    http_version: d.http === "h2c" ? ("HTTP/2.0" as const) : ("HTTP/1.1" as const),
    additional_headers: d.additionalHeaders,
    created_at: new Date(d.createdAtMs).toISOString(),
    min_protocol_version: d.minProtocolVersion,
    max_protocol_version: d.maxProtocolVersion,
    sdk_version: d.sdkVersion,
    metadata: d.metadata,
  };
}

function summaryView(reg: SchemaRegistry, d: DeploymentSchema): Static<typeof DeploymentSummary> {
  return { ...deploymentFieldsView(d), services: servicesOfDeployment(reg, d.id).map((s) => ({ name: s.name, revision: s.revision })) };
}

function detailView(reg: SchemaRegistry, d: DeploymentSchema): Static<typeof DeploymentDetail> {
  return { ...deploymentFieldsView(d), services: servicesOfDeployment(reg, d.id).map(serviceView) };
}

const NAME = (description: string) => t.String({ minLength: 1, maxLength: 256, description });

export function deploymentRoutes(deps: AdminDeps) {
  const errors = { 400: "Problem", 404: "Problem", 409: "Problem", 503: "Problem" } as const;
  const registry = async () => (await readRegistry(requireMetadata(deps), "linearizable")).registry;
  return new Elysia({ name: "deployment-routes" })
    .use(models)
    .use(deploymentModels)
    .post(
      "/deployments",
      async ({ body, set }) => {
        const api = requireMetadata(deps);
        const uri = normalizeDeploymentUri(body.uri);
        const headers = body.additional_headers ?? {};
        checkAdditionalHeaders(headers);
        const discovered = await discover(uri, { useHttp11: body.use_http_11 ?? false, headers, timeoutMs: DEFAULT_DISCOVERY_TIMEOUT_MS });
        const options = {
          uri,
          additionalHeaders: headers,
          force: body.force === true,
          nowMs: Date.now(),
          id: newDeploymentId(randomBytes(16)),
          ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
        };
        const outcome =
          body.dry_run === true
            ? registerDeployment((await readRegistry(api, "linearizable")).registry, discovered, options)
            : await updateRegistry(api, (reg) => {
                const r = registerDeployment(reg, discovered, options);
                return { registry: r.changed ? r.registry : null, result: r };
              });
        set.status = outcome.created ? 201 : 200;
        set.headers.location = `deployments/${outcome.deployment.id}`;
        const services = outcome.registry.services.filter((s) => s.deploymentId === outcome.deployment.id);
        return {
          id: outcome.deployment.id,
          services: services.map(serviceView),
          min_protocol_version: outcome.deployment.minProtocolVersion,
          max_protocol_version: outcome.deployment.maxProtocolVersion,
          sdk_version: outcome.deployment.sdkVersion,
        };
      },
      {
        parse: "json",
        body: "RegisterDeploymentRequest",
        response: { 200: "RegisterDeploymentResponse", 201: "RegisterDeploymentResponse", ...errors },
        detail: {
          operationId: "registerDeployment",
          tags: ["deployments"],
          summary: "Register an SDK endpoint: discover its services and store them in the registry",
          description:
            "Restate's registration route and body. cairn sends GET {uri}/discover (h2c with prior knowledge, HTTP/1.1 when the endpoint does not speak it or use_http_11 is set), validates the manifest and writes the registry by compare-and-set. 201: a new deployment; 200: this URI was registered already (unchanged, or overwritten with force). Services another deployment served move to this one with their revision + 1.",
        },
      },
    )
    .get("/deployments", async () => {
      const reg = await registry();
      return { deployments: reg.deployments.map((d) => summaryView(reg, d)) };
    }, {
      response: { 200: "DeploymentList", ...errors },
      detail: { operationId: "listDeployments", tags: ["deployments"], summary: "Every registered deployment, with the services it serves the latest revision of" },
    })
    .get("/deployments/:id", async ({ params }) => {
      const reg = await registry();
      return detailView(reg, deploymentOf(reg, params.id));
    }, {
      params: t.Object({ id: NAME("The deployment id (dp_…).") }),
      response: { 200: "DeploymentDetail", ...errors },
      detail: { operationId: "getDeployment", tags: ["deployments"], summary: "One deployment and the services it serves" },
    })
    .delete("/deployments/:id", async ({ params, query, set }) => {
      const removed = await updateRegistry(requireMetadata(deps), (reg) => {
        const r = removeDeployment(reg, params.id, { force: query.force === true });
        return { registry: r.registry, result: r };
      });
      set.status = 202;
      return { id: removed.removed.id, removed_services: removed.removedServices };
    }, {
      params: t.Object({ id: NAME("The deployment id (dp_…).") }),
      query: t.Object({ force: t.Optional(t.Boolean({ description: "Remove it even while it serves the latest revision of services (they are unregistered)." })) }),
      response: { 202: "RemoveDeploymentResponse", ...errors },
      detail: {
        operationId: "removeDeployment",
        tags: ["deployments"],
        summary: "Remove a deployment (refused while it serves the latest revision of a service, unless force)",
      },
    })
    .get("/services", async () => ({ services: (await registry()).services.map(serviceView) }), {
      response: { 200: "ServiceList", ...errors },
      detail: { operationId: "listServices", tags: ["services"], summary: "Every registered service at its latest revision" },
    })
    .get("/services/:name", async ({ params }) => serviceView(serviceOf(await registry(), params.name)), {
      params: t.Object({ name: NAME("The service name.") }),
      response: { 200: "ServiceMetadata", ...errors },
      detail: { operationId: "getService", tags: ["services"], summary: "One service: type, handlers, deployment and revision" },
    })
    .get("/services/:name/handlers", async ({ params }) => ({ handlers: serviceOf(await registry(), params.name).handlers.map(handlerView) }), {
      params: t.Object({ name: NAME("The service name.") }),
      response: { 200: "HandlerList", ...errors },
      detail: { operationId: "listServiceHandlers", tags: ["services"], summary: "The handlers of one service" },
    })
    .get("/services/:name/handlers/:handler", async ({ params }) => handlerView(handlerOf(await registry(), params.name, params.handler).handler), {
      params: t.Object({ name: NAME("The service name."), handler: NAME("The handler name.") }),
      response: { 200: "HandlerMetadata", ...errors },
      detail: { operationId: "getServiceHandler", tags: ["services"], summary: "One handler of a service" },
    });
}
