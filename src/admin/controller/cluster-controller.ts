// The cluster controller: the decisions that need one actor for the whole cluster, taken on the node
// that leads the metadata cluster (a new leader takes over with a fresh view; elsewhere it idles).
// Today that is the log controller (segments, sequencers, nodesets); partition placement and
// snapshot scheduling join it here. The node starts and stops it as a role, after bifrost.
import type { BifrostConfig, BifrostRole } from "../../bifrost/index.ts";
import { LivenessTracker, connectionRefused } from "../../bifrost/index.ts";
import type { NodeId } from "../../ids/index.ts";
import type { FabricClient } from "../../net/index.ts";
import type { Logger } from "../../observability/log.ts";
import { LogController } from "./log-controller.ts";

export interface ClusterControllerDeps {
  readonly bifrost: BifrostRole;
  readonly fabricClient: FabricClient;
  readonly config: BifrostConfig;
  /** Whether this node should act: it leads the metadata cluster (or holds the local metadata store). */
  readonly isLeader: () => boolean;
  readonly logger: Logger;
}

/** Least time between two automatic nodeset improvements of one log. */
const IMPROVE_INTERVAL_MIN_MS = 10_000;

export class ClusterController {
  private logs: LogController | undefined;

  constructor(private readonly deps: ClusterControllerDeps) {}

  /** Starts the controllers; call after bifrost started (they use its peers and directory). */
  start(): void {
    const { bifrost, fabricClient, config: c } = this.deps;
    const peers = bifrost.peers();
    const b = bifrost.bifrost();
    if (peers === undefined || b === undefined) throw new Error("the cluster controller starts after bifrost");
    const addressOf = (id: NodeId) => bifrost.directory.addressOf(id);
    this.logs = new LogController({
      bifrost: b,
      peers,
      directory: bifrost.directory,
      liveness: new LivenessTracker(c["failure-timeout-ms"], c["refused-dead-ms"]),
      refusesConnections: (id, signal) => {
        const address = addressOf(id);
        return address === undefined ? Promise.resolve(false) : connectionRefused(address, signal);
      },
      connectionLost: (id) => {
        const address = addressOf(id);
        const s = address === undefined ? null : fabricClient.peerStatus(address);
        return s !== null && !s.connected && s.consecutiveFailures > 0;
      },
      isLeader: this.deps.isLeader,
      refreshNodes: () => bifrost.refreshNodes(),
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
      },
      logger: this.deps.logger.child({ component: "log-controller" }),
    });
    this.logs.start();
  }

  /** Waits for reconfigurations in flight; call before bifrost stops. */
  async stop(): Promise<void> {
    await this.logs?.stop();
    this.logs = undefined;
  }
}
