// Restate's ingress API over cairn's InvocationClient and SchemaSource: checks a request against the
// service schema, turns it into an invoke / attach / output / awakeable completion, and answers the way
// Restate's ingress does. A call waits for its result in slices of ingress.request-timeout-ms (each
// slice a fresh attach, so a leader change on the way is survived) up to ingress.invocation-wait-ms.
// Invariants: nothing reaches the InvocationClient before the request is fully validated and its body
// read within ingress.max-body-bytes; every failure is an HTTP answer with a catalogue code, never a throw.
import { CairnError, isCairnError } from "../../observability/errors.ts";
import { OBJECT_KEY_MAX_BYTES } from "../../worker/index.ts";
import { parseAwakeableId, parseInvocationId } from "../../worker/invoker/ids.ts";
import type {
  AttachTarget,
  HandlerSchema,
  InvocationClient,
  InvocationResult,
  InvokeRequest,
  OutputAnswer,
  SchemaRegistry,
  SchemaSource,
  ServiceSchema,
} from "../../worker/invoker/model.ts";
import { parseDelayMs } from "./duration.ts";
import { idempotentTarget, parseRestatePath, servicePathTarget, type OutputOp, type PathRefusal, type RestateRoute } from "./paths.ts";
import { ingressError, resultResponse, sendResponse } from "./respond.ts";

export const MAX_IDEMPOTENCY_KEY_CHARS = 256;
const INGRESS_PATH_HEADER = "x-restate-ingress-path";
const LIMIT_KEY_HEADER = "x-restate-limit-key";
/** Headers that describe this hop, not the request: never passed to the handler. */
const DROPPED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
  "idempotency-key",
  "idempotency-expires",
]);
/** Pause before attaching again after the partition was unavailable (doubles up to the maximum). */
const REATTACH_BACKOFF_MS = { initial: 50, max: 1_000 };

export interface RestateIngressDeps {
  readonly invocations: () => InvocationClient | undefined;
  readonly schema: () => SchemaSource | undefined;
  readonly maxBodyBytes: number;
  /** How long one request to the InvocationClient may take (a slice of a longer wait). */
  readonly requestTimeoutMs: number;
  /** How long a call or attach waits for the result in all. */
  readonly invocationWaitMs: number;
  readonly onBug: (e: unknown) => void;
}

export class RestateIngress {
  private readonly indexes = new WeakMap<SchemaRegistry, Map<string, ServiceSchema>>();

  constructor(private readonly deps: RestateIngressDeps) {}

  /** The answer to `request`, or undefined when its path belongs to cairn's own API (not Restate's). */
  async handle(request: Request): Promise<Response | undefined> {
    const url = new URL(request.url);
    const route = parseRestatePath(url.pathname);
    if (route.kind === "cairn") return undefined;
    try {
      if (route.kind === "refused") throw refusal(route);
      return await this.serve(route, request, url);
    } catch (e) {
      return ingressError(this.asCairnError(e));
    }
  }

