// One invocation attempt against a deployment, request/response style (§2.6): POST Start + the stored
// journal, end the request body, read frames until End, Suspension or Error, then close the stream.
// Invariants: attempt() never throws for anything the remote side does (every failure is an outcome),
// every attempt ends within its timeoutMs or at its signal, and no stream outlives its attempt.
// h2c uses one node:http2 session per endpoint origin, reused and replaced when it fails; HTTP/1.1 uses fetch.
import http2 from "node:http2";
import { raceAbort } from "../../../net/abort.ts";
import { invariant } from "../../../observability/errors.ts";
import { ProtocolError } from "./errors.ts";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, type Frame } from "./framing.ts";
import { decodeMessage, MessageType, type ErrorMessage, type Future } from "./messages.ts";
import type { ProtocolVersion } from "./negotiate.ts";

export interface StartFields {
  id: Uint8Array;
  debugId: string;
  knownEntries: number;
  stateMap: { key: Uint8Array; value: Uint8Array }[];
  partialState: boolean;
  key: string;
  retryCountSinceLastStoredEntry: number;
  durationSinceLastStoredEntryMs: number;
  randomSeed: bigint;
}

export interface AttemptEndpoint {
  /** The deployment's base URI; may carry a path prefix. */
  uri: string;
  http: "h2c" | "http1.1";
  /** The deployment's additional headers, sent on every request. */
  headers: Record<string, string>;
}

export interface AttemptRequest {
  endpoint: AttemptEndpoint;
  service: string;
  handler: string;
  /** The object or workflow key; null for plain services. */
  key: string | null;
  invocationId: string;
  protocolVersion: ProtocolVersion;
  start: StartFields;
  /** Raw frames (header + payload), sent verbatim after Start. */
  journal: readonly Uint8Array[];
  timeoutMs: number;
  signal: AbortSignal;
}

/** The SDK's Error message, as the attempt's outcome (optional fields absent when the SDK left them out). */
export type AttemptError = Omit<ErrorMessage, "kind">;

export interface Awaiting {
  completions: number[];
  signals: number[];
  namedSignals: string[];
}

/** `frames`: every frame the SDK sent before the terminal one, in order. */
export type AttemptOutcome =
  | { kind: "end"; frames: Frame[] }
  | { kind: "suspended"; frames: Frame[]; awaiting: Awaiting }
  | { kind: "error"; frames: Frame[]; error: AttemptError }
  | { kind: "failed"; frames: Frame[]; reason: string; retryAfterMs?: number };

export interface TransportOptions {
  /** Bound on establishing an h2c session (the HTTP/1.1 path is bounded by the attempt's timeoutMs). */
  connectTimeoutMs?: number;
  /** Bound on one frame from the SDK; a bigger one fails the attempt. */
  maxFrameBytes?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Flow-control window for h2c sessions: journals are sent whole, so do not stall on 64 KiB windows. */
const H2_WINDOW_BYTES = 16 * 1024 * 1024;
/** Errors of `request()` on a session that can no longer open streams. */
const GOING_AWAY = new Set(["ERR_HTTP2_GOAWAY_SESSION", "ERR_HTTP2_INVALID_SESSION"]);
/** Request headers a deployment's extra headers may not replace or that HTTP/2 forbids. */
const RESERVED_HEADERS = new Set([
  "content-type",
  "accept",
  "x-restate-invocation-id",
  "x-restate-service-key",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "te",
]);

/** Every id in a V7 future tree (resuming on any of them is safe: the SDK suspends again if early). */
function collectFuture(f: Future, into: Awaiting): void {
  into.completions.push(...f.waitingCompletions);
  into.signals.push(...f.waitingSignals);
  into.namedSignals.push(...f.waitingNamedSignals);
  for (const nested of f.nestedFutures) collectFuture(nested, into);
}
const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

/**
 * Turns the response byte stream into an outcome: frames accumulate until the first End, Suspension or
 * Error. Pure: no I/O, no clock.
 */
export class OutcomeCollector {
  private readonly decoder: FrameDecoder;
  private readonly frames: Frame[] = [];
  private outcome: AttemptOutcome | undefined;

