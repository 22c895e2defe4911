// The client side of one peer: its HTTP/2 sessions (one usable, others draining after GOAWAY), the
// heartbeat that detects a hung peer, reconnect backoff, and admission (in-flight calls and bytes are
// bounded; excess calls wait in a bounded FIFO queue, beyond it they fail with NET_OVERLOADED).
// Invariants: every call settles exactly once and releases its slot; a session is handed out only after
// the peer's SETTINGS arrived (a SIGSTOPped peer still accepts TCP); a dead session fails its calls.
import http2 from "node:http2";
import { CairnError, invariant } from "../observability/errors.ts";
import { fencingHeaders, type SenderIdentity } from "./fencing.ts";
import type { ClientMetrics } from "./metrics.ts";
import { OUTCOME_OK } from "./metrics.ts";
import type { FabricOptions } from "./options.ts";
import { FRAME_CONTENT_TYPE } from "./router.ts";
import type { RpcDefinition } from "./rpc.ts";
import { problemToError } from "./problem.ts";

const { NGHTTP2_CANCEL } = http2.constants;

/** Client stream ids are odd and end at 2^31-1; retire a session well before it runs out of them. */
const MAX_STREAMS_PER_SESSION = 2 ** 29;

export interface ChannelEnv {
  readonly options: FabricOptions;
  readonly metrics: ClientMetrics;
  readonly identity: () => SenderIdentity;
  /** Uniform in [0, 1): reconnect jitter. */
  readonly random: () => number;
}

/** Snapshot of a peer's connection state, for status pages and tests. */
export interface PeerStatus {
  readonly address: string;
  readonly connected: boolean;
  readonly inFlight: number;
  readonly queued: number;
  readonly consecutiveFailures: number;
  /** Milliseconds until the next connect attempt is allowed (0 = now). */
  readonly retryInMs: number;
  readonly lastFailure: string | null;
}

export class PeerChannel {
  private session: PeerSession | null = null;
  private readonly sessions = new Set<PeerSession>();
  private connecting: Promise<PeerSession> | null = null;
  private pendingH2: http2.ClientHttp2Session | null = null;
  private consecutiveFailures = 0;
  private retryAtMs = 0;
  private lastFailure: string | null = null;
  private everConnected = false;
  private closed = false;

  private inFlightBytes = 0;
  /** Calls holding an in-flight slot (connecting, sending or awaiting the answer). */
  private readonly active = new Set<Call>();
  private readonly queue: Call[] = [];
  private queueHead = 0;
  private queuedCount = 0;
  private pumping = false;
  private readonly inFlightGauge;
  private readonly queuedGauge;

  constructor(
    readonly address: string,
    private readonly authority: string,
    readonly env: ChannelEnv,
  ) {
    this.inFlightGauge = env.metrics.inFlight.labels(address);
    this.queuedGauge = env.metrics.queued.labels(address);
  }

  call(definition: RpcDefinition, body: Uint8Array, budgetMs: number, signal: AbortSignal | undefined, onSettled: CallObserver): Promise<unknown> {
    const call = new Call(this, definition, body, budgetMs, signal, onSettled);
    if (this.closed) call.fail(shuttingDown(this.address));
    else if (call.arm()) this.admit(call);
    return call.promise;
  }

  status(): PeerStatus {
    const s = this.session;
    return {
      address: this.address,
      connected: s !== null && !s.dead && !s.draining,
      inFlight: this.active.size,
      queued: this.queuedCount,
      consecutiveFailures: this.consecutiveFailures,
      retryInMs: Math.max(0, Math.ceil(this.retryAtMs - performance.now())),
      lastFailure: this.lastFailure,
    };
  }

