// Invocation routes for operators: list durable invocations cluster-wide, describe one, and cancel,
// kill, resume or purge it (/v1/invocations…), plus Restate's admin paths for the same actions
// (PATCH /invocations/{id}/<action>, DELETE /invocations/{id}?mode=) so Restate's CLI habits work.
// Any node answers; actions go to the invocation's partition leader through the partition log.
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { INVOCATION_STATUSES } from "../../worker/index.ts";
import { CairnError } from "../../observability/errors.ts";
import type { AdminDeps } from "./deps.ts";
import type { InvocationAction } from "./invocation-operations.ts";
import { closed, models } from "./models.ts";

/** Rows a list returns when the request names no limit, and the most it may ask for. */
export const DEFAULT_INVOCATION_LIST_LIMIT = 100;
export const MAX_INVOCATION_LIST_LIMIT = 10_000;

const StatusEnum = Type.Union(
  INVOCATION_STATUSES.map((s) => Type.Literal(s)),
  { description: "scheduled (delayed), inboxed (waits for its object's lock), ready (running or about to), suspended (waits for a completion), backing-off (waits to retry), paused (retries exhausted), completed (result kept for the retention)." },
);
const NullableMs = (description: string) => Type.Union([Type.Integer(), Type.Null()], { description });

const Invocation = Type.Object(
  {
    id: Type.String({ description: "The invocation id (inv_1…), as in x-restate-id." }),
    partition: Type.Integer({ minimum: 0, description: "The partition that owns it." }),
    service: Type.String(),
    handler: Type.String(),
    key: Type.Union([Type.String(), Type.Null()], { description: "The object or workflow key; null for plain services." }),
    status: Type.String({ description: "One of the statuses the `status` filter takes." }),
    idempotencyKey: Type.Union([Type.String(), Type.Null()]),
    createdAtMs: Type.Integer({ description: "When the partition recorded it (Unix ms)." }),
    modifiedAtMs: Type.Integer({ description: "Its last change (Unix ms)." }),
    attempts: Type.Integer({ minimum: 0, description: "Attempts whose outcome was recorded (ended, suspended or failed)." }),
    retryCount: Type.Integer({ minimum: 0, description: "Failed attempts since its journal last grew." }),
    journalLength: Type.Integer({ minimum: 0, description: "Entries in its journal (the input included); a completed invocation keeps the count, not the entries." }),
    lastError: Type.Union([Type.String(), Type.Null()], { description: "Why the last attempt failed." }),
    nextRetryAtMs: NullableMs("When it is retried next (backing-off)."),
    completedAtMs: NullableMs("When it completed."),
    result: Type.Union(
      [
        Type.Object({ ok: Type.Literal(true), valueBytes: Type.Integer({ minimum: 0 }) }),
        Type.Object({ ok: Type.Literal(false), code: Type.Integer(), message: Type.String() }),
        Type.Null(),
      ],
      { description: "Its outcome once completed: the size of the value, or the failure (409 killed / canceled, a terminal error)." },
    ),
  },
  { description: "A durable invocation as its partition's leader keeps it." },
);
const InvocationList = Type.Object(
  {
    invocations: Type.Array(Invocation, { description: "Newest first." }),
    counts: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: "Invocations by status, over every service (the filters do not apply)." }),
    unreachable: Type.Array(Type.String(), { description: "Workers (N<id>) that did not answer in time: the invocations of the partitions they lead are missing." }),
    missingPartitions: Type.Array(Type.Integer({ minimum: 0 }), { description: "Partitions no worker answered for as leader within the deadline (a leadership moving, a node down): their invocations are missing." }),
  },
  { description: "Durable invocations, from every worker that leads partitions." },
);
const InvocationActionResult = Type.Object(
  {
    id: Type.String(),
    action: Type.Union([Type.Literal("cancel"), Type.Literal("kill"), Type.Literal("resume"), Type.Literal("purge")]),
    previousStatus: Type.String({ description: "Its status before the action." }),
    status: Type.String({ description: "Its status once the action applied (`gone` after purge). A cancel only signals the handler: it completes when the handler ends." }),
  },
  { description: "The action was recorded in the partition's log and applied by its leader." },
);

const invocationModels = new Elysia({ name: "invocation-models" }).model(closed({ Invocation, InvocationList, InvocationActionResult }));

const ID = t.String({ minLength: 1, maxLength: 256, description: "The invocation id (inv_1…)." });
const ACTION_SUMMARY: Record<InvocationAction, string> = {
  cancel: "Cancel an invocation: the handler gets a cancellation and may run compensations (callers get its outcome, by default 409 Cancelled)",
  kill: "Kill an invocation: it ends at once without running more user code; callers get 409 killed",
  resume: "Resume a paused or backing-off invocation now",
  purge: "Forget a completed invocation (its result and idempotency key) before its retention runs out",
};