  constructor(maxFrameBytes: number) {
    this.decoder = new FrameDecoder({ maxFrameBytes });
  }

  /** Feeds a chunk; returns the outcome once a terminal frame arrived (bytes after it are ignored). */
  push(chunk: Uint8Array): AttemptOutcome | undefined {
    if (this.outcome !== undefined) return this.outcome;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      return (this.outcome = this.failed(`bad frame from the deployment: ${(e as Error).message}`));
    }
    for (const frame of frames) {
      try {
        this.outcome = this.terminal(frame);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        this.outcome = this.failed(`bad message from the deployment: ${e.message}`);
      }
      if (this.outcome !== undefined) return this.outcome;
      this.frames.push(frame);
    }
    return undefined;
  }

  /** The response ended: the outcome, or `failed` when no terminal frame came. */
  finish(): AttemptOutcome {
    if (this.outcome !== undefined) return this.outcome;
    const tail = this.decoder.pendingBytes > 0 ? ` (${this.decoder.pendingBytes} bytes of an incomplete frame)` : "";
    return (this.outcome = this.failed(`the response ended without End, Suspension or Error${tail}`));
  }

  failed(reason: string, retryAfterMs?: number): AttemptOutcome {
    return retryAfterMs === undefined ? { kind: "failed", frames: this.frames, reason } : { kind: "failed", frames: this.frames, reason, retryAfterMs };
  }

  private terminal(frame: Frame): AttemptOutcome | undefined {
    switch (frame.type) {
      case MessageType.End:
        return { kind: "end", frames: this.frames };
      case MessageType.Suspension: {
        const m = decodeMessage(frame.type, frame.payload);
        if (m.kind !== "suspension") return undefined;
        const awaiting: Awaiting = { completions: [...m.waitingCompletions], signals: [...m.waitingSignals], namedSignals: [...m.waitingNamedSignals] };
        if (m.awaitingOn !== undefined) collectFuture(m.awaitingOn, awaiting);
        return {
          kind: "suspended",
          frames: this.frames,
          awaiting: { completions: unique(awaiting.completions), signals: unique(awaiting.signals), namedSignals: unique(awaiting.namedSignals) },
        };
      }
      case MessageType.Error: {
        const m = decodeMessage(frame.type, frame.payload);
        if (m.kind !== "error") return undefined;
        const { kind: _, ...fields } = m;
        const error = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as AttemptError;
        return { kind: "error", frames: this.frames, error };
      }
      default:
        return undefined;
    }
  }
}

export function invocationContentType(version: ProtocolVersion): string {
  return `application/vnd.restate.invocation.v${version}`;
}

/** Retry-After as seconds or an HTTP date, in ms from `nowMs`; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function requestBody(req: AttemptRequest): Uint8Array {
  const start = encodeFrame({
    kind: "start",
    id: req.start.id,
    debugId: req.start.debugId,
    knownEntries: req.start.knownEntries,
    stateMap: req.start.stateMap,
    partialState: req.start.partialState,
    key: req.start.key,
    retryCountSinceLastStoredEntry: req.start.retryCountSinceLastStoredEntry,
    durationSinceLastStoredEntryMs: req.start.durationSinceLastStoredEntryMs,
    randomSeed: req.start.randomSeed,
  });
  let total = start.byteLength;
  for (const f of req.journal) total += f.byteLength;
  const body = new Uint8Array(total);
  body.set(start, 0);
  let at = start.byteLength;
  for (const f of req.journal) {
    body.set(f, at);
    at += f.byteLength;
  }
  return body;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The request's headers, or a reason they cannot be sent (checked here so no transport half-sends them). */
