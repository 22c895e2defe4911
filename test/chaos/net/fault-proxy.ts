// A userspace TCP proxy mesh for the peer fabric. One listener per destination node, on that node's
// own loopback address (127.0.0.1x); the node advertises the listener as its fabric address, so every
// peer dials it. The source of each connection is identified when it is accepted (see socket-owner.ts),
// so faults apply per directed link (source → destination): bytes flowing from A to B, on connections
// either of them opened, go through link A→B. Modes per link:
//   pass            forward as is
//   drop            hold every byte (a blackhole that keeps connections open, like a partition:
//                   TCP would retransmit; the peers' heartbeats and deadlines notice); on heal the
//                   held bytes are delivered, as TCP would after a short partition
//   reset           reset every connection carrying the link now, and every new one at once
//   delay           deliver each chunk ms + jitter later, in order
// Besides links, a destination's listener can be closed (`refuse`): every connection to it is reset
// and new ones are refused by the kernel (nothing listens), as if its process were gone, while the
// process lives; `accept` listens again on the same address.
// Invariants: bytes of one direction are delivered in order, at most once; a socket error on one side
// becomes a reset on the other (through the link, so a partitioned link also holds resets back); the
// proxy connects only to loopback addresses; close() destroys every socket and listener.
import net from "node:net";
import type { Rng } from "../rng.ts";

export type LinkMode =
  | { readonly kind: "pass" }
  | { readonly kind: "drop" }
  | { readonly kind: "reset" }
  | { readonly kind: "delay"; readonly ms: number; readonly jitterMs: number };

export const PASS: LinkMode = { kind: "pass" };
export const DROP: LinkMode = { kind: "drop" };
export const RESET: LinkMode = { kind: "reset" };

/** Who opened a connection: a node name, or null when unknown (then only the "*" links apply). */
export type Identify = (socket: net.Socket) => string | null;

/** Source name used for connections whose opener is not a known node. */
export const UNKNOWN_SOURCE = "*";

const MAX_HELD_BYTES = 16 * 1024 * 1024;
const PAUSE_INPUT_BYTES = 4 * 1024 * 1024;
const RESUME_INPUT_BYTES = 1024 * 1024;

type Item = { readonly kind: "data"; readonly bytes: Buffer } | { readonly kind: "end" } | { readonly kind: "reset" };

interface Queued {
  due: number;
  readonly item: Item;
}

/** One direction of one connection: the bytes from `input` on their way to `output`. */
class Pump {
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private lastDue = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private output: net.Socket | null = null;
  private blocked = false;
  private finished = false;

  /** Where the bytes come from (paused while too much is queued); set once it exists. */
  input: net.Socket | null = null;

  constructor(
    readonly link: () => LinkMode,
    private readonly rng: Rng,
    private readonly onReset: () => void,
  ) {}

  attach(output: net.Socket): void {
    this.output = output;
    output.on("drain", () => {
      this.blocked = false;
      this.flush();
    });
    this.flush();
  }

  push(item: Item): void {
    if (this.finished) return;
    const mode = this.link();
    if (mode.kind === "reset") {
      this.onReset();
      return;
    }
    const now = performance.now();
    let due = now;
    if (mode.kind === "drop") due = Infinity;
    else if (mode.kind === "delay") due = now + mode.ms + (mode.jitterMs > 0 ? this.rng.int(0, mode.jitterMs) : 0);
    due = Math.max(due, this.lastDue);
    this.lastDue = due === Infinity ? this.lastDue : due;
    this.queue.push({ due, item });
    if (item.kind === "data") {
      this.queuedBytes += item.bytes.length;
      if (this.queuedBytes > MAX_HELD_BYTES) {
        this.onReset();
        return;
      }
      if (this.queuedBytes > PAUSE_INPUT_BYTES) this.input?.pause();
    }
    this.flush();
  }

  /** The link's mode changed: held items become due under the new mode. */
  relink(): void {
    const mode = this.link();
    if (mode.kind === "reset") {
      this.onReset();
      return;
    }
    if (mode.kind === "drop") return;
    const now = performance.now();
    this.lastDue = Math.max(this.lastDue, now);
    for (const q of this.queue) {
      if (q.due === Infinity) {
        q.due = mode.kind === "delay" ? this.lastDue + mode.ms : this.lastDue;
        this.lastDue = q.due;
      }
    }
    this.flush();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const out = this.output;
    if (out === null || this.blocked || this.finished) return;
    const now = performance.now();
    while (this.queue.length > 0) {
      const head = this.queue[0] as Queued;
      if (head.due > now) {
        if (head.due !== Infinity) this.timer = setTimeout(() => this.flush(), Math.max(1, head.due - now));
        return;
      }
      this.queue.shift();
      const item = head.item;
      if (item.kind === "reset") {
        this.finished = true;
        this.onReset();
        return;
      }
      if (item.kind === "end") {
        this.finished = true;
        out.end();
        return;
      }
      this.queuedBytes -= item.bytes.length;
      if (this.queuedBytes < RESUME_INPUT_BYTES && this.input?.isPaused()) this.input.resume();
      if (out.destroyed) return;
      if (!out.write(item.bytes)) {
        this.blocked = true;
        return;
      }
    }
  }