  /** Fails every call, destroys every session and releases every timer. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = shuttingDown(this.address);
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]?.fail(error);
    for (const call of [...this.active]) call.fail(error);
    this.pendingH2?.destroy();
    const closing = [...this.sessions].map((s) => s.closed);
    for (const s of this.sessions) s.destroy(error);
    // 'close' follows destroy(); the bound only keeps a misbehaving runtime from hanging shutdown.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(closing), new Promise((resolve) => (timer = setTimeout(resolve, this.env.options.connectTimeoutMs)))]);
    clearTimeout(timer);
    this.env.metrics.inFlight.remove(this.address);
    this.env.metrics.queued.remove(this.address);
    invariant(this.active.size === 0 && this.queuedCount === 0, "calls left after PeerChannel.close");
  }

  // ---- admission ------------------------------------------------------------------------------

  private admit(call: Call): void {
    if (this.queuedCount === 0 && this.fits(call.bytes)) {
      this.take(call);
      this.dispatch(call);
      return;
    }
    if (this.queuedCount >= this.env.options.maxQueuedPerPeer) {
      call.fail(
        new CairnError("NET_OVERLOADED", `${this.active.size} calls in flight and ${this.queuedCount} queued to ${this.address}`, {
          peer: this.address,
        }),
      );
      return;
    }
    call.state = "queued";
    this.queue.push(call);
    this.queuedCount++;
    this.queuedGauge.set(this.queuedCount);
  }

  private fits(bytes: number): boolean {
    const o = this.env.options;
    if (this.active.size >= o.maxInFlightPerPeer) return false;
    // A call larger than the byte budget still goes, alone.
    return this.active.size === 0 || this.inFlightBytes + bytes <= o.maxInFlightBytesPerPeer;
  }

  private take(call: Call): void {
    call.state = "admitted";
    this.active.add(call);
    this.inFlightBytes += call.bytes;
    this.inFlightGauge.set(this.active.size);
  }

  /** Called by Call.settle exactly once per call. */
  settled(call: Call, previous: CallState): void {
    if (previous === "queued") {
      this.queuedCount--;
      this.queuedGauge.set(this.queuedCount);
      return;
    }
    if (this.active.delete(call)) {
      this.inFlightBytes -= call.bytes;
      this.inFlightGauge.set(this.active.size);
      this.pump();
    }
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.queueHead < this.queue.length) {
        const next = this.queue[this.queueHead] as Call;
        if (next.state !== "queued") {
          this.queueHead++; // settled (deadline, abort) while waiting
          continue;
        }
        if (!this.fits(next.bytes)) break;
        this.queueHead++;
        this.queuedCount--;
        this.queuedGauge.set(this.queuedCount);
        this.take(next);
        this.dispatch(next);
      }
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
    } finally {
      this.pumping = false;
    }
  }

  // ---- sessions -------------------------------------------------------------------------------

  private usableSession(): PeerSession | null {
    const s = this.session;
    if (s === null) return null;
    if (s.dead || s.draining || s.streamsOpened >= MAX_STREAMS_PER_SESSION) {
      if (!s.dead && !s.draining) s.retire();
      return null;
    }
    return s;
  }

  /** Sends an admitted call on the usable session, connecting first if needed. */
  private dispatch(call: Call): void {
    if (call.state !== "admitted") return;
    if (this.closed) {
      call.fail(shuttingDown(this.address));
      return;
    }
    const session = this.usableSession();
    if (session !== null) {
      this.send(call, session);
      return;
    }
    if (this.connecting === null) {
      const waitMs = this.retryAtMs - performance.now();
      if (waitMs > 0) {
        // Fail fast while backing off: callers have their own retry policy and deadline.
        call.fail(this.unreachable(`${this.address} is unreachable (next connect attempt in ${Math.ceil(waitMs)} ms; last failure: ${this.lastFailure})`, undefined, false));
        return;
      }
      this.connecting = this.connect();
    }
    this.connecting.then(
      () => this.dispatch(call),
      (e: unknown) => call.fail(e instanceof CairnError ? e : this.unreachable(String(e), e, false)),
    );
  }

  private send(call: Call, session: PeerSession): void {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.h2.request(
        {
          ":method": "POST",
          ":path": call.definition.path,
          "content-type": FRAME_CONTENT_TYPE,
          "content-length": call.bytes,
          ...fencingHeaders(this.env.identity(), call.remainingMs()),
        },
        { endStream: false },
      );
    } catch (e) {
      // GOAWAY arrived before we saw the event, or the session died: the request never left.
      session.retire();
      if (call.resends++ < 1) this.dispatch(call);
      else call.fail(this.unreachable(`cannot open a stream to ${this.address}: ${describe(e)}`, e, false));
      return;
    }
    session.streamsOpened++;
    call.attach(session, stream);
  }

  private connect(): Promise<PeerSession> {
    const { options } = this.env;
    const attempt = new Promise<PeerSession>((resolve, reject) => {
      let done = false;
      const h2 = http2.connect(this.authority, {
        settings: { initialWindowSize: options.windowSizeBytes, enablePush: false },
        maxSessionMemory: options.maxSessionMemoryMb,
      });
      this.pendingH2 = h2;
      const fail = (reason: string, cause?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pendingH2 = null;
        h2.destroy();
        this.connectFailed(reason);
        reject(this.unreachable(`cannot connect to ${this.address}: ${reason}`, cause, false));
      };
      const timer = setTimeout(() => fail(`no HTTP/2 handshake within ${options.connectTimeoutMs} ms`), options.connectTimeoutMs);
      h2.on("error", (e) => fail(describe(e), e)); // stays attached: PeerSession keeps the last error
      h2.once("close", () => fail("connection closed during the handshake"));
      // Not 'connect': that fires on TCP accept, which a paused process still does.
      h2.once("remoteSettings", () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pendingH2 = null;
        if (this.closed) {
          h2.destroy();
          reject(shuttingDown(this.address));
          return;
        }
        try {
          h2.setLocalWindowSize(options.windowSizeBytes);
        } catch {
          // the session is already failing; its 'close' handler takes over
        }
        resolve(this.adopt(h2));
      });
    });
    const settled = attempt.finally(() => {
      if (this.connecting === settled) this.connecting = null;
    });
    return settled;
  }

  private adopt(h2: http2.ClientHttp2Session): PeerSession {
    const session = new PeerSession(this, h2);
    this.sessions.add(session);
    this.session = session;
    this.consecutiveFailures = 0;
    this.retryAtMs = 0;
    if (this.everConnected) this.env.metrics.reconnects.labels(this.address).inc();
    this.everConnected = true;
    this.env.metrics.sessionsConnected.inc();
    return session;
  }

  /** A connect attempt or a heartbeat failed: back off exponentially, with jitter, up to the max. */
  connectFailed(reason: string): void {
    const o = this.env.options;
    this.consecutiveFailures++;
    this.lastFailure = reason;
    const exponent = Math.min(this.consecutiveFailures - 1, 30);
    const ceilingMs = Math.min(o.reconnectBackoffMaxMs, o.reconnectBackoffInitialMs * 2 ** exponent);
    this.retryAtMs = performance.now() + ceilingMs / 2 + (this.env.random() * ceilingMs) / 2;
    this.env.metrics.connectFailures.labels(this.address).inc();
  }

  sessionRetired(session: PeerSession): void {
    if (this.session === session) this.session = null;
  }

  sessionClosed(session: PeerSession): void {
    this.sessionRetired(session);
    if (this.sessions.delete(session)) this.env.metrics.sessionsConnected.dec();
  }

  /**
   * NET_UNREACHABLE with `sent`: false when the request provably never left this node (no session,
   * backing off, no stream), true when it may have reached the peer (a connection lost mid-call).
   */
  unreachable(message: string, cause: unknown, sent: boolean): CairnError {
    return new CairnError("NET_UNREACHABLE", message, { peer: this.address, sent }, cause === undefined ? undefined : { cause });
  }
}

