// The cluster status on a node: gathers the signals (nodes configuration and pings of every node,
// the metadata members' reports, the logs document, on request the logs' tails), hands them to the
// pure decision (cluster-state.ts), and keeps the last state: a transition is logged once and
// counted, a warning is logged when it appears and when it clears. Evaluates in the background
// every `intervalMs` and on every request. Every call to another node has a deadline. The trim
// policy's warnings are read from its state in the metadata store, so every node shows and logs them.
import type { Bifrost } from "../../bifrost/bifrost.ts";
import { tailSegment, type LogChain } from "../../bifrost/chain.ts";
import type { PingResponse } from "../../bifrost/rpc.ts";
import { logId, nodeId, type NodeLifecycleState } from "../../ids/index.ts";
import { KEYS, clusterSettings, type ClusterInfo, type NodesConfiguration } from "../../metadata/nodes-config.ts";
import type { MetadataService, MetadataServerListEntry } from "../../metadata/service.ts";
import type { Logger } from "../../observability/log.ts";
import { Counter, Gauge, type Registry } from "../../observability/metrics.ts";
import {
  CLUSTER_STATES,
  ClusterStateTracker,
  decideClusterStatus,
  logNotWritable,
  type ClusterSignals,
  type LogSignal,
  type NodeSignal,
  type PartitionSignal,
  type StatusItem,
} from "./cluster-state.ts";
import type { ClusterStatus, ClusterStatusLog, ClusterStatusNode, ClusterStatusPartition } from "./schema.ts";
import type { PartitionOverview } from "../../worker/index.ts";
import { trimWarnings } from "../controller/trim-inputs.ts";
import { replicationProgress, type ReplicationProgress } from "./progress.ts";

/** While the cluster is starting, evaluations come this often (not every intervalMs): `running` is logged when it happens. */
const STARTING_INTERVAL_MS = 500;
/** Deadline of one ping, of one member's status, of one log's tail. */
const PING_DEADLINE_MS = 1_000;
const TAIL_DEADLINE_MS = 1_500;

export interface StatusSources {
  nodeLifecycle(): NodeLifecycleState;
  self(): { id: string | null; name: string; adminAddress: string; startedAtMs: number };
  cluster(): ClusterInfo | undefined;
  metadataService(): MetadataService | undefined;
  logs(): Bifrost | undefined;
  /**
   * The partitions (placement, epochs, every worker's processors); with `tails` also each log's
   * tail. Undefined when they cannot be read (not provisioned, no metadata).
   */
  partitions?(tails: boolean): Promise<PartitionOverview[] | undefined>;
  /** Bifrost's ping of the node at this fabric address. */
  ping(fabricAddress: string, signal: AbortSignal): Promise<PingResponse & { startedAtMs?: number | undefined }>;
  nowMs(): number;
}

export interface ClusterStatusMonitorOptions {
  sources: StatusSources;
  intervalMs: number;
  logger: Logger;
  registry: Registry;
}

