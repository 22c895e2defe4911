// Tuning knobs of the peer fabric, one object shared by FabricServer and FabricClient. Every bound the
// fabric keeps (bodies, in-flight calls, queues, timers) is a named value here with a default; names
// carry their unit. The node maps the `net.*` configuration keys onto these one to one.
import { CairnError } from "../observability/errors.ts";

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

/** Fills defaults and checks ranges; a value out of range is CONFIG_INVALID naming its `net.*` key. */
export function resolveFabricOptions(overrides: Partial<FabricOptions> = {}): FabricOptions {
  const o: FabricOptions = { ...DEFAULT_FABRIC_OPTIONS, ...stripUndefined(overrides) };
  const check = (ok: boolean, key: keyof FabricOptions, requirement: string): void => {
    if (!ok) throw new CairnError("CONFIG_INVALID", `${configKeyOf(key)} = ${String(o[key])}: must be ${requirement}`, { key: configKeyOf(key) });
  };
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
    "maxSessionMemoryMb",
  ];
  for (const key of positiveInts) {
    const v = o[key];
    check(typeof v === "number" && Number.isSafeInteger(v) && v > 0, key, "a positive integer");
  }
  for (const key of ["requestTimeoutMs", "connectTimeoutMs", "heartbeatIntervalMs", "heartbeatTimeoutMs", "drainTimeoutMs"] as const) {
    check(o[key] <= MAX_TIMER_MS, key, `at most ${MAX_TIMER_MS} (a timer's range)`);
  }
  check(Number.isSafeInteger(o.maxQueuedPerPeer) && o.maxQueuedPerPeer >= 0, "maxQueuedPerPeer", "an integer >= 0");
  check(Number.isSafeInteger(o.drainTimeoutMs) && o.drainTimeoutMs >= 0, "drainTimeoutMs", "an integer >= 0");
  check(Number.isSafeInteger(o.windowSizeBytes) && o.windowSizeBytes >= 65_535 && o.windowSizeBytes <= MAX_WINDOW_SIZE_BYTES, "windowSizeBytes", "an integer within [65535, 2^31-1]");
  check(o.reconnectBackoffInitialMs <= o.reconnectBackoffMaxMs, "reconnectBackoffInitialMs", "at most net.reconnect-backoff-max-ms");
  check(o.serverTransport === "bun" || o.serverTransport === "node", "serverTransport", `"bun" or "node"`);
  return Object.freeze(o);
}

/** `maxInFlightPerPeer` → `net.max-in-flight-per-peer`. */
export function configKeyOf(option: keyof FabricOptions): string {
  return `net.${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