  stop(): void {
    this.finished = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

class ProxiedConnection {
  upstream: net.Socket | null = null;
  source: string = UNKNOWN_SOURCE;
  private closed = false;
  readonly toDest: Pump;
  readonly toSource: Pump;

  constructor(
    readonly mesh: FaultProxy,
    readonly destination: string,
    readonly client: net.Socket,
  ) {
    this.toDest = new Pump(() => mesh.link(this.source, destination), mesh.rng, () => this.reset());
    this.toDest.input = client;
    this.toSource = new Pump(() => mesh.link(destination, this.source), mesh.rng, () => this.reset());
    // Answers (and resets) reach the client through the link's mode from the start.
    this.toSource.attach(client);
  }

  /** Abort both sides with a TCP reset. */
  reset(): void {
    if (this.closed) return;
    this.closed = true;
    this.toDest.stop();
    this.toSource.stop();
    for (const s of [this.client, this.upstream]) {
      if (s === null || s.destroyed) continue;
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
    this.mesh.forget(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.toDest.stop();
    this.toSource.stop();
    this.client.destroy();
    this.upstream?.destroy();
    this.mesh.forget(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export interface ProxyStats {
  connections: number;
  refused: number;
  resets: number;
  unidentified: number;
}

export class FaultProxy {
  private readonly listeners = new Map<string, net.Server>();
  /** Where each destination listens (kept while its listener is closed by `refuse`). */
  private readonly listenAddresses = new Map<string, { host: string; port: number }>();
  /** Destinations whose listener `refuse` closed. */
  private readonly refusing = new Set<string>();
  private readonly targets = new Map<string, { host: string; port: number }>();
  private readonly links = new Map<string, LinkMode>();
  private readonly connections = new Set<ProxiedConnection>();
  readonly stats: ProxyStats = { connections: 0, refused: 0, resets: 0, unidentified: 0 };

  constructor(
    readonly rng: Rng,
    private readonly identify: Identify,
    /** Local address to bind when connecting on behalf of a source (so the destination sees its IP). */
    private readonly sourceAddress: (source: string) => string | undefined = () => undefined,
  ) {}

  /** Opens the listener for `destination` on `host` (port 0 = any); returns `host:port`. */
  async listen(destination: string, host: string, port = 0): Promise<string> {
    assertLoopback(host);
    if (this.listeners.has(destination)) throw new Error(`proxy: ${destination} already has a listener`);
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.acceptConnection(destination, socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.listeners.set(destination, server);
    const a = server.address() as net.AddressInfo;
    this.listenAddresses.set(destination, { host, port: a.port });
    return `${host}:${a.port}`;
  }

  /**
   * Closes `destination`'s listener and resets every connection to or from it: connecting to its
   * address is refused (ECONNREFUSED) until `accept`. Returns the connections reset.
   */
  async refuse(destination: string): Promise<number> {
    const server = this.listeners.get(destination);
    if (server === undefined || this.refusing.has(destination)) return 0;
    this.refusing.add(destination);
    this.listeners.delete(destination);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const reset = this.resetConnections(destination);
    await closed;
    return reset;
  }

  /** Listens for `destination` again on the address `refuse` closed. */
  async accept(destination: string): Promise<void> {
    if (!this.refusing.has(destination)) return;
    const address = this.listenAddresses.get(destination);
    if (address === undefined) throw new Error(`proxy: ${destination} never listened`);
    this.refusing.delete(destination);
    // The same port again: peers know the node by it. A port just closed is free to listen on at once.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.listen(destination, address.host, address.port);
        return;
      } catch (e) {
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Destinations whose listener is closed. */
  refused(): string[] {
    return [...this.refusing];
  }

  /** Where connections to `destination` go (its real fabric address). Existing ones are not moved. */
  setTarget(destination: string, host: string, port: number): void {
    assertLoopback(host);
    this.targets.set(destination, { host, port });
  }

  link(from: string, to: string): LinkMode {
    return this.links.get(`${from}>${to}`) ?? this.links.get(`${UNKNOWN_SOURCE}>${to}`) ?? this.links.get(`${from}>${UNKNOWN_SOURCE}`) ?? PASS;
  }

  /** Sets the mode of the directed link from → to (use UNKNOWN_SOURCE for "any source"). */
  setLink(from: string, to: string, mode: LinkMode): void {
    if (mode.kind === "pass") this.links.delete(`${from}>${to}`);
    else this.links.set(`${from}>${to}`, mode);
    this.relinkAll();
  }

  /** Every link back to pass; held bytes are delivered. */
  heal(): void {
    this.links.clear();
    this.relinkAll();
  }

  /** Resets every open connection between a and b (either direction); both undefined = all. */
  resetConnections(a?: string, b?: string): number {
    let n = 0;
    for (const c of [...this.connections]) {
      const ends = [c.source, c.destination];
      if (a !== undefined && !ends.includes(a)) continue;
      if (b !== undefined && !ends.includes(b)) continue;
      c.reset();
      n++;
    }
    this.stats.resets += n;
    return n;
  }

  openConnections(): Array<{ source: string; destination: string }> {
    return [...this.connections].map((c) => ({ source: c.source, destination: c.destination }));
  }

  forget(c: ProxiedConnection): void {
    this.connections.delete(c);
  }

  async close(): Promise<void> {
    for (const c of [...this.connections]) c.close();
    await Promise.all(
      [...this.listeners.values()].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
          }),
      ),
    );
    this.listeners.clear();
  }

  private tryIdentify(client: net.Socket): string | null {
    try {
      return this.identify(client);
    } catch {
      return null;
    }
  }

  /** The kernel table or the process list may lag the accept by a moment: look again a few times. */
  private identifyLater(conn: ProxiedConnection, client: net.Socket, attempt: number): void {
    setTimeout(() => {
      if (conn.isClosed || client.destroyed) return;
      const source = this.tryIdentify(client);
      if (source !== null) {
        conn.source = source;
        conn.toDest.relink();
        if (!conn.isClosed) conn.toSource.relink();
        if (!conn.isClosed && this.link(source, conn.destination).kind === "reset") conn.reset();
        return;
      }
      if (attempt < 3) this.identifyLater(conn, client, attempt + 1);
      else this.stats.unidentified++;
    }, 10 * attempt);
  }

  private relinkAll(): void {
    for (const c of [...this.connections]) {
      c.toDest.relink();
      if (!c.isClosed) c.toSource.relink();
    }
  }

  private acceptConnection(destination: string, client: net.Socket): void {
    this.stats.connections++;
    const conn = new ProxiedConnection(this, destination, client);
    this.connections.add(conn);
    client.setNoDelay(true);
    // Bytes that arrive before the source is known wait in the pump.
    client.on("data", (bytes: Buffer) => conn.toDest.push({ kind: "data", bytes }));
    client.on("end", () => conn.toDest.push({ kind: "end" }));
    client.on("error", () => conn.toDest.push({ kind: "reset" }));
    client.on("close", () => {
      if (!conn.isClosed && conn.upstream === null) conn.close();
    });
    const source = this.tryIdentify(client);
    conn.source = source ?? UNKNOWN_SOURCE;
    if (source === null) this.identifyLater(conn, client, 1);
    const target = this.targets.get(destination);
    if (target === undefined || this.link(conn.source, destination).kind === "reset") {
      this.stats.refused++;
      conn.reset();
      return;
    }
    const localAddress = this.sourceAddress(conn.source);
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
    conn.upstream = upstream;
    conn.toSource.input = upstream;
    upstream.setNoDelay(true);
    upstream.on("connect", () => conn.toDest.attach(upstream));
    upstream.on("data", (bytes: Buffer) => conn.toSource.push({ kind: "data", bytes }));
    upstream.on("end", () => conn.toSource.push({ kind: "end" }));
    upstream.on("error", () => conn.toSource.push({ kind: "reset" }));
    upstream.on("close", () => {
      // Both directions ended normally: nothing left to carry.
      if (!conn.isClosed && client.destroyed) conn.close();
    });
    client.on("close", () => {
      if (!conn.isClosed && upstream.destroyed) conn.close();
    });
  }
}

/** The harness sends traffic only to 127.0.0.0/8. */
export function assertLoopback(host: string): void {
  if (!/^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(host)) throw new Error(`chaos harness: ${host} is not a loopback address`);
}
