// The answers of Restate's ingress API: a handler's output, an invocation's failure and the ingress's
// own errors, in the JSON shapes Restate's server sends (so `@restatedev/restate-sdk-clients` and curl
// users see what they expect), plus cairn's stable code and hint on the ingress's errors.
// Invariants: an invocation failure carries `x-restate-error-source: invocation` (the official client
// then never retries it); an ingress error carries `ingress`, and a 503 always carries Retry-After.
import { CairnError } from "../../observability/errors.ts";
import type { HandlerSchema, InvocationResult } from "../../worker/invoker/model.ts";

export const APPLICATION_JSON = "application/json";
export const ERROR_SOURCE_HEADER = "x-restate-error-source";
export const INVOCATION_ID_HEADER = "x-restate-id";
export const IDEMPOTENCY_EXPIRES_HEADER = "idempotency-expires";

/** A Restate ingress error body: Restate's `message` and `source`, cairn's `code`, `hint` and `status`. */
export interface IngressErrorBody {
  message: string;
  source: "ingress";
  code: string;
  hint: string;
  status: number;
  [detail: string]: unknown;
}

/** The ingress refused or could not serve the request (not an answer of the handler). */
export function ingressError(error: CairnError, invocationId?: string): Response {
  const headers: Record<string, string> = { "content-type": APPLICATION_JSON, [ERROR_SOURCE_HEADER]: "ingress" };
  if (invocationId !== undefined) headers[INVOCATION_ID_HEADER] = invocationId;
  if (error.status === 503) headers["retry-after"] = String(error.details.retryAfterSeconds ?? 1);
  const body: IngressErrorBody = { ...error.details, message: error.message, source: "ingress", code: error.code, hint: error.hint, status: error.status };
  return new Response(JSON.stringify(body), { status: error.status, headers });
}

/**
 * The HTTP status of a failure: its code when that is an HTTP error status (400..599), else 500, since
 * a terminal error's code is free-form (the SDK defaults it to 500) and a 1xx-3xx would read as success.
 */
export function failureStatus(code: number): number {
  return Number.isInteger(code) && code >= 400 && code <= 599 ? code : 500;
}

/** What an invocation ended with (a value or a terminal failure), as a call answers it. */
export function resultResponse(
  result: InvocationResult,
  invocationId: string,
  handler: HandlerSchema | null,
  idempotencyExpiresAtMs: number | null = null,
): Response {
  const headers: Record<string, string> = { [INVOCATION_ID_HEADER]: invocationId };
  if (idempotencyExpiresAtMs !== null) headers[IDEMPOTENCY_EXPIRES_HEADER] = new Date(idempotencyExpiresAtMs).toISOString();
  if (result.kind === "failure") {
    headers["content-type"] = APPLICATION_JSON;
    headers[ERROR_SOURCE_HEADER] = "invocation";
    const body: Record<string, unknown> = { code: result.code, message: result.message };
    if (result.metadata.length > 0) body.metadata = Object.fromEntries(result.metadata.map((m) => [m.key, m.value]));
    body.source = "invocation";
    return new Response(JSON.stringify(body), { status: failureStatus(result.code), headers });
  }
  const contentType = handler?.outputContentType ?? null;
  if (contentType !== null && (result.value.length > 0 || handler?.setContentTypeIfEmpty === true)) headers["content-type"] = contentType;
  return new Response(result.value, { status: 200, headers });
}

/** The 202 of a send: Restate's `{invocationId, status, executionTime?}`. */
export function sendResponse(invocationId: string, previously: boolean, executionTimeMs: number | null): Response {
  const body: Record<string, string> = { invocationId, status: previously ? "PreviouslyAccepted" : "Accepted" };
  if (executionTimeMs !== null) body.executionTime = new Date(executionTimeMs).toISOString();
  return new Response(JSON.stringify(body), { status: 202, headers: { "content-type": APPLICATION_JSON, [INVOCATION_ID_HEADER]: invocationId } });
}
