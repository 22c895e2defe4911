// Fabric server on Bun.serve with `http2: true` (h2c by prior knowledge, HTTP/1.1 on the same port).
// `idleTimeout: 0` is required: the default 10 s silently ends quiet HTTP/2 responses with an empty
// body. Bodies with a declared length are checked before reading; bodies without one are streamed and
// counted, and reading is cancelled once past the limit. The caller going away aborts `req.signal`.
import type { Server } from "bun";
import { CairnError, invariant } from "../observability/errors.ts";
import { OUTCOME_CANCELLED, errorReply, type Exchange, type Reply } from "./router.ts";
import { bindError, type BoundAddress, type ServerTransport, type TransportConfig } from "./transport.ts";

export class BunServeTransport implements ServerTransport {
  readonly kind = "bun" as const;
  private server: Server<undefined> | null = null;

  constructor(private readonly config: TransportConfig) {}

  async listen(host: string, port: number): Promise<BoundAddress> {
    invariant(this.server === null, "BunServeTransport.listen called twice");
    try {
      this.server = Bun.serve({
        hostname: host,
        port,
        http2: true,
        idleTimeout: 0,
        development: false,
        // Our limit is enforced in readBody with a problem body; Bun's own would answer an empty 413
        // before we see the request, so it is set out of the way.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        fetch: (req) => this.onRequest(req),
        error: (e) => toResponse(errorReply(e, this.config.logger, "")),
      });
    } catch (e) {
      throw bindError(e, host, port);
    }
    const port_ = this.server.port;
    invariant(port_ !== undefined, "Bun.serve bound no TCP port");
    return { host: this.server.hostname ?? host, port: port_ };
  }

  async close(drainTimeoutMs: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    // stop(false) sends GOAWAY and resolves once in-flight requests are answered.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      server.stop(false).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), drainTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) await server.stop(true);
  }

  private async onRequest(req: Request): Promise<Response> {
    const exchange = this.config.router.begin(req.method, pathOf(req.url), (name) => req.headers.get(name) ?? undefined);
    if (exchange.early !== null) return this.respond(exchange, exchange.early, req);
    const onAbort = (): void => exchange.cancel();
    req.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const body = await readBody(req, exchange);
      if (!(body instanceof Uint8Array)) return this.respond(exchange, body, req);
      return this.respond(exchange, await exchange.run(body), req);
    } catch (e) {
      // Reading the body failed: the caller reset the stream or the connection dropped.
      exchange.finish(OUTCOME_CANCELLED);
      return toResponse(errorReply(new CairnError("NET_BAD_REQUEST", "the request body could not be read", {}, { cause: e }), this.config.logger, ""));
    } finally {
      req.signal.removeEventListener("abort", onAbort);
    }
  }

  private respond(exchange: Exchange, reply: Reply, req: Request): Response {
    exchange.finish(req.signal.aborted ? OUTCOME_CANCELLED : reply.outcome);
    return toResponse(reply);
  }
}

/** The body, or the reply refusing it. */
async function readBody(req: Request, exchange: Exchange): Promise<Uint8Array | Reply> {
  const limit = exchange.maxBodyBytes;
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    const declaredBytes = Number(declared);
    if (declaredBytes > limit) {
      void req.body?.cancel().catch(() => {});
      return exchange.tooLarge(declaredBytes);
    }
    const body = new Uint8Array(await req.arrayBuffer());
    return body.byteLength > limit ? exchange.tooLarge(body.byteLength) : body;
  }
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let receivedBytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    receivedBytes += value.byteLength;
    if (receivedBytes > limit) {
      void reader.cancel().catch(() => {});
      return exchange.tooLarge(receivedBytes);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

function toResponse(reply: Reply): Response {
  return new Response(reply.body, { status: reply.status, headers: { "content-type": reply.contentType } });
}

/** Path of an absolute request URL without building a URL object (hot path); the query is ignored. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return query === -1 ? url.slice(start) : url.slice(start, query);
}
