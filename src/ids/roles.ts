// The roles a node can run. Every role, the node and the config schema name them from here.
export const ROLES = ["metadata-server", "log-server", "worker", "admin", "ingress"] as const;
export type Role = (typeof ROLES)[number];
