// What bifrost knows about the other nodes: the nodes configuration (ids, generations, roles, fabric
// addresses; refreshed from the metadata store) and, on the log controller, what probing each node
// found. Liveness is a plain record of observations with the clock passed in, so its rules are
// testable: a node is alive while its last answer is younger than the failure timeout; dead once it
// has been silent (or never answered) for that long since it was first probed, or as soon as its
// fabric port has refused connections for `refusedDeadMs` (at least two probes, nothing else in
// between): a refusal means no process listens there (killed, stopped), which a paused or merely
// slow node, still accepting TCP in its kernel backlog, never produces. Unknown otherwise.
import { connect } from "node:net";
import type { MetadataApi } from "../metadata/api.ts";
import { KEYS, type NodesConfiguration } from "../metadata/nodes-config.ts";
import { nodeId, type NodeId } from "../ids/index.ts";

export interface KnownNode {
  readonly id: NodeId;
  readonly name: string;
  /** The generation that last registered (a higher one than a segment's sequencer means it restarted). */
  readonly generation: number;
  readonly logServer: boolean;
  /** Runs partition processors (the partition controller places leaders and followers on it). */
  readonly worker: boolean;
  readonly fabricAddress: string;
}

export class NodeDirectory {
  private nodes = new Map<NodeId, KnownNode>();
  private version = 0;

  /** Re-reads the nodes configuration (a stale read is enough: addresses and generations only grow). */
  async refresh(api: MetadataApi): Promise<void> {
    const v = await api.get(KEYS.nodesConfig, { consistency: "stale" });
    if (v === undefined || v.version < this.version) return;
    this.version = v.version;
    this.update(v.value as NodesConfiguration);
  }

  update(config: NodesConfiguration): void {
    const next = new Map<NodeId, KnownNode>();
    for (const n of config.nodes) {
      const id = nodeId(n.id);
      next.set(id, { id, name: n.name, generation: n.generation, logServer: n.roles.includes("log-server"), worker: n.roles.includes("worker"), fabricAddress: n.fabricAddress });
    }
    this.nodes = next;
  }

  addressOf(id: NodeId): string | undefined {
    return this.nodes.get(id)?.fabricAddress;
  }

  node(id: NodeId): KnownNode | undefined {
    return this.nodes.get(id);
  }

  all(): KnownNode[] {
    return [...this.nodes.values()];
  }

  logServers(): KnownNode[] {
    return this.all().filter((n) => n.logServer);
  }

  workers(): KnownNode[] {
    return this.all().filter((n) => n.worker);
  }
}

export type Liveness = "alive" | "dead" | "unknown";

/** What one probe of a node found. */
export type ProbeResult =
  /** It answered the ping, from this generation. */
  | { readonly kind: "answered"; readonly generation: number }
  /** No answer, and a TCP connection to its fabric address was refused: nothing listens there. */
  | { readonly kind: "refused" }
  /** No answer (timeout, lost connection, TCP accepted or not tried): proves nothing by itself. */
  | { readonly kind: "silent" };

export const ANSWERED = (generation: number): ProbeResult => ({ kind: "answered", generation });
export const REFUSED: ProbeResult = Object.freeze({ kind: "refused" });
export const SILENT: ProbeResult = Object.freeze({ kind: "silent" });

/** Refused probes in a row needed (besides their span) before a node counts as gone. */
export const MIN_REFUSALS = 2;

interface Observation {
  firstProbeMs: number;
  lastOkMs: number | undefined;
  /** The generation the node answered with last. */
  generation: number | undefined;
  /** The latest probe got no answer. */
  lastFailed: boolean;
  /** Refused probes since the last probe that was not refused, and when the first of them was. */
  refusals: number;
  firstRefusalMs: number;
  /** Refusals proved the process gone; only an answer clears it. */
  gone: boolean;
}

export class LivenessTracker {
  private readonly seen = new Map<NodeId, Observation>();

  /**
   * `failureTimeoutMs`: silence that makes a node dead. `refusedDeadMs`: span of consecutive refused
   * probes (at least MIN_REFUSALS) that makes it dead sooner; 0 turns that rule off.
   */
  constructor(
    private readonly failureTimeoutMs: number,
    private readonly refusedDeadMs = 0,
  ) {}

  probed(id: NodeId, nowMs: number, result: ProbeResult): void {
    let o = this.seen.get(id);
    if (!o) {
      o = { firstProbeMs: nowMs, lastOkMs: undefined, generation: undefined, lastFailed: false, refusals: 0, firstRefusalMs: 0, gone: false };
      this.seen.set(id, o);
    }
    o.lastFailed = result.kind !== "answered";
    switch (result.kind) {
      case "answered":
        o.lastOkMs = nowMs;
        o.generation = result.generation;
        o.refusals = 0;
        o.gone = false;
        break;
      case "refused":
        if (o.refusals === 0) o.firstRefusalMs = nowMs;
        o.refusals++;
        if (this.refusedDeadMs > 0 && o.refusals >= MIN_REFUSALS && nowMs - o.firstRefusalMs >= this.refusedDeadMs) o.gone = true;
        break;
      case "silent":
        // Not consecutive any more; a verdict already reached stays until the node answers.
        if (!o.gone) o.refusals = 0;
        break;
    }
  }

  status(id: NodeId, nowMs: number): Liveness {
    const o = this.seen.get(id);
    if (!o) return "unknown";
    if (o.gone) return "dead";
    if (nowMs - (o.lastOkMs ?? o.firstProbeMs) >= this.failureTimeoutMs) return "dead";
    // A node whose port refuses is no longer "alive" (no new segment is placed on it), dead or not yet.
    return o.lastOkMs === undefined || o.refusals > 0 ? "unknown" : "alive";
  }

  /** Dead because its port refused connections (not merely silent); only an answer clears it. */
  refusedDead(id: NodeId): boolean {
    return this.seen.get(id)?.gone === true;
  }

  /** The latest probe of this node got no answer and it is not dead yet: worth probing again soon. */
  suspect(id: NodeId, nowMs: number): boolean {
    return this.seen.get(id)?.lastFailed === true && this.status(id, nowMs) !== "dead";
  }

  /** The generation the node last answered with (its current process), if it ever answered. */
  generation(id: NodeId): number | undefined {
    return this.seen.get(id)?.generation;
  }

  /** Forget everything (a new controller starts from scratch). */
  reset(): void {
    this.seen.clear();
  }
}

/**
 * Whether a TCP connection to `address` (`host:port`) is actively refused (ECONNREFUSED): nothing
 * listens there. An accepted connection (closed at once), any other error or the end of `signal`
 * (the caller's budget) answers false.
 */
export function connectionRefused(address: string, signal: AbortSignal): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const url = new URL(address.includes("://") ? address : `http://${address}`);
    host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    port = Number(url.port);
  } catch {
    return Promise.resolve(false);
  }
  if (!(port > 0) || signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let settled = false;
    const done = (refused: boolean): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(refused);
    };
    const onAbort = (): void => done(false);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done(false));
    // Stays attached: an 'error' without a listener would be thrown.
    socket.on("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED"));
  });
}
