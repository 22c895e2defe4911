// The transport-independent half of the fabric server: routing, fencing, body decoding, handler
// invocation under a deadline, error bodies and server metrics. A transport (transport-bun.ts,
// transport-node.ts) only moves bytes: it asks `begin` what to do with a request, feeds the body to
// the exchange and writes the Reply. Invariants: every exchange is finished exactly once (metrics),
// a handler never outlives its deadline signal, and nothing a peer sends can throw out of here.
import type { Static, TSchema } from "@sinclair/typebox";
import { CairnError, InvariantViolation, invariant } from "../observability/errors.ts";
import {
  checkCluster,
  GenerationFence,
  parseFencingHeaders,
  type ClusterIdentity,
  type FencingHeaders,
  type PeerRef,
} from "./fencing.ts";
import { OUTCOME_OK, type ServerMetrics } from "./metrics.ts";
import { MAX_TIMER_MS } from "./options.ts";
import type { RpcDefinition } from "./rpc.ts";

export const FRAME_CONTENT_TYPE = "application/x-cairn-frame";
export const PROBLEM_CONTENT_TYPE = "application/problem+json";
export const HEALTH_PATH = "/fabric/health";
const RPC_PREFIX = "/rpc/";
/** Outcome label of a request whose caller went away before the answer was written. */
export const OUTCOME_CANCELLED = "cancelled";

/** What a handler learns about the call besides the request. */
export interface RpcContext {
  readonly from: PeerRef;
  /** Aborts when the caller's deadline passes, the caller cancels, or the connection drops. */
  readonly deadline: AbortSignal;
}

export type RpcHandler<Req extends TSchema, Res extends TSchema> = (request: Static<Req>, context: RpcContext) => Promise<Static<Res>> | Static<Res>;

/** Where the fabric reports what the caller cannot be told (handler bugs, transport oddities). */
export interface FabricLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const consoleLogger: FabricLogger = {
  warn: (fields, message) => console.warn(`[fabric] ${message}`, fields),
  error: (fields, message) => console.error(`[fabric] ${message}`, fields),
};

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: Uint8Array;
  /** Metrics label: "ok" or the error code. */
  readonly outcome: string;
}

interface Route {
  readonly definition: RpcDefinition;
  readonly handler: RpcHandler<TSchema, TSchema>;
}

export interface RouterConfig {
  readonly identity: () => ClusterIdentity;
  readonly metrics: ServerMetrics;
  readonly logger: FabricLogger;
  readonly maxRequestBytes: number;
  readonly onNewerGeneration: ((node: string, generation: number, previous: number | undefined) => void) | undefined;
}

const textEncoder = new TextEncoder();

export class Router {
  private readonly routes = new Map<string, Route>();
  private readonly fence = new GenerationFence();

  constructor(private readonly config: RouterConfig) {}

  register<Req extends TSchema, Res extends TSchema>(definition: RpcDefinition<Req, Res>, handler: RpcHandler<Req, Res>): void {
    invariant(!this.routes.has(definition.path), () => `RPC ${definition.path} is registered twice`);
    this.routes.set(definition.path, { definition, handler: handler as unknown as RpcHandler<TSchema, TSchema> });
  }

  highestGeneration(node: string): number | undefined {
    return this.fence.highestGeneration(node);
  }

  /** Starts an exchange from the request line and headers; decides before any body byte is read. */
  begin(method: string, path: string, header: (name: string) => string | undefined): Exchange {
    const exchange = new Exchange(this.config, this.config.maxRequestBytes);
    try {
      if (path === HEALTH_PATH && (method === "GET" || method === "HEAD")) {
        const identity = this.config.identity();
        exchange.early = jsonReply(200, { status: "ok", clusterName: identity.clusterName, provisioned: identity.fingerprint !== null }, OUTCOME_OK);
        exchange.label("fabric", "health");
        return exchange;
      }
      const route = this.routes.get(path);
      if (route !== undefined) exchange.label(route.definition.service, route.definition.method);
      if (!path.startsWith(RPC_PREFIX) || method !== "POST") {
        throw new CairnError("NET_UNKNOWN_METHOD", `no fabric endpoint ${method} ${path}`);
      }
      // Fencing first: a peer of another cluster learns nothing, not even which methods exist.
      const fencing = parseFencingHeaders(header);
      checkCluster(this.config.identity(), fencing);
      const { newer, previous } = this.fence.admit(fencing.from);
      if (newer && fencing.from.node !== null) this.config.onNewerGeneration?.(fencing.from.node, fencing.from.generation, previous);
      if (route === undefined) throw new CairnError("NET_UNKNOWN_METHOD", `this node has no RPC ${path}`, { path });
      exchange.accept(route, fencing);
    } catch (e) {
      exchange.early = errorReply(e, this.config.logger, path);
    }
    return exchange;
  }
}

