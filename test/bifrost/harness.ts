// An in-process cluster for bifrost tests: N "nodes", each with its own SQLite record store and its
// own Bifrost, sharing one in-memory metadata store. Peers call each other's bifrost directly; a node
// marked down refuses every call (its store and its bifrost), as a dead process would.
import { join } from "node:path";
import { Bifrost, type BifrostOptions } from "../../src/bifrost/bifrost.ts";
import { LOGS_KEY, initialLogsDocument } from "../../src/bifrost/chain.ts";
import type { Candidate } from "../../src/bifrost/placement.ts";
import { SeededRandom } from "../../src/bifrost/replicated/random.ts";
import type { LogServerTransport } from "../../src/bifrost/replicated/transport.ts";
import type { BifrostPeers } from "../../src/bifrost/rpc.ts";
import { nodeId, type NodeId } from "../../src/ids/index.ts";
import { LogStore } from "../../src/logserver/index.ts";
import type { MetadataApi, MetadataListOptions, MetadataListPage } from "../../src/metadata/api.ts";
import { kvFailure } from "../../src/metadata/api.ts";
import { DOES_NOT_EXIST, KvStateMachine, type Precondition, type Version, type VersionedValue } from "../../src/metadata/kv.ts";
import { KEYS, type NodesConfiguration } from "../../src/metadata/nodes-config.ts";
import { CairnError } from "../../src/observability/errors.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { createRegistry } from "../../src/observability/metrics.ts";

/** MetadataApi over one in-memory KV state machine; values are copied in and out like a real store. */
export class MemoryMetadata implements MetadataApi {
  readonly kv = new KvStateMachine();
  puts = 0;

  async get(key: string): Promise<VersionedValue | undefined> {
    const v = this.kv.get(key);
    return v === undefined ? undefined : { value: structuredClone(v.value), version: v.version };
  }

  async list(options: MetadataListOptions = {}): Promise<MetadataListPage> {
    const keys = this.kv.list(options.prefix ?? "").filter((e) => options.after === undefined || e.key > options.after);
    return { keys, next: null };
  }

  async put(key: string, value: unknown, precondition: Precondition): Promise<Version> {
    this.puts++;
    const r = this.kv.apply({ op: "put", key, value: structuredClone(value), precondition });
    if (!r.ok) throw kvFailure(key, "put", r);
    return r.version;
  }

  async delete(key: string, precondition: Precondition): Promise<Version> {
    const r = this.kv.apply({ op: "delete", key, precondition });
    if (!r.ok) throw kvFailure(key, "delete", r);
    return r.version;
  }
}

export const TEST_OPTIONS: BifrostOptions = {
  defaultProvider: "replicated",
  appendTimeoutMs: 5_000,
  maxAppendRecords: 1000,
  maxAppendBytes: 1 << 20,
  maxReadRecords: 10_000,
  chainRefreshIntervalMs: 50,
  tickMs: 5,
  storeTimeoutMs: 200,
  maxInflightBatches: 16,
  maxInflightBytes: 8 << 20,
  maxQueuedAppends: 1024,
  nodesetSize: 0,
  rereplicationBytesPerSecond: 64 << 20,
  rereplicationBatchRecords: 1024,
  rereplicationBatchBytes: 1 << 20,
  rereplicationStoreBytes: 256 << 10,
  rereplicationStoringWindows: 2,
  rereplicationMaxLoopLagMs: 2,
};

export interface TestNode {
  readonly id: NodeId;
  generation: number;
  store: LogStore;
  bifrost: Bifrost;
}

export class TestCluster {
  readonly metadata = new MemoryMetadata();
  readonly nodes = new Map<NodeId, TestNode>();
  readonly down = new Set<NodeId>();
  private readonly dir: string;

  constructor(
    dir: string,
    count: number,
    replication: number,
    logs: number[] = [1, 2],
    private readonly options: Partial<BifrostOptions> = {},
    /** fsync every store (benchmarks); tests run without. */
    sync = false,
  ) {
    this.dir = dir;
    void this.metadata.put(LOGS_KEY, initialLogsDocument(logs, replication), DOES_NOT_EXIST);
    for (let i = 1; i <= count; i++) {
      const id = nodeId(i);
      const store = LogStore.open({ path: join(dir, `${id}.sqlite`), sync });
      const node: TestNode = { id, generation: 1, store, bifrost: undefined as unknown as Bifrost };
      node.bifrost = this.makeBifrost(node);
      this.nodes.set(id, node);
    }
    void this.metadata.put(KEYS.nodesConfig, this.nodesConfig(), DOES_NOT_EXIST);
  }