function requestHeaders(req: AttemptRequest): Record<string, string> | string {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.endpoint.headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith(":") || RESERVED_HEADERS.has(lower)) continue;
    if (!HEADER_NAME.test(lower) || !HEADER_VALUE.test(value)) return `the deployment's header ${JSON.stringify(name)} is not a valid HTTP header`;
    headers[lower] = value;
  }
  const contentType = invocationContentType(req.protocolVersion);
  headers["content-type"] = contentType;
  headers["accept"] = contentType;
  headers["x-restate-invocation-id"] = req.invocationId;
  if (req.key !== null) headers["x-restate-service-key"] = encodeURIComponent(req.key);
  return headers;
}

/** `{uri}/invoke/{service}/{handler}`, keeping any path prefix of the deployment URI. */
function invokeUrl(req: AttemptRequest): URL {
  const url = new URL(req.endpoint.uri);
  const prefix = url.pathname.endsWith("/") ? url.pathname.slice(0, -1) : url.pathname;
  url.pathname = `${prefix}/invoke/${encodeURIComponent(req.service)}/${encodeURIComponent(req.handler)}`;
  return url;
}

function contentTypeMatches(got: string | null | undefined, expected: string): boolean {
  return got !== null && got !== undefined && got.split(";")[0]!.trim().toLowerCase() === expected;
}

const describe = (e: unknown): string => (e instanceof Error ? `${e.message}${"code" in e && e.code ? ` (${String(e.code)})` : ""}` : String(e));

interface Deadline {
  signal: AbortSignal;
  reason(): string;
  dispose(): void;
}

/** The attempt's own abort signal: the caller's signal or its timeout, whichever comes first. */
function deadline(req: AttemptRequest): Deadline {
  const controller = new AbortController();
  let why = "";
  const abort = (reason: string): void => {
    if (controller.signal.aborted) return;
    why = reason;
    controller.abort(new Error(reason));
  };
  const onAbort = (): void => abort("the attempt was aborted");
  if (req.signal.aborted) onAbort();
  else req.signal.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => abort(`the attempt timed out after ${req.timeoutMs} ms`), Math.max(0, req.timeoutMs));
  return {
    signal: controller.signal,
    reason: () => why,
    dispose: () => {
      clearTimeout(timer);
      req.signal.removeEventListener("abort", onAbort);
    },
  };
}

/** One attempt's request and what checks its answer. */
interface Exchange {
  url: URL;
  headers: Record<string, string>;
  body: Uint8Array;
  expectedType: string;
  collector: OutcomeCollector;
  limit: Deadline;
}


export class InvocationTransport {
  readonly connectTimeoutMs: number;
  readonly maxFrameBytes: number;
  private readonly sessions = new Map<string, { session: http2.ClientHttp2Session; ready: Promise<http2.ClientHttp2Session> }>();
  /** Liveness probes in flight, each with its deadline timer (cleared by close()). */
  private readonly probing = new Map<http2.ClientHttp2Session, ReturnType<typeof setTimeout>>();
  private closed = false;