/** One request: created by Router.begin, driven by the transport, finished exactly once. */
export class Exchange {
  /** Set when the answer is known without reading the body (health, refusals). */
  early: Reply | null = null;
  private route: Route | null = null;
  private fencing: FencingHeaders | null = null;
  private service = "unknown";
  private method = "unknown";
  private readonly startedMs = performance.now();
  private finished = false;
  /** reading → (cancelled →) running → done; `interrupt` aborts the handler while running. */
  private phase: "reading" | "cancelled" | "running" | "done" = "reading";
  private interrupt: ((reason: CairnError) => void) | null = null;

  constructor(
    private readonly config: RouterConfig,
    /** Transports stop reading and answer `tooLarge()` once a body grows past this. */
    readonly maxBodyBytes: number,
  ) {
    config.metrics.inFlight.inc();
  }

  label(service: string, method: string): void {
    this.service = service;
    this.method = method;
  }

  accept(route: Route, fencing: FencingHeaders): void {
    this.route = route;
    this.fencing = fencing;
  }

  tooLarge(receivedBytes: number): Reply {
    return errorReply(
      new CairnError("NET_REQUEST_TOO_LARGE", `request body of ${receivedBytes}+ bytes exceeds net.max-request-bytes = ${this.maxBodyBytes}`, {
        limitBytes: this.maxBodyBytes,
      }),
      this.config.logger,
      "",
    );
  }

  /** The transport saw the caller go away (stream reset, connection lost). */
  cancel(): void {
    if (this.phase === "reading") this.phase = "cancelled";
    else if (this.phase === "running") this.interrupt?.(new CairnError("NET_DEADLINE_EXCEEDED", "the caller cancelled the call or its connection dropped"));
  }

  /** Decodes the body, runs the handler under the caller's deadline, encodes the answer. Never throws. */
  async run(body: Uint8Array): Promise<Reply> {
    const route = this.route;
    const fencing = this.fencing;
    invariant(route !== null && fencing !== null && this.early === null, "Exchange.run without an accepted route");
    const definition = route.definition;
    const cancelled = this.phase === "cancelled";
    this.phase = "running";
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const request = definition.decodeRequest(body);
      const controller = new AbortController();
      const context: RpcContext = { from: fencing.from, deadline: controller.signal };
      const response = await new Promise<unknown>((resolve, reject) => {
        this.interrupt = (reason) => {
          controller.abort(reason);
          reject(reason);
        };
        if (cancelled) {
          this.cancel();
          return;
        }
        timer = setTimeout(() => {
          this.interrupt?.(new CairnError("NET_DEADLINE_EXCEEDED", `${definition.path} did not answer within the caller's ${fencing.deadlineMs} ms`));
        }, Math.min(fencing.deadlineMs, MAX_TIMER_MS));
        // After an interruption the handler may go on; its late result or failure is dropped on purpose.
        Promise.resolve()
          .then(() => route.handler(request, context))
          .then(resolve, reject);
      });
      return { status: 200, contentType: FRAME_CONTENT_TYPE, body: definition.encodeResponse(response), outcome: OUTCOME_OK };
    } catch (e) {
      return errorReply(e, this.config.logger, definition.path);
    } finally {
      clearTimeout(timer);
      this.interrupt = null;
      this.phase = "done";
    }
  }

  /** Records the exchange once; `outcome` is the reply's, or OUTCOME_CANCELLED if it was not delivered. */
  finish(outcome: string): void {
    if (this.finished) return;
    this.finished = true;
    const m = this.config.metrics;
    m.inFlight.dec();
    m.record(this.service, this.method, outcome, (performance.now() - this.startedMs) / 1000);
  }
}

/** Turns a failure into a problem+json reply. Non-CairnErrors are handler bugs: logged, reported as
 *  NET_HANDLER_FAILED, and invariant violations are rethrown outside the request to crash loudly. */
export function errorReply(e: unknown, logger: FabricLogger, path: string): Reply {
  let error: CairnError;
  if (e instanceof CairnError) {
    error = e;
  } else {
    const message = e instanceof Error ? e.message : String(e);
    logger.error({ path, err: e }, `RPC handler failed: ${message}`);
    error = new CairnError("NET_HANDLER_FAILED", `${path} failed: ${message}`, { path });
    if (e instanceof InvariantViolation) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }
  return jsonReply(error.status, error.toProblem(), error.code, PROBLEM_CONTENT_TYPE);
}

function jsonReply(status: number, body: unknown, outcome: string, contentType = "application/json"): Reply {
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch {
    // Details a handler attached may not serialise (bigint, cycles): send the problem without them.
    const { type, title, code, detail, hint } = body as Record<string, unknown>;
    text = JSON.stringify({ type, title, status, code, detail, hint });
  }
  return { status, contentType, body: textEncoder.encode(text), outcome };
}
