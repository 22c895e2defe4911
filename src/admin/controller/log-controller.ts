// The log controller: runs on the metadata leader (one node at a time; a new leader takes over with
// a fresh view). Each round it pings the log-server nodes, then decides per log (planLogActions,
// pure) whether its chain needs a new segment: a first segment, a new sequencer because the old
// one's node died, restarted (a new generation can never resume an old sequencer) or left, or — when
// auto-improve is on and the placement is automatic — a better nodeset because a member died or
// more log-servers are available than the nodeset uses; or because the cluster's replication setting
// (`cluster` document, `cairn ctl config set`) is above the log's, a bounded number of logs per
// round so a change is spread over time. Reconfigurations of different logs run in
// parallel, bounded; the chain writer serialises their metadata writes.
// Between rounds, a node under suspicion (its last ping failed, or the fabric lost its connection)
// is probed every `probeIntervalMs`; a failed ping is followed by a TCP connect to learn whether the
// port refuses (the process is gone) or not (paused, slow, partitioned: left to the failure timeout).
// A node found dead by refusals starts a round at once instead of waiting for the next one; a node
// that is merely silent is left to the rounds, exactly as before (no earlier verdict for a pause).
//
// Invariants: a log has at most one reconfiguration in flight from this controller; a decision is
// applied only if the log's tail segment is still the one it was made on (expectTailIndex);
// improvements of one log are rate-limited, so flapping liveness cannot churn segments.
import type { Logger } from "../../observability/log.ts";
import {
  ANSWERED,
  REFUSED,
  SILENT,
  desiredNodesetSize,
  planRereplication,
  segmentSequencer,
  tailSegment,
  type Bifrost,
  type BifrostPeers,
  type Candidate,
  type LivenessTracker,
  type Liveness,
  type LogsDocument,
  type NodeDirectory,
  type ProbeResult,
} from "../../bifrost/index.ts";
import { logId, type LogId, type NodeId } from "../../ids/index.ts";
import type { ClusterSettings } from "../../metadata/nodes-config.ts";

export type ReconfigurationReason =
  | "no-segment"
  | "sequencer-dead"
  | "sequencer-restarted"
  | "sequencer-gone"
  | "nodeset-member-dead"
  | "nodeset-member-lost-data"
  | "nodeset-too-small"
  | "replication-setting"
  | "unfinished-reconfiguration";

export interface LogAction {
  readonly log: LogId;
  readonly reason: ReconfigurationReason;
  /** The tail segment index the decision was made on (-1: empty chain). */
  readonly expectTailIndex: number;
  readonly avoidSequencer?: NodeId;
  /** The new segment's replication (and kind, leaving a local segment), for "replication-setting". */
  readonly request?: { readonly replication: number; readonly kind?: "replicated" };
}

export interface PlanInput {
  readonly doc: LogsDocument;
  readonly nodes: ReadonlyArray<{ id: NodeId; generation: number; logServer: boolean }>;
  readonly liveness: (id: NodeId) => Liveness;
  /** Generation a node answered pings with, if it did. */
  readonly liveGeneration: (id: NodeId) => number | undefined;
  readonly inflight: ReadonlySet<number>;
  /** When each log was last improved (Unix ms). */
  readonly lastImprovedMs: ReadonlyMap<number, number>;
  readonly nowMs: number;
  readonly autoImprove: boolean;
  readonly improveIntervalMs: number;
  readonly nodesetSize: number;
  readonly defaultProvider: "local" | "replicated";
  /** Whether a node's log-server store is in data-loss mode (came back empty); none when absent. */
  readonly lostData?: (id: NodeId) => boolean;
  /** The cluster's replication setting; logs placed automatically move to it. Absent: no setting. */
  readonly targetReplication?: number;
  /** Most logs moved to the replication setting by this plan. */
  readonly maxReplicationChanges?: number;
}

