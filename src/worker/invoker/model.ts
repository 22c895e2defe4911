// The shared vocabulary of durable invocations: the service schema registry (deployments, services,
// handlers, as discovered from SDK endpoints and stored in metadata under `schema`), invocation
// targets and results, and the interface the ingress uses to start, attach to and signal
// invocations (implemented by the invocation router, which finds the partition's leader).
// Invariants: the registry document changes only by compare-and-set; a service name belongs to at
// most one deployment at a time (the latest registration of it wins, with a revision that grows).
import { Type, type Static } from "@sinclair/typebox";

/** The metadata key holding the registry document. */
export const SCHEMA_KEY = "schema";

export const ServiceType = Type.Union([Type.Literal("service"), Type.Literal("virtual-object"), Type.Literal("workflow")]);
export type ServiceType = Static<typeof ServiceType>;
export const HandlerType = Type.Union([Type.Literal("exclusive"), Type.Literal("shared"), Type.Literal("workflow")]);
export type HandlerType = Static<typeof HandlerType>;

export const RetryPolicy = Type.Object(
  {
    initialIntervalMs: Type.Integer({ minimum: 0 }),
    maxIntervalMs: Type.Integer({ minimum: 0 }),
    factor: Type.Number({ minimum: 1 }),
    /** Attempts before `onMaxAttempts` (null: unlimited). */
    maxAttempts: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    onMaxAttempts: Type.Union([Type.Literal("pause"), Type.Literal("kill")]),
  },
  { additionalProperties: false },
);
export type RetryPolicy = Static<typeof RetryPolicy>;

/** Per-service or per-handler options from the manifest (absent: the cluster's defaults). */
const HandlerOptions = {
  retryPolicy: Type.Optional(Type.Partial(RetryPolicy)),
  inactivityTimeoutMs: Type.Optional(Type.Integer({ minimum: 0 })),
  abortTimeoutMs: Type.Optional(Type.Integer({ minimum: 0 })),
  journalRetentionMs: Type.Optional(Type.Integer({ minimum: 0 })),
  idempotencyRetentionMs: Type.Optional(Type.Integer({ minimum: 0 })),
  enableLazyState: Type.Optional(Type.Boolean()),
};

export const HandlerSchema = Type.Object(
  {
    name: Type.String(),
    /** Null for the handlers of plain services. */
    ty: Type.Union([HandlerType, Type.Null()]),
    inputRequired: Type.Boolean(),
    inputContentType: Type.Union([Type.String(), Type.Null()]),
    outputContentType: Type.Union([Type.String(), Type.Null()]),
    setContentTypeIfEmpty: Type.Boolean(),
    documentation: Type.Optional(Type.String()),
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
    workflowCompletionRetentionMs: Type.Optional(Type.Integer({ minimum: 0 })),
    ...HandlerOptions,
  },
  { additionalProperties: false },
);
export type HandlerSchema = Static<typeof HandlerSchema>;

export const ServiceSchema = Type.Object(
  {
    name: Type.String(),
    ty: ServiceType,
    handlers: Type.Array(HandlerSchema),
    deploymentId: Type.String(),
    /** Grows by one each time a deployment (re)registers the service. */
    revision: Type.Integer({ minimum: 1 }),
    /** False when the manifest says ingressPrivate: only other services may call it. */
    public: Type.Boolean(),
    documentation: Type.Optional(Type.String()),
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
    ...HandlerOptions,
  },
  { additionalProperties: false },
);
export type ServiceSchema = Static<typeof ServiceSchema>;

export const DeploymentSchema = Type.Object(
  {
    /** `dp_` + 26 base32 characters. */
    id: Type.String(),
    uri: Type.String(),
    /** How cairn talks to the endpoint: HTTP/2 with prior knowledge, or HTTP/1.1. */
    http: Type.Union([Type.Literal("h2c"), Type.Literal("http1.1")]),
    additionalHeaders: Type.Record(Type.String(), Type.String()),
    protocolMode: Type.Union([Type.Literal("bidi-stream"), Type.Literal("request-response")]),
    minProtocolVersion: Type.Integer({ minimum: 1 }),
    maxProtocolVersion: Type.Integer({ minimum: 1 }),
    sdkVersion: Type.Union([Type.String(), Type.Null()]),
    /** Names of the services this deployment registered (their schemas are in `services`). */
    services: Type.Array(Type.String()),
    createdAtMs: Type.Integer({ minimum: 0 }),
    metadata: Type.Record(Type.String(), Type.String()),
  },
  { additionalProperties: false },
);
export type DeploymentSchema = Static<typeof DeploymentSchema>;

