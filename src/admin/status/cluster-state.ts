// The cluster's lifecycle state, decided from signals any node can gather: its own lifecycle,
// whether the cluster is provisioned, the metadata service's leader and members, which nodes answer
// and with which generation, which log-server stores take writes, every log's tail segment, and
// which partitions have a leader.
// Pure: no clock, no I/O; the driver (monitor.ts) gathers the signals and calls `decideClusterStatus`.
// Invariants: exactly one state; `running` has no reasons; every reason and warning carries a
// catalogue code; the tracker reports a transition only when the state changes.
import type { NodeLifecycleState } from "../../ids/index.ts";
import { ERRORS, invariant, type ErrorName } from "../../observability/errors.ts";

/**
 * starting: this node is still starting (it cannot tell yet).
 * awaiting-provisioning: nothing to run until `cairn ctl provision` (or auto-provision).
 * running: everything answers, every log takes appends.
 * degraded: the cluster serves, but something is down or cannot be written (see the reasons).
 * unavailable: the metadata service has no leader or no live quorum: nothing can change.
 * stopping: this node is shutting down.
 */
export const CLUSTER_STATES = ["starting", "awaiting-provisioning", "running", "degraded", "unavailable", "stopping"] as const;
export type ClusterState = (typeof CLUSTER_STATES)[number];

/** One reason or warning: a catalogue code, what it is about, and a sentence. */
export interface StatusItem {
  readonly code: string;
  /** What it is about (`N2`, `log 3`, `cluster`). */
  readonly subject: string;
  readonly message: string;
}

export interface NodeSignal {
  /** `N<id>`. */
  readonly id: string;
  readonly name: string;
  /** The generation that last registered (nodes configuration). */
  readonly generation: number;
  readonly roles: readonly string[];
  readonly metadataServerState: "auto-join" | "member" | "standby";
  /** true: answered a ping; false: did not; null: not asked (unknown). */
  readonly alive: boolean | null;
  /** The generation that answered the ping (null when it did not answer). */
  readonly answeredGeneration: number | null;
  /** false: its log-server store refuses writes; null: unknown or no log-server role. */
  readonly storeWritable: boolean | null;
  /** true: its log-server store is in data-loss mode (came back empty); absent or null: no / unknown. */
  readonly storeRecovering?: boolean | null;
}

export interface LogSignal {
  readonly id: number;
  /** The tail segment's sequencer `N<id>` and its generation; null for an empty chain. */
  readonly sequencer: { readonly node: string; readonly generation: number } | null;
  readonly sealed: boolean;
  /** Who sealed the tail segment, when the chain says (see the chain's `sealedBy`). */
  readonly sealedBy?: "operator" | "reconfiguration";
  readonly nodeset: readonly string[];
  /** The tail segment's replication; null for an empty chain. */
  readonly replication: number | null;
}

export interface PartitionSignal {
  readonly id: number;
  /** The placed leader `N<id>`; null when none is placed. */
  readonly leader: string | null;
  /** The placed leader's processor leads (it applied its own announce). */
  readonly leading: boolean;
  /** Its epoch in metadata (0: never led). */
  readonly epoch: number;
  /** Why a replica's processor stopped (a record it cannot apply, a failed store); empty when none did. */
  readonly stopped: readonly string[];
}

/** For this long after its start a node that has not found the metadata leader yet says `starting`. */
export const START_GRACE_MS = 10_000;

export interface ClusterSignals {
  readonly nodeLifecycle: NodeLifecycleState;
  /** How long this node has run: a node just started waits for an election before crying `unavailable`. */
  readonly nodeUptimeMs: number;
  readonly provisioned: boolean;
  /** The cluster's default replication; null before provisioning. */
  readonly defaultReplication: number | null;
  /** Leader and members as this node sees them; null when it could not find out. */
  readonly metadata: { readonly leader: string | null; readonly members: readonly string[] } | null;
  /** Every node of the nodes configuration; null when it could not be read. */
  readonly nodes: readonly NodeSignal[] | null;
  /** Every log; null when the logs document could not be read. */
  readonly logs: readonly LogSignal[] | null;
  /** Every partition; null when they could not be read (or the node runs no partitions overview). */
  readonly partitions?: readonly PartitionSignal[] | null;
}

export interface ClusterStatusDecision {
  readonly state: ClusterState;
  /** Why the state is not `running` (empty when it is). */
  readonly reasons: readonly StatusItem[];
  /** What is not wrong yet but is not fault tolerant. */
  readonly warnings: readonly StatusItem[];
}

