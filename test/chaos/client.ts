// The workloads' HTTP client for a node's admin API, and how an answer becomes a history outcome:
//   ok    2xx
//   fail  the request certainly had no effect: a 4xx refusal (412 and friends), a 503 whose code says
//         nothing was applied (the metadata client reports METADATA_UNAVAILABLE for a write only when
//         no attempt may have reached a leader: see src/metadata/client.ts), or a connection refused
//         before anything was sent
//   info  anything else: 504 (CAIRN-METADATA-0009 "may or may not have been applied"), 500, other
//         503s, a timeout, a connection lost after sending
// A wrong `fail` would let the checker accept a write that happened; the checker then sees the write's
// value appear from nowhere and rejects the history, so a lying 503 is caught rather than trusted blindly.
import { assertLoopback } from "./net/fault-proxy.ts";

export type Outcome =
  | { readonly kind: "ok"; readonly status: number; readonly body: unknown }
  | { readonly kind: "fail"; readonly status: number; readonly code: string; readonly body: unknown }
  | { readonly kind: "info"; readonly status: number | null; readonly code: string };

/** 503 codes that prove a write was not applied. */
const NOT_APPLIED_503 = new Set(["CAIRN-METADATA-0007", "CAIRN-METADATA-0008", "CAIRN-CLUSTER-0001", "CAIRN-NODE-0004"]);

export interface RequestOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly timeoutMs: number;
}

export async function request(base: string, method: string, path: string, options: RequestOptions): Promise<Outcome> {
  assertLoopback(new URL(base).hostname);
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(options.body !== undefined ? { "content-type": "application/json" } : {}), ...options.headers },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      // A fresh connection per request: Bun's fetch silently re-sends a request (PUT included) whose
      // pooled keep-alive connection was reset, and then reports the retry's ECONNREFUSED although
      // the first copy reached the server (seen in chaos seed 101: a write applied, reported refused).
      keepalive: false,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (e) {
    return { kind: transportFailureIsDefinite(e) ? "fail" : "info", status: null, code: describeTransportError(e) } as Outcome;
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    return { kind: "info", status: res.status, code: describeTransportError(e) };
  }
  let body: unknown = undefined;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  if (res.status >= 200 && res.status < 300) return { kind: "ok", status: res.status, body };
  const code = typeof (body as { code?: unknown } | undefined)?.code === "string" ? (body as { code: string }).code : `HTTP-${res.status}`;
  if (res.status >= 400 && res.status < 500) return { kind: "fail", status: res.status, code, body };
  if (res.status === 503 && NOT_APPLIED_503.has(code)) return { kind: "fail", status: res.status, code, body };
  return { kind: "info", status: res.status, code };
}

/** A refused connection means nothing was sent (true only without connection reuse: see above). */
function transportFailureIsDefinite(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === "ConnectionRefused" || code === "ECONNREFUSED";
}

function describeTransportError(e: unknown): string {
  const err = e as { name?: string; code?: unknown; message?: string };
  if (err.name === "TimeoutError" || err.name === "AbortError") return "client-timeout";
  if (typeof err.code === "string") return `transport:${err.code}`;
  return `transport:${err.message ?? String(e)}`;
}

export function keyPath(key: string): string {
  return `/v1/metadata/${encodeURIComponent(key)}`;
}