  constructor(options: TransportOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Runs one attempt. Never rejects for a remote failure: that is a `failed` outcome. */
  async attempt(req: AttemptRequest): Promise<AttemptOutcome> {
    invariant(req.start.knownEntries === req.journal.length, () => `Start.knownEntries = ${req.start.knownEntries} but the journal sent has ${req.journal.length} entries`);
    const collector = new OutcomeCollector(this.maxFrameBytes);
    if (this.closed) return collector.failed("the invocation transport is closed");
    let url: URL;
    try {
      url = invokeUrl(req);
    } catch (e) {
      return collector.failed(`bad deployment URI ${JSON.stringify(req.endpoint.uri)}: ${describe(e)}`);
    }
    const body = requestBody(req);
    const headers = requestHeaders(req);
    if (typeof headers === "string") return collector.failed(headers);
    const expectedType = invocationContentType(req.protocolVersion);
    const limit = deadline(req);
    try {
      if (limit.signal.aborted) return collector.failed(limit.reason());
      const exchange: Exchange = { url, headers, body, expectedType, collector, limit };
      return req.endpoint.http === "h2c" ? await this.attemptH2(exchange) : await this.attemptHttp1(exchange);
    } finally {
      limit.dispose();
    }
  }

  /** Closes every h2c session; attempts in flight fail. */
  close(): void {
    this.closed = true;
    for (const timer of this.probing.values()) clearTimeout(timer);
    this.probing.clear();
    for (const { session } of this.sessions.values()) session.destroy();
    this.sessions.clear();
  }

  private async attemptHttp1({ url, headers, body, expectedType, collector, limit }: Exchange): Promise<AttemptOutcome> {
    let response: Response;
    try {
      response = await fetch(url, { method: "POST", headers, body, signal: limit.signal, redirect: "manual" });
    } catch (e) {
      return collector.failed(limit.signal.aborted ? limit.reason() : `request to ${url.origin} failed: ${describe(e)}`);
    }
    const reader = response.body?.getReader();
    try {
      const refused = this.refusal(response.status, response.headers.get("content-type"), response.headers.get("retry-after"), expectedType, collector);
      if (refused !== undefined) return refused;
      if (reader === undefined) return collector.finish();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return collector.finish();
        const outcome = collector.push(value);
        if (outcome !== undefined) return outcome;
      }
    } catch (e) {
      return collector.failed(limit.signal.aborted ? limit.reason() : `reading the response from ${url.origin} failed: ${describe(e)}`);
    } finally {
      // Releases the connection whether or not the SDK has ended its response.
      reader?.cancel().catch(() => {});
    }
  }

  /** A `failed` outcome for a non-2xx status or a wrong content type, else undefined. */
  private refusal(
    status: number,
    contentType: string | null | undefined,
    retryAfter: string | null | undefined,
    expectedType: string,
    collector: OutcomeCollector,
  ): AttemptOutcome | undefined {
    if (status < 200 || status > 299) {
      const retryAfterMs = status === 503 || status === 429 ? parseRetryAfterMs(retryAfter, Date.now()) : undefined;
      return collector.failed(`the deployment answered HTTP ${status}`, retryAfterMs);
    }
    if (!contentTypeMatches(contentType, expectedType)) {
      return collector.failed(`the deployment answered content type ${JSON.stringify(contentType ?? "")}, expected ${expectedType}`);
    }
    return undefined;
  }

