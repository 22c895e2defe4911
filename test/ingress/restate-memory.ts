// An in-memory InvocationClient and SchemaSource for the ingress tests: the thing under test is the
// HTTP mapping of Restate's ingress API, so invocations here run as plain JS functions in this process,
// with the semantics the real invoker keeps (idempotency keys dedupe and keep output, a workflow runs
// once per key, sends may be delayed, a call's wait ends at its deadline with `pending`, awakeables).
import { CairnError, type ErrorName } from "../../src/observability/errors.ts";
import { formatAwakeableId, formatInvocationId, parseInvocationId, randomInvocationId } from "../../src/worker/invoker/ids.ts";
import type {
  AttachTarget,
  HandlerSchema,
  InvocationClient,
  InvocationResult,
  InvokeAnswer,
  InvokeRequest,
  OutputAnswer,
  SchemaRegistry,
  SchemaSource,
  ServiceSchema,
  ServiceType,
} from "../../src/worker/invoker/model.ts";

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);
export const json = (v: unknown) => enc(JSON.stringify(v));

export function handler(name: string, opts: Partial<HandlerSchema> = {}): HandlerSchema {
  return {
    name,
    ty: null,
    inputRequired: false,
    inputContentType: "application/json",
    outputContentType: "application/json",
    setContentTypeIfEmpty: false,
    ...opts,
  };
}

export function service(name: string, ty: ServiceType, handlers: HandlerSchema[], opts: Partial<ServiceSchema> = {}): ServiceSchema {
  return { name, ty, handlers, deploymentId: "dp_test", revision: 1, public: true, ...opts };
}

/** A registry whose services can change; counts how often it was asked to refresh. */
export class MemorySchema implements SchemaSource {
  refreshes = 0;
  private registry: SchemaRegistry;
  /** What the next refresh reads (a registration made elsewhere, not seen by the cache yet). */
  private pending: SchemaRegistry | undefined;

  constructor(services: ServiceSchema[]) {
    this.registry = { deployments: [], services };
  }

  /** Registers `svc` so that only a refresh sees it (the cached registry stays as it was). */
  registerLater(svc: ServiceSchema): void {
    this.pending = { deployments: [], services: [...(this.pending ?? this.registry).services, svc] };
  }

  current(): SchemaRegistry {
    return this.pending ?? this.registry;
  }

  async get(refresh = false): Promise<SchemaRegistry> {
    if (refresh) {
      this.refreshes++;
      if (this.pending !== undefined) {
        this.registry = this.pending;
        this.pending = undefined;
      }
    }
    return this.registry;
  }
}

export interface HandlerCall {
  readonly invocationId: string;
  readonly key: string | null;
  readonly input: Uint8Array;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Makes an awakeable the handler can await (`memory.awakeable(id)`), like ctx.awakeable(). */
  awakeable(): { id: string; promise: Promise<InvocationResult> };
}

export type HandlerFn = (call: HandlerCall) => Promise<InvocationResult> | InvocationResult;

interface Invocation {
  readonly id: string;
  readonly request: InvokeRequest;
  readonly keepsOutput: boolean;
  readonly done: Promise<InvocationResult>;
  result: InvocationResult | undefined;
}

const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;

