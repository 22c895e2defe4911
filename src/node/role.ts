// The one interface through which a node starts and stops what it runs, and the one place that says
// in what order. Roles (log-server, bifrost, worker, the cluster controller, ingress, the admin API,
// metadata) and the
// node's own peer fabric are all started in START_ORDER and stopped in STOP_ORDER; a role a node does
// not run is skipped. Roles never import this file: they fit the interface by shape.

/** What the node runs, by name. */
export type RoleName = (typeof START_ORDER)[number];

export interface Role {
  readonly name: RoleName;
  /** Opens what the role needs and registers its handlers; a failure fails the node's start. */
  start(): void | Promise<void>;
  /** Releases every timer, connection and file; safe after a failed or partial start. */
  stop(): void | Promise<void>;
  /** Why this role keeps the node from being ready (GET /ready); empty when it has no objection. */
  notReadyReasons(): string[];
  // Metrics: each role registers its own in the node's registry, handed to it when it is built, so
  // GET /metrics shows every role's without the node knowing them.
}

/**
 * Start: the fabric server and client first (every role registers RPC handlers or calls peers);
 * the log-server before bifrost (bifrost stores to the local record store directly); the worker
 * after bifrost (its processors read and append partition logs through it); the cluster controller
 * after bifrost (it drives bifrost); the ingress after the worker (it hands requests to it) and
 * before the admin API (whose start publishes the node's addresses, the data plane's included);
 * the admin API before metadata (a node that waits to join the metadata cluster already answers
 * /health, /ready and /v1/node); metadata last (it registers the node, which needs the admin and
 * fabric addresses). The worker and the ingress idle until metadata knows the cluster.
 */
export const START_ORDER = ["fabric-server", "fabric-client", "log-server", "bifrost", "worker", "cluster-controller", "ingress", "admin-api", "metadata"] as const;

/**
 * Stop, outside in: first the ingress and the admin API (their open connections are closed, so a
 * request still in flight ends unanswered, which its client must treat as "may have been applied"),
 * then the fabric server (peers' requests, forwarded data-plane ones included, drain), the worker
 * (its processors still read the log through bifrost), the cluster controller, bifrost and the
 * log-server, and metadata after them; the fabric client last. The other way round, an append still retrying inside bifrost
 * found the metadata service gone and was answered 503 CAIRN-CLUSTER-0001 ("not provisioned":
 * nothing applied) although its records had been stored (chaos seed 101, fsync-error nemesis).
 */
export const STOP_ORDER: readonly RoleName[] = [
  "ingress",
  "admin-api",
  "fabric-server",
  "worker",
  "cluster-controller",
  "bifrost",
  "log-server",
  "metadata",
  "fabric-client",
];

/** Starts and stops a node's roles in the declared orders. */
export class RoleSet {
  private readonly roles = new Map<RoleName, Role>();
  /** Roles whose start() was called (stopped even if it threw). */
  private readonly attempted = new Set<RoleName>();

  constructor(roles: readonly Role[]) {
    for (const r of roles) {
      if (this.roles.has(r.name)) throw new Error(`role ${r.name} given twice`);
      this.roles.set(r.name, r);
    }
  }

  async start(): Promise<void> {
    for (const name of START_ORDER) {
      const role = this.roles.get(name);
      if (role === undefined) continue;
      this.attempted.add(name);
      await role.start();
    }
  }

  /** Stops every role whose start was attempted, in STOP_ORDER. */
  async stop(): Promise<void> {
    for (const name of STOP_ORDER) {
      const role = this.roles.get(name);
      if (role === undefined || !this.attempted.has(name)) continue;
      this.attempted.delete(name);
      await role.stop();
    }
  }

  notReadyReasons(): string[] {
    return START_ORDER.flatMap((name) => this.roles.get(name)?.notReadyReasons() ?? []);
  }

  has(name: RoleName): boolean {
    return this.roles.has(name);
  }
}

// Each order names every role once.
if (new Set(STOP_ORDER).size !== START_ORDER.length || !START_ORDER.every((r) => STOP_ORDER.includes(r))) {
  throw new Error("STOP_ORDER must name exactly the roles of START_ORDER");
}