/** A log's replication as the setting compares it: a local segment keeps one copy. */
export function segmentReplication(tail: { kind: string; params: { replication: number } }): number {
  return tail.kind === "local" ? 1 : tail.params.replication;
}

/** What the controller should do this round, per log (pure). */
export function planLogActions(input: PlanInput): LogAction[] {
  const out: LogAction[] = [];
  const alive = input.nodes.filter((n) => n.logServer && input.liveness(n.id) === "alive");
  const aliveIds = new Set(alive.map((n) => n.id));
  let changes = 0;
  for (const log of input.doc.logs) {
    if (input.inflight.has(log.id)) continue;
    const id = logId(log.id);
    const tail = tailSegment(log);
    if (tail === undefined) {
      const r = input.defaultProvider === "local" ? 1 : (input.targetReplication ?? input.doc.defaultReplication);
      if (alive.length >= r) out.push({ log: id, reason: "no-segment", expectTailIndex: -1 });
      continue;
    }
    const seq = segmentSequencer(tail);
    const node = input.nodes.find((n) => n.id === seq.id);
    const liveGen = input.liveGeneration(seq.id);
    let reason: ReconfigurationReason | undefined;
    if (node === undefined) reason = "sequencer-gone";
    else if (node.generation > seq.generation || (liveGen !== undefined && liveGen > seq.generation && input.liveness(seq.id) === "alive")) {
      reason = "sequencer-restarted";
    } else if (input.liveness(seq.id) === "dead") reason = "sequencer-dead";
    if (reason !== undefined) {
      out.push({ log: id, reason, expectTailIndex: tail.index, ...(reason === "sequencer-restarted" ? {} : { avoidSequencer: seq.id }) });
      continue;
    }
    // A reconfiguration that sealed the tail but never added the next segment (cut off between its
    // two metadata writes) left the log unable to take appends: add the segment now. An operator's
    // seal (or one from an older version, which does not say) stays until an operator reconfigures;
    // so does a manual placement.
    if (tail.sealedTail !== undefined) {
      if (tail.sealedBy === "reconfiguration") out.push({ log: id, reason: "unfinished-reconfiguration", expectTailIndex: tail.index });
      continue;
    }
    if (tail.placement !== "auto") continue;
    const lostData = input.lostData ?? (() => false);
    const usable = alive.filter((n) => !lostData(n.id));
    const target = input.targetReplication;
    if (target !== undefined && segmentReplication(tail) < target) {
      // The operator raised the setting: move the log when enough live log-servers can keep the
      // copies, a bounded number per round (the rest next round). Logs above it stay (an operator
      // may have raised one log on purpose); a lower setting applies to new logs' first segments.
      if (changes < (input.maxReplicationChanges ?? Infinity) && usable.length >= target) {
        changes++;
        out.push({ log: id, reason: "replication-setting", expectTailIndex: tail.index, request: { replication: target, ...(tail.kind === "local" ? { kind: "replicated" as const } : {}) } });
      }
      continue;
    }
    if (!input.autoImprove || tail.kind !== "replicated") continue;
    const members = tail.params.nodeset as NodeId[];
    // A member whose store came back empty holds none of the segment's records and takes no normal
    // store: move the log off it as soon as enough other live log-servers can carry r copies (not
    // rate-limited: data loss does not flap).
    if (members.some((m) => lostData(m)) && usable.length >= tail.params.replication) {
      out.push({ log: id, reason: "nodeset-member-lost-data", expectTailIndex: tail.index });
      continue;
    }
    if (input.nowMs - (input.lastImprovedMs.get(log.id) ?? 0) < input.improveIntervalMs) continue;
    // A log-server in data-loss mode takes no new segment: it is no replacement.
    const outsiders = usable.filter((n) => !members.includes(n.id));
    if (outsiders.length > 0 && members.some((m) => input.liveness(m) === "dead")) {
      out.push({ log: id, reason: "nodeset-member-dead", expectTailIndex: tail.index });
      continue;
    }
    const desired = desiredNodesetSize(tail.params.replication, input.nodesetSize);
    const liveMembers = members.filter((m) => aliveIds.has(m)).length;
    if (members.length < desired && liveMembers + outsiders.length > members.length && outsiders.length > 0) {
      out.push({ log: id, reason: "nodeset-too-small", expectTailIndex: tail.index });
    }
  }
  return out;
}