export class MemoryInvocations implements InvocationClient {
  readonly requests: InvokeRequest[] = [];
  readonly calls = { invoke: 0, attach: 0, output: 0 };
  readonly resolved: Array<{ id: string; result: InvocationResult }> = [];
  /** The next calls of any method throw these, in order (e.g. PARTITION_UNAVAILABLE). */
  readonly failNext: Array<ErrorName | Error> = [];
  private readonly invocations = new Map<string, Invocation>();
  private readonly byIdempotency = new Map<string, string>();
  private readonly byWorkflow = new Map<string, string>();
  private readonly awakeables = new Map<string, (r: InvocationResult) => void>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    private readonly schema: MemorySchema,
    private readonly handlers: Record<string, HandlerFn>,
  ) {}

  async invoke(req: InvokeRequest, deadlineMs: number): Promise<InvokeAnswer> {
    this.calls.invoke++;
    this.maybeFail();
    this.requests.push(req);
    const { service, handler, key } = req.target;
    const idemKey = req.idempotencyKey === null ? null : `${service}/${key ?? ""}/${handler}/${req.idempotencyKey}`;
    const isRun = this.schema.current().services.find((s) => s.name === service)?.handlers.find((h) => h.name === handler)?.ty === "workflow";
    const wfKey = isRun ? `${service}/${key}` : null;
    const earlierId = (idemKey !== null ? this.byIdempotency.get(idemKey) : undefined) ?? (wfKey !== null ? this.byWorkflow.get(wfKey) : undefined);
    if (earlierId !== undefined) {
      if (req.mode === "send") return { status: "previously-accepted", invocationId: earlierId, executionTimeMs: null };
      if (wfKey !== null) return { status: "workflow-already-invoked", invocationId: earlierId };
      return this.waitAnswer(this.invocations.get(earlierId)!, deadlineMs);
    }
    const id = formatInvocationId(randomInvocationId(0n));
    const fn = this.handlers[`${service}/${handler}`];
    if (fn === undefined) throw new Error(`test bug: no handler ${service}/${handler}`);
    const { promise, resolve } = Promise.withResolvers<InvocationResult>();
    const inv: Invocation = { id, request: req, keepsOutput: idemKey !== null || wfKey !== null, done: promise, result: undefined };
    this.invocations.set(id, inv);
    if (idemKey !== null) this.byIdempotency.set(idemKey, id);
    if (wfKey !== null) this.byWorkflow.set(wfKey, id);
    const run = async () => {
      const call: HandlerCall = {
        invocationId: id,
        key,
        input: req.input,
        headers: req.headers,
        awakeable: () => {
          const awakeableId = formatAwakeableId(parseInvocationId(id)!, this.awakeables.size + 1);
          const { promise: p, resolve: r } = Promise.withResolvers<InvocationResult>();
          this.awakeables.set(awakeableId, r);
          return { id: awakeableId, promise: p };
        },
      };
      inv.result = await fn(call);
      resolve(inv.result);
    };
    const delayMs = req.delayMs ?? 0;
    if (delayMs > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        void run();
      }, delayMs);
      this.timers.add(t);
    } else {
      void run();
    }
    if (req.mode === "send") return { status: "accepted", invocationId: id, executionTimeMs: req.delayMs === null ? null : Date.now() + delayMs };
    return this.waitAnswer(inv, deadlineMs);
  }

  async attach(target: AttachTarget, deadlineMs: number): Promise<OutputAnswer> {
    this.calls.attach++;
    this.maybeFail();
    return this.outputOf(target, deadlineMs);
  }

  async output(target: AttachTarget, _deadlineMs: number): Promise<OutputAnswer> {
    this.calls.output++;
    this.maybeFail();
    return this.outputOf(target, 0);
  }

  async resolveAwakeable(awakeableId: string, result: InvocationResult, _deadlineMs: number): Promise<void> {
    this.maybeFail();
    this.resolved.push({ id: awakeableId, result });
    this.awakeables.get(awakeableId)?.(result);
  }

  /** The awakeable ids handlers created so far, in order. */
  awakeableIds(): string[] {
    return [...this.awakeables.keys()];
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
  }

  private maybeFail(): void {
    const f = this.failNext.shift();
    if (f === undefined) return;
    throw typeof f === "string" ? new CairnError(f, `injected ${f}`, { retryAfterSeconds: 1 }) : f;
  }

  private async waitAnswer(inv: Invocation, deadlineMs: number): Promise<InvokeAnswer> {
    const result = await this.until(inv, deadlineMs);
    if (result === undefined) return { status: "pending", invocationId: inv.id };
    const idempotencyExpiresAtMs = inv.request.idempotencyKey === null ? null : Date.now() + IDEMPOTENCY_RETENTION_MS;
    return { status: "completed", invocationId: inv.id, result, idempotencyExpiresAtMs };
  }

  private async outputOf(target: AttachTarget, deadlineMs: number): Promise<OutputAnswer> {
    let id: string | undefined;
    if (target.kind === "id") id = target.invocationId;
    else if (target.kind === "workflow") id = this.byWorkflow.get(`${target.service}/${target.key}`);
    else id = this.byIdempotency.get(`${target.service}/${target.key ?? ""}/${target.handler}/${target.idempotencyKey}`);
    const inv = id === undefined ? undefined : this.invocations.get(id);
    if (inv === undefined) return { status: "not-found" };
    // Any invocation can be attached to while it runs (how a call goes on waiting after `pending`);
    // only one with an idempotency key or a workflow run keeps its output once completed.
    if (!inv.keepsOutput && (inv.result !== undefined || deadlineMs === 0)) return { status: "unsupported", invocationId: inv.id };
    const result = await this.until(inv, deadlineMs);
    return result === undefined ? { status: "not-ready", invocationId: inv.id } : { status: "completed", invocationId: inv.id, result };
  }

  /** The invocation's result once it has one, or undefined when `deadlineMs` passes first. */
  private async until(inv: Invocation, deadlineMs: number): Promise<InvocationResult | undefined> {
    if (inv.result !== undefined) return inv.result;
    const waitMs = deadlineMs - Date.now();
    if (waitMs <= 0) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), waitMs)));
    try {
      return await Promise.race([inv.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