export class ClusterStatusMonitor {
  private readonly tracker = new ClusterStateTracker();
  private readonly transitions: Counter<"from" | "to">;
  private readonly stateGauge: Gauge<"state">;
  private warningCodes = new Set<string>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private background: Promise<unknown> | undefined;
  /** Asked again while an evaluation ran: run once more when it ends (the node's state moved on). */
  private again = false;
  private soon: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly options: ClusterStatusMonitorOptions) {
    this.transitions = new Counter({
      name: "cairn_cluster_state_transitions_total",
      help: "Changes of the cluster's lifecycle state as this node saw them",
      labelNames: ["from", "to"],
      registers: [options.registry],
    });
    this.stateGauge = new Gauge({
      name: "cairn_cluster_state",
      help: "1 for the cluster's lifecycle state as this node last saw it, 0 for the others",
      labelNames: ["state"],
      registers: [options.registry],
    });
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.evaluateInBackground(), this.options.intervalMs);
    this.timer.unref?.();
  }

  /** One evaluation now (at most one background evaluation runs at a time). */
  evaluateInBackground(): void {
    if (this.stopped) return;
    if (this.background !== undefined) {
      this.again = true;
      return;
    }
    this.background = this.status({ tails: false })
      .catch((e: unknown) => this.options.logger.debug({ err: e }, "cluster status evaluation failed"))
      .finally(() => {
        this.background = undefined;
        if (this.again) {
          this.again = false;
          this.evaluateInBackground();
        } else if (this.tracker.state === "starting" && !this.stopped && this.soon === undefined) {
          this.soon = setTimeout(() => {
            this.soon = undefined;
            this.evaluateInBackground();
          }, Math.min(STARTING_INTERVAL_MS, this.options.intervalMs));
          this.soon.unref?.();
        }
      });
  }

  /** Stops the background evaluation; the node is stopping, which is recorded as the last transition. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.soon !== undefined) clearTimeout(this.soon);
    this.soon = undefined;
    // An evaluation still in flight is not waited for (its pings may wait for dead peers): it
    // records nothing once stopped, and its calls fail as the fabric client closes.
    this.record({ state: "stopping", reasons: [], warnings: [] }, false);
  }

  /** Gathers, decides, records; `tails` also finds every log's tail (one request per log). */
  async status(options: { tails: boolean }): Promise<ClusterStatus> {
    const src = this.options.sources;
    const gathered = await gather(src, options.tails);
    const decided = decideClusterStatus(gathered.signals);
    // The trim policy's warnings come from the controller's state (trim/state), not from signals.
    const decision = { ...decided, warnings: [...decided.warnings, ...gathered.trimWarnings] };
    if (!this.stopped) this.record(decision, true);
    const self = src.self();
    const c = src.cluster();
    return {
      state: decision.state,
      sinceMs: this.tracker.state === decision.state ? this.tracker.sinceMs : src.nowMs(),
      reasons: [...decision.reasons],
      warnings: [...decision.warnings],
      observedBy: { node: self.id, name: self.name, adminAddress: self.adminAddress },
      cluster: c === undefined ? null : { name: c.name, fingerprint: c.fingerprint, numPartitions: c.numPartitions, replication: gathered.replication?.target ?? c.replication },
      nodes: gathered.nodes,
      metadata: gathered.metadata,
      logs: gathered.logs,
      partitions: gathered.partitions,
      replication: gathered.replication,
    };
  }

  private record(decision: { state: ClusterStatus["state"]; reasons: readonly StatusItem[]; warnings: readonly StatusItem[] }, withWarnings: boolean): void {
    const log = this.options.logger;
    const t = this.tracker.observe(decision.state, this.options.sources.nowMs());
    if (t !== undefined) {
      this.transitions.inc({ from: t.from ?? "none", to: t.to });
      for (const s of CLUSTER_STATES) this.stateGauge.set({ state: s }, s === t.to ? 1 : 0);
      const fields = { from: t.from ?? null, to: t.to, reasons: decision.reasons.map((r) => `${r.code} ${r.message}`) };
      const text = `cluster state ${t.from ?? "(none)"} -> ${t.to}${decision.reasons.length > 0 ? `: ${decision.reasons.map((r) => r.message).join("; ")}` : ""}`;
      if (t.to === "degraded" || t.to === "unavailable") log.warn(fields, text);
      else log.info(fields, text);
    }
    if (!withWarnings) return;
    const now = new Set(decision.warnings.map((w) => w.code));
    for (const w of decision.warnings) {
      if (!this.warningCodes.has(w.code)) log.warn({ code: w.code, subject: w.subject }, `warning ${w.code}: ${w.message}`);
    }
    for (const code of this.warningCodes) if (!now.has(code)) log.info({ code }, `warning ${code} cleared`);
    this.warningCodes = now;
  }
}

interface Gathered {
  signals: ClusterSignals;
  nodes: ClusterStatusNode[];
  metadata: ClusterStatus["metadata"];
  logs: ClusterStatusLog[] | null;
  partitions: ClusterStatusPartition[] | null;
  trimWarnings: StatusItem[];
  replication: ReplicationProgress | null;
}

