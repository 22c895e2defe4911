// A cairn node: one process, some roles. Owns the data directory (lock, marker, generation), the
// lifecycle state machine, the metrics registry and the servers every node runs (admin API; peer
// fabric). start() brings it to `running`; stop() releases every port, timer and file lock.
import { hostname } from "node:os";
import type { Server } from "bun";
import type { Config } from "../config/index.ts";
import { createAdminApp, openApiDocument, type AdminDeps } from "../admin/index.ts";
import { CairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { createRegistry, Gauge, type Registry } from "../observability/metrics.ts";
import { VERSION, versionInfo } from "../version.ts";
import { randomBytes } from "node:crypto";
import { LocalMetadataService } from "../metadata/local-service.ts";
import type { ClusterInfo } from "../metadata/nodes-config.ts";
import type { MetadataService } from "../metadata/service.ts";
import { clearAddresses, DataDir, type Addresses, type ClusterMarker } from "./datadir.ts";
import { NodeLifecycle, NODE_STATES, type NodeLifecycleState } from "./lifecycle.ts";

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
      const admin = this.startAdmin();
      this.addressesValue = {
        pid: process.pid,
        admin: admin,
        // The peer fabric is wired in by the net module; until then this is its configured address.
        fabric: this.config.net["advertised-address"] || this.config.net["bind-address"],
        ingress: null,
      };
      this.metadataService = this.startMetadata();
      if (this.config["auto-provision"] && this.metadataService?.cluster() === undefined) {
        await this.provision({ numPartitions: 8, replication: 1 });
      }
      this.dataDir.writeAddresses(this.addressesValue);
      this.lifecycle.transition("running", "all roles started");
      this.log.info({ addresses: this.addressesValue }, "node running");
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

  private async releaseResources(): Promise<void> {
    if (this.metadataService !== undefined) {
      await this.metadataService.stop();
      this.metadataService = undefined;
    }
    if (this.adminServer !== undefined) {
      await this.adminServer.stop(true);
      this.adminServer = undefined;
    }
    this.dataDir.close();
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

  /** The metadata store behind this node, per `metadata-server.type`. */
  private startMetadata(): MetadataService | undefined {
    if (!this.config.roles.includes("metadata-server")) return undefined;
    if (this.config["metadata-server"].type !== "local") return undefined;
    return new LocalMetadataService(
      this.dataDir.path,
      {
        name: this.config["node-name"],
        generation: this.generationValue,
        roles: [...this.config.roles],
        fabricAddress: this.addresses.fabric,
        adminAddress: this.addresses.admin,
        autoJoin: this.config["metadata-server"]["auto-join"],
      },
      this.config["cluster-name"],
      {
        nowMs: this.nowMs,
        randomBytes: (n) => new Uint8Array(randomBytes(n)),
        onProvisioned: (c) => this.onProvisioned(c),
      },
    );
  }

  private onProvisioned(cluster: ClusterInfo): void {
    this.dataDir.pinFingerprint(cluster.fingerprint);
    this.marker = this.dataDir.readMarker();
  }

  async provision(request: { numPartitions: number; replication: number }): Promise<ClusterInfo> {
    if (this.metadataService === undefined) {
      throw new CairnError(
        "CLUSTER_INVALID_PROVISION",
        this.config.roles.includes("metadata-server")
          ? "this build serves only the local metadata store; start the node with metadata-server.type = \"local\""
          : `node ${this.config["node-name"]} does not run the metadata-server role; provision through a node that does`,
      );
    }
    const cluster = await this.metadataService.provision(request);
    this.log.info({ cluster }, `provisioned cluster '${cluster.name}'`);
    return cluster;
  }

  readiness(): { ready: boolean; state: string; reasons: string[] } {
    const state = this.lifecycle.state;
    const reasons: string[] = [];
    if (state !== "running") reasons.push(`node is ${state}: ${this.lifecycle.stateReason}`);
    return { ready: reasons.length === 0, state, reasons };
  }

  private adminDeps(): AdminDeps {
    return {
      version: versionInfo(),
      node: () => ({
        name: this.config["node-name"],
        id: this.metadataService?.nodeId() !== undefined ? `N${this.metadataService.nodeId()}` : null,
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
      onBug: (e) => this.log.error({ err: e }, "unexpected error in admin API handler"),
      metadata: () => this.metadataService?.api(),
      maxMetadataValueBytes: this.config["metadata-server"]["max-value-bytes"],
      cluster: () => this.metadataService?.cluster(),
      provision: (req) => this.provision(req),
    };
  }
}

export function splitHostPort(address: string): [string, string] {
  const i = address.lastIndexOf(":");
  return [address.slice(0, i), address.slice(i + 1)];
}

export function defaultNodeName(): string {
  return hostname();
}
