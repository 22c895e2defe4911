// Fabric server on node:http2 (h2c, prior knowledge). Under Bun a server stream can emit 'end' after
// its peer reset it, and respond() on a destroyed stream throws out of an event handler and kills the
// process: every write below checks the stream first and sits in try/catch, and every stream and
// session has an 'error' listener. Bodies are counted as they arrive; past the limit reading stops,
// 413 is sent and the stream is closed with NO_ERROR (RFC 9113 §8.1: "stop sending, no error").
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { invariant } from "../observability/errors.ts";
import { OUTCOME_CANCELLED, type Reply } from "./router.ts";
import { bindError, type BoundAddress, type ServerTransport, type TransportConfig } from "./transport.ts";

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

export class NodeHttp2Transport implements ServerTransport {
  readonly kind = "node" as const;
  private server: http2.Http2Server | null = null;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly config: TransportConfig) {}

  async listen(host: string, port: number): Promise<BoundAddress> {
    invariant(this.server === null, "NodeHttp2Transport.listen called twice");
    const { options } = this.config;
    const server = http2.createServer({
      settings: { initialWindowSize: options.windowSizeBytes, enablePush: false },
      maxSessionMemory: options.maxSessionMemoryMb,
    });
    server.on("session", (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.on("error", () => {}); // 'close' follows; streams fail on their own
      session.on("close", () => this.sessions.delete(session));
      try {
        session.setLocalWindowSize(options.windowSizeBytes);
      } catch {
        // the session died before it started; nothing to tune
      }
    });
    server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      try {
        this.onStream(stream, headers);
      } catch (e) {
        this.config.logger.error({ err: e }, "fabric stream handler threw");
        safeClose(stream, NGHTTP2_CANCEL);
      }
    });
    server.on("sessionError", () => {});
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: unknown): void => reject(bindError(e, host, port));
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        server.on("error", (e) => this.config.logger.error({ err: e }, "fabric server error"));
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  async close(drainTimeoutMs: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // GOAWAY to every client: in-flight streams complete, new ones go elsewhere or reconnect later.
    for (const session of this.sessions) {
      try {
        session.close();
      } catch {
        session.destroy();
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), drainTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      for (const session of this.sessions) session.destroy();
      await closed;
    }
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => {}); // a reset stream must never become an uncaught 'error'
    const exchange = this.config.router.begin(String(headers[":method"] ?? ""), String(headers[":path"] ?? ""), (name) => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    });
    let replied = false;
    const reply = (r: Reply, stopReading: boolean): void => {
      if (replied) return;
      replied = true;
      exchange.finish(send(stream, r, stopReading) ? r.outcome : OUTCOME_CANCELLED);
    };
    stream.on("close", () => {
      exchange.cancel();
      if (!replied) {
        replied = true;
        exchange.finish(OUTCOME_CANCELLED);
      }
    });
    if (exchange.early !== null) {
      reply(exchange.early, true);
      return;
    }
    const limit = exchange.maxBodyBytes;
    const declared = Number(headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      reply(exchange.tooLarge(declared), true);
      return;
    }
    const chunks: Buffer[] = [];
    let receivedBytes = 0;
    const onData = (chunk: Buffer): void => {
      receivedBytes += chunk.length;
      if (receivedBytes > limit) {
        stream.off("data", onData);
        stream.off("end", onEnd);
        chunks.length = 0;
        reply(exchange.tooLarge(receivedBytes), true);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (replied || stream.destroyed) return; // Bun may emit 'end' after a reset
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      chunks.length = 0;
      void exchange.run(body).then((r) => reply(r, false));
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
  }
}

/** Writes a reply if the stream can still take it; true when written. Never throws. */
function send(stream: http2.ServerHttp2Stream, r: Reply, stopReading: boolean): boolean {
  if (stream.destroyed || stream.closed) return false;
  try {
    stream.respond({ ":status": r.status, "content-type": r.contentType, "content-length": r.body.byteLength });
    stream.end(r.body);
    if (stopReading) safeClose(stream, NGHTTP2_NO_ERROR);
    return true;
  } catch {
    return false;
  }
}

function safeClose(stream: http2.ServerHttp2Stream, code: number): void {
  try {
    if (!stream.destroyed && !stream.closed) stream.close(code);
  } catch {
    // already gone
  }
}