export interface ControllerOptions {
  readonly intervalMs: number;
  readonly failureTimeoutMs: number;
  /** Period of re-probing suspected nodes between rounds; 0: nodes are probed in rounds only. */
  readonly probeIntervalMs?: number;
  readonly maxConcurrent: number;
  readonly autoImprove: boolean;
  /** Least time between two improvements of the same log. */
  readonly improveIntervalMs: number;
  readonly nodesetSize: number;
  readonly defaultProvider: "local" | "replicated";
  /** Sealed segments copied onto more log-servers at once (re-replication); 0: none automatically. */
  readonly rereplicationMaxConcurrent?: number;
  /** Logs moved to a changed replication setting per round. */
  readonly maxReplicationChangesPerRound?: number;
}

export interface ControllerDeps {
  readonly bifrost: Bifrost;
  readonly peers: BifrostPeers;
  readonly directory: NodeDirectory;
  readonly liveness: LivenessTracker;
  /**
   * Whether a TCP connection to the node's fabric address is actively refused right now (nothing
   * listens there). Asked after a failed ping; without it, failed pings are plain silence.
   */
  readonly refusesConnections?: (id: NodeId, signal: AbortSignal) => Promise<boolean>;
  /** Whether the fabric lost its connection to the node and has not reconnected (cheap, local). */
  readonly connectionLost?: (id: NodeId) => boolean;
  /** Whether this node should act (it leads the metadata cluster). */
  readonly isLeader: () => boolean;
  /** Refreshes the directory (nodes configuration). */
  readonly refreshNodes: () => Promise<void>;
  /** The cluster's settings (`cluster` document); undefined before provisioning or when unreadable. */
  readonly settings?: () => Promise<ClusterSettings | undefined>;
  readonly options: ControllerOptions;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

/** Budget of the TCP connect that follows a failed ping (a refusal on a reachable host is immediate). */
const CONNECT_PROBE_MS = 500;

/** Least time between a failed re-replication of a log and the next attempt. */
const REREPLICATION_RETRY_MS = 5_000;

export class LogController {
  /** Log-servers that answered but whose store refuses writes (placed in no new segment). */
  private readonly unwritable = new Set<NodeId>();
  /** Log-servers whose store is in data-loss mode (their copies of older segments are gone). */
  private readonly recovering = new Set<NodeId>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private watchTimer: ReturnType<typeof setInterval> | undefined;
  private unsubscribeReconfigured: (() => void) | undefined;
  private running = false;
  /** A round was asked for while one ran: run another right after it. */
  private again = false;
  private leading = false;
  private readonly inflight = new Map<number, Promise<void>>();
  /** Re-replications running, per log (one at a time per log). */
  private readonly copying = new Map<number, Promise<void>>();
  private readonly lastCopyFailedMs = new Map<number, number>();
  /** One probe per node at a time; a round joins a probe the watch already started. */
  private readonly probing = new Map<NodeId, Promise<void>>();
  /** Nodes whose refused-means-dead verdict was logged (once per death; cleared when they answer again). */
  private readonly announcedRefused = new Set<NodeId>();
  private readonly lastImprovedMs = new Map<number, number>();
  private readonly lastWarnMs = new Map<string, number>();
  private readonly abort = new AbortController();
  private readonly nowMs: () => number;

  constructor(private readonly deps: ControllerDeps) {
    this.nowMs = deps.nowMs ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.round(), this.deps.options.intervalMs);
    // An operator's reconfiguration here may leave a sealed segment short of copies: re-replication
    // is planned at once rather than up to a round later. (The controller's own reconfigurations
    // wait for the next round, so a plan that keeps acting cannot spin rounds.)
    this.unsubscribeReconfigured = this.deps.bifrost.onReconfigured((_log, reason) => {
      if (reason === "operator") this.requestRound();
    });
  }

