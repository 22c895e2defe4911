// FabricClient: typed RPC calls to peers over a pool of HTTP/2 sessions, one channel per peer address,
// connected lazily. Every call has a deadline (requestTimeoutMs unless given) that covers queueing,
// connecting and the answer, and can be cancelled with an AbortSignal. close() releases everything.
import type { Static, TSchema } from "@sinclair/typebox";
import { CairnError } from "../observability/errors.ts";
import type { Counter, Histogram, Registry } from "../observability/metrics.ts";
import type { SenderIdentity } from "./fencing.ts";
import { ClientMetrics, OUTCOME_OK } from "./metrics.ts";
import { MAX_TIMER_MS, resolveFabricOptions, type FabricOptions } from "./options.ts";
import { fencingHeaders } from "./fencing.ts";
import { PeerChannel, type ChannelEnv, type PeerStatus } from "./peer.ts";
import { problemToError } from "./problem.ts";
import type { Reply } from "./router.ts";
import type { RpcDefinition } from "./rpc.ts";

export interface FabricClientConfig {
  /** This node as it presents itself to peers, read on every call (ids and fingerprint arrive late). */
  readonly identity: () => SenderIdentity;
  readonly registry: Registry;
  readonly options?: Partial<FabricOptions>;
  /** Uniform in [0, 1); reconnect jitter. Defaults to Math.random; tests pass a seeded one. */
  readonly random?: () => number;
}

export interface CallOptions {
  /** Budget for this call; defaults to requestTimeoutMs. */
  readonly deadlineMs?: number;
  /** Cancels the call (NET_DEADLINE_EXCEEDED, cause = the signal's reason). */
  readonly signal?: AbortSignal;
}

/** This node's own fabric server, as the loopback sees it (FabricServer.serveLocal). */
export interface LoopbackServer {
  serveLocal(path: string, header: (name: string) => string | undefined, body: Uint8Array, signal: AbortSignal | undefined): Promise<Reply> | null;
}

interface CallLabels {
  readonly ok: ReturnType<Counter<"service" | "method" | "outcome">["labels"]>;
  readonly duration: ReturnType<Histogram<"service" | "method">["labels"]>;
}

export class FabricClient {
  readonly options: FabricOptions;
  private readonly env: ChannelEnv;
  private readonly channels = new Map<string, PeerChannel>();
  private readonly labels = new WeakMap<RpcDefinition, CallLabels>();
  private closed = false;
  private loopback: { readonly address: string; readonly server: LoopbackServer } | null = null;

  constructor(config: FabricClientConfig) {
    this.options = resolveFabricOptions(config.options);
    this.env = {
      options: this.options,
      metrics: new ClientMetrics(config.registry),
      identity: config.identity,
      random: config.random ?? Math.random,
    };
  }

