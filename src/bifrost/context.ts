// What a Bifrost is given (its dependencies and options) and the one context object its parts share:
// each part receives it explicitly instead of reaching into another part's fields.
// Invariants: "this node" is read from `self()` on every check (a restart changes the generation);
// the stop signal aborts exactly once, when the Bifrost stops, and nothing starts a sequencer after.
import type { MetadataApi } from "../metadata/api.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import type { LogletKind } from "./chain.ts";
import type { BifrostConfig } from "./config.ts";
import { BifrostMetrics } from "./metrics.ts";
import type { Candidate } from "./placement.ts";
import { systemRandom, type Random } from "./replicated/random.ts";
import type { LogServerTransport } from "./replicated/transport.ts";
import type { BifrostPeers } from "./rpc.ts";
import { sameGenerationalNodeId, type GenerationalNodeId, type NodeId } from "../ids/index.ts";

export interface BifrostOptions {
  readonly defaultProvider: LogletKind;
  readonly appendTimeoutMs: number;
  readonly maxAppendRecords: number;
  readonly maxAppendBytes: number;
  readonly maxReadRecords: number;
  readonly chainRefreshIntervalMs: number;
  readonly tickMs: number;
  readonly storeTimeoutMs: number;
  readonly maxInflightBatches: number;
  readonly maxInflightBytes: number;
  readonly maxQueuedAppends: number;
  readonly nodesetSize: number;
  readonly rereplicationBytesPerSecond: number;
  readonly rereplicationBatchRecords: number;
  readonly rereplicationBatchBytes: number;
  readonly rereplicationStoreBytes: number;
  readonly rereplicationStoringWindows: number;
  /** 0: no lag-based yielding. */
  readonly rereplicationMaxLoopLagMs: number;
  /** Longest `tail` long poll (default MAX_TAIL_WAIT_MS, inside the fabric's request deadline). */
  readonly maxTailWaitMs?: number;
}

export function bifrostOptions(c: BifrostConfig): BifrostOptions {
  return {
    defaultProvider: c["default-provider"],
    appendTimeoutMs: c["append-timeout-ms"],
    maxAppendRecords: c["max-append-records"],
    maxAppendBytes: c["max-append-bytes"],
    maxReadRecords: c["max-read-records"],
    chainRefreshIntervalMs: c["chain-refresh-interval-ms"],
    tickMs: c["tick-interval-ms"],
    storeTimeoutMs: c["store-timeout-ms"],
    maxInflightBatches: c["max-inflight-batches"],
    maxInflightBytes: c["max-inflight-bytes"],
    maxQueuedAppends: c["max-queued-appends"],
    nodesetSize: c["nodeset-size"],
    rereplicationBytesPerSecond: c["rereplication-bytes-per-second"],
    rereplicationBatchRecords: c["rereplication-batch-records"],
    rereplicationBatchBytes: c["rereplication-batch-bytes"],
    rereplicationStoreBytes: c["rereplication-store-bytes"],
    rereplicationStoringWindows: c["rereplication-storing-windows"],
    rereplicationMaxLoopLagMs: c["rereplication-max-loop-lag-ms"],
  };
}

/** Live log-server nodes a new segment may use (the controller passes its own view). */
export interface Placer {
  candidates(signal?: AbortSignal): Promise<Candidate[]>;
}

export interface BifrostDeps {
  readonly metadata: () => MetadataApi | undefined;
  readonly transport: LogServerTransport;
  readonly peers: BifrostPeers;
  readonly placer: Placer;
  /** This node: id once registered, and the current generation. */
  readonly self: () => { id: NodeId | undefined; generation: number };
  readonly options: BifrostOptions;
  readonly logger: Logger;
  readonly registry?: Registry;
  readonly random?: Random;
  readonly nowMs?: () => number;
}

export class BifrostContext {
  readonly metrics: BifrostMetrics | undefined;
  readonly random: Random;
  readonly nowMs: () => number;

  constructor(
    readonly deps: BifrostDeps,
    /** Aborted when the Bifrost stops: bounds every wait of an append and every background reconfiguration. */
    readonly stopSignal: AbortSignal,
  ) {
    this.metrics = deps.registry ? BifrostMetrics.of(deps.registry) : undefined;
    this.random = deps.random ?? systemRandom;
    this.nowMs = deps.nowMs ?? Date.now;
  }

  get stopped(): boolean {
    return this.stopSignal.aborted;
  }

  isSelf(g: GenerationalNodeId): boolean {
    const self = this.deps.self();
    return self.id !== undefined && sameGenerationalNodeId(g, { id: self.id, generation: self.generation });
  }
}
