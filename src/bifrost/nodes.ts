// What bifrost knows about the other nodes: the nodes configuration (ids, generations, roles, fabric
// addresses; refreshed from the metadata store) and, on the log controller, how recently each node
// answered a ping. Liveness is a plain record of observations with the clock passed in, so its rule
// is testable: a node is alive while its last answer is younger than the failure timeout, dead once
// it has been silent (or never answered) for that long since it was first probed, unknown before.
import type { MetadataApi } from "../metadata/api.ts";
import { KEYS, type NodesConfiguration } from "../metadata/nodes-config.ts";
import { nodeId, type NodeId } from "./types.ts";

export interface KnownNode {
  readonly id: NodeId;
  readonly name: string;
  /** The generation that last registered (a higher one than a segment's sequencer means it restarted). */
  readonly generation: number;
  readonly logServer: boolean;
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
      next.set(id, { id, name: n.name, generation: n.generation, logServer: n.roles.includes("log-server"), fabricAddress: n.fabricAddress });
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
}

export type Liveness = "alive" | "dead" | "unknown";

interface Observation {
  firstProbeMs: number;
  lastOkMs: number | undefined;
  /** The generation the node answered with last. */
  generation: number | undefined;
}

export class LivenessTracker {
  private readonly seen = new Map<NodeId, Observation>();

  constructor(private readonly failureTimeoutMs: number) {}

  probed(id: NodeId, nowMs: number, answer: { generation: number } | undefined): void {
    let o = this.seen.get(id);
    if (!o) {
      o = { firstProbeMs: nowMs, lastOkMs: undefined, generation: undefined };
      this.seen.set(id, o);
    }
    if (answer) {
      o.lastOkMs = nowMs;
      o.generation = answer.generation;
    }
  }

  status(id: NodeId, nowMs: number): Liveness {
    const o = this.seen.get(id);
    if (!o) return "unknown";
    if (o.lastOkMs !== undefined && nowMs - o.lastOkMs < this.failureTimeoutMs) return "alive";
    return nowMs - (o.lastOkMs ?? o.firstProbeMs) >= this.failureTimeoutMs ? "dead" : "unknown";
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
