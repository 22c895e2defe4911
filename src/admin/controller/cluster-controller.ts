// The cluster controller: the decisions that need one actor for the whole cluster, taken on the node
// that leads the metadata cluster (a new leader takes over with a fresh view; elsewhere it idles).
// The log controller (segments, sequencers, nodesets) and the partition controller (which worker
// leads and follows each partition), and the trim driver (automatic log trimming); snapshot
// scheduling joins them here. The node starts and stops it as a role, after bifrost.
// leads and follows each partition) and the snapshotter (snapshot jobs; it also forwards requests
// that reach another node to this one). The node starts and stops it as a role, after bifrost.
import { sharedPings } from "./shared-pings.ts";
import type { BifrostConfig, BifrostRole } from "../../bifrost/index.ts";
import { LivenessTracker, connectionRefused } from "../../bifrost/index.ts";
import type { NodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { KEYS, clusterSettings, type ClusterInfo } from "../../metadata/nodes-config.ts";
import type { FabricClient } from "../../net/index.ts";
import type { Logger } from "../../observability/log.ts";
import { LogController } from "./log-controller.ts";
import { PartitionController, type ProcessorBrief } from "./partition-controller.ts";
import { WORKER_RPCS } from "../../worker/index.ts";
import { TrimDriver, type TrimDriverDeps } from "./trim-driver.ts";
import { Snapshotter, type SnapshotterDeps } from "./snapshotter.ts";

export interface ClusterControllerDeps {
  readonly bifrost: BifrostRole;
  readonly fabricClient: FabricClient;
  readonly config: BifrostConfig;
  /** Whether this node should act: it leads the metadata cluster (or holds the local metadata store). */
  readonly isLeader: () => boolean;
  /** The metadata store (undefined before provisioning): partition placement is written there. */
  readonly metadata: () => MetadataApi | undefined;
  readonly logger: Logger;
  /** The trim policy's configuration and what its driver needs beyond the above; none: no automatic trimming. */
  readonly trim?: Pick<TrimDriverDeps, "config" | "repository" | "self" | "localWorker" | "registry"> | undefined;
  /** Hysteresis of partition leadership moves (worker.rebalance-delay-ms, worker.rebalance-interval-ms); none: no hysteresis. */
  readonly partitionRebalance?: { readonly delayMs: number; readonly intervalMs: number };
  /** The snapshotter's own needs (its repository, limits, the local worker). */
  readonly snapshots: Omit<SnapshotterDeps, "fabricClient" | "directory" | "refreshNodes" | "metadata" | "isLeader" | "logger">;
}

/** Least time between two automatic nodeset improvements of one log. */
const IMPROVE_INTERVAL_MIN_MS = 10_000;

/** Longest wait of a stopping cluster controller for its controllers' work in flight. */
const STOP_WAIT_MS = 2_000;

export class ClusterController {
  private logs: LogController | undefined;
  private partitions: PartitionController | undefined;
  private trims: TrimDriver | undefined;
  /** Exists from construction: the admin API reaches it before the controller starts. */
  readonly snapshotter: Snapshotter;

  constructor(private readonly deps: ClusterControllerDeps) {
    this.snapshotter = new Snapshotter({
      ...deps.snapshots,
      fabricClient: deps.fabricClient,
      directory: deps.bifrost.directory,
      refreshNodes: () => deps.bifrost.refreshNodes(),
      metadata: deps.metadata,
      isLeader: deps.isLeader,
      logger: deps.logger.child({ component: "snapshotter" }),
    });
  }

  /** Starts the controllers; call after bifrost started (they use its peers and directory). */
  start(): void {
    const { bifrost, fabricClient, config: c } = this.deps;
    const peers = bifrost.peers();
    const b = bifrost.bifrost();
    if (peers === undefined || b === undefined) throw new Error("the cluster controller starts after bifrost");
    const addressOf = (id: NodeId) => bifrost.directory.addressOf(id);
    const connectionLost = (id: NodeId) => {
      const address = addressOf(id);
      const s = address === undefined ? null : fabricClient.peerStatus(address);
      return s !== null && !s.connected && s.consecutiveFailures > 0;
    };
    const refusesConnections = (id: NodeId, signal: AbortSignal) => {
      const address = addressOf(id);
      return address === undefined ? Promise.resolve(false) : connectionRefused(address, signal);
    };
    // What both controllers need to find live nodes; each keeps its own liveness tracker (the log
    // controller resets its tracker when it pauses, and pings log-servers only).
    const shared = {
      // Answers younger than most of a round are shared: the two controllers' rounds ping once.
      peers: sharedPings(peers, Math.floor(0.8 * c["controller-interval-ms"]), connectionLost),
      directory: bifrost.directory,
      refusesConnections,
      connectionLost,
      isLeader: this.deps.isLeader,
      refreshNodes: () => bifrost.refreshNodes(),
    };
    this.logs = new LogController({
      ...shared,
      bifrost: b,
      settings: async () => {
        // This node's copy suffices: the controller converges on a later round if it lags.
        const v = await this.deps.metadata()?.get(KEYS.cluster, { consistency: "stale" });
        return v === undefined ? undefined : clusterSettings(v.value as ClusterInfo);
      },
      liveness: new LivenessTracker(c["failure-timeout-ms"], c["refused-dead-ms"]),
      options: {
        intervalMs: c["controller-interval-ms"],
        failureTimeoutMs: c["failure-timeout-ms"],
        probeIntervalMs: c["probe-interval-ms"],
        maxConcurrent: c["max-concurrent-reconfigurations"],
        autoImprove: c["auto-improve"],
        improveIntervalMs: Math.max(IMPROVE_INTERVAL_MIN_MS, 10 * c["controller-interval-ms"]),
        nodesetSize: c["nodeset-size"],
        defaultProvider: c["default-provider"],
        rereplicationMaxConcurrent: c["rereplication-max-concurrent"],
        maxReplicationChangesPerRound: c["max-replication-changes-per-round"],
      },
      logger: this.deps.logger.child({ component: "log-controller" }),
    });
    this.logs.start();
    this.partitions = new PartitionController({
      ...shared,
      metadata: this.deps.metadata,
      processors: async (signal) => {
        const out = new Map<string, ReadonlyMap<number, ProcessorBrief>>();
        await Promise.all(
          bifrost.directory.workers().map(async (n) => {
            const r = await fabricClient.call(n.fabricAddress, WORKER_RPCS.status, {}, { signal, deadlineMs: 1_000 }).catch(() => undefined);
            if (r !== undefined) out.set(n.id, new Map(r.processors.map((p) => [p.partition, { appliedLsn: p.appliedLsn, leading: p.role === "leader", ...(p.stopped !== null ? { stoppedBy: p.stoppedBy ?? "record" } : {}) }])));
          }),
        );
        return out;
      },
      ...(this.deps.partitionRebalance !== undefined ? { rebalance: this.deps.partitionRebalance } : {}),
      liveness: new LivenessTracker(c["failure-timeout-ms"], c["refused-dead-ms"]),
      intervalMs: c["controller-interval-ms"],
      probeIntervalMs: Math.max(50, c["probe-interval-ms"] || 100),
      failureTimeoutMs: c["failure-timeout-ms"],
      logger: this.deps.logger.child({ component: "partition-controller" }),
    });
    this.partitions.start();
    if (this.deps.trim !== undefined) {
      this.trims = new TrimDriver({
        ...this.deps.trim,
        isLeader: this.deps.isLeader,
        metadata: this.deps.metadata,
        bifrost: b,
        directory: bifrost.directory,
        fabricClient,
        logger: this.deps.logger.child({ component: "trim" }),
      });
      this.trims.start();
    }
    this.snapshotter.start();
  }

  /** Waits for reconfigurations in flight; call before bifrost stops. */
  /**
   * Stops every controller and waits for their work in flight, but at most STOP_WAIT_MS: when the
   * whole cluster stops at once (`cairn dev` and Ctrl-C), the metadata leader's rounds wait on
   * writes to a quorum that is gone, each until its own timeout, and the node took the whole
   * shutdown timeout (10 s) to exit. What is left running then ends as a crash would end it; every
   * controller action is safe against that (compare-and-set writes, snapshots published last).
   */
  async stop(): Promise<void> {
    const trims = this.trims;
    const partitions = this.partitions;
    const logs = this.logs;
    this.trims = undefined;
    this.partitions = undefined;
    this.logs = undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      Promise.allSettled([trims?.stop(), this.snapshotter.stop(), partitions?.stop(), logs?.stop()]).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), STOP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (!finished) this.deps.logger.warn({ waitedMs: STOP_WAIT_MS }, "the cluster controller's work in flight did not finish in time (metadata unreachable?): leaving it to end with the process");
  }
}
