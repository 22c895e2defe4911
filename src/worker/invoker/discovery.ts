// Discovery of a Restate SDK endpoint: GET {uri}/discover over h2c (prior knowledge; HTTP/1.1 when
// the endpoint does not speak it or the caller asks), and validation of the manifest (v2-v4) into
// the registry's service schemas. Invariant: whatever the endpoint answers, the result is either a
// fully validated manifest or a CairnError with a DEPLOY code naming what is wrong; never a crash.
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import { CairnError } from "../../observability/errors.ts";
import type { HandlerSchema, HandlerType, RetryPolicy, ServiceSchema, ServiceType } from "./model.ts";

/** Manifest versions cairn reads, newest first (the SDK picks the highest it knows). */
export const MANIFEST_VERSIONS = [4, 3, 2] as const;
const MANIFEST_CONTENT_TYPE = /^application\/vnd\.restate\.endpointmanifest\.v([0-9]+)\+json\s*(;.*)?$/i;
/** The service-protocol versions cairn's invoker speaks. */
export const MIN_SERVICE_PROTOCOL_VERSION = 5;
export const MAX_SERVICE_PROTOCOL_VERSION = 7;
/** Default deadline of one discovery (both transports together). */
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 10_000;
/** Default bound of a manifest body; a bigger answer is refused, not buffered. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Service names cairn's data plane already serves as first path segments (src/ingress/app.ts):
 * a service named like one of them could never be invoked at `/{service}/{handler}`.
 */
export const RESERVED_SERVICE_NAMES: ReadonlySet<string> = new Set(["v1", "restate", "openapi.json", "openapi-raw.json", "metrics", "health"]);

const SERVICE_NAME = /^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$/;
const HANDLER_NAME = /^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$/;

/** A service as discovered: its registry schema before the registry gives it a deployment and revision. */
export type DiscoveredService = Omit<ServiceSchema, "deploymentId" | "revision">;

export interface Discovered {
  /** The transport that worked ("h2c" also stands for HTTP/2 over TLS); invocations use the same one. */
  http: "h2c" | "http1.1";
  /** The endpoint's `x-restate-server` header, e.g. `restate-sdk-typescript/1.17.2`. */
  sdkVersion: string | null;
  protocolMode: "bidi-stream" | "request-response";
  minProtocolVersion: number;
  maxProtocolVersion: number;
  /** The manifest version the endpoint answered with (2..4). */
  manifestVersion: number;
  services: DiscoveredService[];
}

export interface DiscoverOptions {
  /** Only HTTP/1.1 (Restate's `use_http_11`); otherwise HTTP/2 first (h2c, or ALPN for https://), HTTP/1.1 as a fallback. */
  useHttp11?: boolean;
  /** Sent with the discovery request (and later with every invocation). */
  headers?: Record<string, string>;
  timeoutMs: number;
  maxManifestBytes?: number;
}

/** Parse and check a deployment URI: absolute http(s), no query, no fragment, no credentials. */
export function parseDeploymentUri(uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new CairnError("DEPLOY_INVALID_URI", `'${uri.slice(0, 200)}' is not an absolute URI`, { uri: uri.slice(0, 200) });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CairnError("DEPLOY_INVALID_URI", `the deployment URI must be http:// or https://, not ${url.protocol}//`, { uri });
  }
  if (url.search !== "" || url.hash !== "") throw new CairnError("DEPLOY_INVALID_URI", `the deployment URI must have no query or fragment: ${uri}`, { uri });
  if (url.username !== "" || url.password !== "") {
    throw new CairnError("DEPLOY_INVALID_URI", "the deployment URI must not carry credentials; send them as additional headers", { uri: url.host });
  }
  return url;
}