  /**
   * Calls `definition` on the peer at `peer` (`host:port`). Resolves with the validated response;
   * rejects with a CairnError: the peer's own error code, or NET_DEADLINE_EXCEEDED, NET_UNREACHABLE,
   * NET_OVERLOADED, NET_REQUEST_TOO_LARGE, NET_BAD_RESPONSE, NET_SHUTTING_DOWN, NET_REMOTE_ERROR.
   */
  call<Req extends TSchema, Res extends TSchema>(
    peer: string,
    definition: RpcDefinition<Req, Res>,
    request: Static<Req>,
    options: CallOptions = {},
  ): Promise<Static<Res>> {
    // Not `async`: one promise per call less on the hot path; failures before sending still reject.
    try {
      if (this.closed) throw new CairnError("NET_SHUTTING_DOWN", `the fabric client is closed; call to ${peer} not made`, { peer });
      const budgetMs = Math.min(options.deadlineMs ?? this.options.requestTimeoutMs, MAX_TIMER_MS);
      if (!(budgetMs > 0)) {
        throw new CairnError("NET_DEADLINE_EXCEEDED", `${definition.path} to ${peer}: the deadline passed before the call (${budgetMs} ms)`, { peer });
      }
      const body = definition.encodeRequest(request);
      if (body.byteLength > this.options.maxRequestBytes) {
        throw new CairnError("NET_REQUEST_TOO_LARGE", `request of ${definition.path} is ${body.byteLength} bytes, over net.max-request-bytes = ${this.options.maxRequestBytes}`, {
          peer,
          limitBytes: this.options.maxRequestBytes,
        });
      }
      const loopback = this.loopback;
      if (loopback !== null && peer === loopback.address) {
        const served = this.callSelf(loopback.server, peer, definition, body, budgetMs, options.signal);
        if (served !== null) return served as Promise<Static<Res>>;
      }
      return this.channel(peer).call(definition, body, budgetMs, options.signal, this.observe) as Promise<Static<Res>>;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Calls to `address` (this node's own advertised fabric address) are served by `server` in-process:
   * same fencing, deadline, errors and metrics, but no HTTP/2 session, stream or keep-alive to itself.
   */
  setLoopback(address: string, server: LoopbackServer): void {
    this.loopback = { address, server };
  }

  /** Connection state of a peer this client has called, or null. */
  peerStatus(peer: string): PeerStatus | null {
    return this.channels.get(peer)?.status() ?? null;
  }

  /** Drops a peer (e.g. it left the cluster): fails its calls with NET_SHUTTING_DOWN, closes its sessions. */
  async disconnect(peer: string): Promise<void> {
    const channel = this.channels.get(peer);
    if (channel === undefined) return;
    this.channels.delete(peer);
    await channel.close();
  }

  /** Fails every pending call with NET_SHUTTING_DOWN and releases every session and timer. */
  async close(): Promise<void> {
    this.closed = true;
    const channels = [...this.channels.values()];
    this.channels.clear();
    await Promise.all(channels.map((c) => c.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private channel(peer: string): PeerChannel {
    let channel = this.channels.get(peer);
    if (channel === undefined) {
      channel = new PeerChannel(peer, authorityOf(peer), this.env);
      this.channels.set(peer, channel);
    }
    return channel;
  }

  private callSelf(server: LoopbackServer, peer: string, definition: RpcDefinition, body: Uint8Array, budgetMs: number, signal: AbortSignal | undefined): Promise<unknown> | null {
    if (signal?.aborted === true) {
      throw new CairnError("NET_DEADLINE_EXCEEDED", `${definition.path} to ${peer}: cancelled by the caller`, { peer }, { cause: signal.reason });
    }
    const startedMs = performance.now();
    const headers = fencingHeaders(this.env.identity(), Math.ceil(budgetMs));
    const reply = server.serveLocal(definition.path, (name) => headers[name], body, signal);
    if (reply === null) return null;
    return reply.then((r) => {
      let value: unknown;
      try {
        if (r.status !== 200) throw problemToError(r.status, r.body, peer);
        if (r.body.byteLength > this.options.maxResponseBytes) {
          throw new CairnError("NET_BAD_RESPONSE", `response of ${definition.path} exceeds net.max-response-bytes = ${this.options.maxResponseBytes}`, { peer });
        }
        value = definition.decodeResponse(r.body);
      } catch (e) {
        const error = e instanceof CairnError ? e : new CairnError("NET_BAD_RESPONSE", String(e), { peer });
        this.observe(definition, error.code, (performance.now() - startedMs) / 1000);
        throw error;
      }
      this.observe(definition, OUTCOME_OK, (performance.now() - startedMs) / 1000);
      return value;
    });
  }

  private readonly observe = (definition: RpcDefinition, outcome: string, durationSeconds: number): void => {
    const m = this.env.metrics;
    let labels = this.labels.get(definition);
    if (labels === undefined) {
      labels = {
        ok: m.calls.labels(definition.service, definition.method, OUTCOME_OK),
        duration: m.callDurationSeconds.labels(definition.service, definition.method),
      };
      this.labels.set(definition, labels);
    }
    if (outcome === OUTCOME_OK) labels.ok.inc();
    else m.calls.labels(definition.service, definition.method, outcome).inc();
    labels.duration.observe(durationSeconds);
  };
}

/** `host:port` (or `http://host:port`) → the `http://host:port` authority node:http2 connects to. */
export function authorityOf(peer: string): string {
  let url: URL;
  try {
    url = new URL(peer.includes("://") ? peer : `http://${peer}`);
  } catch {
    throw new CairnError("NET_UNREACHABLE", `"${peer}" is not a peer address (expected host:port)`, { peer });
  }
  if (url.protocol !== "http:" || url.port === "" || url.pathname !== "/") {
    throw new CairnError("NET_UNREACHABLE", `"${peer}" is not a peer address (expected host:port)`, { peer });
  }
  return `http://${url.host}`;
}
