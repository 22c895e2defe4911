// FabricServer: the peer-facing HTTP/2 cleartext endpoint of a node. Routes `POST /rpc/<service>/<method>`
// to registered handlers after fencing (cluster, fingerprint, generation) and answers
// `GET /fabric/health` to anyone. The HTTP/2 implementation is a transport behind one interface:
// Bun.serve (default: less server CPU per call than node:http2 under Bun, and far more capacity in
// h2load measurements; also answers HTTP/1.1 on the same port) or node:http2 (fallback, because Bun's
// HTTP/2 server is marked experimental). Both pass the same test suite.
import type { TSchema } from "@sinclair/typebox";
import { invariant } from "../observability/errors.ts";
import type { Registry } from "../observability/metrics.ts";
import type { ClusterIdentity } from "./fencing.ts";
import { ServerMetrics } from "./metrics.ts";
import { resolveFabricOptions, type FabricOptions } from "./options.ts";
import { consoleLogger, OUTCOME_CANCELLED, Router, type FabricLogger, type Reply, type RpcHandler } from "./router.ts";
import type { RpcDefinition } from "./rpc.ts";
import type { BoundAddress, ServerTransport } from "./transport.ts";
import { BunServeTransport } from "./transport-bun.ts";
import { NodeHttp2Transport } from "./transport-node.ts";

export interface FabricServerConfig {
  /** Interface to bind; peers reach the node here. */
  readonly host: string;
  /** 0 picks a free port; read the real one from `address` after start(). */
  readonly port: number;
  /** This node's cluster, read on every request (it changes when the node is provisioned). */
  readonly identity: () => ClusterIdentity;
  readonly registry: Registry;
  readonly options?: Partial<FabricOptions>;
  readonly logger?: FabricLogger;
  /** Called when a node is first seen, or seen with a newer generation (it restarted). */
  readonly onNewerGeneration?: (node: string, generation: number, previous: number | undefined) => void;
}

type State = "new" | "starting" | "running" | "stopped";

export class FabricServer {
  readonly options: FabricOptions;
  private readonly router: Router;
  private readonly transport: ServerTransport;
  private state: State = "new";
  private bound: BoundAddress | null = null;
  private starting: Promise<BoundAddress> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly config: FabricServerConfig) {
    this.options = resolveFabricOptions(config.options);
    const logger = config.logger ?? consoleLogger;
    this.router = new Router({
      identity: config.identity,
      metrics: new ServerMetrics(config.registry),
      logger,
      maxRequestBytes: this.options.maxRequestBytes,
      onNewerGeneration: config.onNewerGeneration,
    });
    const transportConfig = { router: this.router, options: this.options, logger };
    this.transport = this.options.serverTransport === "node" ? new NodeHttp2Transport(transportConfig) : new BunServeTransport(transportConfig);
  }

  /** Adds a handler; allowed before or after start(). Registering a method twice is a bug. */
  register<Req extends TSchema, Res extends TSchema>(definition: RpcDefinition<Req, Res>, handler: RpcHandler<Req, Res>): this {
    this.router.register(definition, handler);
    return this;
  }

  async start(): Promise<void> {
    invariant(this.state === "new", () => `FabricServer.start in state ${this.state}`);
    this.state = "starting";
    this.starting = this.transport.listen(this.config.host, this.config.port);
    try {
      this.bound = await this.starting;
    } catch (e) {
      this.state = "stopped";
      throw e;
    }
    if (this.state === "starting") this.state = "running";
  }

  /** The bound address (with the real port when configured as 0). */
  get address(): BoundAddress {
    invariant(this.bound !== null, "FabricServer.address before start()");
    return this.bound;
  }

  /** `host:port` as FabricClient.call takes it. */
  get url(): string {
    const { host, port } = this.address;
    return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  }

  get transportKind(): ServerTransport["kind"] {
    return this.transport.kind;
  }

  /** Highest generation this server has seen from `node`, if any. */
  highestGeneration(node: string): number | undefined {
    return this.router.highestGeneration(node);
  }

  /**
   * Serves a call this node makes to itself (FabricClient's loopback): the same routing, fencing,
   * deadline and metrics as a request from a peer, without HTTP/2. Null while the server is not
   * running: the caller then goes through the network and fails the way a peer's call would.
   */
  serveLocal(path: string, header: (name: string) => string | undefined, body: Uint8Array, signal: AbortSignal | undefined): Promise<Reply> | null {
    if (this.state !== "running") return null;
    const exchange = this.router.begin("POST", path, header);
    if (exchange.early !== null) {
      exchange.finish(exchange.early.outcome);
      return Promise.resolve(exchange.early);
    }
    const onAbort = (): void => exchange.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    return exchange.run(body).then((reply) => {
      signal?.removeEventListener("abort", onAbort);
      exchange.finish(signal?.aborted === true ? OUTCOME_CANCELLED : reply.outcome);
      return reply;
    });
  }

  /** GOAWAY to every peer, let in-flight requests finish (up to drainTimeoutMs), release the port. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const wasNew = this.state === "new";
      this.state = "stopped";
      if (wasNew) return;
      await this.starting?.catch(() => {}); // a stop during start waits for the port, then releases it
      await this.transport.close(this.options.drainTimeoutMs);
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
