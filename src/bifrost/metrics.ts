// Bifrost's metrics, per log: appends and records acknowledged, append latency (as the appending
// client sees it, forwarding and reconfiguration waits included), failures by code, how far each
// log-server of a sequencer's nodeset is behind the committed tail, the trim point, and
// reconfigurations by reason. One set per registry (several nodes may share a test process).
import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";

const byRegistry = new WeakMap<Registry, BifrostMetrics>();

export class BifrostMetrics {
  readonly appends: Counter<"log">;
  readonly records: Counter<"log">;
  readonly appendSeconds: Histogram<"log">;
  readonly appendFailures: Counter<"log" | "code">;
  readonly replicationLag: Gauge<"log" | "node">;
  readonly trimPoint: Gauge<"log">;
  readonly reconfigurations: Counter<"log" | "reason">;
  readonly rereplicatedRecords: Counter<"log">;
  readonly rereplicatedSegments: Counter<"log">;
  readonly underReplicatedRecords: Gauge<"log">;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.appends = new Counter({ name: "cairn_bifrost_appends_total", help: "Append batches acknowledged, per log", labelNames: ["log"], registers });
    this.records = new Counter({ name: "cairn_bifrost_appended_records_total", help: "Records acknowledged, per log", labelNames: ["log"], registers });
    this.appendSeconds = new Histogram({
      name: "cairn_bifrost_append_seconds",
      help: "Time from append to acknowledgement (durable on r log-servers), per log",
      labelNames: ["log"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.appendFailures = new Counter({
      name: "cairn_bifrost_append_failures_total",
      help: "Appends that failed, per log and error code",
      labelNames: ["log", "code"],
      registers,
    });
    this.replicationLag = new Gauge({
      name: "cairn_bifrost_replication_lag_records",
      help: "Records a log-server of the tail segment's nodeset is behind the committed tail (on the sequencer's node)",
      labelNames: ["log", "node"],
      registers,
    });
    this.trimPoint = new Gauge({ name: "cairn_bifrost_trim_point_lsn", help: "Trim point of the log (last trimmed LSN; 0 = never)", labelNames: ["log"], registers });
    this.reconfigurations = new Counter({
      name: "cairn_bifrost_reconfigurations_total",
      help: "Segments added to a log's chain by this node, per log and reason",
      labelNames: ["log", "reason"],
      registers,
    });
    this.rereplicatedRecords = new Counter({
      name: "cairn_bifrost_rereplicated_records_total",
      help: "Records of sealed segments copied onto more log-servers by this node (re-replication), per log",
      labelNames: ["log"],
      registers,
    });
    this.rereplicatedSegments = new Counter({
      name: "cairn_bifrost_rereplicated_segments_total",
      help: "Sealed segments whose nodeset this node raised after copying them (re-replication), per log",
      labelNames: ["log"],
      registers,
    });
    this.underReplicatedRecords = new Gauge({
      name: "cairn_bifrost_under_replicated_records",
      help: "Records of sealed segments with fewer copies than their log's current replication, per log (set by the log controller on the metadata leader)",
      labelNames: ["log"],
      registers,
    });
  }

  static of(registry: Registry): BifrostMetrics {
    let m = byRegistry.get(registry);
    if (!m) {
      m = new BifrostMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }
}
