// An HTTP/2 forwarding proxy that records what peers send a node: put it in front of a node's fabric
// port and advertise it as the node's address, and every RPC the node receives passes through here
// with its headers and body bytes, ready to be replayed later (twice, out of order, after the term
// moved on). Loopback only; close() releases the listener and both sides' sessions.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

export interface CapturedRequest {
  readonly path: string;
  /** Request headers without HTTP/2 pseudo-headers. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly atMs: number;
}

export class H2Recorder {
  readonly captured: CapturedRequest[] = [];
  /** Record only requests whose path passes this test. */
  recording: (path: string) => boolean = () => true;
  private server: http2.Http2Server | null = null;
  private upstream: http2.ClientHttp2Session | null = null;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly target: string) {}

  async listen(host: string): Promise<number> {
    const server = http2.createServer();
    server.on("session", (s) => {
      this.sessions.add(s);
      s.on("close", () => this.sessions.delete(s));
      s.on("error", () => {});
    });
    server.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("error", () => {});
      stream.on("end", () => {
        const body = Buffer.concat(chunks);
        const path = String(headers[":path"] ?? "");
        const plain: Record<string, string> = {};
        for (const [k, v] of Object.entries(headers)) if (!k.startsWith(":") && typeof v === "string") plain[k] = v;
        if (this.recording(path)) this.captured.push({ path, headers: plain, body, atMs: Date.now() });
        this.forward(String(headers[":method"] ?? "POST"), path, plain, body, stream as http2.ServerHttp2Stream);
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    return (server.address() as AddressInfo).port;
  }

  private session(): http2.ClientHttp2Session {
    if (this.upstream === null || this.upstream.closed || this.upstream.destroyed) {
      const s = http2.connect(`http://${this.target}`);
      s.on("error", () => {});
      this.upstream = s;
    }
    return this.upstream;
  }

  private forward(method: string, path: string, headers: Record<string, string>, body: Buffer, downstream: http2.ServerHttp2Stream): void {
    let req: http2.ClientHttp2Stream;
    try {
      req = this.session().request({ ":method": method, ":path": path, ...headers });
    } catch {
      if (!downstream.destroyed) downstream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    req.on("response", (h) => {
      if (downstream.destroyed) return;
      const out: Record<string, string | number> = { ":status": Number(h[":status"] ?? 502) };
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && typeof v === "string") out[k] = v;
      try {
        downstream.respond(out);
      } catch {
        // the caller went away
      }
    });
    req.on("data", (d: Buffer) => {
      if (!downstream.destroyed) downstream.write(d);
    });
    req.on("end", () => {
      if (!downstream.destroyed) downstream.end();
    });
    req.on("error", () => {
      if (!downstream.destroyed) downstream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    downstream.on("close", () => {
      if (!req.destroyed) req.close(http2.constants.NGHTTP2_CANCEL);
    });
    req.end(body);
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    this.upstream?.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