/** One HTTP/2 session to a peer, with its heartbeat. */
class PeerSession {
  readonly calls = new Set<Call>();
  draining = false;
  dead = false;
  streamsOpened = 0;
  /** When the peer last answered on this session (response headers or a PING ack). */
  private lastHeardMs = performance.now();
  readonly closed: Promise<void>;
  private lastError: unknown = undefined;
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private pingOutstanding = false;
  private markClosed!: () => void;

  constructor(
    private readonly channel: PeerChannel,
    readonly h2: http2.ClientHttp2Session,
  ) {
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    h2.on("error", (e) => {
      this.lastError = e;
    });
    h2.on("frameError", () => {});
    h2.on("goaway", () => this.retire());
    h2.on("close", () => {
      // Lost without GOAWAY and not closed by us: count it, so a peer that accepts and drops at once
      // is retried with backoff rather than in a tight loop.
      if (!this.dead && !this.draining) this.channel.connectFailed(`connection lost${this.lastError ? `: ${describe(this.lastError)}` : ""}`);
      this.teardown(this.channel.unreachable(`connection to ${this.channel.address} lost${this.lastError ? `: ${describe(this.lastError)}` : ""}`, this.lastError, true));
      this.markClosed();
    });
    this.heartbeat = setInterval(() => this.ping(), channel.env.options.heartbeatIntervalMs);
  }

