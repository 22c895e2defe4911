// Tuning knobs of the peer fabric, one object shared by FabricServer and FabricClient. Every bound the
// fabric keeps (bodies, in-flight calls, queues, timers) is a named value here with a default; names
// carry their unit. The node maps the `net.*` configuration keys onto these one to one.
import { invariant } from "../observability/errors.ts";

/** Which HTTP/2 server implementation serves the fabric port (see server.ts for the trade-off). */
export type ServerTransportKind = "bun" | "node";

export interface FabricOptions {
  /** Calls in flight to one peer at once (client). Excess calls wait in a queue of `maxQueuedPerPeer`. */
  readonly maxInFlightPerPeer: number;
  /** Calls allowed to wait for an in-flight slot per peer; beyond that a call fails with NET_OVERLOADED. */
  readonly maxQueuedPerPeer: number;
  /** Request body bytes sent to one peer and not yet answered (client). One call bigger than this still
   *  goes alone. Keeps the session's send buffer below `maxSessionMemoryMb`. */
  readonly maxInFlightBytesPerPeer: number;
  /** Largest RPC request body, enforced by the sender before sending and by the receiver (413). */
  readonly maxRequestBytes: number;
  /** Largest RPC response body the client reads before failing the call with NET_BAD_RESPONSE. */
  readonly maxResponseBytes: number;
  /** Default per-call deadline when the caller gives none (covers queueing, connecting and the answer). */
  readonly requestTimeoutMs: number;
  /** Budget to open a session: TCP connect plus the peer's HTTP/2 SETTINGS (a paused peer accepts TCP). */
  readonly connectTimeoutMs: number;
  /** Period of HTTP/2 PING on every open session. */
  readonly heartbeatIntervalMs: number;
  /** A PING unanswered this long marks the peer unreachable: the session is destroyed. */
  readonly heartbeatTimeoutMs: number;
  /** First delay after a failed connect before the next attempt; doubles per failure, with jitter. */
  readonly reconnectBackoffInitialMs: number;
  /** Upper bound of the reconnect delay. */
  readonly reconnectBackoffMaxMs: number;
  /** HTTP/2 flow-control window (stream and connection), both directions. */
  readonly windowSizeBytes: number;
  /** nghttp2 session memory limit; the default 10 MB kills busy sessions (ENHANCE_YOUR_CALM). */
  readonly maxSessionMemoryMb: number;
  /** How long FabricServer.stop() lets in-flight requests finish after GOAWAY before cutting them. */
  readonly drainTimeoutMs: number;
  /** HTTP/2 server implementation. */
  readonly serverTransport: ServerTransportKind;
}

export const DEFAULT_FABRIC_OPTIONS: FabricOptions = Object.freeze({
  maxInFlightPerPeer: 256,
  maxQueuedPerPeer: 4096,
  maxInFlightBytesPerPeer: 64 * 1024 * 1024,
  maxRequestBytes: 16 * 1024 * 1024,
  maxResponseBytes: 16 * 1024 * 1024,
  requestTimeoutMs: 5_000,
  connectTimeoutMs: 2_000,
  heartbeatIntervalMs: 500,
  heartbeatTimeoutMs: 1_000,
  reconnectBackoffInitialMs: 50,
  reconnectBackoffMaxMs: 2_000,
  windowSizeBytes: 16 * 1024 * 1024,
  maxSessionMemoryMb: 256,
  drainTimeoutMs: 5_000,
  serverTransport: "bun",
} satisfies FabricOptions);

/** HTTP/2 windows are 31-bit. */
const MAX_WINDOW_SIZE_BYTES = 2 ** 31 - 1;
/** setTimeout fires at once for anything above this. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Fills defaults and checks ranges. Range violations are configuration bugs caught at start-up. */
export function resolveFabricOptions(overrides: Partial<FabricOptions> = {}): FabricOptions {
  const o: FabricOptions = { ...DEFAULT_FABRIC_OPTIONS, ...stripUndefined(overrides) };
  const positiveInts: (keyof FabricOptions)[] = [
    "maxInFlightPerPeer",
    "maxInFlightBytesPerPeer",
    "maxRequestBytes",
    "maxResponseBytes",
    "requestTimeoutMs",
    "connectTimeoutMs",
    "heartbeatIntervalMs",
    "heartbeatTimeoutMs",
    "reconnectBackoffInitialMs",
    "reconnectBackoffMaxMs",
    "windowSizeBytes",
    "maxSessionMemoryMb",
  ];
  for (const key of positiveInts) {
    const v = o[key];
    invariant(typeof v === "number" && Number.isSafeInteger(v) && v > 0, `fabric option ${key} must be a positive integer, got ${String(v)}`);
  }
  invariant(Number.isSafeInteger(o.maxQueuedPerPeer) && o.maxQueuedPerPeer >= 0, "fabric option maxQueuedPerPeer must be >= 0");
  invariant(Number.isSafeInteger(o.drainTimeoutMs) && o.drainTimeoutMs >= 0, "fabric option drainTimeoutMs must be >= 0");
  invariant(o.windowSizeBytes >= 65_535 && o.windowSizeBytes <= MAX_WINDOW_SIZE_BYTES, "fabric option windowSizeBytes must be within [65535, 2^31-1]");
  invariant(o.reconnectBackoffInitialMs <= o.reconnectBackoffMaxMs, "reconnectBackoffInitialMs must not exceed reconnectBackoffMaxMs");
  invariant(o.requestTimeoutMs <= MAX_TIMER_MS && o.heartbeatTimeoutMs <= MAX_TIMER_MS, "fabric timeouts must fit a timer (< 2^31 ms)");
  invariant(o.serverTransport === "bun" || o.serverTransport === "node", `fabric option serverTransport must be "bun" or "node"`);
  return Object.freeze(o);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