  private async serve(route: Exclude<RestateRoute, { kind: "cairn" }>, request: Request, url: URL): Promise<Response> {
    switch (route.kind) {
      case "health":
        allow(request, "GET");
        return new Response(null, { status: 200 });
      case "service":
        return this.invoke(route, request, url);
      case "invocation-id": {
        allow(request, "GET");
        if (parseInvocationId(route.invocationId) === undefined) {
          throw new CairnError("INVOKE_BAD_INVOCATION_ID", `bad invocation id ${JSON.stringify(route.invocationId.slice(0, 64))}`);
        }
        return this.result({ kind: "id", invocationId: route.invocationId }, route.op, null, request.signal);
      }
      case "invocation-idempotent": {
        allow(request, "GET");
        const { service, handler, target } = await this.lookup(route.service, (svc) => {
          const t = idempotentTarget(svc.ty, route.rest);
          return "kind" in t ? t : { handler: t.handler, target: t };
        });
        if (!service.public) throw privateService(service.name);
        const attach: AttachTarget = { kind: "idempotent", service: service.name, key: target.key, handler: handler.name, idempotencyKey: target.idempotencyKey };
        return this.result(attach, route.op, handler, request.signal);
      }
      case "workflow": {
        allow(request, "GET");
        const { service, handler } = await this.lookup(route.service, (svc) => {
          if (svc.ty !== "workflow") return { kind: "refused", error: "INVOKE_BAD_PATH", message: `bad path: ${svc.name} is a ${svc.ty}, not a workflow` } satisfies PathRefusal;
          const run = svc.handlers.find((h) => h.ty === "workflow");
          if (run === undefined) return { kind: "refused", error: "INVOKE_HANDLER_NOT_FOUND", message: `workflow ${svc.name} has no run handler` } satisfies PathRefusal;
          return { handler: run.name, target: null };
        });
        checkKey(route.key);
        return this.result({ kind: "workflow", service: service.name, key: route.key }, route.op, handler, request.signal);
      }
      case "awakeable": {
        allow(request, "POST");
        if (parseAwakeableId(route.awakeableId) === undefined) {
          throw new CairnError("INVOKE_BAD_AWAKEABLE_ID", `bad awakeable id ${JSON.stringify(route.awakeableId.slice(0, 80))}`);
        }
        const body = await readBody(request, this.deps.maxBodyBytes);
        const result: InvocationResult =
          route.op === "resolve" ? { kind: "value", value: body } : { kind: "failure", code: 500, message: new TextDecoder().decode(body), metadata: [] };
        await this.client().resolveAwakeable(route.awakeableId, result, Date.now() + this.deps.requestTimeoutMs);
        return new Response(null, { status: 202 });
      }
    }
  }