/** The canonical text of a deployment URI (no trailing slash), so the same endpoint is one deployment. */
export function normalizeDeploymentUri(uri: string): string {
  const url = parseDeploymentUri(uri);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Connection-level headers HTTP/2 forbids, and headers the transport itself sets. */
const FORBIDDEN_HEADERS = new Set(["host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "content-length", "accept", "http2-settings"]);

/** Check the additional headers an operator gives a deployment. */
export function checkAdditionalHeaders(headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw new CairnError("DEPLOY_INVALID_HEADERS", `'${name.slice(0, 100)}' is not a valid header name`, { header: name.slice(0, 100) });
    if (FORBIDDEN_HEADERS.has(name.toLowerCase())) throw new CairnError("DEPLOY_INVALID_HEADERS", `header '${name}' is set by cairn's transport and cannot be given`, { header: name });
    // Visible ASCII, spaces and tabs (RFC 9110 field-value), no leading/trailing whitespace.
    if (!/^[\t\x20-\x7e]*$/.test(value) || value !== value.trim()) {
      throw new CairnError("DEPLOY_INVALID_HEADERS", `the value of header '${name}' has characters that cannot be sent`, { header: name });
    }
  }
}

interface RawAnswer {
  status: number;
  contentType: string;
  server: string | null;
  body: Buffer;
}

/** Discover an endpoint's services; see the module header. */
export async function discover(uri: string, options: DiscoverOptions): Promise<Discovered> {
  const url = parseDeploymentUri(uri);
  const headers = options.headers ?? {};
  checkAdditionalHeaders(headers);
  const base = url.href.replace(/\/+$/, "");
  const target = new URL(`${base}/discover`);
  const maxBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  const deadlineMs = Date.now() + options.timeoutMs;
  const requestHeaders = { ...headers, accept: MANIFEST_VERSIONS.map((v) => `application/vnd.restate.endpointmanifest.v${v}+json`).join(", ") };

  let transport: Discovered["http"];
  let answer: RawAnswer;
  if (options.useHttp11 === true) {
    transport = "http1.1";
    try {
      answer = await http1Get(target, requestHeaders, deadlineMs, maxBytes);
    } catch (e) {
      throw unreachable(url, e);
    }
  } else {
    try {
      transport = "h2c";
      answer = await h2Get(target, requestHeaders, deadlineMs, maxBytes);
    } catch (h2Error) {
      // Only a transport failure falls back (an HTTP/1.1-only endpoint, or an https:// one whose
      // ALPN offers no h2), never an answer we refused nor a deadline already spent.
      if (!(h2Error instanceof TransportError) || h2Error.timedOut) throw unreachable(url, h2Error);
      transport = "http1.1";
      try {
        answer = await http1Get(target, requestHeaders, deadlineMs, maxBytes);
      } catch (h1Error) {
        throw unreachable(url, h1Error, h2Error);
      }
    }
  }
  return interpretAnswer(url, transport, answer);
}

function unreachable(url: URL, error: unknown, first?: unknown): CairnError {
  if (error instanceof CairnError) return error;
  const why = error instanceof Error ? error.message : String(error);
  const before = first instanceof Error && first.message !== why ? ` (HTTP/2: ${first.message})` : "";
  const timedOut = error instanceof TransportError && error.timedOut;
  return new CairnError(
    "DEPLOY_UNREACHABLE",
    `${timedOut ? "no answer in time from" : "cannot reach"} ${url.host}${url.pathname === "/" ? "" : url.pathname}: ${why}${before}`,
    { uri: url.href },
  );
}

class TransportError extends Error {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

function tooLarge(url: URL, maxBytes: number): CairnError {
  return new CairnError("DEPLOY_NOT_RESTATE", `the discovery answer of ${url.host} is larger than ${maxBytes} bytes`, { uri: url.href });
}

/** One GET over HTTP/2 with prior knowledge (or ALPN for https://), the session closed afterwards. */
function h2Get(target: URL, headers: Record<string, string>, deadlineMs: number, maxBytes: number): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const session = http2.connect(target.origin);
    const finish = (err: Error | null, value?: RawAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      if (err !== null) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new TransportError("timed out", true)), Math.max(0, deadlineMs - Date.now()));
    session.on("error", (e) => finish(new TransportError(e.message)));
    session.on("close", () => finish(new TransportError("the connection closed before an answer")));
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({ ":method": "GET", ":path": target.pathname, ...headers }, { endStream: true });
    } catch (e) {
      finish(new TransportError(e instanceof Error ? e.message : String(e)));
      return;
    }
    req.on("error", (e) => finish(new TransportError(e.message)));
    req.on("response", (h) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) finish(tooLarge(target, maxBytes));
        else chunks.push(c);
      });
      req.on("end", () =>
        finish(null, {
          status: Number(h[":status"] ?? 0),
          contentType: String(h["content-type"] ?? ""),
          server: typeof h["x-restate-server"] === "string" ? h["x-restate-server"] : null,
          body: Buffer.concat(chunks),
        }),
      );
    });
  });
}