function item(name: ErrorName, subject: string, message: string): StatusItem {
  return { code: ERRORS[name].code, subject, message };
}

/** The signals → state, reasons, warnings. */
export function decideClusterStatus(s: ClusterSignals): ClusterStatusDecision {
  if (s.nodeLifecycle === "stopping" || s.nodeLifecycle === "stopped" || s.nodeLifecycle === "failed") {
    return { state: "stopping", reasons: [item("NODE_SHUTTING_DOWN", "node", `this node is ${s.nodeLifecycle}`)], warnings: [] };
  }
  if (s.nodeLifecycle === "starting") {
    return { state: "starting", reasons: [item("NODE_NOT_READY", "node", "this node is still starting")], warnings: [] };
  }
  if (!s.provisioned) {
    return {
      state: "awaiting-provisioning",
      reasons: [item("CLUSTER_NOT_PROVISIONED", "cluster", "the cluster is not provisioned: run `cairn ctl provision`")],
      warnings: [],
    };
  }
  const warnings = decideWarnings(s);
  const nodes = new Map((s.nodes ?? []).map((n) => [n.id, n]));
  const dead = (id: string) => nodes.get(id)?.alive === false;

  if (s.metadata === null || s.metadata.leader === null) {
    if (s.nodeUptimeMs < START_GRACE_MS) {
      return { state: "starting", reasons: [item("CLUSTER_METADATA_UNAVAILABLE", "metadata", "waiting for a metadata leader")], warnings };
    }
    return {
      state: "unavailable",
      reasons: [item("CLUSTER_METADATA_UNAVAILABLE", "metadata", "no metadata leader is known")],
      warnings,
    };
  }
  if (dead(s.metadata.leader)) {
    return {
      state: "unavailable",
      reasons: [item("CLUSTER_METADATA_UNAVAILABLE", "metadata", `the metadata leader ${s.metadata.leader} does not answer: an election is under way`)],
      warnings,
    };
  }
  const members = s.metadata.members;
  const liveMembers = members.filter((m) => !dead(m));
  if (members.length > 0 && liveMembers.length <= members.length / 2) {
    return {
      state: "unavailable",
      reasons: [
        item(
          "CLUSTER_METADATA_UNAVAILABLE",
          "metadata",
          `only ${liveMembers.length} of ${members.length} metadata members answer; a majority (${Math.floor(members.length / 2) + 1}) is needed`,
        ),
      ],
      warnings,
    };
  }

  const reasons: StatusItem[] = [];
  for (const n of s.nodes ?? []) {
    if (n.alive === false) {
      if (members.includes(n.id)) reasons.push(item("CLUSTER_METADATA_MEMBER_DOWN", n.id, `metadata member ${n.id} (${n.name}) does not answer`));
      else reasons.push(item("CLUSTER_NODE_DEAD", n.id, `node ${n.id} (${n.name}) does not answer`));
    } else if (n.storeWritable === false) {
      reasons.push(
        item(
          "CLUSTER_LOG_STORE_DISABLED",
          n.id,
          n.storeRecovering === true
            ? `the log-server store of ${n.id} (${n.name}) is recovering from data loss (CAIRN-LOG-0025): it takes no new segment until every segment that names it was moved or re-replicated`
            : `the log-server store of ${n.id} (${n.name}) refuses writes`,
        ),
      );
    }
  }
  const stuck = (s.logs ?? []).filter((l) => logNotWritable(l, nodes) !== undefined);
  if (stuck.length > 0) {
    const why = logNotWritable(stuck[0]!, nodes)!;
    const ids = stuck.map((l) => l.id);
    const shown = ids.length > 8 ? `${ids.slice(0, 8).join(", ")}, …` : ids.join(", ");
    reasons.push(
      item("CLUSTER_LOG_NOT_WRITABLE", stuck.length === 1 ? `log ${ids[0]}` : "logs", `${stuck.length} log(s) cannot take appends (${shown}); log ${ids[0]}: ${why}`),
    );
  }
  // A cluster without the worker role serves no partitions: they are nobody's failure.
  const hasWorkers = s.nodes === null || s.nodes.some((n) => n.roles.includes("worker"));
  const partitions = hasWorkers ? (s.partitions ?? []) : [];
  const leaderless = partitions.filter((p) => !p.leading);
  if (leaderless.length > 0) {
    const ids = leaderless.map((p) => p.id);
    const shown = ids.length > 8 ? `${ids.slice(0, 8).join(", ")}, …` : ids.join(", ");
    const first = leaderless[0]!;
    const why = first.leader === null ? "no leader is placed" : `its placed leader ${first.leader} does not lead it (yet)`;
    reasons.push(item("CLUSTER_PARTITION_LEADERLESS", leaderless.length === 1 ? `partition ${ids[0]}` : "partitions", `${leaderless.length} partition(s) without a leader (${shown}); partition ${ids[0]}: ${why}`));
  }
  for (const p of partitions) {
    if (p.stopped.length > 0) reasons.push(item("CLUSTER_PARTITION_LEADERLESS", `partition ${p.id}`, `a processor of partition ${p.id} stopped: ${p.stopped[0]}`));
  }
  // Right after provisioning no log has a segment yet: the log controller adds the first ones once
  // enough log-servers answer; and no partition was ever led. That is the cluster being set up, not a failure.
  const logsSettingUp = s.logs !== null && s.logs.length > 0 && s.logs.every((l) => l.sequencer === null);
  const partitionsSettingUp = partitions.length > 0 && partitions.every((p) => p.epoch === 0 && p.stopped.length === 0);
  const setupReasons = (logsSettingUp ? 1 : 0) + (partitionsSettingUp && leaderless.length > 0 ? 1 : 0);
  const settingUp = setupReasons > 0 && reasons.length === setupReasons;
  const state: ClusterState = reasons.length === 0 ? "running" : settingUp ? "starting" : "degraded";
  invariant(state !== "running" || reasons.length === 0, "running with reasons");
  return { state, reasons, warnings };
}