  /** Takes no new calls; in-flight ones finish (GOAWAY, or stream ids running out). */
  retire(): void {
    if (this.draining || this.dead) return;
    this.draining = true;
    this.channel.sessionRetired(this);
    try {
      this.h2.close();
    } catch {
      this.h2.destroy();
    }
  }

  /** Fails every call on the session with `error` and drops the connection. */
  destroy(error: CairnError): void {
    this.teardown(error);
    this.h2.destroy();
  }

  private teardown(error: CairnError): void {
    if (this.dead) return;
    this.dead = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.pingTimer);
    this.channel.sessionClosed(this);
    for (const call of [...this.calls]) call.fail(error);
  }

  /** The peer answered something: it is alive, the next heartbeat can be skipped. */
  heard(): void {
    this.lastHeardMs = performance.now();
  }

  private ping(): void {
    if (this.pingOutstanding || this.dead) return;
    // An answer within the last interval proves the peer alive as well as a PING would (raft
    // heartbeats alone answer several times an interval): no PING, no timeout timer, on a busy session.
    if (performance.now() - this.lastHeardMs < this.channel.env.options.heartbeatIntervalMs) return;
    let sent = false;
    try {
      sent = this.h2.ping(() => {
        this.pingOutstanding = false;
        this.heard();
        clearTimeout(this.pingTimer);
      });
    } catch {
      sent = false;
    }
    if (!sent) return;
    this.pingOutstanding = true;
    const timeoutMs = this.channel.env.options.heartbeatTimeoutMs;
    this.pingTimer = setTimeout(() => {
      // If our own event loop was blocked, the ack may sit unread in the socket: let I/O run first.
      setImmediate(() => {
        if (!this.pingOutstanding || this.dead) return;
        this.channel.env.metrics.heartbeatFailures.labels(this.channel.address).inc();
        const reason = `no answer to a heartbeat within ${timeoutMs} ms`;
        this.channel.connectFailed(reason);
        this.destroy(this.channel.unreachable(`${this.channel.address} is unreachable: ${reason}`, undefined, true));
      });
    }, timeoutMs);
  }
}

export type CallObserver = (definition: RpcDefinition, outcome: string, durationSeconds: number) => void;
type CallState = "new" | "queued" | "admitted" | "sent" | "done";

/** One RPC call from admission to answer. */
class Call {
  state: CallState = "new";
  resends = 0;
  readonly bytes: number;
  readonly promise: Promise<unknown>;
  private resolve!: (v: unknown) => void;
  private reject!: (e: unknown) => void;
  private readonly startedMs = performance.now();
  private readonly deadlineAtMs: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private session: PeerSession | null = null;
  private stream: http2.ClientHttp2Stream | null = null;
  private onAbort: (() => void) | null = null;