/** One GET over HTTP/1.1 (no redirects followed: an endpoint answers itself). */
function http1Get(target: URL, headers: Record<string, string>, deadlineMs: number, maxBytes: number): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, value?: RawAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      if (err !== null) reject(err);
      else resolve(value!);
    };
    const client = target.protocol === "https:" ? https : http;
    const req = client.request(target, { method: "GET", headers: { ...headers, connection: "close" }, agent: false });
    const timer = setTimeout(() => finish(new TransportError("timed out", true)), Math.max(0, deadlineMs - Date.now()));
    req.on("error", (e) => finish(new TransportError(e.message)));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) finish(tooLarge(target, maxBytes));
        else chunks.push(c);
      });
      res.on("error", (e) => finish(new TransportError(e.message)));
      res.on("end", () => {
        const server = res.headers["x-restate-server"];
        finish(null, { status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "", server: typeof server === "string" ? server : null, body: Buffer.concat(chunks) });
      });
    });
    req.end();
  });
}

function interpretAnswer(url: URL, transport: Discovered["http"], answer: RawAnswer): Discovered {
  const where = `${url.host}${url.pathname === "/" ? "" : url.pathname}`;
  const snippet = answer.body.toString("utf8", 0, Math.min(answer.body.length, 200)).replace(/\s+/g, " ");
  if (answer.status === 415) {
    throw new CairnError("DEPLOY_UNSUPPORTED_VERSION", `${where} supports none of the manifest versions v2-v4 cairn asked for: ${snippet}`, { uri: url.href, sdkVersion: answer.server });
  }
  if (answer.status !== 200) {
    throw new CairnError("DEPLOY_NOT_RESTATE", `GET ${where}/discover answered HTTP ${answer.status}${snippet === "" ? "" : `: ${snippet}`}`, { uri: url.href, status: answer.status });
  }
  const m = MANIFEST_CONTENT_TYPE.exec(answer.contentType);
  if (m === null) {
    throw new CairnError("DEPLOY_NOT_RESTATE", `GET ${where}/discover answered content type '${answer.contentType.slice(0, 100)}', not a Restate endpoint manifest`, { uri: url.href });
  }
  const manifestVersion = Number(m[1]);
  if (!(MANIFEST_VERSIONS as readonly number[]).includes(manifestVersion)) {
    throw new CairnError("DEPLOY_UNSUPPORTED_VERSION", `${where} answered manifest v${manifestVersion}; cairn reads v2-v4`, { uri: url.href });
  }
  let json: unknown;
  try {
    json = JSON.parse(answer.body.toString("utf8"));
  } catch {
    throw new CairnError("DEPLOY_NOT_RESTATE", `the manifest of ${where} is not valid JSON`, { uri: url.href });
  }
  const manifest = parseManifest(json);
  return { http: transport, sdkVersion: answer.server, manifestVersion, ...manifest };
}

// ---- manifest validation (pure) ----

function invalid(field: string, problem: string): CairnError {
  return new CairnError("DEPLOY_INVALID_MANIFEST", `manifest field ${field} ${problem}`, { field });
}

type Json = Record<string, unknown>;

function object(v: unknown, field: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(field, "must be an object");
  return v as Json;
}

function optString(o: Json, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalid(`${field}.${key}`, "must be a string");
  return v;
}

function optBool(o: Json, key: string, field: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw invalid(`${field}.${key}`, "must be true or false");
  return v;
}

function optMs(o: Json, key: string, field: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw invalid(`${field}.${key}`, "must be a whole number of milliseconds ≥ 0");
  return v;
}

function optMetadata(o: Json, field: string): Record<string, string> | undefined {
  const v = o.metadata;
  if (v === undefined || v === null) return undefined;
  const m = object(v, `${field}.metadata`);
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(m)) {
    if (typeof value !== "string") throw invalid(`${field}.metadata.${k}`, "must be a string");
    out[k] = value;
  }
  return out;
}