/** Why a log's tail cannot take appends, or undefined when it can (as far as the signals tell). */
export function logNotWritable(log: LogSignal, nodes: ReadonlyMap<string, NodeSignal>): string | undefined {
  if (log.sequencer === null) return "it has no segment yet";
  if (log.sealed && log.sealedBy === "reconfiguration") return "its tail segment was sealed by a reconfiguration that did not add the next segment yet (the log controller adds it)";
  if (log.sealed) return `its tail segment is sealed and no new segment was added: reconfigure it (\`cairn ctl logs reconfigure ${log.id}\`)`;
  const seq = nodes.get(log.sequencer.node);
  if (seq?.alive === false) return `its sequencer ${log.sequencer.node} does not answer`;
  if (seq?.answeredGeneration != null && seq.answeredGeneration !== log.sequencer.generation) {
    return `its sequencer ${log.sequencer.node}:${log.sequencer.generation} restarted (now generation ${seq.answeredGeneration})`;
  }
  const usable = log.nodeset.filter((id) => {
    const n = nodes.get(id);
    return n === undefined || (n.alive !== false && n.storeWritable !== false);
  });
  if (log.replication !== null && usable.length < log.replication) {
    return `only ${usable.length} of its nodeset [${log.nodeset.join(", ")}] can store, replication ${log.replication}`;
  }
  return undefined;
}

function decideWarnings(s: ClusterSignals): StatusItem[] {
  const warnings: StatusItem[] = [];
  const single = (s.logs ?? []).filter((l) => l.replication === 1).map((l) => l.id);
  if (s.defaultReplication === 1 || single.length > 0) {
    const what =
      single.length > 0
        ? `${single.length} log(s) keep one copy of each record`
        : "the cluster's default replication is 1";
    warnings.push(
      item("CLUSTER_SINGLE_REPLICA", "cluster", `single-replica setup: ${what}; losing one node's disk loses data and nothing is fault tolerant`),
    );
  }
  if (s.metadata !== null && s.metadata.members.length === 1) {
    warnings.push(
      item("CLUSTER_SINGLE_METADATA_MEMBER", "metadata", `the metadata service has one member (${s.metadata.members[0]}): losing it stops the cluster`),
    );
  }
  return warnings;
}

/** The last state and since when; reports a transition only when the state changes. */
export class ClusterStateTracker {
  private current: ClusterState | undefined;
  private sinceMsValue = 0;

  get state(): ClusterState | undefined {
    return this.current;
  }

  get sinceMs(): number {
    return this.sinceMsValue;
  }

  /** Records an observed state; returns the transition when it differs from the last one. */
  observe(state: ClusterState, nowMs: number): { from: ClusterState | undefined; to: ClusterState } | undefined {
    if (state === this.current) return undefined;
    const from = this.current;
    this.current = state;
    this.sinceMsValue = nowMs;
    return { from, to: state };
  }
}