  /**
   * The watch between rounds runs only while this node leads (it probes for the active controller):
   * on the other nodes it would wake the process ten times a second for nothing.
   */
  private setWatching(on: boolean): void {
    const probeMs = this.deps.options.probeIntervalMs ?? 0;
    if (on && this.watchTimer === undefined && probeMs > 0 && !this.abort.signal.aborted) this.watchTimer = setInterval(() => void this.watch(), probeMs);
    if (!on && this.watchTimer !== undefined) {
      clearInterval(this.watchTimer);
      this.watchTimer = undefined;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.timer = undefined;
    this.watchTimer = undefined;
    this.unsubscribeReconfigured?.();
    this.unsubscribeReconfigured = undefined;
    this.abort.abort();
    await Promise.allSettled([...this.inflight.values(), ...this.probing.values(), ...this.copying.values()]);
  }

  /** One round (tests call it directly). A tick that finds a round running is dropped. */
  async round(): Promise<void> {
    if (this.running || this.abort.signal.aborted) return;
    this.running = true;
    this.again = false;
    try {
      if (!this.deps.isLeader()) {
        if (this.leading) this.deps.logger.info("no longer the metadata leader: the log controller pauses");
        this.leading = false;
        this.setWatching(false);
        this.deps.liveness.reset();
        return;
      }
      if (!this.leading) this.deps.logger.info("this node leads the metadata cluster: the log controller is active");
      this.leading = true;
      this.setWatching(true);
      const startedMs = performance.now();
      await this.deps.refreshNodes();
      const refreshedMs = performance.now();
      // The chain first, then the pings: liveness is judged against observations made just now,
      // never against ones a slow metadata read has aged (that declared healthy nodes dead: a new
      // metadata leader's first read can take seconds).
      // Copies running now, taken before the chain is read: one that finishes (and changes the chain)
      // while this round reads would otherwise look undone in the older document and start again.
      const copyingBeforeRead = [...this.copying.keys()];
      // The controller runs on the metadata leader, whose own replica has applied every committed
      // change (a read there needs no ReadIndex round to the followers, twice a second); the chain
      // changes it makes are compare-and-set, so a deposed leader's stale view changes nothing.
      const { doc } = await this.deps.bifrost.logsDocument(true, "stale");
      const settings = await this.deps.settings?.().catch(() => undefined);
      const readMs = performance.now();
      await this.probe();
      const probedMs = performance.now();
      // Pings are bounded (a silent node costs up to half the failure timeout); metadata reads are not.
      if (readMs - startedMs > this.deps.options.failureTimeoutMs / 2) {
        this.warn(
          "slow-round",
          { refreshMs: Math.round(refreshedMs - startedMs), readLogsMs: Math.round(readMs - refreshedMs), probeMs: Math.round(probedMs - readMs) },
          "a log controller round is slow: reconfigurations wait for it",
        );
      }
      const now = this.nowMs();
      const liveness = this.deps.liveness;
      const actions = planLogActions({
        doc,
        nodes: this.deps.directory.all(),
        liveness: (id) => liveness.status(id, now),
        liveGeneration: (id) => liveness.generation(id),
        inflight: new Set(this.inflight.keys()),
        lastImprovedMs: this.lastImprovedMs,
        nowMs: now,
        autoImprove: this.deps.options.autoImprove,
        improveIntervalMs: this.deps.options.improveIntervalMs,
        nodesetSize: this.nodesetSize(settings),
        defaultProvider: this.deps.options.defaultProvider,
        lostData: (id) => this.recovering.has(id),
        ...(settings !== undefined ? { targetReplication: settings.replication } : {}),
        maxReplicationChanges: this.deps.options.maxReplicationChangesPerRound ?? 2,
      });
      const candidates = this.candidates(now);
      for (const action of actions) {
        if (this.inflight.size >= this.deps.options.maxConcurrent) break;
        this.launch(action, candidates, this.nodesetSize(settings));
      }
      this.rereplicate(doc, candidates, now, copyingBeforeRead);
    } catch (e) {
      this.warn("round", { err: e }, "log controller round failed; retrying next round");
    } finally {
      this.running = false;
      if (this.again && !this.abort.signal.aborted) setTimeout(() => void this.round(), 0);
    }
  }

  /**
   * Between rounds: probes the nodes under suspicion (last ping failed, or the fabric lost the
   * connection) and starts a round at once when one of them is found dead.
   */
  async watch(): Promise<void> {
    if (!this.leading || this.abort.signal.aborted) return;
    const liveness = this.deps.liveness;
    const now = this.nowMs();
    const probes: Promise<void>[] = [];
    for (const n of this.deps.directory.logServers()) {
      const status = liveness.status(n.id, now);
      if (status !== "dead") this.announcedRefused.delete(n.id);
      // A round's own ping may have found the refusal first: the verdict is logged all the same.
      else if (liveness.refusedDead(n.id) && !this.announcedRefused.has(n.id) && this.leading) this.announceRefused(n.id);
      // A probe still running (a silent node's ping waits for its deadline) is not doubled.
      if (this.probing.has(n.id) || status === "dead") continue;
      if (!liveness.suspect(n.id, now) && this.deps.connectionLost?.(n.id) !== true) continue;
      probes.push(
        this.probeNode(n.id).then(() => {
          // Only proof of a dead process acts early; silence past the timeout waits for a round.
          if (!liveness.refusedDead(n.id) || !this.leading) return;
          this.announceRefused(n.id);
          this.requestRound();
        }),
      );
    }
    await Promise.all(probes);
  }

  private announceRefused(id: NodeId): void {
    this.announcedRefused.add(id);
    this.deps.logger.info({ node: id }, "log-server node refuses connections (its process is gone): the log controller acts now");
  }

  /** A round now, or right after the running one (which may have decided before the news). */
  private requestRound(): void {
    if (this.running) this.again = true;
    else void this.round();
  }

  private candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    for (const n of this.deps.directory.logServers()) {
      const generation = this.deps.liveness.generation(n.id);
      if (this.deps.liveness.status(n.id, now) === "alive" && generation !== undefined && !this.unwritable.has(n.id)) out.push({ id: n.id, generation });
    }
    return out;
  }

