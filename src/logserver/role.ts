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

export interface LogServerRoleDeps {
  readonly dataDir: string;
  /** The data directory belongs to a provisioned cluster (an empty store file is then refused). */
  readonly provisioned: boolean;
  readonly config: LogServerConfig;
  readonly fabric: FabricServer;
  readonly registry: Registry;
  readonly logger: Logger;
}

export class LogServerRole {
  private storeValue: LogStore | undefined;

  constructor(private readonly args: LogServerRoleDeps) {}

  /** The open record store; only after start(). */
  get store(): LogStore {
    if (this.storeValue === undefined) throw new Error("the log-server role has not started");
    return this.storeValue;
  }

  /** The record store if the role has started, else undefined. */
  openStore(): LogStore | undefined {
    return this.storeValue;
  }

  /**
   * Opens the store (failing with LOG_STORE_CORRUPT / LOG_STORE_EMPTY / LOG_STORE_UNAVAILABLE) and
   * registers the RPCs.
   */
  start(): void {
    const args = this.args;
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
    if (store.recovering) {
      args.logger.warn(
        { path, code: "CAIRN-LOG-0025" },
        "the log-server record store came back empty in a provisioned data directory: data-loss mode (no seal, tail or digest evidence, repair stores only) until no segment names this node",
      );
    }
    this.storeValue = store;
  }

  /** Why the node is not ready because of this role (a store that takes no writes, or one recovering from data loss). */
  notReadyReasons(): string[] {
    if (this.storeValue?.recovering === true) {
      return [
        `log-server store ${this.storeValue.path} is recovering from data loss (it came back empty where this node had one): it answers no seal, tail or digest as evidence and takes only repair stores until re-replication has moved or restored every segment that names this node (CAIRN-LOG-0025)`,
      ];
    }
    // A record store disabled by a failed write serves reads only until its recovery probe proves
    // the disk writes and syncs again: the node is not ready meanwhile.
    const failure = this.storeValue?.writeFailureReason;
    const status = this.storeValue?.recoveryStatus;
    if (this.storeValue === undefined || failure === undefined) return [];
    const probes = status === undefined ? "" : `; ${status.failedProbes} recovery probe${status.failedProbes === 1 ? "" : "s"} failed, next in ${status.nextProbeDelayMs} ms`;
    return [
      `log-server store ${this.storeValue.path} takes no writes since a write failed (${failure})${probes}: fix the disk; writes resume by themselves once a recovery probe (test write + fsync) succeeds (CAIRN-LOG-0007)`,
    ];
  }

  async stop(): Promise<void> {
    await this.storeValue?.close();
    this.storeValue = undefined;
  }
}
