// What the admin API needs from the node. The API never reaches into the node's internals:
// everything it shows comes through this interface (which tests can also satisfy with a real node).
import type { Static } from "@sinclair/typebox";
import type { Bifrost } from "../../bifrost/bifrost.ts";
import type { Config } from "../../config/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { CairnError } from "../../observability/errors.ts";
import type { ClusterInfo } from "../../metadata/nodes-config.ts";
import type { MetadataService } from "../../metadata/service.ts";
import type { VersionInfo } from "../../version.ts";
import type { PartitionOverview } from "../../worker/index.ts";
import type { NodeInfo } from "./models.ts";
import type { InvocationOperations } from "./invocation-operations.ts";
import type { Snapshotter } from "../controller/snapshotter.ts";
import type { ClusterStatus } from "../status/schema.ts";

export interface AdminDeps {
  version: VersionInfo;
  node(): Static<typeof NodeInfo>;
  readiness(): { ready: boolean; state: string; reasons: string[] };
  config(): Config;
  metrics(): Promise<string>;
  metricsContentType: string;
  maxBodyBytes: number;
  /** Required bearer token; "" = none. */
  token: string;
  /** The metadata store; undefined while the cluster is not provisioned. */
  metadata(): MetadataApi | undefined;
  maxMetadataValueBytes: number;
  /** The cluster, or undefined while it is not provisioned. */
  cluster(): ClusterInfo | undefined;
  /** Provision the cluster; a missing field takes the node's default (8 partitions, replication 1). */
  provision(request: { numPartitions?: number | undefined; replication?: number | undefined }): Promise<ClusterInfo>;
  /** The cluster's lifecycle state and overview (`tails`: find every log's tail too). */
  clusterStatus(options: { tails: boolean }): Promise<ClusterStatus>;
  /** The node's metadata service (undefined on a node without one). */
  metadataService(): MetadataService | undefined;
  /** The node's logs layer (undefined before it started). */
  logs(): Bifrost | undefined;
  /** The cluster's partitions as every worker reports them; undefined while not provisioned. */
  partitions(): Promise<PartitionOverview[] | undefined>;
  /** An operator forced a trim past the archived LSN (the node logs it); optional. */
  onForcedTrim?(event: { log: number; archivedLsn: number; discarded: { fromLsn: number; toLsn: number } }): void;
  /** Durable invocations: list, describe, act on one; undefined while the cluster is not provisioned. */
  invocations(): Pick<InvocationOperations, "list" | "describe" | "control"> | undefined;
  /** Snapshot jobs and the repository's listing. */
  snapshots(): Pick<Snapshotter, "create" | "job" | "list">;
  /** Called with errors that are bugs (unexpected exceptions in handlers). */
  onBug(error: unknown): void;
}

/** The metadata store, or CAIRN-CLUSTER-0001 while the cluster is not provisioned. */
export function requireMetadata(deps: AdminDeps): MetadataApi {
  const api = deps.metadata();
  if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
  return api;
}