  nodesConfig(): NodesConfiguration {
    return {
      clusterName: "test",
      fingerprint: "f",
      nextNodeId: this.nodes.size + 1,
      nodes: [...this.nodes.values()].map((n) => ({
        id: Number(n.id.slice(1)),
        name: n.id,
        generation: n.generation,
        incarnation: "x",
        roles: ["log-server", "metadata-server"],
        fabricAddress: `mem:${n.id}`,
        adminAddress: "",
        metadataServer: { state: "member", storageId: null },
      })),
    };
  }

  node(i: number): TestNode {
    return this.nodes.get(nodeId(i))!;
  }

  private unreachable(to: NodeId): CairnError {
    return new CairnError("NET_UNREACHABLE", `${to} is down`, { node: to });
  }

  readonly transport: LogServerTransport = (() => {
    const server = (to: NodeId) => {
      if (this.down.has(to)) throw this.unreachable(to);
      const n = this.nodes.get(to);
      if (!n) throw this.unreachable(to);
      return n.store;
    };
    const call = async <T>(to: NodeId, signal: AbortSignal, run: (s: LogStore) => Promise<T>): Promise<T> => {
      signal.throwIfAborted();
      const result = await run(server(to));
      if (this.down.has(to)) throw this.unreachable(to); // died before answering
      return result;
    };
    return {
      store: (to, r, s) => call(to, s, (x) => x.store(r)),
      seal: (to, r, s) => call(to, s, (x) => x.seal(r)),
      getLogletInfo: (to, r, s) => call(to, s, (x) => x.getLogletInfo(r)),
      getRecords: (to, r, s) => call(to, s, (x) => x.getRecords(r)),
      trim: (to, r, s) => call(to, s, (x) => x.trim(r)),
      waitForTail: (to, r, s) => call(to, s, (x) => x.waitForTail(r, s)),
      getDigest: (to, r, s) => call(to, s, (x) => x.getDigest(r)),
    };
  })();

  readonly peers: BifrostPeers = {
    append: async (to, request, signal) => {
      if (this.down.has(to)) throw this.unreachable(to);
      return this.nodes.get(to)!.bifrost.appendAsSequencer(request, signal);
    },
    tail: async (to, request) => {
      if (this.down.has(to)) throw this.unreachable(to);
      return this.nodes.get(to)!.bifrost.sequencerTail(request);
    },
    ping: async (to) => {
      if (this.down.has(to)) throw this.unreachable(to);
      return { node: to, generation: this.nodes.get(to)!.generation };
    },
    mayReach: (to) => !this.down.has(to),
  };

  candidates(): Candidate[] {
    return [...this.nodes.values()].filter((n) => !this.down.has(n.id)).map((n) => ({ id: n.id, generation: n.generation }));
  }

  private makeBifrost(node: TestNode): Bifrost {
    const b = new Bifrost({
      metadata: () => this.metadata,
      transport: this.transport,
      peers: this.peers,
      placer: { candidates: async () => this.candidates() },
      self: () => ({ id: node.id, generation: node.generation }),
      options: { ...TEST_OPTIONS, ...this.options },
      logger: silentLogger(),
      registry: createRegistry(),
      random: new SeededRandom(Number(node.id.slice(1))),
    });
    b.start();
    return b;
  }

  /** kill -9: the node stops answering; its bifrost (and sequencers) die with it. */
  kill(i: number): void {
    const n = this.node(i);
    this.down.add(n.id);
    n.bifrost.stop();
  }

  /** Restart a killed node: same disk, next generation, fresh bifrost. */
  async restart(i: number): Promise<void> {
    const n = this.node(i);
    n.generation++;
    n.bifrost = this.makeBifrost(n);
    this.down.delete(n.id);
    const current = await this.metadata.get(KEYS.nodesConfig);
    await this.metadata.put(KEYS.nodesConfig, this.nodesConfig(), { kind: "matches-version", version: current!.version });
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) n.bifrost.stop();
    await Promise.all([...this.nodes.values()].map((n) => n.store.close()));
  }
}
