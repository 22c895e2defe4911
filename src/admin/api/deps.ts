// What the admin API needs from the node. The API never reaches into the node's internals:
// everything it shows comes through this interface (which tests can also satisfy with a real node).
import type { Static } from "@sinclair/typebox";
import type { Config } from "../../config/index.ts";
import type { VersionInfo } from "../../version.ts";
import type { NodeInfo } from "./models.ts";

export interface AdminDeps {
  version: VersionInfo;
  node(): Static<typeof NodeInfo>;
  readiness(): { ready: boolean; state: string; reasons: string[] };
  config(): Config;
  metrics(): Promise<string>;
  metricsContentType: string;
  maxBodyBytes: number;
  /** Called with errors that are bugs (unexpected exceptions in handlers). */
  onBug(error: unknown): void;
}