export const SchemaRegistry = Type.Object(
  {
    deployments: Type.Array(DeploymentSchema),
    /** The current schema of every registered service (one entry per name). */
    services: Type.Array(ServiceSchema),
  },
  { additionalProperties: false },
);
export type SchemaRegistry = Static<typeof SchemaRegistry>;
export const EMPTY_REGISTRY: SchemaRegistry = { deployments: [], services: [] };

/** Reads the registry (cached; `refresh` re-reads it, e.g. after an unknown service was asked for). */
export interface SchemaSource {
  get(refresh?: boolean): Promise<SchemaRegistry>;
}

// ---- invocations, as the ingress sees them ----

export interface InvocationTarget {
  readonly service: string;
  readonly handler: string;
  /** The object or workflow key; null for plain services. */
  readonly key: string | null;
}

export interface FailureMetadata {
  readonly key: string;
  readonly value: string;
}

export type InvocationResult =
  | { readonly kind: "value"; readonly value: Uint8Array }
  | { readonly kind: "failure"; readonly code: number; readonly message: string; readonly metadata: readonly FailureMetadata[] };

export interface InvokeRequest {
  readonly target: InvocationTarget;
  readonly input: Uint8Array;
  /** Request headers passed to the handler (Input command headers). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly idempotencyKey: string | null;
  /** "call": wait for the result; "send": answer once the invocation is durably accepted. */
  readonly mode: "call" | "send";
  /** Only with "send": start no earlier than this many ms from now. */
  readonly delayMs: number | null;
}

export type InvokeAnswer =
  | { readonly status: "completed"; readonly invocationId: string; readonly result: InvocationResult; readonly idempotencyExpiresAtMs: number | null }
  | { readonly status: "accepted" | "previously-accepted"; readonly invocationId: string; readonly executionTimeMs: number | null }
  /** A call whose wait ended before the invocation did (deadline): attach to it to go on waiting. */
  | { readonly status: "pending"; readonly invocationId: string }
  /** A second call of a workflow's run handler for the same key. */
  | { readonly status: "workflow-already-invoked"; readonly invocationId: string };

export type AttachTarget =
  | { readonly kind: "id"; readonly invocationId: string }
  | { readonly kind: "idempotent"; readonly service: string; readonly key: string | null; readonly handler: string; readonly idempotencyKey: string }
  | { readonly kind: "workflow"; readonly service: string; readonly key: string };

export type OutputAnswer =
  | { readonly status: "completed"; readonly invocationId: string; readonly result: InvocationResult }
  /** Still running (output) or still running at the deadline (attach). */
  | { readonly status: "not-ready"; readonly invocationId: string }
  | { readonly status: "not-found" }
  /** The invocation keeps no output (neither an idempotency key nor a workflow run). */
  | { readonly status: "unsupported"; readonly invocationId: string };

export interface InvocationClient {
  invoke(req: InvokeRequest, deadlineMs: number): Promise<InvokeAnswer>;
  /** Waits for the invocation's result until `deadlineMs` (then `not-ready`). */
  attach(target: AttachTarget, deadlineMs: number): Promise<OutputAnswer>;
  /** Answers at once: the result, or `not-ready`. */
  output(target: AttachTarget, deadlineMs: number): Promise<OutputAnswer>;
  /** Completes an awakeable (`sign_1…`) with a value or a failure. */
  resolveAwakeable(awakeableId: string, result: InvocationResult, deadlineMs: number): Promise<void>;
}

/** The invoker's settings (the `invoker` config section; the node passes it in, the worker does not read config). */
export interface InvokerSettings {
  readonly "max-concurrent-attempts": number;
  readonly "attempt-timeout-ms": number;
  readonly "retry-initial-interval-ms": number;
  readonly "retry-max-interval-ms": number;
  readonly "retry-factor": number;
  /** 0: unlimited. */
  readonly "retry-max-attempts": number;
  readonly "retry-on-max-attempts": "pause" | "kill";
  readonly "completed-retention-ms": number;
  readonly "idempotency-retention-ms": number;
  readonly "workflow-retention-ms": number;
  readonly "call-wait-ms": number;
  readonly "first-attempt-before-record": boolean;
}
