// The log-server role of a node: opens the record store in the data directory and serves it to peers
// over the fabric. One store per node (`logserver.sqlite`); it stays open for the node's lifetime.
// In a provisioned cluster's data directory an empty store file, or a missing one that the node is
// known to have created (`logserver.sqlite.created`), is refused (CAIRN-LOG-0021): it may have held
// acknowledged records. A missing one without that marker is created (the node never had the file).
import { join } from "node:path";
import type { FabricServer } from "../net/index.ts";
import type { Logger } from "../observability/log.ts";
import type { Registry } from "../observability/metrics.ts";
import { logStoreOptions, type LogServerConfig } from "./config.ts";
import { registerLogServerRpcs } from "./service.ts";
import { LogStore } from "./store.ts";

export const LOG_STORE_FILE = "logserver.sqlite";

export class LogServerRole {
  private constructor(readonly store: LogStore) {}

  /**
   * Opens the store (failing with LOG_STORE_CORRUPT / LOG_STORE_EMPTY / LOG_STORE_UNAVAILABLE) and
   * registers the RPCs. `provisioned`: the data directory belongs to a provisioned cluster.
   */
  static start(args: { dataDir: string; provisioned: boolean; config: LogServerConfig; fabric: FabricServer; registry: Registry; logger: Logger }): LogServerRole {
    const path = join(args.dataDir, LOG_STORE_FILE);
    if (!args.config.sync) {
      args.logger.warn(
        { key: "log-server.sync", path },
        "log-server.sync = false: records are acknowledged before they reach the disk; a machine crash can lose acknowledged appends (tests and development only)",
      );
    }
    const store = LogStore.open({ path, ...logStoreOptions(args.config), provisioned: args.provisioned, registry: args.registry, logger: args.logger });
    registerLogServerRpcs(args.fabric, store);
    args.logger.info({ path, sync: args.config.sync }, "log-server record store open");
    return new LogServerRole(store);
  }

  async stop(): Promise<void> {
    await this.store.close();
  }
}