async function gather(src: StatusSources, tails: boolean): Promise<Gathered> {
  const lifecycle = src.nodeLifecycle();
  const cluster = src.cluster();
  const service = src.metadataService();
  const api = service?.api();
  const base = { nodeLifecycle: lifecycle, nodeUptimeMs: Math.max(0, src.nowMs() - src.self().startedAtMs), provisioned: cluster !== undefined, defaultReplication: cluster?.replication ?? null };
  if (cluster === undefined || service === undefined || api === undefined) {
    return { signals: { ...base, metadata: null, nodes: null, logs: null, partitions: null }, nodes: [], metadata: null, logs: null, partitions: null, trimWarnings: [], replication: null };
  }
  // This node's copy: the status must be had while the metadata service has no quorum.
  const [configValue, clusterValue] = await Promise.all([
    api.get(KEYS.nodesConfig, { consistency: "stale" }).catch(() => undefined),
    api.get(KEYS.cluster, { consistency: "stale" }).catch(() => undefined),
  ]);
  const config = configValue?.value as NodesConfiguration | undefined;
  // The settings may have changed since the node first saw the cluster document.
  const settings = clusterSettings((clusterValue?.value as ClusterInfo | undefined) ?? cluster);
  base.defaultReplication = settings.replication;
  const [nodes, servers, chains, overview, trim] = await Promise.all([
    pingAll(src, config),
    service.listServers("stale").catch(() => [] as MetadataServerListEntry[]),
    readLogs(src.logs()),
    src.partitions?.(tails).catch(() => undefined),
    trimWarnings(api),
  ]);
  const partitions = overview === undefined ? null : overview.map(partitionStatus);
  const metadata = metadataOf(config, servers);
  const byServer = new Map(servers.map((s) => [s.node, s]));
  const statusNodes: ClusterStatusNode[] = nodes.map(({ signal: n, entry, uptimeMs }) => {
    const server = byServer.get(n.id);
    return {
      id: n.id,
      name: n.name,
      generation: n.generation,
      roles: [...entry.roles],
      alive: n.alive,
      uptimeMs,
      adminAddress: entry.adminAddress,
      fabricAddress: entry.fabricAddress,
      metadataServer: { state: n.metadataServerState, local: server?.status?.state ?? null, raftRole: server?.status?.raft?.role ?? null },
      storeWritable: n.storeWritable,
      storeRecovering: n.storeRecovering ?? null,
    };
  });
  const nodeSignals = nodes.map((n) => n.signal);
  const logSignals = chains?.map(logSignal) ?? null;
  const bifrost = src.logs();
  const tailLsns = tails && chains !== null && bifrost !== undefined ? await findTails(bifrost, chains) : new Map<number, number>();
  const byId = new Map(nodeSignals.map((n) => [n.id, n]));
  const logs =
    chains === null
      ? null
      : chains.map((l, i): ClusterStatusLog => {
          const s = logSignals![i]!;
          return {
            id: l.id,
            segments: l.segments.length,
            sequencer: s.sequencer === null ? null : `${s.sequencer.node}:${s.sequencer.generation}`,
            replication: s.replication,
            nodeset: [...s.nodeset],
            sealed: s.sealed,
            writable: logNotWritable(s, byId) === undefined,
            tailLsn: tailLsns.get(l.id) ?? null,
            trimPoint: l.trimPoint,
          };
        });
  const known = new Set((config?.nodes ?? []).map((n) => nodeId(n.id) as string));
  return {
    signals: {
      ...base,
      metadata: metadata === null ? null : { leader: metadata.leader, members: metadata.members },
      nodes: config === undefined ? null : nodeSignals,
      logs: logSignals,
      partitions: partitions?.map((p): PartitionSignal => ({ id: p.id, leader: p.leader, leading: p.leading, epoch: p.epoch, stopped: p.stopped })) ?? null,
    },
    nodes: statusNodes,
    metadata,
    logs,
    partitions,
    trimWarnings: trim,
    replication: chains === null || config === undefined ? null : replicationProgress({ defaultReplication: settings.replication, logs: chains }, settings.replication, (n) => known.has(n)),
  };
}

