// Shared tools of the bad-input tests: raw HTTP/1.1 over a socket (for bytes fetch will not send),
// raw HTTP/2 requests to the fabric with hand-made headers and bodies, the list of admin operations
// from openapi/cairn.json and of peer RPCs from every src/**/rpc.ts, and the checks that follow every
// case: the node is healthy, a normal write works, and nothing else changed.
import { expect } from "bun:test";
import http2 from "node:http2";
import net from "node:net";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

// ---- raw HTTP/1.1 -----------------------------------------------------------------------------

export interface RawResponse {
  /** 0 when the server closed or reset the connection without an answer. */
  readonly status: number;
  readonly headers: string;
  readonly body: string;
  /** How the exchange ended without an answer, if it did. */
  readonly closedWith?: string;
}

/** Sends `bytes` on a fresh connection and reads one response (or the close). */
export async function rawHttp(host: string, port: number, bytes: Uint8Array | string, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolvePromise) => {
    const socket = net.connect({ host, port });
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (closedWith?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(parseRaw(data, closedWith));
    };
    const timer = setTimeout(() => finish("client-timeout"), timeoutMs);
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const parsed = parseRaw(data);
      if (parsed.status !== 0 && complete(data)) finish();
    });
    socket.on("error", (e) => finish(`error:${(e as NodeJS.ErrnoException).code ?? e.message}`));
    socket.on("close", () => finish("closed"));
  });
}

function complete(data: Buffer): boolean {
  const text = data.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const head = text.slice(0, end);
  const m = /\r\ncontent-length:\s*([0-9]+)/i.exec(head);
  if (m) return data.length >= end + 4 + Number(m[1]);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return text.endsWith("0\r\n\r\n");
  return true;
}

function parseRaw(data: Buffer, closedWith?: string): RawResponse {
  const text = data.toString("utf8");
  const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(text);
  if (!m) return { status: 0, headers: "", body: text, ...(closedWith ? { closedWith } : {}) };
  const end = text.indexOf("\r\n\r\n");
  return { status: Number(m[1]), headers: end >= 0 ? text.slice(0, end) : text, body: end >= 0 ? text.slice(end + 4) : "", ...(closedWith ? { closedWith } : {}) };
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url.includes("://") ? url : `http://${url}`);
  return { host: u.hostname, port: Number(u.port) };
}

// ---- raw HTTP/2 to the fabric ------------------------------------------------------------------

export interface H2Response {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly error?: string;
}

/** One HTTP/2 request on its own session: any headers, any body bytes. */
export async function h2Request(address: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array, timeoutMs = 10_000): Promise<H2Response> {
  const { host, port } = hostPort(address);
  const session = http2.connect(`http://${host}:${port}`);
  try {
    return await new Promise<H2Response>((resolvePromise) => {
      let settled = false;
      const settle = (r: H2Response) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolvePromise(r);
      };
      const timer = setTimeout(() => settle({ status: 0, headers: {}, body: Buffer.alloc(0), error: "client-timeout" }), timeoutMs);
      session.on("error", (e) => settle({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.message }));
      const stream = session.request({ ":method": method, ":path": path, ...headers }, { endStream: body === undefined });
      let status = 0;
      let responseHeaders: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("end", () => settle({ status, headers: responseHeaders, body: Buffer.concat(chunks) }));
      stream.on("error", (e) => settle({ status, headers: responseHeaders, body: Buffer.concat(chunks), error: e.message }));
      if (body !== undefined) stream.end(Buffer.from(body));
    });
  } finally {
    session.destroy();
  }
}

export function problemCode(body: Buffer | string): string | undefined {
  try {
    const p = JSON.parse(body.toString()) as { code?: unknown };
    return typeof p.code === "string" ? p.code : undefined;
  } catch {
    return undefined;
  }
}

// ---- what exists ---------------------------------------------------------------------------------

export interface AdminOperation {
  readonly method: string;
  /** Path template, e.g. /v1/metadata/{key}. */
  readonly path: string;
  readonly operationId: string;
  readonly hasBody: boolean;
  /** The body schema with $refs resolved one level (enough for our schemas), if any. */
  readonly bodySchema: Record<string, unknown> | undefined;
  readonly queryParams: ReadonlyArray<{ name: string; schema: Record<string, unknown> }>;
  readonly headerParams: readonly string[];
  readonly pathParams: readonly string[];
}