/** The options a service or a handler may carry (retry policy, timeouts, retentions, lazy state). */
function options(o: Json, field: string): Partial<DiscoveredService> {
  const out: Partial<DiscoveredService> = {};
  const set = <K extends keyof DiscoveredService>(key: K, value: DiscoveredService[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set("inactivityTimeoutMs", optMs(o, "inactivityTimeout", field));
  set("abortTimeoutMs", optMs(o, "abortTimeout", field));
  set("journalRetentionMs", optMs(o, "journalRetention", field));
  set("idempotencyRetentionMs", optMs(o, "idempotencyRetention", field));
  set("enableLazyState", optBool(o, "enableLazyState", field));
  const retry: Partial<RetryPolicy> = {};
  const initial = optMs(o, "retryPolicyInitialInterval", field);
  if (initial !== undefined) retry.initialIntervalMs = initial;
  const max = optMs(o, "retryPolicyMaxInterval", field);
  if (max !== undefined) retry.maxIntervalMs = max;
  const attempts = o.retryPolicyMaxAttempts;
  if (attempts !== undefined && attempts !== null) {
    if (typeof attempts !== "number" || !Number.isSafeInteger(attempts) || attempts < 1) throw invalid(`${field}.retryPolicyMaxAttempts`, "must be a whole number ≥ 1");
    retry.maxAttempts = attempts;
  }
  const factor = o.retryPolicyExponentiationFactor;
  if (factor !== undefined && factor !== null) {
    if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1) throw invalid(`${field}.retryPolicyExponentiationFactor`, "must be a number ≥ 1");
    retry.factor = factor;
  }
  const onMax = o.retryPolicyOnMaxAttempts;
  if (onMax !== undefined && onMax !== null) {
    if (onMax !== "PAUSE" && onMax !== "KILL") throw invalid(`${field}.retryPolicyOnMaxAttempts`, `must be PAUSE or KILL, not ${JSON.stringify(onMax)}`);
    retry.onMaxAttempts = onMax === "PAUSE" ? "pause" : "kill";
  }
  if (retry.initialIntervalMs !== undefined && retry.maxIntervalMs !== undefined && retry.initialIntervalMs > retry.maxIntervalMs) {
    throw invalid(`${field}.retryPolicyInitialInterval`, "must not exceed retryPolicyMaxInterval");
  }
  if (Object.keys(retry).length > 0) out.retryPolicy = retry;
  const documentation = optString(o, "documentation", field);
  if (documentation !== undefined) out.documentation = documentation;
  const metadata = optMetadata(o, field);
  if (metadata !== undefined) out.metadata = metadata;
  return out;
}

const SERVICE_TYPES: Record<string, ServiceType> = { SERVICE: "service", VIRTUAL_OBJECT: "virtual-object", WORKFLOW: "workflow" };
const HANDLER_TYPES: Record<string, HandlerType> = { EXCLUSIVE: "exclusive", SHARED: "shared", WORKFLOW: "workflow" };

/** Validate a manifest document (§1.2 of the protocol note) into service schemas. Pure. */
export function parseManifest(json: unknown): Omit<Discovered, "http" | "sdkVersion" | "manifestVersion"> {
  const root = object(json, "(root)");
  const mode = root.protocolMode;
  if (mode !== "BIDI_STREAM" && mode !== "REQUEST_RESPONSE") {
    throw invalid("protocolMode", mode === undefined ? "is missing (BIDI_STREAM or REQUEST_RESPONSE)" : `must be BIDI_STREAM or REQUEST_RESPONSE, not ${JSON.stringify(mode)}`);
  }
  const min = root.minProtocolVersion;
  const max = root.maxProtocolVersion;
  for (const [key, v] of [["minProtocolVersion", min], ["maxProtocolVersion", max]] as const) {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw invalid(key, "must be a whole number ≥ 1");
  }
  const minV = min as number;
  const maxV = max as number;
  if (minV > maxV) throw invalid("minProtocolVersion", `(${minV}) exceeds maxProtocolVersion (${maxV})`);
  if (maxV < MIN_SERVICE_PROTOCOL_VERSION || minV > MAX_SERVICE_PROTOCOL_VERSION) {
    throw new CairnError(
      "DEPLOY_UNSUPPORTED_VERSION",
      `the endpoint speaks service protocol V${minV}-V${maxV}; cairn speaks V${MIN_SERVICE_PROTOCOL_VERSION}-V${MAX_SERVICE_PROTOCOL_VERSION}`,
      { minProtocolVersion: minV, maxProtocolVersion: maxV },
    );
  }
  if (!Array.isArray(root.services)) throw invalid("services", "must be a list");
  if (root.services.length === 0) throw invalid("services", "is empty: the endpoint binds no service");
  const seen = new Set<string>();
  const services = root.services.map((raw, i) => {
    const service = parseService(raw, `services[${i}]`);
    if (seen.has(service.name)) throw invalid(`services[${i}].name`, `'${service.name}' appears twice`);
    seen.add(service.name);
    return service;
  });
  return {
    protocolMode: mode === "BIDI_STREAM" ? "bidi-stream" : "request-response",
    minProtocolVersion: minV,
    maxProtocolVersion: maxV,
    services,
  };
}

function parseService(raw: unknown, field: string): DiscoveredService {
  const o = object(raw, field);
  const name = o.name;
  if (typeof name !== "string" || !SERVICE_NAME.test(name)) {
    throw invalid(`${field}.name`, `${JSON.stringify(name)} must match ${SERVICE_NAME.source}`);
  }
  const at = `${field} (${name})`;
  if (RESERVED_SERVICE_NAMES.has(name)) {
    throw new CairnError("DEPLOY_RESERVED_NAME", `service '${name}' would clash with cairn's data-plane path /${name}`, { service: name });
  }
  const ty = typeof o.ty === "string" ? SERVICE_TYPES[o.ty] : undefined;
  if (ty === undefined) throw invalid(`${at}.ty`, `must be SERVICE, VIRTUAL_OBJECT or WORKFLOW, not ${JSON.stringify(o.ty)}`);
  if (!Array.isArray(o.handlers)) throw invalid(`${at}.handlers`, "must be a list");
  const seen = new Set<string>();
  const handlers = o.handlers.map((h, i) => {
    const handler = parseHandler(h, ty, `${at}.handlers[${i}]`);
    if (seen.has(handler.name)) throw invalid(`${at}.handlers[${i}].name`, `'${handler.name}' appears twice`);
    seen.add(handler.name);
    return handler;
  });
  if (ty === "workflow") {
    const runs = handlers.filter((h) => h.ty === "workflow");
    if (runs.length !== 1) throw invalid(`${at}.handlers`, `must have exactly one WORKFLOW handler, has ${runs.length}`);
  }
  const priv = optBool(o, "ingressPrivate", at);
  return { name, ty, handlers, public: priv !== true, ...options(o, at) };
}

function parseHandler(raw: unknown, serviceType: ServiceType, field: string): HandlerSchema {
  const o = object(raw, field);
  const name = o.name;
  if (typeof name !== "string" || !HANDLER_NAME.test(name)) {
    throw invalid(`${field}.name`, `${JSON.stringify(name)} must match ${HANDLER_NAME.source}`);
  }
  const at = `${field} (${name})`;
  let ty: HandlerType | null;
  if (o.ty === undefined || o.ty === null) {
    ty = serviceType === "service" ? null : serviceType === "virtual-object" ? "exclusive" : "workflow";
  } else {
    const parsed = typeof o.ty === "string" ? HANDLER_TYPES[o.ty] : undefined;
    if (parsed === undefined) throw invalid(`${at}.ty`, `must be EXCLUSIVE, SHARED or WORKFLOW, not ${JSON.stringify(o.ty)}`);
    if (serviceType === "service") throw invalid(`${at}.ty`, "must be absent for the handlers of a SERVICE");
    if (serviceType === "virtual-object" && parsed === "workflow") throw invalid(`${at}.ty`, "WORKFLOW is only for workflows (a VIRTUAL_OBJECT handler is EXCLUSIVE or SHARED)");
    if (serviceType === "workflow" && parsed === "exclusive") throw invalid(`${at}.ty`, "EXCLUSIVE is only for virtual objects (a WORKFLOW handler is WORKFLOW or SHARED)");
    ty = parsed;
  }
  const input = o.input === undefined || o.input === null ? {} : object(o.input, `${at}.input`);
  const output = o.output === undefined || o.output === null ? {} : object(o.output, `${at}.output`);
  const { retryPolicy, inactivityTimeoutMs, abortTimeoutMs, journalRetentionMs, idempotencyRetentionMs, enableLazyState, documentation, metadata } = options(o, at);
  const handler: HandlerSchema = {
    name,
    ty,
    inputRequired: optBool(input, "required", `${at}.input`) ?? false,
    inputContentType: optString(input, "contentType", `${at}.input`) ?? null,
    outputContentType: optString(output, "contentType", `${at}.output`) ?? null,
    setContentTypeIfEmpty: optBool(output, "setContentTypeIfEmpty", `${at}.output`) ?? false,
  };
  const extra: Partial<HandlerSchema> = { retryPolicy, inactivityTimeoutMs, abortTimeoutMs, journalRetentionMs, idempotencyRetentionMs, enableLazyState, documentation, metadata };
  const retention = optMs(o, "workflowCompletionRetention", at);
  if (retention !== undefined) {
    if (ty !== "workflow") throw invalid(`${at}.workflowCompletionRetention`, "is only for WORKFLOW handlers");
    extra.workflowCompletionRetentionMs = retention;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (handler as Record<string, unknown>)[k] = v;
  return handler;
}