  private async probe(): Promise<void> {
    await Promise.all(this.deps.directory.logServers().map((n) => this.probeNode(n.id)));
  }

  /** Pings one node; when it does not answer, asks whether its port refuses connections. */
  private probeNode(id: NodeId): Promise<void> {
    const running = this.probing.get(id);
    if (running !== undefined) return running;
    const job = (async () => {
      const timeoutMs = Math.max(50, Math.min(1000, Math.floor(this.deps.options.failureTimeoutMs / 2)));
      const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.abort.signal]);
      const answer = await this.deps.peers.ping(id, signal).catch(() => undefined);
      let result: ProbeResult = SILENT;
      if (answer !== undefined && answer.node === id) {
        result = ANSWERED(answer.generation);
        // Alive, but a store that refuses writes cannot take part in a new segment.
        if (answer.storeWritable === false) this.unwritable.add(id);
        else this.unwritable.delete(id);
        if (answer.storeRecovering === true) this.recovering.add(id);
        else this.recovering.delete(id);
      } else if (answer === undefined && this.deps.refusesConnections !== undefined && !signal.aborted) {
        // The ping failed before its deadline (a timed-out one means a silent peer, not a refusing
        // port): does anything listen there at all?
        const dial = AbortSignal.any([AbortSignal.timeout(CONNECT_PROBE_MS), this.abort.signal]);
        if (await this.deps.refusesConnections(id, dial).catch(() => false)) result = REFUSED;
      }
      this.deps.liveness.probed(id, this.nowMs(), result);
    })().finally(() => this.probing.delete(id));
    this.probing.set(id, job);
    return job;
  }

  /** The cluster's nodeset size when set, otherwise this node's bifrost.nodeset-size (0: automatic). */
  private nodesetSize(settings: ClusterSettings | undefined): number {
    return settings !== undefined && settings.nodesetSize > 0 ? settings.nodesetSize : this.deps.options.nodesetSize;
  }

  private launch(action: LogAction, candidates: Candidate[], nodesetSize: number): void {
    const improvement = action.reason === "nodeset-member-dead" || action.reason === "nodeset-member-lost-data" || action.reason === "nodeset-too-small";
    if (improvement) this.lastImprovedMs.set(action.log, this.nowMs());
    const job = this.deps.bifrost
      .reconfigure(action.log, action.request ?? {}, {
        reason: action.reason,
        candidates,
        nodesetSize,
        acceptConcurrent: true,
        expectTailIndex: action.expectTailIndex,
        signal: this.abort.signal,
        ...(action.avoidSequencer ? { avoidSequencer: action.avoidSequencer } : {}),
      })
      .then(
        () => undefined,
        (e: unknown) => this.warn(`log-${action.log}`, { err: e, log: action.log, reason: action.reason }, "reconfiguring a log failed; the controller retries"),
      )
      .finally(() => this.inflight.delete(action.log));
    this.inflight.set(action.log, job);
  }

  /**
   * Re-replication: counts the under-replicated records of every log (metrics) and starts copies of
   * sealed segments short of their log's replication, within the concurrency bound. A node no longer
   * in the nodes configuration, or whose store is in data-loss mode, lost its copies.
   */
  private rereplicate(doc: LogsDocument, candidates: Candidate[], now: number, copyingBeforeRead: readonly number[]): void {
    const max = this.deps.options.rereplicationMaxConcurrent ?? 0;
    const known = new Set(this.deps.directory.all().map((n) => n.id));
    const waiting = new Set([...this.copying.keys(), ...copyingBeforeRead]);
    for (const [log, at] of this.lastCopyFailedMs) if (now - at < REREPLICATION_RETRY_MS) waiting.add(log);
    const plan = planRereplication({
      doc,
      candidates: candidates.map((c) => c.id),
      lost: (id) => !known.has(id) || this.recovering.has(id),
      inflight: waiting,
      maxPlans: Math.max(0, max - this.copying.size),
    });
    this.deps.bifrost.noteUnderReplicated(doc, plan.underReplicatedRecords);
    for (const b of plan.blocked) {
      this.warn(`copies-${b.log}`, { log: b.log, segment: b.segment, copies: b.copies, wanted: b.wanted }, "a sealed segment has fewer copies than its log's replication and no live log-server can take one (CAIRN-LOG-0024)");
    }
    for (const copy of plan.copies) {
      const job = this.deps.bifrost
        .rereplicate(copy, this.abort.signal)
        .then(
          () => void this.lastCopyFailedMs.delete(copy.log),
          (e: unknown) => {
            this.lastCopyFailedMs.set(copy.log, this.nowMs());
            this.warn(`copy-${copy.log}`, { err: e, log: copy.log, segment: copy.segment, targets: copy.targets }, "re-replicating a sealed segment failed; the controller retries");
          },
        )
        .finally(() => this.copying.delete(copy.log));
      this.copying.set(copy.log, job);
    }
  }

  /** At most one warning per subject every 10 s: a stuck log must not flood the log. */
  private warn(subject: string, fields: object, message: string): void {
    const now = this.nowMs();
    if (now - (this.lastWarnMs.get(subject) ?? 0) < 10_000) return;
    this.lastWarnMs.set(subject, now);
    this.deps.logger.warn(fields, message);
  }
}