type Json = Record<string, unknown>;

export function adminOperations(specPath = join(ROOT, "openapi/cairn.json")): AdminOperation[] {
  const spec = JSON.parse(readFileSync(specPath, "utf8")) as { paths: Record<string, Record<string, Json>>; components?: { schemas?: Record<string, Json> } };
  const deref = (s: unknown): Json | undefined => {
    if (s === null || typeof s !== "object") return undefined;
    const ref = (s as Json).$ref;
    if (typeof ref === "string") return spec.components?.schemas?.[ref.split("/").at(-1) ?? ""];
    return s as Json;
  };
  const out: AdminOperation[] = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (!["get", "put", "post", "delete", "patch"].includes(method)) continue;
      const params = (op.parameters as Json[] | undefined) ?? [];
      const content = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined) ?? {};
      const media = content["application/json"] ?? Object.values(content)[0];
      out.push({
        method: method.toUpperCase(),
        path,
        operationId: String(op.operationId ?? `${method} ${path}`),
        hasBody: op.requestBody !== undefined,
        bodySchema: deref(media?.schema),
        queryParams: params.filter((p) => p.in === "query").map((p) => ({ name: String(p.name), schema: deref(p.schema) ?? {} })),
        headerParams: params.filter((p) => p.in === "header").map((p) => String(p.name)),
        pathParams: params.filter((p) => p.in === "path").map((p) => String(p.name)),
      });
    }
  }
  return out;
}

export interface RpcRoute {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  readonly module: string;
}

/** Every RPC defined (or specified) in a src/**\/rpc.ts module: objects with `service` and `method`. */
export async function rpcRoutes(): Promise<RpcRoute[]> {
  const found = new Map<string, RpcRoute>();
  const visit = (value: unknown, module: string, depth: number): void => {
    if (value === null || typeof value !== "object" || depth > 2) return;
    const v = value as { service?: unknown; method?: unknown };
    if (typeof v.service === "string" && typeof v.method === "string" && /^[a-z][a-z0-9-]*$/.test(v.service) && /^[a-z][a-z0-9-]*$/.test(v.method)) {
      const path = `/rpc/${v.service}/${v.method}`;
      if (!found.has(path)) found.set(path, { service: v.service, method: v.method, path, module });
      return;
    }
    for (const inner of Object.values(value as Record<string, unknown>)) visit(inner, module, depth + 1);
  };
  for (const file of new Bun.Glob("src/**/rpc.ts").scanSync({ cwd: ROOT })) {
    if (file === "src/net/rpc.ts") continue; // the RPC framework itself
    try {
      const mod = (await import(join(ROOT, file))) as Record<string, unknown>;
      for (const value of Object.values(mod)) visit(value, file, 0);
    } catch {
      // a module being rewritten by someone else right now: its RPCs are simply not listed this run
    }
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

// ---- after every case ----------------------------------------------------------------------------

/** Keys and versions of the whole metadata store, read linearizably from `admin`. */
export async function metadataSnapshot(admin: string): Promise<string> {
  const r = await fetch(`${admin}/v1/metadata?prefix=&consistency=linearizable`, { signal: AbortSignal.timeout(15_000) });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { keys: Array<{ key: string; version: number }> };
  return body.keys.map((k) => `${k.key}@${k.version}`).join("\n");
}

/** The node answers /health, and a normal write and read work. */
export async function expectHealthyAndWritable(admin: string, key = "badinput/canary"): Promise<void> {
  const h = await fetch(`${admin}/health`, { signal: AbortSignal.timeout(10_000) });
  expect(h.status).toBe(200);
  const value = { at: Date.now() };
  const w = await fetch(`${admin}/v1/metadata/${encodeURIComponent(key)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
    signal: AbortSignal.timeout(15_000),
  });
  expect(w.status).toBe(200);
  const r = await fetch(`${admin}/v1/metadata/${encodeURIComponent(key)}?consistency=linearizable`, { signal: AbortSignal.timeout(15_000) });
  expect(r.status).toBe(200);
  expect(((await r.json()) as { value: unknown }).value).toEqual(value);
}

export function is4xx(status: number): boolean {
  return status >= 400 && status < 500;
}
