// The simulator's world: virtual time, a seeded event queue, a fake network (delay, drop,
// duplicate, reorder by random delays), log-servers with group-committed writes that a crash loses
// unless flushed, and actors that run the pure cores. Everything is driven by one SeededRandom, so a
// seed replays the same run exactly.
import { SeededRandom, type CoreRequest, type ProtocolCore, type RpcOutcome } from "../../../src/bifrost/replicated/index.ts";
import type { NodeId } from "../../../src/ids/index.ts";
import { MemoryLogServer } from "./memory-server.ts";

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

/** A binary min-heap on (at, seq): ties run in scheduling order, so runs are deterministic. */
class EventQueue {
  private heap: Event[] = [];

  push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): Event | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  get size(): number {
    return this.heap.length;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export interface NetworkFaults {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  /**
   * How often a request to a down server fails at once (a killed process's port refuses
   * connections: the fabric's NET_UNREACHABLE) instead of going unanswered until a timeout.
   */
  readonly refuseWhenDownProbability?: number;
}

export class World {
  now = 0;
  readonly random: SeededRandom;
  private readonly queue = new EventQueue();
  private seq = 0;
  private readonly traceLines: string[] = [];
  private stopped = false;
  eventsRun = 0;

  constructor(
    readonly seed: number,
    readonly network: NetworkFaults,
    private readonly traceLimit = 600,
  ) {
    this.random = new SeededRandom(seed);
  }

  schedule(delayMs: number, run: () => void): void {
    this.queue.push({ at: this.now + Math.max(0, delayMs), seq: this.seq++, run });
  }

  trace(line: string): void {
    this.traceLines.push(`${this.now.toFixed(3).padStart(9)} ${line}`);
    if (this.traceLines.length > this.traceLimit * 2) this.traceLines.splice(0, this.traceLines.length - this.traceLimit);
  }

  traceTail(): string[] {
    return this.traceLines.slice(-this.traceLimit);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Runs events until stop() or the time limit; returns whether it stopped by itself. */
  run(limitMs: number): boolean {
    while (!this.stopped) {
      const e = this.queue.pop();
      if (!e) return true;
      if (e.at > limitMs) return false;
      this.now = e.at;
      this.eventsRun++;
      e.run();
    }
    return true;
  }

  between(lo: number, hi: number): number {
    return lo + this.random.float() * (hi - lo);
  }

  chance(p: number): boolean {
    return this.random.float() < p;
  }

  /** Sends a message: maybe dropped, maybe delivered twice, each copy after its own random delay. */
  send(label: string, deliver: () => void): void {
    const n = this.network;
    if (this.chance(n.dropProbability)) {
      this.trace(`drop ${label}`);
      return;
    }
    const copies = this.chance(n.duplicateProbability) ? 2 : 1;
    for (let i = 0; i < copies; i++) this.schedule(this.between(n.minDelayMs, n.maxDelayMs), deliver);
  }
}

interface QueuedWrite {
  readonly request: CoreRequest;
  readonly respond: (outcome: RpcOutcome) => void;
}

/**
 * A log-server in the world. Reads answer from durable state at once; writes (store, seal, trim)
 * queue and are applied and answered together when the simulated fsync completes (group commit).
 * A crash loses the queue (those writes were never answered); a wipe also loses durable state and
 * the server comes back non-authoritative.
 */
export class SimServer {
  up = true;
  wiped = false;
  state: MemoryLogServer = new MemoryLogServer();
  private queue: QueuedWrite[] = [];
  private flushScheduled = false;
  private epoch = 0;
  flushes = 0;

  constructor(
    readonly id: NodeId,
    private readonly world: World,
    private readonly diskLatencyMs: readonly [number, number],
  ) {}

  handle(request: CoreRequest, respond: (outcome: RpcOutcome) => void): void {
    if (!this.up) return; // a down server answers nothing; the caller times out
    switch (request.rpc) {
      case "store":
      case "seal":
      case "trim":
        this.queue.push({ request, respond });
        this.scheduleFlush();
        return;
      case "getLogletInfo":
        return respond({ ok: true, rpc: "getLogletInfo", response: this.state.getLogletInfo(request.request) });
      case "getRecords":
        return respond({ ok: true, rpc: "getRecords", response: this.state.getRecords(request.request) });
      case "getDigest":
        return respond({ ok: true, rpc: "getDigest", response: this.state.getDigest(request.request) });
      case "waitForTail":
        throw new Error("the loglet cores do not use waitForTail; the simulator does not model it");
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const epoch = this.epoch;
    this.world.schedule(this.world.between(this.diskLatencyMs[0], this.diskLatencyMs[1]), () => {
      if (epoch !== this.epoch) return; // crashed meanwhile: the queued writes are gone
      this.flushScheduled = false;
      const batch = this.queue;
      this.queue = [];
      this.flushes++;
      for (const w of batch) w.respond(this.apply(w.request));
      this.world.trace(`${this.id} fsync ${batch.length} writes`);
    });
  }

  private apply(r: CoreRequest): RpcOutcome {
    switch (r.rpc) {
      case "store":
        return { ok: true, rpc: "store", response: this.state.store(r.request) };
      case "seal":
        return { ok: true, rpc: "seal", response: this.state.seal(r.request) };
      case "trim":
        return { ok: true, rpc: "trim", response: this.state.trim(r.request) };
      default:
        throw new Error(`not a write: ${r.rpc}`);
    }
  }

  crash(): void {
    this.world.trace(`${this.id} CRASH (${this.queue.length} unsynced writes lost)`);
    this.up = false;
    this.epoch++;
    this.queue = [];
    this.flushScheduled = false;
  }

  /** The disk is gone too: the server returns empty and knows it lost data. */
  wipe(): void {
    this.crash();
    this.wiped = true;
    this.state = new MemoryLogServer(true);
    this.world.trace(`${this.id} WIPED`);
  }

  restart(): void {
    this.world.trace(`${this.id} restart${this.wiped ? " (data lost, non-authoritative)" : ""}`);
    this.up = true;
  }
}

/** Runs a pure core inside the world: ticks it, routes its requests over the network. */
export class CoreActor<E> {
  alive = true;

  constructor(
    readonly name: string,
    readonly core: ProtocolCore<E>,
    private readonly world: World,
    private readonly servers: ReadonlyMap<NodeId, SimServer>,
    private readonly onEvent: (event: E) => void,
    private readonly tickMs = 1,
  ) {}

  start(): void {
    const tick = () => {
      if (!this.alive) return;
      this.core.tick();
      this.pump();
      this.world.schedule(this.tickMs, tick);
    };
    this.world.schedule(this.tickMs, tick);
    this.pump();
  }

  kill(): void {
    this.alive = false;
    this.world.trace(`${this.name} LOST`);
  }

  pump(): void {
    while (this.alive && this.core.hasReady()) {
      const ready = this.core.ready();
      this.core.advance();
      for (const r of ready.requests) this.dispatch(r);
      for (const e of ready.events) this.onEvent(e);
    }
  }

  private dispatch(r: CoreRequest): void {
    const server = this.servers.get(r.to);
    if (!server) throw new Error(`no server ${r.to}`);
    const label = `${this.name}->${r.to} ${r.rpc}#${r.id}${r.rpc === "store" ? `@${r.request.firstOffset}+${r.request.payloads.length}` : ""}`;
    this.world.send(label, () => {
      const reply = (outcome: RpcOutcome) => {
        const what = outcome.ok ? (outcome.rpc === "store" ? outcome.response.status : "ok") : outcome.error;
        this.world.send(`${r.to}->${this.name} ${r.rpc}#${r.id} ${what}`, () => {
          if (!this.alive) return;
          this.core.receive(r.id, outcome);
          this.pump();
        });
      };
      // The server is down and its port refuses: the request fails at once.
      if (!server.up && this.world.chance(this.world.network.refuseWhenDownProbability ?? 0)) return reply({ ok: false, error: "connection refused" });
      server.handle(r, reply);
    });
  }
}
