// The `bifrost` configuration section: how this node appends to and reads logs (timeouts, batching
// and in-flight bounds of its sequencers) and how the log controller places and repairs segments.
// config/schema.ts includes it; `bifrostOptions` maps it onto the runtime options.
import { Type, type Static } from "@sinclair/typebox";

const Ms = (description: string, dflt: number) => Type.Integer({ description, default: dflt, minimum: 1, maximum: 2 ** 31 - 1 });
const Count = (description: string, dflt: number, minimum = 1) => Type.Integer({ description, default: dflt, minimum, maximum: 2 ** 31 - 1 });

export const BifrostSection = Type.Object(
  {
    "default-provider": Type.Union([Type.Literal("replicated"), Type.Literal("local")], {
      description:
        "Loglet kind of new segments the log controller creates: `replicated` (a sequencer and a nodeset of log-servers) or `local` (one node's record store, no replication; single-node setups).",
      default: "replicated",
    }),
    "append-timeout-ms": Ms(
      "How long an append may wait for a writable segment (while the log is reconfigured) and for its records to become durable.",
      10_000,
    ),
    "max-append-records": Count("Most records in one append batch.", 4096),
    "max-append-bytes": Count("Most payload bytes in one append batch (must fit net.max-request-bytes).", 4 * 1024 * 1024),
    "max-read-records": Count("Most records one read returns.", 4096),
    "chain-refresh-interval-ms": Ms("How often a node re-reads the logs metadata (segment chains) in the background.", 500),
    "tick-interval-ms": Ms("Tick of the replicated-loglet drivers (sequencer, seal, find-tail, reader); their timeouts count ticks.", 10),
    "store-timeout-ms": Ms("A store on a log-server unanswered this long is retried (elsewhere if possible).", 2_000),
    "max-inflight-batches": Count("Append batches of one sequencer stored but not yet committed.", 64),
    "max-inflight-bytes": Count("Payload bytes of one sequencer stored but not yet committed.", 32 * 1024 * 1024),
    "max-queued-appends": Count("Appends waiting for in-flight room per sequencer; beyond that appends fail with CAIRN-LOG-0009.", 1024, 0),
    "controller-interval-ms": Ms("Period of the log controller (on the metadata leader): placement, liveness and reconfiguration.", 500),
    "failure-timeout-ms": Ms(
      "A log-server node that has not answered the controller's pings for this long counts as dead: logs whose sequencer it holds are reconfigured.",
      2_000,
    ),
    "refused-dead-ms": Count(
      "A log-server node whose fabric port has refused every connection for this long (at least two probes after failed pings, nothing else in between) counts as dead before `failure-timeout-ms`: a refused connection means no process listens there (killed or stopped), which a paused or overloaded node never gives. 0: only `failure-timeout-ms` counts.",
      300,
      0,
    ),
    "probe-interval-ms": Count(
      "Between controller rounds, how often the log controller probes again a log-server node under suspicion (its last ping failed or the fabric lost its connection); a node found dead by refused connections starts a round at once (mere silence still waits for a round). 0: nodes are probed once per round only.",
      100,
      0,
    ),
    "max-concurrent-reconfigurations": Count("Logs the controller seals and reconfigures at once.", 8),
    "max-replication-changes-per-round": Count(
      "When the cluster's replication setting changes (`cairn ctl config set --replication`), logs the controller moves to it per round (the rest follow in later rounds, so the change is spread over time).",
      2,
    ),
    "nodeset-size": Count("Log-servers in a new nodeset. 0: automatic, max(2r−1, r+1) capped by the live log-servers.", 0, 0),
    "rereplication-max-concurrent": Count(
      "Sealed segments the log controller copies onto more log-servers at once (re-replication: a segment with fewer copies than its log's current replication). 0: no automatic re-replication (the operator's trigger still works).",
      2,
      0,
    ),
    "rereplication-bytes-per-second": Count(
      "Bandwidth bound of one re-replication: payload bytes read and stored per second. The copy competes with the node's appends for CPU: on 2 shared cores, 32 MiB/s doubled their p99 (bench/results/rereplication.json), and faster copies cost them about proportionally more.",
      32 * 1024 * 1024,
    ),
    "rereplication-batch-records": Count("Most records re-replication reads and stores in one request.", 1024),
    "rereplication-batch-bytes": Count("Most payload bytes re-replication reads in one request, its window (must fit net.max-request-bytes).", 1024 * 1024),
    "rereplication-store-bytes": Count(
      "Most payload bytes in one re-replication store request: a window is stored as several, so a target's appends never wait behind a whole window in its group commit (see log-server.max-repair-batch-bytes).",
      256 * 1024,
    ),
    "rereplication-max-loop-lag-ms": Count(
      "Re-replication yields to the copying node's other work: a pacing tick that fires more than this late (the event loop busy, so appends there wait too) adds no byte credit. 0: pace by bytes only.",
      2,
      0,
    ),
    "rereplication-storing-windows": Count("Re-replication windows whose stores may be in flight at once, while the next window is read.", 2),
    "auto-improve": Type.Boolean({
      description:
        "Let the controller move a log to a better nodeset by itself: when a nodeset member is dead and another log-server can replace it, or when more log-servers joined than the nodeset uses. Logs placed with an explicit nodeset are never moved.",
      default: true,
    }),
  },
  { additionalProperties: false, description: "Logs: appends, reads and the log controller." },
);

export type BifrostConfig = Static<typeof BifrostSection>;