async function pingAll(src: StatusSources, config: NodesConfiguration | undefined) {
  const self = src.self();
  return Promise.all(
    (config?.nodes ?? []).map(async (entry) => {
      const id = nodeId(entry.id);
      const base = {
        id,
        name: entry.name,
        generation: entry.generation,
        roles: entry.roles,
        metadataServerState: entry.metadataServer.state,
      };
      if (id === self.id) {
        const answer = await src.ping(entry.fabricAddress, AbortSignal.timeout(PING_DEADLINE_MS)).catch(() => undefined);
        const signal: NodeSignal = { ...base, alive: true, answeredGeneration: answer?.generation ?? null, storeWritable: answer?.storeWritable ?? null, storeRecovering: answer?.storeRecovering ?? null };
        return { signal, entry, uptimeMs: Math.max(0, src.nowMs() - self.startedAtMs) };
      }
      const answer = await src.ping(entry.fabricAddress, AbortSignal.timeout(PING_DEADLINE_MS)).catch(() => undefined);
      // An answer from another node at that address (a reused port) is no answer.
      const ok = answer !== undefined && (answer.node === null || answer.node === id);
      const signal: NodeSignal = {
        ...base,
        alive: ok,
        answeredGeneration: ok ? answer.generation : null,
        storeWritable: ok ? (answer.storeWritable ?? null) : null,
        storeRecovering: ok ? (answer.storeRecovering ?? null) : null,
      };
      const uptimeMs = ok && answer.startedAtMs !== undefined ? Math.max(0, src.nowMs() - answer.startedAtMs) : null;
      return { signal, entry, uptimeMs };
    }),
  );
}

function metadataOf(config: NodesConfiguration | undefined, servers: MetadataServerListEntry[]): ClusterStatus["metadata"] {
  if (config === undefined) return null;
  const members = config.nodes.filter((n) => n.metadataServer.state === "member").map((n) => nodeId(n.id) as string);
  // The newest term's report wins: an old leader cut off from the others still names itself.
  let best: NonNullable<MetadataServerListEntry["status"]>["raft"] = null;
  for (const s of servers) {
    const raft = s.status?.raft;
    if (raft == null || raft.leader === null) continue;
    if (best === null || raft.term > best.term || (raft.term === best.term && raft.role === "leader")) best = raft;
  }
  const leaderReport = best === null ? undefined : servers.find((s) => s.node === best!.leader && s.status?.raft?.role === "leader")?.status?.raft;
  return {
    leader: best?.leader ?? null,
    members,
    term: best?.term ?? null,
    commitIndex: (leaderReport ?? best)?.commitIndex ?? null,
    appliedIndex: (leaderReport ?? best)?.appliedIndex ?? null,
  };
}

async function readLogs(bifrost: Bifrost | undefined): Promise<LogChain[] | null> {
  if (bifrost === undefined) return null;
  try {
    return [...(await bifrost.logsDocument(false, "stale")).doc.logs];
  } catch {
    return null;
  }
}

function logSignal(l: LogChain): LogSignal {
  const tail = tailSegment(l);
  if (tail === undefined) return { id: l.id, sequencer: null, sealed: false, nodeset: [], replication: null };
  const [node, generation] = tail.params.sequencer.split(":");
  return {
    id: l.id,
    sequencer: { node: node!, generation: Number(generation) },
    sealed: tail.sealedTail !== undefined,
    ...(tail.sealedBy !== undefined ? { sealedBy: tail.sealedBy } : {}),
    nodeset: [...tail.params.nodeset],
    replication: tail.params.replication,
  };
}

async function findTails(bifrost: Bifrost, chains: readonly LogChain[]): Promise<Map<number, number>> {
  const found = await Promise.all(
    chains.map(async (l) => {
      const t = await bifrost.findTail(logId(l.id), AbortSignal.timeout(TAIL_DEADLINE_MS)).catch(() => undefined);
      return t === undefined ? undefined : ([l.id, t.tailLsn as number] as const);
    }),
  );
  return new Map(found.filter((x) => x !== undefined));
}

function partitionStatus(p: PartitionOverview): ClusterStatusPartition {
  return {
    id: p.id,
    leader: p.leader,
    followers: [...p.followers],
    epoch: p.epoch,
    leading: p.leaderApplied,
    appliedLsn: p.appliedLsn,
    durableLsn: p.durableLsn,
    tailLsn: p.tailLsn,
    lag: p.lag,
    stopped: p.replicas.filter((r) => r.stopped !== null).map((r) => `${r.node}: ${r.stopped}`),
  };
}