  /** A call or send of a handler: `/{Svc}/{handler}`, `/{Obj}/{key}/{handler}`, `…/send`, `/restate/call|send/…`. */
  private async invoke(route: Extract<RestateRoute, { kind: "service" }>, request: Request, url: URL): Promise<Response> {
    allow(request, "GET", "POST");
    if (request.headers.has(LIMIT_KEY_HEADER)) throw new CairnError("INVOKE_UNSUPPORTED", `the ${LIMIT_KEY_HEADER} header is not supported by cairn`);
    const { service, handler, target } = await this.lookup(route.service, (svc) => {
      const t = servicePathTarget(svc.ty, route.rest, route.mode);
      return "kind" in t ? t : { handler: t.handler, target: t };
    });
    if (!service.public) throw privateService(service.name);
    if (target.key !== null) checkKey(target.key);
    const idempotencyKey = request.headers.get("idempotency-key");
    if (idempotencyKey !== null) {
      if (handler.ty === "workflow") {
        throw new CairnError("INVOKE_BAD_IDEMPOTENCY_KEY", `${service.name}/${handler.name} is a workflow's run handler: the workflow key already makes it run once, so it takes no idempotency-key`);
      }
      if (idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_CHARS) {
        throw new CairnError("INVOKE_BAD_IDEMPOTENCY_KEY", `the idempotency-key must be 1..${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
      }
    }
    const delayMs = delayOf(url.searchParams);
    if (delayMs !== null && !target.send) {
      throw new CairnError("INVOKE_BAD_DELAY", "a call takes no delay: only sends do (…/{handler}/send?delay=10s)");
    }
    const input = await readBody(request, this.deps.maxBodyBytes);
    if (handler.inputRequired && input.length === 0) {
      throw new CairnError("INVOKE_INPUT_REQUIRED", `${service.name}/${handler.name} needs an input and the request body is empty`);
    }
    const req: InvokeRequest = {
      target: { service: service.name, handler: handler.name, key: target.key },
      input,
      headers: handlerHeaders(request.headers, url.pathname),
      idempotencyKey,
      mode: target.send ? "send" : "call",
      delayMs: target.send ? delayMs : null,
    };
    const waitEndMs = Date.now() + this.deps.invocationWaitMs;
    const answer = await this.client().invoke(req, this.sliceDeadline(waitEndMs));
    switch (answer.status) {
      case "accepted":
        return sendResponse(answer.invocationId, false, answer.executionTimeMs);
      case "previously-accepted":
        return sendResponse(answer.invocationId, true, answer.executionTimeMs);
      case "completed":
        if (target.send) return sendResponse(answer.invocationId, true, null);
        return resultResponse(answer.result, answer.invocationId, handler, answer.idempotencyExpiresAtMs);
      case "workflow-already-invoked":
        if (target.send) return sendResponse(answer.invocationId, true, null);
        // Restate answers this as the invocation's own failure (409), which clients do not retry.
        return resultResponse({ kind: "failure", code: 409, message: "the workflow method was already invoked", metadata: [] }, answer.invocationId, handler);
      case "pending": {
        if (target.send) return sendResponse(answer.invocationId, false, null);
        const waited = await this.waitFor({ kind: "id", invocationId: answer.invocationId }, waitEndMs, request.signal);
        return this.outputResponse(waited, "attach", handler, answer.invocationId);
      }
    }
  }

  /** `…/attach` (wait for the result) or `…/output` (the result if there is one) of an invocation. */
  private async result(target: AttachTarget, op: OutputOp, handler: HandlerSchema | null, signal: AbortSignal): Promise<Response> {
    if (op === "output") {
      const answer = await this.client().output(target, Date.now() + this.deps.requestTimeoutMs);
      return this.outputResponse(answer, op, handler);
    }
    return this.outputResponse(await this.waitFor(target, Date.now() + this.deps.invocationWaitMs, signal), op, handler);
  }

  private outputResponse(answer: OutputAnswer, op: OutputOp, handler: HandlerSchema | null, knownId?: string): Response {
    switch (answer.status) {
      case "completed":
        return resultResponse(answer.result, answer.invocationId, handler);
      case "not-ready":
        if (op === "output") return ingressError(new CairnError("INVOKE_NOT_READY", "the invocation exists but has not completed yet"), answer.invocationId);
        return ingressError(
          new CairnError("INVOKE_STILL_RUNNING", `invocation ${answer.invocationId} is still running after ${this.deps.invocationWaitMs} ms (ingress.invocation-wait-ms)`, {
            invocationId: answer.invocationId,
          }),
          answer.invocationId,
        );
      case "not-found":
        return ingressError(new CairnError("INVOKE_INVOCATION_NOT_FOUND", "invocation not found"), knownId);
      case "unsupported":
        return ingressError(
          new CairnError("INVOKE_OUTPUT_UNSUPPORTED", "this invocation keeps no output: only invocations started with an idempotency-key, and workflow runs, do"),
          answer.invocationId,
        );
    }
  }

  /**
   * Attaches until the invocation completes or `waitEndMs` passes (then `not-ready`), one slice at a time.
   * A partition without a leader on the way is waited out: the invocation is durable, only its answer moved.
   */
  private async waitFor(target: AttachTarget, waitEndMs: number, signal: AbortSignal): Promise<OutputAnswer> {
    let backoffMs = REATTACH_BACKOFF_MS.initial;
    for (;;) {
      try {
        const answer = await this.client().attach(target, this.sliceDeadline(waitEndMs));
        if (answer.status !== "not-ready" || Date.now() >= waitEndMs || signal.aborted) return answer;
        backoffMs = REATTACH_BACKOFF_MS.initial;
      } catch (e) {
        const unavailable = isCairnError(e, "PARTITION_UNAVAILABLE") || isCairnError(e, "PARTITION_NOT_LEADER");
        if (!unavailable || Date.now() + backoffMs >= waitEndMs || signal.aborted) throw e;
        await Bun.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, REATTACH_BACKOFF_MS.max);
      }
    }
  }

  private sliceDeadline(waitEndMs: number): number {
    return Math.min(Date.now() + this.deps.requestTimeoutMs, waitEndMs);
  }

  /**
   * The service `name` and the handler `pick` reads from the path for it. A miss (service or handler)
   * re-reads the registry once: a deployment may have been registered a moment ago on another node.
   */
  private async lookup<T>(
    name: string,
    pick: (svc: ServiceSchema) => { handler: string; target: T } | PathRefusal,
  ): Promise<{ service: ServiceSchema; handler: HandlerSchema; target: T }> {
    const source = this.deps.schema();
    if (source === undefined) throw new CairnError("INVOKE_UNAVAILABLE", "this node has no service schema yet", { retryAfterSeconds: 1 });
    for (let refresh = false; ; refresh = true) {
      const service = this.index(await source.get(refresh)).get(name);
      if (service === undefined) {
        if (refresh) throw new CairnError("INVOKE_SERVICE_NOT_FOUND", `service '${name}' not found: register the deployment that serves it before calling it`);
        continue;
      }
      const picked = pick(service);
      if ("kind" in picked) throw refusal(picked);
      const handler = service.handlers.find((h) => h.name === picked.handler);
      if (handler !== undefined) return { service, handler, target: picked.target };
      if (refresh) throw new CairnError("INVOKE_HANDLER_NOT_FOUND", `service '${name}' has no handler '${picked.handler}' in its latest registered revision`);
    }
  }

  private index(registry: SchemaRegistry): Map<string, ServiceSchema> {
    let byName = this.indexes.get(registry);
    if (byName === undefined) {
      byName = new Map(registry.services.map((s) => [s.name, s]));
      this.indexes.set(registry, byName);
    }
    return byName;
  }

  private client(): InvocationClient {
    const c = this.deps.invocations();
    if (c === undefined) throw new CairnError("INVOKE_UNAVAILABLE", "this node cannot route invocations yet (starting, or the cluster is not provisioned)", { retryAfterSeconds: 1 });
    return c;
  }

  private asCairnError(e: unknown): CairnError {
    if (e instanceof CairnError) {
      // A partition that stays without a leader is unavailable for the client, whatever the cause.
      if (isCairnError(e, "PARTITION_NOT_LEADER")) return new CairnError("PARTITION_UNAVAILABLE", e.message, { ...e.details, retryAfterSeconds: 1 });
      return e;
    }
    this.deps.onBug(e);
    return new CairnError("API_INTERNAL", "internal error while handling the request");
  }
}

function refusal(r: PathRefusal): CairnError {
  return new CairnError(r.error, r.message);
}

function privateService(name: string): CairnError {
  return new CairnError("INVOKE_PRIVATE_SERVICE", `the service '${name}' is private: only other services may call it`);
}

function allow(request: Request, ...methods: string[]): void {
  if (!methods.includes(request.method)) {
    throw new CairnError("INVOKE_METHOD_NOT_ALLOWED", `${request.method} is not allowed here (allowed: ${methods.join(", ")})`);
  }
}

function checkKey(key: string): void {
  if (Buffer.byteLength(key) > OBJECT_KEY_MAX_BYTES) throw new CairnError("INVOKE_BAD_PATH", `bad path: a key is at most ${OBJECT_KEY_MAX_BYTES} bytes of UTF-8`);
}

/** The `delay` query parameter in ms (any letter case, as Restate reads it), or null without one. */
function delayOf(params: URLSearchParams): number | null {
  for (const [name, value] of params) {
    if (name.toLowerCase() !== "delay") continue;
    const ms = parseDelayMs(value);
    if (ms === undefined) throw new CairnError("INVOKE_BAD_DELAY", `bad delay ${JSON.stringify(value.slice(0, 64))}: use a duration such as 500ms, 10s, 1m or PT1S`);
    return ms;
  }
  return null;
}

/** The request headers the handler sees: the caller's, minus this hop's and `x-restate-*`, plus the ingress path. */
function handlerHeaders(headers: Headers, pathname: string): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (const [name, value] of headers) {
    if (DROPPED_HEADERS.has(name) || name.startsWith("x-restate-") || name.startsWith(":")) continue;
    out.push([name, value]);
  }
  out.push([INGRESS_PATH_HEADER, pathname]);
  return out;
}

/** The request body, refused with 413 as soon as it grows past `maxBytes` (also without content-length). */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = (n: number) => new CairnError("INVOKE_BODY_TOO_LARGE", `request body of ${n}${n > maxBytes ? "" : "+"} bytes exceeds ingress.max-body-bytes (${maxBytes})`, { limitBytes: maxBytes });
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(declared);
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge(total);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return body;
}
