// Bifrost on a node: every node runs it, whatever its roles. It wires the logs layer to the node's
// fabric (the `bifrost` RPCs: appends as a sequencer, sequencer tails, pings), keeps the directory of
// nodes fresh from the nodes configuration, and offers what the cluster controller needs to drive
// logs (the peers, the directory, ping-based placement). The node starts and stops it as a role.
import type { LogStore } from "../logserver/index.ts";
import type { MetadataApi } from "../metadata/api.ts";
import type { FabricClient, FabricServer } from "../net/index.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import { Bifrost, bifrostOptions, type Placer } from "./bifrost.ts";
import type { BifrostConfig } from "./config.ts";
import { fabricLogServerTransport } from "./fabric-transport.ts";
import { NodeDirectory } from "./nodes.ts";
import type { Candidate } from "./placement.ts";
import { BIFROST_RPCS, fabricBifrostPeers, type BifrostPeers } from "./rpc.ts";
import { segmentsNaming } from "./chain.ts";
import type { NodeId } from "../ids/index.ts";

export interface BifrostRoleDeps {
  readonly config: BifrostConfig;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly fabricServer: FabricServer;
  readonly fabricClient: FabricClient;
  /** The metadata store, undefined until the cluster is provisioned. */
  readonly metadata: () => MetadataApi | undefined;
  /** This node's id (once registered) and generation. */
  readonly self: () => { id: NodeId | undefined; generation: number };
  /** When this process started (Unix ms), reported in pings. */
  readonly startedAtMs?: () => number;
  /** This node's record store when it runs the log-server role (stores to itself skip the fabric). */
  readonly localStore: () => LogStore | undefined;
  /** Partitions whose processor on this node stopped, reported in pings (none without the worker role). */
  readonly stoppedPartitions?: () => readonly number[];
}

const PLACEMENT_PING_MS = 1_000;

/** The ping's field for stopped processors, present only when there is one. */
function stopped(partitions: readonly number[] | undefined): { stoppedPartitions?: number[] } {
  return partitions !== undefined && partitions.length > 0 ? { stoppedPartitions: [...partitions] } : {};
}

export class BifrostRole {
  private bifrostValue: Bifrost | undefined;
  private peersValue: BifrostPeers | undefined;
  readonly directory = new NodeDirectory();
  private directoryTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: BifrostRoleDeps) {}

  /** Registers the bifrost RPCs and starts bifrost and the directory refresh. */
  start(): void {
    const { config, logger } = this.deps;
    const addressOf = (id: NodeId) => this.directory.addressOf(id);
    const transport = fabricLogServerTransport({
      client: this.deps.fabricClient,
      addressOf,
      self: () => ({ id: this.deps.self().id, server: this.deps.localStore() }),
    });
    const peers = fabricBifrostPeers(this.deps.fabricClient, addressOf);
    this.peersValue = peers;
    const options = bifrostOptions(config);
    const placer: Placer = { candidates: (signal) => this.pingLogServers(peers, signal) };
    const bifrost = new Bifrost({
      metadata: this.deps.metadata,
      transport,
      peers,
      placer,
      self: () => this.deps.self(),
      options,
      logger: logger.child({ component: "bifrost" }),
      registry: this.deps.registry,
    });
    this.bifrostValue = bifrost;
    this.deps.fabricServer
      .register(BIFROST_RPCS.append, (req, ctx) => bifrost.appendAsSequencer(req, ctx.deadline))
      .register(BIFROST_RPCS.tail, (req) => bifrost.sequencerTail(req))
      .register(BIFROST_RPCS.ping, () => {
        const store = this.deps.localStore();
        return {
          node: this.deps.self().id ?? null,
          generation: this.deps.self().generation,
          // A store in data-loss mode takes repair stores only: no new segment may be placed on it.
          ...(store ? { storeWritable: store.writable && !store.recovering, ...(store.recovering ? { storeRecovering: true } : {}) } : {}),
          ...(this.deps.startedAtMs ? { startedAtMs: this.deps.startedAtMs() } : {}),
          ...stopped(this.deps.stoppedPartitions?.()),
        };
      });
    bifrost.start();
    this.directoryTimer = setInterval(() => {
      void this.refreshNodes().catch(() => {});
      void this.leaveDataLoss().catch(() => {});
    }, options.chainRefreshIntervalMs);
  }

  /** Bifrost of this node (appends and reads go through any node); undefined before start(). */
  bifrost(): Bifrost | undefined {
    return this.bifrostValue;
  }

  /** The `bifrost` RPCs towards other nodes; undefined before start(). */
  peers(): BifrostPeers | undefined {
    return this.peersValue;
  }

  /** Re-reads the nodes configuration into the directory (no-op before provisioning). */
  async refreshNodes(): Promise<void> {
    const api = this.deps.metadata();
    if (api !== undefined) await this.directory.refresh(api);
  }

  /**
   * A local store in data-loss mode leaves it once no segment of any chain names this node: open
   * segments were moved off it and sealed ones re-replicated elsewhere (or it never held any).
   */
  private async leaveDataLoss(): Promise<void> {
    const store = this.deps.localStore();
    const self = this.deps.self().id;
    const b = this.bifrostValue;
    if (store === undefined || !store.recovering || self === undefined || b === undefined) return;
    const { doc } = await b.logsDocument(true);
    const named = segmentsNaming(doc, self);
    if (named.length > 0) return;
    store.clearDataLoss();
    this.deps.logger.info({ node: self }, "the log-server store leaves data-loss mode: no segment names this node any more");
  }

  /** Live log-server nodes with their current generation (for placements requested off the controller). */
  private async pingLogServers(peers: BifrostPeers, signal?: AbortSignal): Promise<Candidate[]> {
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

  /** Call after the fabric server stopped (no handler runs any more) and after the controller stopped. */
  stop(): void {
    if (this.directoryTimer) clearInterval(this.directoryTimer);
    this.directoryTimer = undefined;
    this.bifrostValue?.stop();
  }
}
