// Everything about logs a node runs, in one place the node starts and stops: the log-server role
// (record store + its RPCs) when the node has that role, and bifrost (appends, reads, the
// controller) once wired. The node only calls start(), stop() and reads the accessors.
import type { Config } from "../config/index.ts";
import { LogServerRole } from "../logserver/role.ts";
import type { LogStore } from "../logserver/store.ts";
import type { MetadataService } from "../metadata/service.ts";
import type { FabricClient, FabricServer } from "../net/index.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";

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
}

export class NodeLogs {
  private logServer: LogServerRole | undefined;

  constructor(private readonly deps: NodeLogsDeps) {}

  /** Opens the record store when the node runs the log-server role and registers every RPC. */
  start(): void {
    const { config } = this.deps;
    if (config.roles.includes("log-server")) {
      this.logServer = LogServerRole.start({
        dataDir: this.deps.dataDir,
        config: config["log-server"],
        fabric: this.deps.fabricServer,
        registry: this.deps.registry,
        logger: this.deps.logger.child({ component: "log-server" }),
      });
    }
  }

  /** This node's record store (log-server role only). */
  store(): LogStore | undefined {
    return this.logServer?.store;
  }

  /** Call after the fabric server stopped (no handler runs any more). */
  async stop(): Promise<void> {
    await this.logServer?.stop();
    this.logServer = undefined;
  }
}