/**
 * The list's limit, checked here as well as by the schema: the compiled binary's query validation lets
 * numeric bounds through (limit=0, 2.5 and 99999 reached the handler there), and the workers' RPC
 * schema would then refuse the request as a bug.
 */
function listLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_INVOCATION_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_INVOCATION_LIST_LIMIT) {
    throw new CairnError("API_VALIDATION", `invalid query at '/limit': expected a whole number from 1 to ${MAX_INVOCATION_LIST_LIMIT}, got ${limit}`, {
      errors: [{ path: "/limit", message: `a whole number from 1 to ${MAX_INVOCATION_LIST_LIMIT}` }],
    });
  }
  return limit;
}

function operations(deps: AdminDeps) {
  const o = deps.invocations();
  if (o === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
  return o;
}

const errors = { 400: "Problem", 404: "Problem", 409: "Problem", 503: "Problem" } as const;

/** One action at cairn's path (POST /v1/invocations/{id}/<action>) and at Restate's (PATCH /invocations/{id}/<action>). */
function actionRoutes(deps: AdminDeps, action: InvocationAction) {
  const route = { params: t.Object({ id: ID }), response: { 200: "InvocationActionResult", ...errors } } as const;
  return new Elysia({ name: `invocation-${action}-routes` })
    .use(models)
    .use(invocationModels)
    .post(`/v1/invocations/:id/${action}`, ({ params }) => operations(deps).control(params.id, action), {
      ...route,
      detail: { operationId: `${action}Invocation`, tags: ["invocations"], summary: ACTION_SUMMARY[action] },
    })
    .patch(`/invocations/:id/${action}`, ({ params }) => operations(deps).control(params.id, action), {
      ...route,
      detail: { operationId: `${action}InvocationRestate`, tags: ["invocations"], summary: `${ACTION_SUMMARY[action]} (Restate's path)` },
    });
}

export function invocationRoutes(deps: AdminDeps) {
  return new Elysia({ name: "invocation-routes" })
    .use(models)
    .use(invocationModels)
    .get(
      "/v1/invocations",
      ({ query }) =>
        operations(deps).list({
          service: query.service ?? null,
          status: query.status ?? null,
          limit: listLimit(query.limit),
        }),
      {
        query: t.Object({
          service: t.Optional(t.String({ minLength: 1, maxLength: 256, description: "Only invocations of this service." })),
          status: t.Optional(StatusEnum),
          limit: t.Optional(t.Number({ multipleOf: 1, minimum: 1, maximum: MAX_INVOCATION_LIST_LIMIT, description: `Most rows to return (default ${DEFAULT_INVOCATION_LIST_LIMIT}).` })),
        }),
        response: { 200: "InvocationList", ...errors },
        detail: {
          operationId: "listInvocations",
          tags: ["invocations"],
          summary: "Durable invocations of the whole cluster, newest first, with counts by status",
          description:
            "Every worker answers for the partitions it leads (completed invocations stay listed for their retention); the workers are asked again, for up to 2 s, while a partition has no leader answering. Workers that do not answer in time are named in `unreachable`, partitions nobody answered for in `missingPartitions`.",
        },
      },
    )
    .get("/v1/invocations/:id", ({ params }) => operations(deps).describe(params.id), {
      params: t.Object({ id: ID }),
      response: { 200: "Invocation", ...errors },
      detail: { operationId: "getInvocation", tags: ["invocations"], summary: "One invocation: target, status, attempts, journal length, last error, result" },
    })
    .use(actionRoutes(deps, "cancel"))
    .use(actionRoutes(deps, "kill"))
    .use(actionRoutes(deps, "resume"))
    .use(actionRoutes(deps, "purge"))
    .delete(
      "/invocations/:id",
      async ({ params, query, set }) => {
        const outcome = await operations(deps).control(params.id, query.mode ?? "cancel");
        set.status = 202;
        return outcome;
      },
      {
        params: t.Object({ id: ID }),
        query: t.Object({
          mode: t.Optional(t.Union([t.Literal("cancel"), t.Literal("kill"), t.Literal("purge")], { description: "What to do (default cancel), as Restate's DELETE takes it." })),
        }),
        response: { 202: "InvocationActionResult", ...errors },
        detail: { operationId: "deleteInvocationRestate", tags: ["invocations"], summary: "Cancel (default), kill or purge an invocation (Restate's path)" },
      },
    );
}
