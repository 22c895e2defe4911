// Everything about logs a node runs, in one place the node starts and stops: the log-server role
// (record store + its RPCs) when the node has that role; bifrost on every node (appends, reads,
// seal/trim/reconfigure, the `bifrost` RPCs); and the log controller, active only while this node
// leads the metadata cluster. The node calls start(), stop() and reads `bifrost()`.
import type { Config } from "../config/index.ts";
import { LogServerRole } from "../logserver/role.ts";
import type { LogStore } from "../logserver/store.ts";
import type { MetadataService } from "../metadata/service.ts";
import type { FabricClient, FabricServer } from "../net/index.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import { Bifrost, bifrostOptions, type Placer } from "./bifrost.ts";
import { LogController } from "./controller.ts";
import { fabricLogServerTransport } from "./fabric-transport.ts";
import { LivenessTracker, NodeDirectory, connectionRefused } from "./nodes.ts";
import type { Candidate } from "./placement.ts";
import { BIFROST_RPCS, fabricBifrostPeers } from "./rpc.ts";
import { nodeId, type NodeId } from "../ids/index.ts";

export interface NodeLogsDeps {
  readonly config: Config;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly fabricServer: FabricServer;
  readonly fabricClient: FabricClient;
  /** The node's metadata service (its api() is undefined until the cluster is provisioned). */
  readonly metadataService: () => MetadataService | undefined;
  /** This node's id (once registered) and generation. */
  readonly self: () => { id: number | undefined; generation: number };
  /**
   * Whether the data directory belongs to a provisioned cluster (its marker holds a fingerprint): the
   * log-server then refuses an empty record store file. The node passes it (false when not given).
   */
  readonly provisioned?: boolean;
}

/** Least time between two automatic nodeset improvements of one log. */
const IMPROVE_INTERVAL_MIN_MS = 10_000;
const PLACEMENT_PING_MS = 1_000;

export class NodeLogs {
  private logServer: LogServerRole | undefined;
  private bifrostValue: Bifrost | undefined;
  private controller: LogController | undefined;
  private readonly directory = new NodeDirectory();
  private directoryTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: NodeLogsDeps) {}

  private selfId(): NodeId | undefined {
    const id = this.deps.self().id;
    return id === undefined ? undefined : nodeId(id);
  }

  /** Opens the record store (log-server role), registers every RPC and starts bifrost and the controller. */
  start(): void {
    const { config, logger } = this.deps;
    if (config.roles.includes("log-server")) {
      this.logServer = LogServerRole.start({
        dataDir: this.deps.dataDir,
        provisioned: this.deps.provisioned ?? false,
        config: config["log-server"],
        fabric: this.deps.fabricServer,
        registry: this.deps.registry,
        logger: logger.child({ component: "log-server" }),
      });
    }
    const addressOf = (id: NodeId) => this.directory.addressOf(id);
    const transport = fabricLogServerTransport({
      client: this.deps.fabricClient,
      addressOf,
      self: () => ({ id: this.selfId(), server: this.logServer?.store }),
    });
    const peers = fabricBifrostPeers(this.deps.fabricClient, addressOf);
    const options = bifrostOptions(config.bifrost);
    const placer: Placer = { candidates: (signal) => this.pingLogServers(peers, signal) };
    const bifrost = new Bifrost({
      metadata: () => this.deps.metadataService()?.api(),
      transport,
      peers,
      placer,
      self: () => ({ id: this.selfId(), generation: this.deps.self().generation }),
      options,
      logger: logger.child({ component: "bifrost" }),
      registry: this.deps.registry,
    });
    this.bifrostValue = bifrost;
    this.deps.fabricServer
      .register(BIFROST_RPCS.append, (req, ctx) => bifrost.appendAsSequencer(req, ctx.deadline))
      .register(BIFROST_RPCS.tail, (req) => bifrost.sequencerTail(req))
      .register(BIFROST_RPCS.ping, () => ({
        node: this.selfId() ?? null,
        generation: this.deps.self().generation,
        ...(this.logServer ? { storeWritable: this.logServer.store.writable } : {}),
      }));
    bifrost.start();
    this.directoryTimer = setInterval(() => void this.refreshNodes().catch(() => {}), options.chainRefreshIntervalMs);
    const c = config.bifrost;
    this.controller = new LogController({
      bifrost,
      peers,
      directory: this.directory,
      liveness: new LivenessTracker(c["failure-timeout-ms"], c["refused-dead-ms"]),
      refusesConnections: (id, signal) => {
        const address = addressOf(id);
        return address === undefined ? Promise.resolve(false) : connectionRefused(address, signal);
      },
      connectionLost: (id) => {
        const address = addressOf(id);
        const s = address === undefined ? null : this.deps.fabricClient.peerStatus(address);
        return s !== null && !s.connected && s.consecutiveFailures > 0;
      },
      isLeader: () => this.leadsMetadata(),
      refreshNodes: () => this.refreshNodes(),
      options: {
        intervalMs: c["controller-interval-ms"],
        failureTimeoutMs: c["failure-timeout-ms"],
        probeIntervalMs: c["probe-interval-ms"],
        maxConcurrent: c["max-concurrent-reconfigurations"],
        autoImprove: c["auto-improve"],
        improveIntervalMs: Math.max(IMPROVE_INTERVAL_MIN_MS, 10 * c["controller-interval-ms"]),
        nodesetSize: c["nodeset-size"],
        defaultProvider: c["default-provider"],
      },
      logger: logger.child({ component: "log-controller" }),
    });
    this.controller.start();
  }

  /** Bifrost of this node (every node runs it; appends and reads go through any node). */
  bifrost(): Bifrost | undefined {
    return this.bifrostValue;
  }

  /** This node's record store (log-server role only). */
  store(): LogStore | undefined {
    return this.logServer?.store;
  }

  private async refreshNodes(): Promise<void> {
    const api = this.deps.metadataService()?.api();
    if (api !== undefined) await this.directory.refresh(api);
  }

  /** The controller acts on the metadata leader (or on the node holding a local metadata store). */
  private leadsMetadata(): boolean {
    const status = this.deps.metadataService()?.serverStatus();
    if (status === undefined || status.state !== "member") return false;
    return status.raft === null ? true : status.raft.role === "leader";
  }

  /** Live log-server nodes with their current generation (for placements requested off the controller). */
  private async pingLogServers(peers: ReturnType<typeof fabricBifrostPeers>, signal?: AbortSignal): Promise<Candidate[]> {
    await this.refreshNodes();
    const answers = await Promise.all(
      this.directory.logServers().map(async (n) => {
        const budget = AbortSignal.any([AbortSignal.timeout(PLACEMENT_PING_MS), ...(signal ? [signal] : [])]);
        const a = await peers.ping(n.id, budget).catch(() => undefined);
        // A log-server whose store refuses writes would refuse every store of a new segment.
        return a !== undefined && a.node === n.id && a.storeWritable !== false ? { id: n.id, generation: a.generation } : undefined;
      }),
    );
    return answers.filter((a): a is Candidate => a !== undefined);
  }

  /** Call after the fabric server stopped (no handler runs any more). */
  async stop(): Promise<void> {
    if (this.directoryTimer) clearInterval(this.directoryTimer);
    this.directoryTimer = undefined;
    await this.controller?.stop();
    this.controller = undefined;
    this.bifrostValue?.stop();
    await this.logServer?.stop();
    this.logServer = undefined;
  }
}

