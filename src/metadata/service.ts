// The node's view of the metadata store, whichever kind backs it: is the cluster provisioned, the
// MetadataApi once it is, and provisioning. The node and the admin API talk only to this.
import type { MetadataApi } from "./api.ts";
import type { ClusterInfo } from "./nodes-config.ts";
import type { ProvisionRequest } from "./provision.ts";

export interface MetadataService {
  /** The metadata store, or undefined while the cluster is not provisioned. */
  api(): MetadataApi | undefined;
  /** The cluster's identity, or undefined while it is not provisioned. */
  cluster(): ClusterInfo | undefined;
  /** Provision the cluster with this node as its first metadata member. */
  provision(request: ProvisionRequest): Promise<ClusterInfo>;
  /** The node's id in the nodes configuration once registered (undefined before). */
  nodeId(): number | undefined;
  stop(): Promise<void>;
}
