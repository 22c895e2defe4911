// A cairn node: one process, some roles. Owns the data directory (lock, marker, generation), the
// lifecycle state machine, the metrics registry and the servers every node runs (admin API; peer
// fabric), and builds its roles and starts and stops them through one RoleSet, in the orders
// declared in role.ts. start() brings it to `running`; stop() releases every port, timer and file lock.
import type { Server } from "bun";
import type { Config } from "../config/index.ts";
import { checkWorkerJoin, ClusterController, ClusterStatusMonitor, createAdminApp, InvocationOperations, openApiDocument, repositoryConfigured, type AdminDeps } from "../admin/index.ts";
import { CairnError, ERRORS, isCairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { createRegistry, Gauge, type Registry } from "../observability/metrics.ts";
import { VERSION, versionInfo } from "../version.ts";
import { randomBytes } from "node:crypto";
import { LocalMetadataService } from "../metadata/local-service.ts";
import { ReplicatedMetadataService } from "../metadata/replicated-service.ts";
import { FabricClient, FabricServer, type FabricOptions } from "../net/index.ts";
import { BIFROST_RPCS, BifrostRole } from "../bifrost/index.ts";
import { IngressRole, renderDataPlaneOpenApi } from "../ingress/index.ts";
import { INVOCATION_RPCS, InvocationRouter, partitionsOverview, SchemaCache, StateRouter, WorkerRole, type PartitionOverview } from "../worker/index.ts";
import { nodeId, type NodeId } from "../ids/index.ts";
import { LogServerRole } from "../logserver/index.ts";
import type { ClusterInfo } from "../metadata/nodes-config.ts";
import type { MetadataService } from "../metadata/service.ts";
import { clearAddresses, DataDir, type Addresses, type ClusterMarker } from "./datadir.ts";
import { autoReplication, DEFAULT_NUM_PARTITIONS, initialDocuments } from "./provision.ts";
import { NodeLifecycle, NODE_STATES, type NodeLifecycleState } from "./lifecycle.ts";
import { RoleSet, type Role } from "./role.ts";
import { openRepository, type SnapshotRepository } from "../snapshot/index.ts";

/** How long GET /v1/partitions waits for each worker's status and each log's tail. */
const PARTITIONS_OVERVIEW_DEADLINE_MS = 1_000;
/** How long each worker may take to list its invocations for the admin API. */
const INVOCATIONS_ADMIN_LIST_DEADLINE_MS = 2_000;

export interface NodeOptions {
  config: Config;
  logger: Logger;
  /** Wall clock in Unix ms (injected so tests can control it). */
  nowMs?: () => number;
}

export class Node {
  readonly config: Config;
  readonly log: Logger;
  readonly lifecycle = new NodeLifecycle();
  readonly metrics: Registry;
  readonly dataDir: DataDir;
  private readonly nowMs: () => number;
  private marker: ClusterMarker | undefined;
  private generationValue = 0;
  private startedAtMs = 0;
  private stateSinceMs = 0;
  private adminServer: Server<unknown> | undefined;
  private addressesValue: Addresses | undefined;
  private stopping: Promise<void> | undefined;
  private metadataService: MetadataService | undefined;
  /** Who wants to hear that this node's metadata replica applied an entry (the worker's placement check). */
  private readonly metadataApplied = new Set<() => void>();
  private fabricServer: FabricServer | undefined;
  private fabricClient: FabricClient | undefined;
  private roles: RoleSet | undefined;
  private logServer: LogServerRole | undefined;
  private bifrostRole: BifrostRole | undefined;
  private statusMonitor: ClusterStatusMonitor | undefined;
  private workerRole: WorkerRole | undefined;
  private ingressRole: IngressRole | undefined;
  private stateRouter: StateRouter | undefined;
  private invocationRouter: InvocationRouter | undefined;
  private invocationOperations: InvocationOperations | undefined;
  private controller: ClusterController | undefined;
  private fabricAddress = "";
  private nodeIdValue: NodeId | undefined;
  /** Random per process start (see RegisterRequest.incarnation). */
  private readonly incarnation = randomBytes(8).toString("hex");

  constructor(options: NodeOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.nowMs = options.nowMs ?? Date.now;
    this.metrics = createRegistry();
    this.dataDir = new DataDir(this.config["base-dir"]);
    const stateGauge = new Gauge({
      name: "cairn_node_lifecycle_state",
      help: "1 for the node's current lifecycle state, 0 for the others",
      labelNames: ["state"],
      registers: [this.metrics],
    });
    const setState = (s: NodeLifecycleState) => {
      for (const x of NODE_STATES) stateGauge.set({ state: x }, x === s ? 1 : 0);
    };
    setState(this.lifecycle.state);
    this.lifecycle.onChange((from, to, reason) => {
      this.stateSinceMs = this.nowMs();
      setState(to);
      this.log.info({ from, to, reason }, `node lifecycle ${from} -> ${to}`);
    });
  }

  get generation(): number {
    return this.generationValue;
  }

  get addresses(): Addresses {
    if (this.addressesValue === undefined) throw new Error("addresses are known only after start()");
    return this.addressesValue;
  }

  async start(): Promise<void> {
    this.startedAtMs = this.nowMs();
    this.stateSinceMs = this.startedAtMs;
    try {
      this.dataDir.open();
      clearAddresses(this.dataDir.path);
      this.marker = this.dataDir.checkOrWriteMarker(this.config["cluster-name"], VERSION, this.nowMs());
      this.generationValue = this.dataDir.bumpGeneration();
      this.log.info(
        { dataDir: this.dataDir.path, generation: this.generationValue, roles: this.config.roles },
        `starting node ${this.config["node-name"]} generation ${this.generationValue}`,
      );
      this.roles = new RoleSet(this.buildRoles());
      await this.roles.start();
      if (this.config["auto-provision"] && this.metadataService?.cluster() === undefined) {
        // A restarted node may not have replayed its log yet: "already provisioned" is the answer then.
        await this.provision({}).catch((e: unknown) => {
          if (!isCairnError(e, "CLUSTER_ALREADY_PROVISIONED")) throw e;
        });
      }
      this.dataDir.writeAddresses(this.addresses);
      this.lifecycle.transition("running", "all roles started");
      this.log.info({ addresses: this.addressesValue }, "node running");
      // The first evaluation logs the cluster's state and its warnings (a single-replica setup) at start.
      this.statusMonitor?.evaluateInBackground();
    } catch (e) {
      if (e instanceof CairnError) this.log.error({ code: e.code, details: e.details }, `node failed to start: ${e.message}`);
      else this.log.error({ err: e }, "node failed to start");
      if (this.lifecycle.state === "starting") this.lifecycle.transition("failed", (e as Error).message);
      await this.releaseResources();
      if (this.lifecycle.state === "failed") this.lifecycle.transition("stopped", "start failed");
      throw e;
    }
  }

  /** Graceful stop: stop serving, release ports and the data-dir lock. Idempotent. */
  stop(reason = "stop requested"): Promise<void> {
    this.stopping ??= (async () => {
      const s = this.lifecycle.state;
      if (s === "starting" || s === "running") this.lifecycle.transition("stopping", reason);
      await this.releaseResources();
      if (this.lifecycle.state === "stopping" || this.lifecycle.state === "failed") {
        this.lifecycle.transition("stopped", reason);
      }
    })();
    return this.stopping;
  }

  /** Stops the roles (in role.ts's STOP_ORDER), then releases the data directory. */
  private async releaseResources(): Promise<void> {
    await this.roles?.stop();
    this.roles = undefined;
    this.dataDir.close();
  }

  /** Everything this node runs, as roles; the RoleSet orders them. */
  private buildRoles(): Role[] {
    const config = this.config;
    const none = (): string[] => [];
    const { server: fabricServer, client: fabricClient } = this.createFabric();
    this.fabricServer = fabricServer;
    this.fabricClient = fabricClient;
    const roles: Role[] = [
      {
        name: "fabric-server",
        start: async () => {
          this.fabricAddress = await this.startFabricServer(fabricServer);
          // Calls to itself (controller pings, status, tails of its own logs) skip HTTP/2.
          fabricClient.setLoopback(this.fabricAddress, fabricServer);
        },
        stop: () => fabricServer.stop(),
        notReadyReasons: none,
      },
      {
        name: "fabric-client",
        start: () => {},
        stop: () => fabricClient.close(),
        notReadyReasons: none,
      },
    ];
    if (config.roles.includes("log-server")) {
      const logServer = new LogServerRole({
        dataDir: this.dataDir.path,
        provisioned: this.marker?.fingerprint != null,
        config: config["log-server"],
        fabric: fabricServer,
        registry: this.metrics,
        logger: this.log.child({ component: "log-server" }),
      });
      this.logServer = logServer;
      roles.push({
        name: "log-server",
        start: () => logServer.start(),
        stop: async () => {
          await logServer.stop();
          this.logServer = undefined;
        },
        notReadyReasons: () => logServer.notReadyReasons(),
      });
    }
    const bifrost = new BifrostRole({
      config: config.bifrost,
      logger: this.log,
      registry: this.metrics,
      fabricServer,
      fabricClient,
      metadata: () => this.metadataService?.api(),
      self: () => ({ id: this.nodeIdValue, generation: this.generationValue }),
      startedAtMs: () => this.startedAtMs,
      localStore: () => this.logServer?.openStore(),
      stoppedPartitions: () => this.workerRole?.stoppedPartitions() ?? [],
    });
    this.bifrostRole = bifrost;
    const snapshotRepository = this.snapshotRepository();
    roles.push({ name: "bifrost", start: () => bifrost.start(), stop: () => bifrost.stop(), notReadyReasons: none });
    // Object requests and invocations find partition leaders through this router (the ingress's
    // requests, and records one partition's outbox sends to another's leader).
    const stateRouter = new StateRouter({
      metadata: () => this.metadataService?.api(),
      fabricClient,
      addressOf: (id) => bifrost.directory.addressOf(id),
      self: () => this.nodeIdValue,
      localWorker: () => this.workerRole,
    });
    this.stateRouter = stateRouter;
    const schema = new SchemaCache(() => this.metadataService?.api(), { nowMs: Date.now });
    this.invocationRouter = new InvocationRouter({ state: stateRouter, schema });
    if (config.roles.includes("worker")) {
      const w = config.worker;
      const worker = new WorkerRole({
        dataDir: this.dataDir.path,
        options: {
          reconcileIntervalMs: w["reconcile-interval-ms"],
          readBatchRecords: w["read-batch-records"],
          idlePollMaxMs: w["idle-poll-max-ms"],
          followerLongPollMs: w["follower-long-poll-ms"],
          durabilityIntervalMs: w["durability-interval-ms"],
          idempotencyRetentionMs: w["idempotency-retention-ms"],
          expireBatch: w["idempotency-expire-batch"],
          maxPendingProposals: w["max-pending-proposals"],
          leaderLeaseMs: w["leader-lease-ms"],
          followerBatchDelayMs: w["follower-batch-delay-ms"],
          storeFailureRetryMs: w["store-failure-retry-ms"],
          storeFailureRetryMaxMs: w["store-failure-retry-max-ms"],
        },
        metadata: () => this.metadataService?.api(),
        metadataPushes: {
          subscribe: (listener) => {
            this.metadataApplied.add(listener);
            return () => this.metadataApplied.delete(listener);
          },
          current: () => this.metadataService?.replicaIsCurrent?.() === true,
        },
        bifrost: () => bifrost.bifrost(),
        self: () => ({ id: this.nodeIdValue, generation: this.generationValue }),
        fabricServer,
        registry: this.metrics,
        logger: this.log.child({ component: "worker" }),
        snapshots: {
          repository: snapshotRepository,
          maxConcurrent: config.snapshots["max-concurrent-per-node"],
          export: { inMemoryMaxBytes: config.snapshots["export-in-memory-max-bytes"], threadNice: config.snapshots["export-thread-nice"] },
          pacing: {
            dutyCyclePercent: config.snapshots["busy-duty-cycle-percent"],
            busyWritesPerSecond: config.snapshots["busy-writes-per-second"],
            busyUploadBytesPerSecond: config.snapshots["busy-upload-bytes-per-second"],
          },
        },
        peerTransfer: {
          fabricClient,
          addressOf: (id) => bifrost.directory.addressOf(id),
          limits: {
            chunkBytes: config.snapshots["peer-transfer-chunk-bytes"],
            idleTimeoutMs: config.snapshots["peer-transfer-idle-timeout-ms"],
            maxOpen: config.snapshots["peer-transfer-max-open"],
          },
          requestTimeoutMs: config.snapshots["request-timeout-ms"],
        },
        invocations: {
          schema,
          config: config.invoker,
          deliver: async (partition, records) => {
            const deadlineMs = Date.now() + config.invoker["call-wait-ms"];
            await stateRouter.onLeader(
              partition,
              deadlineMs,
              true,
              INVOCATION_RPCS.deliver,
              (budgetMs) => ({ partition, records, timeoutMs: Math.max(1, budgetMs) }),
              (local, req) => local.invocations!.deliver(req),
            );
          },
        },
      });
      this.workerRole = worker;
      roles.push({ name: "worker", start: () => worker.start(), stop: () => worker.stop(), notReadyReasons: () => worker.notReadyReasons() });
    }
    if (config.roles.includes("ingress")) {
      let spec: Promise<unknown> | undefined;
      const ingress = new IngressRole({
        config: config.ingress,
        router: () => (this.metadataService?.api() === undefined ? undefined : this.stateRouter),
        invocations: () => (this.metadataService?.api() === undefined ? undefined : this.invocationRouter),
        schema: () => (this.metadataService?.api() === undefined ? undefined : schema),
        spec: () => (spec ??= renderDataPlaneOpenApi()),
        logger: this.log.child({ component: "ingress" }),
      });
      this.ingressRole = ingress;
      roles.push({ name: "ingress", start: () => ingress.start(), stop: () => ingress.stop(), notReadyReasons: none });
    }
    // On every node, as the log controller always ran: it acts only while this node leads metadata.
    const controller = new ClusterController({
      bifrost,
      fabricClient,
      config: config.bifrost,
      partitionRebalance: { delayMs: config.worker["rebalance-delay-ms"], intervalMs: config.worker["rebalance-interval-ms"] },
      isLeader: () => this.leadsMetadata(),
      metadata: () => this.metadataService?.api(),
      logger: this.log,
      trim: {
        config: config.trim,
        repository: repositoryConfigured(config),
        self: () => this.nodeIdValue,
        localWorker: () => this.workerRole,
        registry: this.metrics,
      },
      snapshots: {
        config: config.snapshots,
        repository: snapshotRepository,
        fabricServer,
        self: () => this.nodeIdValue,
        localWorker: () => this.workerRole,
        registry: this.metrics,
        nowMs: this.nowMs,
      },
    });
    this.controller = controller;
    roles.push({ name: "cluster-controller", start: () => controller.start(), stop: () => controller.stop(), notReadyReasons: none });
    const monitor = new ClusterStatusMonitor({
      sources: {
        nodeLifecycle: () => this.lifecycle.state,
        self: () => ({
          id: this.nodeIdValue ?? null,
          name: config["node-name"],
          adminAddress: this.addressesValue?.admin ?? "",
          startedAtMs: this.startedAtMs,
        }),
        cluster: () => this.metadataService?.cluster(),
        metadataService: () => this.metadataService,
        logs: () => bifrost.bifrost(),
        ping: (address, signal) => fabricClient.call(address, BIFROST_RPCS.ping, {}, { signal, deadlineMs: 1_000 }),
        partitions: (tails) => this.partitionsOverview(tails),
        nowMs: this.nowMs,
      },
      intervalMs: config.admin["status-interval-ms"],
      logger: this.log.child({ component: "cluster-status" }),
      registry: this.metrics,
    });
    this.statusMonitor = monitor;
    roles.push({
      name: "admin-api",
      start: () => {
        const admin = this.startAdmin();
        this.addressesValue = { pid: process.pid, admin, fabric: this.fabricAddress, ingress: this.ingressRole?.url ?? null };
        monitor.start();
      },
      stop: async () => {
        monitor.stop();
        await this.adminServer?.stop(true);
        this.adminServer = undefined;
      },
      notReadyReasons: none,
    });
    roles.push({
      name: "metadata",
      start: async () => {
        this.metadataService = await this.startMetadata();
        const id = this.metadataService?.nodeId();
        if (id !== undefined) this.nodeIdValue ??= nodeId(id);
      },
      stop: async () => {
        await this.metadataService?.stop();
        this.metadataService = undefined;
      },
      // A refused join keeps the node out of the cluster: /ready says why.
      notReadyReasons: () => {
        const refusal = this.metadataService?.joinRefusal?.();
        return refusal === undefined ? [] : [`this node may not join the cluster: ${refusal}`];
      },
    });
    return roles;
  }

  /** The repository `[snapshots]` names (the same for the worker, which writes, and the controller, which lists). */
  private snapshotRepository(): SnapshotRepository | undefined {
    const c = this.config.snapshots;
    return openRepository(
      {
        repository: c.repository,
        path: c.path,
        s3Endpoint: c["s3-endpoint"],
        s3Bucket: c["s3-bucket"],
        s3Prefix: c["s3-prefix"],
        s3Region: c["s3-region"],
        s3AccessKeyId: c["s3-access-key-id"],
        s3SecretAccessKey: c["s3-secret-access-key"],
        numRetained: c["num-retained"],
        requestTimeoutMs: c["request-timeout-ms"],
        s3PartSizeBytes: c["s3-part-size-bytes"],
      },
      this.dataDir.path,
    );
  }

  /** The cluster controller acts on the metadata leader (or on the node holding a local metadata store). */
  private leadsMetadata(): boolean {
    return this.metadataService?.leadsAsMember() ?? false;
  }

  private startAdmin(): string {
    const [host, portText] = splitHostPort(this.config.admin["bind-address"]);
    let spec: Promise<unknown> | undefined;
    const app = createAdminApp(this.adminDeps(), () => (spec ??= openApiDocument()));
    try {
      app.listen({
        hostname: host,
        port: Number(portText),
        // The API answers oversized bodies itself (413 problem+json, from Content-Length); this is
        // the backstop for bodies that do not declare their length.
        maxRequestBodySize: this.config.admin["max-body-bytes"] * 2 + 65_536,
        idleTimeout: 30,
        // HTTP/2 cleartext by prior knowledge beside HTTP/1.1 on the same port: a client with many
        // requests in flight (appends) multiplexes them on one connection instead of one each.
        http2: true,
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") {
        throw new CairnError("NODE_PORT_IN_USE", `admin.bind-address ${host}:${portText} is already in use`, {
          key: "admin.bind-address",
        });
      }
      throw e;
    }
    const server = app.server;
    if (server === null) throw new Error("admin server did not start");
    this.adminServer = server;
    const advertised = this.config.admin["advertised-address"];
    return advertised || `http://${host}:${server.port}`;
  }

  private fabricOptions(): Partial<FabricOptions> {
    const n = this.config.net;
    return {
      serverTransport: n["server-transport"],
      maxInFlightPerPeer: n["max-in-flight-per-peer"],
      maxQueuedPerPeer: n["max-queued-per-peer"],
      maxInFlightBytesPerPeer: n["max-in-flight-bytes-per-peer"],
      maxRequestBytes: n["max-request-bytes"],
      maxResponseBytes: n["max-response-bytes"],
      requestTimeoutMs: n["request-timeout-ms"],
      connectTimeoutMs: n["connect-timeout-ms"],
      heartbeatIntervalMs: n["heartbeat-interval-ms"],
      heartbeatTimeoutMs: n["heartbeat-timeout-ms"],
      reconnectBackoffInitialMs: n["reconnect-backoff-initial-ms"],
      reconnectBackoffMaxMs: n["reconnect-backoff-max-ms"],
      windowSizeBytes: n["window-size-bytes"],
      maxSessionMemoryMb: n["max-session-memory-mb"],
      drainTimeoutMs: n["drain-timeout-ms"],
    };
  }

  /** The peer fabric: HTTP/2 server for peers, client pool towards them (nothing listens yet). */
  private createFabric(): { server: FabricServer; client: FabricClient } {
    const [host, port] = splitHostPort(this.config.net["bind-address"]);
    const clusterName = this.config["cluster-name"];
    const fingerprint = () => this.marker?.fingerprint ?? null;
    const secret = this.config.net["cluster-secret"];
    const server = new FabricServer({
      host,
      port: Number(port),
      identity: () => ({ clusterName, fingerprint: fingerprint(), secret, removed: (node) => this.isRemovedNode(node) }),
      registry: this.metrics,
      options: this.fabricOptions(),
      logger: this.log.child({ component: "fabric" }),
    });
    const client = new FabricClient({
      identity: () => ({
        clusterName,
        fingerprint: fingerprint(),
        nodeId: this.nodeIdValue ?? null,
        generation: this.generationValue,
        secret,
      }),
      registry: this.metrics,
      options: this.fabricOptions(),
    });
    return { server, client };
  }

  /** Whether an operator removed node `N<id>` (this node's copy of the nodes configuration says so). */
  private isRemovedNode(node: string): boolean {
    const removed = this.metadataService?.nodesConfig?.()?.removed;
    return removed !== undefined && removed.some((r) => `N${r.id}` === node);
  }

  /** Starts the fabric server; returns the address peers reach it at. */
  private async startFabricServer(server: FabricServer): Promise<string> {
    try {
      await server.start();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EADDRINUSE" || /in use/i.test((e as Error).message)) {
        const address = this.config.net["bind-address"];
        throw new CairnError("NODE_PORT_IN_USE", `net.bind-address ${address} is already in use`, { key: "net.bind-address" });
      }
      throw e;
    }
    return this.config.net["advertised-address"] || server.url;
  }

  private selfRegistration() {
    return {
      name: this.config["node-name"],
      generation: this.generationValue,
      incarnation: this.incarnation,
      roles: [...this.config.roles],
      fabricAddress: this.addresses.fabric,
      adminAddress: this.addresses.admin,
      autoJoin: this.config["metadata-server"]["auto-join"],
    };
  }

  /** The metadata store behind this node, per `metadata-server.type`. */
  private async startMetadata(): Promise<MetadataService | undefined> {
    const ms = this.config["metadata-server"];
    const runsServer = this.config.roles.includes("metadata-server");
    if (ms.type === "local") {
      if (!runsServer) return undefined;
      return new LocalMetadataService(this.dataDir.path, this.selfRegistration(), this.config["cluster-name"], {
        nowMs: this.nowMs,
        randomBytes: (n) => new Uint8Array(randomBytes(n)),
        onProvisioned: (c) => this.onProvisioned(c),
        provisioned: this.marker?.fingerprint != null,
      });
    }
    const service = new ReplicatedMetadataService({
      dataDir: this.dataDir.path,
      clusterName: this.config["cluster-name"],
      log: this.log,
      fabricServer: this.fabricServer!,
      fabricClient: this.fabricClient!,
      runsServer,
      provisioned: this.marker?.fingerprint != null,
      seeds: this.config["metadata-client"].addresses,
      driverOptions: {
        tickIntervalMs: ms["tick-interval-ms"],
        electionTimeoutTicks: ms["election-timeout-ticks"],
        heartbeatIntervalTicks: ms["heartbeat-interval-ticks"],
        snapshotIntervalEntries: ms["snapshot-interval-entries"],
        snapshotKeepEntries: 100,
      },
      requestTimeoutMs: ms["request-timeout-ms"],
      nowMs: this.nowMs,
      randomBytes: (n) => new Uint8Array(randomBytes(n)),
      self: () => this.selfRegistration(),
      onCluster: (c) => this.onProvisioned(c),
      onRegistered: (id) => {
        this.nodeIdValue = nodeId(id);
      },
      registry: this.metrics,
      integrityCheckIntervalMs: ms["integrity-check-interval-ms"],
      advanceGeneration: (minimum) => {
        this.generationValue = this.dataDir.advanceGeneration(minimum);
      },
      // Its log-server store is new: the records this node held before are gone (CAIRN-LOG-0025).
      onDataDirReplaced: () => this.logServer?.openStore()?.enterDataLoss(),
      // A worker may not join a cluster whose logs persisted-lsn trimmed past its snapshots.
      joinGuard: (api, joiner) => checkWorkerJoin(api, joiner),
    });
    this.metadataService = service; // so a failed start still stops it
    service.onLocalApplied?.(() => {
      for (const l of this.metadataApplied) l();
    });
    await service.start();
    return service;
  }

  private onProvisioned(cluster: ClusterInfo): void {
    if (this.marker?.fingerprint === cluster.fingerprint) return;
    this.dataDir.pinFingerprint(cluster.fingerprint);
    this.marker = this.dataDir.readMarker();
  }

  async provision(options: { numPartitions?: number | undefined; replication?: number | undefined }): Promise<ClusterInfo> {
    // Without a replication asked for: what the cluster's size allows. Only this node is registered
    // at provisioning, so that is 1, the default it always was (POST /v1/cluster/provision keeps its
    // answer for a missing field; ctl now says that the node picked it).
    const logServers = this.config.roles.includes("log-server") ? 1 : 0;
    const request = { numPartitions: options.numPartitions ?? DEFAULT_NUM_PARTITIONS, replication: options.replication ?? autoReplication(logServers) };
    if (this.metadataService === undefined) {
      throw new CairnError(
        "CLUSTER_INVALID_PROVISION",
        `node ${this.config["node-name"]} does not run the metadata-server role; provision through a node that does`,
      );
    }
    if (this.marker?.fingerprint != null && this.metadataService.cluster() === undefined) {
      // The data directory says it belongs to a provisioned cluster, yet its metadata does not show
      // it: damaged or missing storage, or a replica not caught up. Never provision a second cluster here.
      throw new CairnError(
        "CLUSTER_ALREADY_PROVISIONED",
        `the data directory ${this.dataDir.path} belongs to cluster fingerprint ${this.marker.fingerprint}, but its metadata is not available; check the node's metadata storage`,
      );
    }
    const cluster = await this.metadataService.provision(initialDocuments(this.config["cluster-name"], request));
    const id = this.metadataService.nodeId();
    if (id !== undefined) this.nodeIdValue ??= nodeId(id);
    this.log.info({ cluster, replicationPicked: options.replication === undefined }, `provisioned cluster '${cluster.name}'`);
    if (cluster.replication === 1) {
      this.log.warn(
        { code: ERRORS.CLUSTER_SINGLE_REPLICA.code, replication: 1 },
        "single-replica setup: replication 1 keeps one copy of each record; losing one node's disk loses data and nothing is fault tolerant",
      );
    }
    this.statusMonitor?.evaluateInBackground();
    return cluster;
  }

  readiness(): { ready: boolean; state: string; reasons: string[] } {
    const state = this.lifecycle.state;
    const reasons: string[] = [];
    if (state !== "running") reasons.push(`node is ${state}: ${this.lifecycle.stateReason}`);
    reasons.push(...(this.roles?.notReadyReasons() ?? []));
    return { ready: reasons.length === 0, state, reasons };
  }

  private adminDeps(): AdminDeps {
    return {
      version: versionInfo(),
      node: () => ({
        name: this.config["node-name"],
        id: this.nodeIdValue ?? null,
        generation: this.generationValue,
        cluster: { name: this.config["cluster-name"], fingerprint: this.marker?.fingerprint ?? null },
        roles: [...this.config.roles],
        lifecycle: { state: this.lifecycle.state, reason: this.lifecycle.stateReason, sinceMs: this.stateSinceMs },
        addresses: {
          admin: this.addressesValue?.admin ?? "",
          fabric: this.addressesValue?.fabric ?? "",
          ingress: this.addressesValue?.ingress ?? null,
        },
        dataDir: this.dataDir.path,
        pid: process.pid,
        startedAtMs: this.startedAtMs,
        version: VERSION,
      }),
      readiness: () => this.readiness(),
      config: () => this.config,
      metrics: () => this.metrics.metrics(),
      metricsContentType: this.metrics.contentType,
      maxBodyBytes: this.config.admin["max-body-bytes"],
      token: this.config.admin.token,
      onForcedTrim: (e) => this.log.warn(e, `forced trim of log ${e.log}: LSNs ${e.discarded.fromLsn}..${e.discarded.toLsn} were cut past the archived LSN ${e.archivedLsn}`),
      onBug: (e) => this.log.error({ err: e }, "unexpected error in admin API handler"),
      metadata: () => this.metadataService?.api(),
      maxMetadataValueBytes: this.config["metadata-server"]["max-value-bytes"],
      cluster: () => this.metadataService?.cluster(),
      provision: (req) => this.provision(req),
      clusterStatus: (options) => {
        if (this.statusMonitor === undefined) throw new CairnError("NODE_NOT_READY", "the node is not started");
        return this.statusMonitor.status(options);
      },
      metadataService: () => this.metadataService,
      logs: () => this.bifrostRole?.bifrost(),
      partitions: () => this.partitionsOverview(true),
      invocations: () => {
        const [router, bifrost, fabricClient] = [this.stateRouter, this.bifrostRole, this.fabricClient];
        if (this.metadataService?.cluster() === undefined || router === undefined || bifrost === undefined || fabricClient === undefined) return undefined;
        return (this.invocationOperations ??= new InvocationOperations({
          router,
          metadata: () => this.metadataService?.api(),
          fabricClient,
          workers: async () => (await bifrost.refreshNodes(), bifrost.directory.workers()),
          self: () => this.nodeIdValue,
          localWorker: () => this.workerRole,
          listDeadlineMs: INVOCATIONS_ADMIN_LIST_DEADLINE_MS,
          requestDeadlineMs: this.config.ingress["request-timeout-ms"],
        }));
      },
      snapshots: () => {
        if (this.controller === undefined) throw new CairnError("NODE_NOT_READY", "the cluster controller of this node is not running");
        return this.controller.snapshotter;
      },
    };
  }

  /** Every partition's placement, epoch and processors (and with `tails` its log's tail); undefined before provisioning. */
  private async partitionsOverview(tails: boolean): Promise<PartitionOverview[] | undefined> {
    const metadata = this.metadataService?.api();
    if (metadata === undefined || this.bifrostRole === undefined || this.fabricClient === undefined || this.metadataService?.cluster() === undefined) return undefined;
    await this.bifrostRole.refreshNodes();
    return partitionsOverview({
      metadata,
      bifrost: tails ? this.bifrostRole.bifrost() : undefined,
      directory: this.bifrostRole.directory,
      fabricClient: this.fabricClient,
      self: this.nodeIdValue,
      localWorker: this.workerRole,
      deadlineMs: PARTITIONS_OVERVIEW_DEADLINE_MS,
    });
  }
}

export function splitHostPort(address: string): [string, string] {
  const i = address.lastIndexOf(":");
  return [address.slice(0, i), address.slice(i + 1)];
}