  private async attemptH2({ url, headers, body, expectedType, collector, limit }: Exchange): Promise<AttemptOutcome> {
    let stream: http2.ClientHttp2Stream | undefined;
    let streamSession: http2.ClientHttp2Session | undefined;
    let lastError: unknown;
    // A session that received GOAWAY (or died) between attempts refuses new streams at once: retry on a fresh one.
    for (let tries = 0; tries < 2 && stream === undefined; tries++) {
      let session: http2.ClientHttp2Session;
      try {
        session = await raceAbort(this.session(url.origin), limit.signal);
      } catch (e) {
        return collector.failed(limit.signal.aborted ? limit.reason() : `cannot connect to ${url.origin}: ${describe(e)}`);
      }
      try {
        stream = session.request({ ":method": "POST", ":path": `${url.pathname}${url.search}`, ...headers }, { endStream: false });
        streamSession = session;
      } catch (e) {
        lastError = e;
        // Under Bun a session whose request() threw may cancel its next streams: never reuse it. Only a
        // session that was going away anyway earns a retry on a fresh one.
        this.forget(url.origin, session);
        if (!session.closed && !session.destroyed) session.close();
        if (!GOING_AWAY.has((e as { code?: string }).code ?? "")) break;
      }
    }
    if (stream === undefined) return collector.failed(`cannot open a stream to ${url.origin}: ${describe(lastError)}`);
    const s = stream;
    return await new Promise<AttemptOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        limit.signal.removeEventListener("abort", onAbort);
        if (!s.closed && !s.destroyed) s.close(http2.constants.NGHTTP2_CANCEL);
        resolve(outcome);
      };
      const onAbort = (): void => {
        settle(collector.failed(limit.reason()));
        // A timed-out stream may mean a dead connection (a silent peer never resets it): check, and
        // replace the session if it does not answer, or every later attempt would time out as well.
        if (streamSession !== undefined) this.probe(url.origin, streamSession);
      };
      if (limit.signal.aborted) return onAbort();
      limit.signal.addEventListener("abort", onAbort, { once: true });
      s.on("response", (h) => {
        const status = Number(h[":status"]);
        const refused = this.refusal(status, h["content-type"] as string | undefined, h["retry-after"] as string | undefined, expectedType, collector);
        if (refused !== undefined) settle(refused);
      });
      s.on("data", (chunk: Uint8Array) => {
        const outcome = collector.push(chunk);
        if (outcome !== undefined) settle(outcome);
      });
      s.on("end", () => settle(collector.finish()));
      s.on("error", (e) => settle(collector.failed(`the stream to ${url.origin} failed: ${describe(e)}`)));
      s.on("close", () => settle(collector.failed(`the stream to ${url.origin} closed (code ${s.rstCode ?? "?"}) before a terminal message`)));
      s.end(body);
    });
  }

  /** The shared session for `origin`, connecting (bounded by connectTimeoutMs) when there is none. */
  private session(origin: string): Promise<http2.ClientHttp2Session> {
    if (this.closed) return Promise.reject(new Error("the invocation transport is closed"));
    const existing = this.sessions.get(origin);
    if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) return existing.ready;
    const session = http2.connect(origin, { settings: { initialWindowSize: H2_WINDOW_BYTES } });
    const ready = new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const fail = (e: unknown): void => {
        clearTimeout(timer);
        this.forget(origin, session);
        session.destroy();
        reject(e instanceof Error ? e : new Error(String(e)));
      };
      // Not tied to one attempt's signal: other attempts may be waiting for the same session.
      const timer = setTimeout(() => fail(new Error(`no connection within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      session.once("connect", () => {
        clearTimeout(timer);
        try {
          session.setLocalWindowSize(H2_WINDOW_BYTES);
        } catch {
          // Best effort: the default window still works, only slower.
        }
        resolve(session);
      });
      session.on("error", (e) => fail(e));
      session.on("goaway", () => {
        this.forget(origin, session);
        // Lets the streams in flight finish, then releases the connection.
        if (!session.closed) session.close();
      });
      session.on("close", () => this.forget(origin, session));
    });
    // A failed connect must not poison the pool: fail() forgets the session, the next attempt reconnects.
    ready.catch(() => {});
    this.sessions.set(origin, { session, ready });
    return ready;
  }

  /** Pings `session`; destroys it (so the next attempt reconnects) when no answer comes within connectTimeoutMs. */
  private probe(origin: string, session: http2.ClientHttp2Session): void {
    if (this.closed || session.destroyed || this.probing.has(session)) return;
    const dead = (): void => {
      clearTimeout(timer);
      this.probing.delete(session);
      this.forget(origin, session);
      session.destroy();
    };
    const timer = setTimeout(dead, this.connectTimeoutMs);
    this.probing.set(session, timer);
    try {
      const sent = session.ping((err) => {
        if (err !== null) return dead();
        clearTimeout(timer);
        this.probing.delete(session);
      });
      if (!sent) dead();
    } catch {
      dead();
    }
  }

  /** Drops `session` from the pool if it is still the one for `origin`. */
  private forget(origin: string, session: http2.ClientHttp2Session): void {
    if (this.sessions.get(origin)?.session === session) this.sessions.delete(origin);
  }
}
