// The metadata server's metrics: Raft role, term, leader, commit and applied index, proposals in flight,
// per-follower lag (on the leader) and the store's size are read when /metrics is scraped (nothing on
// the write path); proposal→apply latency, snapshots taken and installed, and reads by consistency are
// counted as they happen. One set per registry (several nodes may share a test process).
import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";
import type { RaftStatus } from "../raft/index.ts";

/** What the gauges read at scrape time; undefined while the node runs no Raft driver. */
export interface MetadataMetricsSource {
  status(): RaftStatus | undefined;
  appliedIndex(): number | undefined;
  proposalsInFlight(): number;
  snapshotIndex(): number | undefined;
  storeBytes(): number;
}

const ROLES = ["leader", "candidate", "precandidate", "follower"] as const;
const byRegistry = new WeakMap<Registry, MetadataMetrics>();

export class MetadataMetrics {
  readonly proposalSeconds: Histogram;
  readonly snapshotsTaken: Counter;
  readonly snapshotInstalls: Counter;
  readonly snapshotInstallRows: Counter;
  readonly snapshotInstallSeconds: Histogram;
  readonly snapshotTransferPagesServed: Counter;
  readonly reads: Counter<"consistency">;
  private source: MetadataMetricsSource | undefined;

  private constructor(registry: Registry) {
    const registers = [registry];
    const status = () => this.source?.status();
    new Gauge({
      name: "cairn_metadata_raft_role",
      help: "1 for this member's current Raft role, 0 for the others (all 0 without Raft state)",
      labelNames: ["role"],
      registers,
      collect() {
        const role = status()?.role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    const scalar = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    scalar("cairn_metadata_raft_term", "Current Raft term of this member", () => status()?.term);
    scalar("cairn_metadata_raft_leader", "Node number of the leader this member knows (0: none)", () => status()?.leader);
    scalar("cairn_metadata_raft_commit_index", "Highest log index known committed", () => status()?.commit);
    scalar("cairn_metadata_applied_index", "Highest log index applied to the store", () => this.source?.appliedIndex());
    scalar("cairn_metadata_snapshot_index", "Index of the latest snapshot (the log is compacted below it)", () => this.source?.snapshotIndex());
    scalar("cairn_metadata_proposals_in_flight", "Writes proposed by this member and not applied yet", () => this.source?.proposalsInFlight());
    scalar("cairn_metadata_store_bytes", "Size of the metadata server's SQLite file (Raft log and KV state)", () => this.source?.storeBytes());
    new Gauge({
      name: "cairn_metadata_follower_lag_entries",
      help: "On the leader: log entries each follower or learner is behind the leader's last index",
      labelNames: ["node"],
      registers,
      collect() {
        this.reset();
        const s = status();
        if (s === undefined || s.role !== "leader") return;
        for (const [id, p] of s.progress) if (id !== s.id) this.set({ node: `N${id}` }, Math.max(0, s.lastIndex - p.match));
      },
    });
    this.proposalSeconds = new Histogram({
      name: "cairn_metadata_proposal_seconds",
      help: "Time from a write's proposal to its application on this member (the leader)",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.snapshotsTaken = new Counter({ name: "cairn_metadata_snapshots_total", help: "Snapshots taken (each compacts the Raft log)", registers });
    this.snapshotInstalls = new Counter({ name: "cairn_metadata_snapshot_installs_total", help: "Snapshots installed, pulled from another member", registers });
    this.snapshotInstallRows = new Counter({ name: "cairn_metadata_snapshot_install_rows_total", help: "Rows pulled by snapshot installs", registers });
    this.snapshotInstallSeconds = new Histogram({
      name: "cairn_metadata_snapshot_install_seconds",
      help: "Time to pull and install a snapshot",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    });
    this.snapshotTransferPagesServed = new Counter({
      name: "cairn_metadata_snapshot_pages_served_total",
      help: "Pages of this member's store served to members installing a snapshot",
      registers,
    });
    this.reads = new Counter({ name: "cairn_metadata_reads_total", help: "Reads served by this member, by consistency", labelNames: ["consistency"], registers });
  }

  static for(registry: Registry): MetadataMetrics {
    let m = byRegistry.get(registry);
    if (m === undefined) {
      m = new MetadataMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  /** What the scrape-time gauges read (the node's current metadata server). */
  attach(source: MetadataMetricsSource): void {
    this.source = source;
  }
}