  constructor(
    private readonly channel: PeerChannel,
    readonly definition: RpcDefinition,
    private readonly body: Uint8Array,
    private readonly budgetMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly observe: CallObserver,
  ) {
    this.bytes = body.byteLength;
    this.deadlineAtMs = this.startedMs + budgetMs;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Starts the deadline and listens to the caller's signal; false if the call is already over. */
  arm(): boolean {
    const signal = this.signal;
    if (signal?.aborted) {
      this.fail(this.cancelled(signal.reason));
      return false;
    }
    this.timer = setTimeout(
      () => this.fail(new CairnError("NET_DEADLINE_EXCEEDED", `${this.definition.path} to ${this.channel.address}: no answer within ${this.budgetMs} ms`, { peer: this.channel.address })),
      this.budgetMs,
    );
    if (signal !== undefined) {
      this.onAbort = () => this.fail(this.cancelled(signal.reason));
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
    return true;
  }

  remainingMs(): number {
    return Math.max(1, Math.ceil(this.deadlineAtMs - performance.now()));
  }

  attach(session: PeerSession, stream: http2.ClientHttp2Stream): void {
    this.state = "sent";
    this.session = session;
    this.stream = stream;
    session.calls.add(this);
    const maxResponseBytes = this.channel.env.options.maxResponseBytes;
    let status = 0;
    let receivedBytes = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      session.heard();
    });
    stream.on("data", (chunk: Buffer) => {
      if (this.state === "done") return;
      receivedBytes += chunk.length;
      if (receivedBytes > maxResponseBytes) {
        this.fail(new CairnError("NET_BAD_RESPONSE", `response of ${this.definition.path} exceeds net.max-response-bytes = ${maxResponseBytes}`, { peer: this.channel.address }));
        return;
      }
      chunks.push(chunk);
    });
    stream.on("end", () => {
      if (this.state === "done") return;
      this.stream = null; // the answer is complete: nothing left to cancel
      if (status === 0) {
        // The stream ended without response headers: the connection was cut under it.
        this.fail(this.channel.unreachable(`${this.definition.path} to ${this.channel.address}: the stream ended before an answer`, undefined, true));
        return;
      }
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (status === 200) {
        try {
          this.succeed(this.definition.decodeResponse(body));
        } catch (e) {
          this.fail(e instanceof CairnError ? e : new CairnError("NET_BAD_RESPONSE", String(e), { peer: this.channel.address }));
        }
      } else {
        this.fail(problemToError(status, body, this.channel.address));
      }
    });
    stream.on("error", (e) => this.fail(this.channel.unreachable(`${this.definition.path} to ${this.channel.address} failed: ${describe(e)}`, e, true)));
    stream.on("close", () => {
      if (this.state !== "done") {
        this.fail(this.channel.unreachable(`${this.definition.path} to ${this.channel.address}: stream closed (code ${stream.rstCode}) before an answer`, undefined, true));
      }
    });
    stream.end(this.body);
  }

  fail(error: CairnError): void {
    this.settle(error, undefined);
  }

  private succeed(value: unknown): void {
    this.settle(undefined, value);
  }

  private settle(error: CairnError | undefined, value: unknown): void {
    if (this.state === "done") return;
    const previous = this.state;
    this.state = "done";
    clearTimeout(this.timer);
    if (this.onAbort !== null) this.signal?.removeEventListener("abort", this.onAbort);
    const stream = this.stream;
    if (stream !== null && !stream.closed && !stream.destroyed) {
      try {
        stream.close(NGHTTP2_CANCEL);
      } catch {
        // already gone
      }
    }
    this.session?.calls.delete(this);
    this.channel.settled(this, previous);
    this.observe(this.definition, error === undefined ? OUTCOME_OK : error.code, (performance.now() - this.startedMs) / 1000);
    if (error === undefined) this.resolve(value);
    else this.reject(error);
  }

  private cancelled(reason: unknown): CairnError {
    return new CairnError("NET_DEADLINE_EXCEEDED", `${this.definition.path} to ${this.channel.address}: cancelled by the caller`, { peer: this.channel.address }, { cause: reason });
  }
}

function shuttingDown(address: string): CairnError {
  return new CairnError("NET_SHUTTING_DOWN", `the fabric client is closed; call to ${address} not made`, { peer: address });
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
