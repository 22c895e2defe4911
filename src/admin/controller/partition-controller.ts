// The partition controller: on the metadata leader, decides for every partition which live worker
// leads it and which follow (planPartitionPlacement, pure), and writes the result to the
// `partition_placement` document by compare-and-set; workers act on it (worker/role.ts). A leader
// whose node died moves to a live follower (it has replayed the log), followers are refilled, and a
// node that joins takes leaderships over one at a time until they are spread evenly.
// A live leader whose processor stopped (a failed store, a trim gap being bootstrapped) hands its
// leadership to a running follower that has applied as much (past it, when a record stopped it: a
// record every copy stops on never moves anything).
// Invariants: a live, running leader is never moved except to even out leaderships (at most one move per
// round, so joins do not churn), and only to a follower that has caught up with it (else the node
// first becomes a follower); with hysteresis (`rebalance`), only to a node alive for
// `delayMs`, at least `intervalMs` after the previous move, and never while a takeover (a failover
// or the previous move) is still under way, so moves never leave several partitions leaderless
// together; every leader and follower is a distinct, live worker.
import type { Logger } from "../../observability/log.ts";
import { ANSWERED, REFUSED, SILENT, type BifrostPeers, type LivenessTracker, type NodeDirectory, type ProbeResult } from "../../bifrost/index.ts";
import type { NodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { DOES_NOT_EXIST, matchesVersion } from "../../metadata/kv.ts";
import { clusterSettings, type ClusterInfo } from "../../metadata/nodes-config.ts";
import { PLACEMENT_KEY, type PartitionPlacement, type PartitionPlacementEntry, type PartitionTable } from "../../worker/index.ts";

export interface PartitionPlanInput {
  readonly partitions: readonly number[];
  readonly current: PartitionPlacement | undefined;
  /** Live workers (nodes running the worker role that answered). */
  readonly alive: readonly NodeId[];
  /** Copies of each partition's processor: one leader and `replication - 1` followers. */
  readonly replication: number;
  /**
   * Whether `node`'s processor of `partition` has applied (nearly) as much as its leader: only such a
   * follower takes a leadership over when leaderships are evened out, since any other would replay
   * the log (from the start, for a new follower) before the partition answers again. Absent: every
   * placed follower counts as caught up.
   */
  readonly caughtUp?: (partition: number, node: string) => boolean;
  /** Hysteresis of evening-out moves; absent: a move whenever leaderships are uneven (one per round). */
  readonly rebalance?: RebalanceInput;
  /**
   * What the workers reported of their processors this round (absent: nothing asked). A live leader
   * whose processor stopped (its store failed, it is being bootstrapped) hands its leadership to a
   * running follower that has applied as much (past it, for a record), and stays on as a follower.
   */
  readonly processors?: ReadonlyMap<string, ReadonlyMap<number, ProcessorBrief>>;
}

/** What decides whether a live leadership may move now to even leaderships out (all times in ms, from the driver's clock). */
export interface RebalanceInput {
  readonly nowMs: number;
  /** Since when each live worker has answered without a gap or restart (a node missing here counts as just seen). */
  readonly aliveSinceMs: ReadonlyMap<string, number>;
  /** When this controller last changed a leadership, by a move or a failover (undefined: not since it started leading). */
  readonly lastMoveMs: number | undefined;
  /**
   * When this controller last failed a leadership over (undefined: not since it started leading): no
   * move for `delayMs` after it, so the partitions just taken over are not moved (and their in-flight
   * invocations interrupted) a second time at once.
   */
  readonly lastFailoverMs?: number | undefined;
  /** Whether every placed leader leads (applied its own announce): false while a takeover is under way. */
  readonly leadersSettled: boolean;
  /** A node gets leaderships moved to it only once it has been alive this long (worker.rebalance-delay-ms). */
  readonly delayMs: number;
  /** Least time between two moves (worker.rebalance-interval-ms). */
  readonly intervalMs: number;
}

/** The placement for this round (pure; equal input gives equal output). */
export function planPartitionPlacement(input: PartitionPlanInput): PartitionPlacement {
  return planPartitionRound(input).placement;
}

/** The placement for this round and the partition whose live leadership it moved to even leaderships out, if any (pure). */
export function planPartitionRound(input: PartitionPlanInput): { placement: PartitionPlacement; moved: number | undefined } {
  const alive = [...input.alive].sort();
  const isAlive = new Set<string>(alive);
  const leads = new Map<string, number>(alive.map((n) => [n, 0]));
  const holds = new Map<string, number>(alive.map((n) => [n, 0]));
  const previous = new Map((input.current?.partitions ?? []).map((p) => [p.id, p]));
  const least = (candidates: readonly string[], count: Map<string, number>, salt: number): string | undefined => {
    let best: string | undefined;
    let bestScore = Infinity;
    candidates.forEach((c, i) => {
      // Ties go round-robin by partition id, so a fresh cluster spreads leaders evenly.
      const score = (count.get(c) ?? 0) * 1e6 + ((i - salt) % candidates.length + candidates.length) % candidates.length;
      if (score < bestScore) {
        bestScore = score;
        best = c;
      }
    });
    return best;
  };
  const out: PartitionPlacementEntry[] = [];
  let failedOver = false;
  let moved: number | undefined;
  // Keep every live leader first, so the counts that place the others include them.
  for (const id of input.partitions) {
    const prev = previous.get(id);
    if (prev?.leader != null && isAlive.has(prev.leader)) leads.set(prev.leader, (leads.get(prev.leader) ?? 0) + 1);
  }
  for (const id of input.partitions) {
    const prev = previous.get(id);
    let leader = prev?.leader != null && isAlive.has(prev.leader) ? prev.leader : undefined;
    const liveFollowers = (prev?.followers ?? []).filter((f) => isAlive.has(f) && f !== leader);
    const standIn = leader === undefined ? undefined : standInFor(id, leader, liveFollowers, input.processors, leads);
    if (leader !== undefined && standIn !== undefined) {
      // The old leader stays first among the followers: once its processor runs again it is the
      // natural follower (it holds the partition's state up to where it stopped).
      failedOver = true;
      leads.set(leader, (leads.get(leader) ?? 1) - 1);
      leads.set(standIn, (leads.get(standIn) ?? 0) + 1);
      liveFollowers.splice(liveFollowers.indexOf(standIn), 1, leader);
      leader = standIn;
    }
    if (leader === undefined) {
      failedOver ||= prev?.leader != null;
      // A follower has replayed the log: it takes over with little to catch up.
      leader = least(liveFollowers, leads, id) ?? least(alive, leads, id);
      if (leader !== undefined) leads.set(leader, (leads.get(leader) ?? 0) + 1);
    }
    const followers = liveFollowers.filter((f) => f !== leader).slice(0, Math.max(0, input.replication - 1));
    while (leader !== undefined && followers.length < input.replication - 1) {
      const next = least(alive.filter((n) => n !== leader && !followers.includes(n)), holds, id);
      if (next === undefined) break;
      followers.push(next);
    }
    for (const n of [leader, ...followers]) if (n !== undefined) holds.set(n, (holds.get(n) ?? 0) + 1);
    out.push({ id, leader: leader ?? null, followers });
  }
  // Even out leaderships: one change per round. A leadership moves only to a caught-up follower;
  // without one, the idlest node first becomes a follower of one of the busiest node's partitions
  // (it replays the log meanwhile) and takes the leadership over in a later round, once caught up.
  // With replication 1 there are no followers: the leadership moves and the new leader replays.
  if (alive.length > 1) {
    const count = (n: string) => out.filter((p) => p.leader === n).length;
    const busiest = alive.reduce((a, b) => (count(b) > count(a) ? b : a));
    const idlest = alive.reduce((a, b) => (count(b) < count(a) ? b : a));
    if (count(busiest) - count(idlest) > 1) {
      const candidates = out.filter((p) => p.leader === busiest);
      const followerOf = candidates.filter((p) => p.followers.includes(idlest));
      const ready = followerOf.find((p) => input.caughtUp?.(p.id, idlest) ?? true);
      const maxFollowers = Math.max(0, input.replication - 1);
      const mayMove = !failedOver && mayMoveLeadershipTo(idlest, input.rebalance);
      if (ready !== undefined) {
        if (mayMove) {
          const followers = [busiest, ...ready.followers.filter((f) => f !== idlest)].slice(0, maxFollowers);
          out[out.indexOf(ready)] = { id: ready.id, leader: idlest, followers };
          moved = ready.id;
        }
      } else if (maxFollowers === 0) {
        const move = candidates[candidates.length - 1];
        if (move !== undefined && mayMove) {
          out[out.indexOf(move)] = { id: move.id, leader: idlest, followers: [] };
          moved = move.id;
        }
      } else if (followerOf.length === 0) {
        // Becoming a follower moves no leadership: the node replays meanwhile, even during its delay.
        const prepare = candidates[candidates.length - 1];
        if (prepare !== undefined) {
          out[out.indexOf(prepare)] = { id: prepare.id, leader: busiest, followers: [idlest, ...prepare.followers].slice(0, maxFollowers) };
        }
      }
      // Otherwise the idlest node already follows one of them and is catching up: wait for it.
    }
  }
  return { placement: { partitions: out }, moved };
}

/**
 * The follower that takes over from `leader` when the leader's processor of `partition` stopped: a
 * live follower whose processor runs and has applied as much as the stopped one, or past it when a
 * record stopped the leader (so a record every replica stops on never moves the leadership), the
 * least loaded first. Undefined when the leader runs, or no follower qualifies, or nothing was reported.
 */
function standInFor(
  partition: number,
  leader: string,
  followers: readonly string[],
  processors: PartitionPlanInput["processors"],
  leads: ReadonlyMap<string, number>,
): string | undefined {
  const stopped = processors?.get(leader)?.get(partition);
  if (stopped?.stoppedBy === undefined) return undefined;
  const least = stopped.stoppedBy === "record" ? stopped.appliedLsn + 1 : stopped.appliedLsn;
  const running = followers.filter((f) => {
    const p = processors?.get(f)?.get(partition);
    return p !== undefined && p.stoppedBy === undefined && p.appliedLsn >= least;
  });
  return running.sort((a, b) => (leads.get(a) ?? 0) - (leads.get(b) ?? 0) || (a < b ? -1 : 1))[0];
}

/**
 * The hysteresis of evening-out moves: `node` has been alive (this generation) for the delay, the
 * last failover is at least the delay old, the previous move at least the interval, and every placed
 * leader leads (no takeover under way).
 */
export function mayMoveLeadershipTo(node: string, r: RebalanceInput | undefined): boolean {
  if (r === undefined) return true;
  if (!r.leadersSettled) return false;
  const since = r.aliveSinceMs.get(node);
  if (since === undefined || r.nowMs - since < r.delayMs) return false;
  if (r.lastFailoverMs !== undefined && r.nowMs - r.lastFailoverMs < r.delayMs) return false;
  return r.lastMoveMs === undefined || r.nowMs - r.lastMoveMs >= r.intervalMs;
}

/** A follower this close to its leader's applied LSN counts as caught up (a few milliseconds of replay). */
export const CAUGHT_UP_RECORDS = 1_000;
/** Deadline of the round's processor status requests (a silent worker counts as not caught up). */
const STATUS_DEADLINE_MS = 1_000;

/** Whether live nodes' leadership counts differ by more than one, or a leader is not alive (a move may follow). */
function unevenLeaderships(placement: PartitionPlacement | undefined, alive: readonly string[]): boolean {
  if (placement === undefined || alive.length < 2) return placement !== undefined;
  const counts = new Map<string, number>(alive.map((n) => [n, 0]));
  for (const p of placement.partitions) {
    if (p.leader === null || !counts.has(p.leader)) return true;
    counts.set(p.leader, counts.get(p.leader)! + 1);
  }
  return Math.max(...counts.values()) - Math.min(...counts.values()) > 1;
}

/** What the controller learns of one processor of one worker. */
export interface ProcessorBrief {
  readonly appliedLsn: number;
  /** It leads: applied its own announce-leader record. */
  readonly leading: boolean;
  /**
   * What stopped it (absent: it runs): a failed store, a trim gap, or a record it cannot apply (also
   * when an older node did not say why); it applies nothing until it is replaced.
   */
  readonly stoppedBy?: "store" | "trim-gap" | "record";
}

export interface PartitionControllerDeps {
  readonly metadata: () => MetadataApi | undefined;
  readonly peers: BifrostPeers;
  readonly directory: NodeDirectory;
  readonly liveness: LivenessTracker;
  readonly refusesConnections: (id: NodeId, signal: AbortSignal) => Promise<boolean>;
  /** Whether the fabric lost its connection to the node and has not reconnected (cheap, local). */
  readonly connectionLost?: (id: NodeId) => boolean;
  readonly isLeader: () => boolean;
  readonly refreshNodes: () => Promise<void>;
  /**
   * Every live worker's processors: applied LSN (for the caught-up rule) and whether it leads (for
   * "no takeover under way"); absent: neither rule is used.
   */
  readonly processors?: (signal: AbortSignal) => Promise<ReadonlyMap<string, ReadonlyMap<number, ProcessorBrief>>>;
  /** Hysteresis of evening-out moves (worker.rebalance-delay-ms, worker.rebalance-interval-ms); absent: none. */
  readonly rebalance?: { readonly delayMs: number; readonly intervalMs: number };
  readonly intervalMs: number;
  /** A round follows this soon when a worker is under suspicion (its last ping failed). */
  readonly probeIntervalMs: number;
  readonly failureTimeoutMs: number;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

export class PartitionController {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private watchTimer: ReturnType<typeof setInterval> | undefined;
  private running = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private lastWarnMs = 0;
  private readonly nowMs: () => number;
  /** Since when each live worker has been alive in its current generation (this controller's observations). */
  private readonly aliveSince = new Map<string, { sinceMs: number; generation: number | undefined }>();
  /** When this controller last changed a leadership (a move to even leaderships out, or a failover). */
  private lastMoveMs: number | undefined;
  /** When this controller last changed a leadership other than by an evening-out move (a failover). */
  private lastFailoverMs: number | undefined;
  /** Workers whose last ping answer reported a stopped processor. */
  private readonly reportsStopped = new Set<string>();

  constructor(private readonly deps: PartitionControllerDeps) {
    this.nowMs = deps.nowMs ?? Date.now;
  }

  start(): void {
    this.schedule(this.deps.intervalMs);
  }

  /**
   * Between rounds: a worker whose fabric connection dropped (a killed process drops it at once)
   * starts a round now instead of at the next tick; the round's pings and refusals decide. Only
   * while this node leads: elsewhere the watch would wake the process ten times a second for nothing.
   */
  private setWatching(on: boolean): void {
    if (on && this.watchTimer === undefined && this.deps.connectionLost !== undefined && !this.stopped) {
      this.watchTimer = setInterval(() => this.watch(), this.deps.probeIntervalMs);
    }
    if (!on && this.watchTimer !== undefined) {
      clearInterval(this.watchTimer);
      this.watchTimer = undefined;
    }
  }

  private watch(): void {
    if (this.running || this.stopped || !this.deps.isLeader()) return;
    const now = this.nowMs();
    const lost = this.deps.directory.workers().some((n) => this.deps.liveness.status(n.id, now) === "alive" && this.deps.connectionLost?.(n.id) === true);
    if (!lost) return;
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.timer) clearTimeout(this.timer);
    while (this.running) await Bun.sleep(5);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.round().then((suspect) => this.schedule(suspect ? this.deps.probeIntervalMs : this.deps.intervalMs)), ms);
  }

  /** One round; resolves whether a worker is under suspicion (then the next round comes sooner). */
  async round(): Promise<boolean> {
    if (this.running || this.stopped) return false;
    this.running = true;
    try {
      const api = this.deps.metadata();
      const leads = api !== undefined && this.deps.isLeader();
      this.setWatching(leads);
      if (!leads) return false;
      await this.deps.refreshNodes();
      const workers = this.deps.directory.workers();
      await Promise.all(workers.map((n) => this.probe(n.id)));
      const now = this.nowMs();
      const alive = workers.filter((n) => this.deps.liveness.status(n.id, now) === "alive").map((n) => n.id);
      const suspect = workers.some((n) => this.deps.liveness.suspect(n.id, now));
      this.noteAlive(alive, now);
      const [tableV, clusterV, current] = await Promise.all([
        api.get("partition_table", { consistency: "stale" }),
        api.get("cluster", { consistency: "stale" }),
        // On the metadata leader (see the log controller): its replica is current, writes are CAS.
        api.get(PLACEMENT_KEY, { consistency: "stale" }),
      ]);
      if (tableV === undefined) return suspect;
      const table = tableV.value as PartitionTable;
      // The cluster's replication setting (`cairn ctl config set --replication`), at most 3 copies.
      const replication = Math.min(3, clusterV === undefined ? 1 : clusterSettings(clusterV.value as ClusterInfo).replication);
      const placed = current?.value as PartitionPlacement | undefined;
      // The workers are asked for their processors when leaderships may move to even them out
      // (catch-up matters then), or when a live worker's ping reported a stopped processor (its
      // leadership may go to a follower): an even, healthy cluster is not asked at all.
      const ask = unevenLeaderships(placed, alive) || alive.some((n) => this.reportsStopped.has(n));
      const processors = ask
        ? await this.deps.processors?.(AbortSignal.any([AbortSignal.timeout(STATUS_DEADLINE_MS), this.abort.signal])).catch(() => undefined)
        : undefined;
      const leaderOf = new Map((placed?.partitions ?? []).map((p) => [p.id, p.leader]));
      const caughtUp =
        processors === undefined
          ? undefined
          : (partition: number, node: string): boolean => {
              const leader = leaderOf.get(partition);
              const mine = processors.get(node)?.get(partition)?.appliedLsn;
              const theirs = leader == null ? undefined : processors.get(leader)?.get(partition)?.appliedLsn;
              return mine !== undefined && theirs !== undefined && mine + CAUGHT_UP_RECORDS >= theirs;
            };
      const gate = this.deps.rebalance;
      const { placement: plan, moved } = planPartitionRound({
        partitions: table.partitions.map((p) => p.id),
        current: placed,
        alive,
        replication,
        ...(caughtUp !== undefined ? { caughtUp } : {}),
        ...(processors !== undefined ? { processors } : {}),
        ...(gate !== undefined
          ? {
              rebalance: {
                nowMs: now,
                aliveSinceMs: new Map([...this.aliveSince].map(([n, a]) => [n, a.sinceMs])),
                lastMoveMs: this.lastMoveMs,
                lastFailoverMs: this.lastFailoverMs,
                // Unknown (no status answered) counts as unsettled: no move on a guess.
                leadersSettled: processors !== undefined && (placed?.partitions ?? []).every((p) => p.leader === null || processors.get(p.leader)?.get(p.id)?.leading === true),
                delayMs: gate.delayMs,
                intervalMs: gate.intervalMs,
              },
            }
          : {}),
      });
      if (JSON.stringify(plan) !== JSON.stringify(current?.value)) {
        await api.put(PLACEMENT_KEY, plan, current === undefined ? DOES_NOT_EXIST : matchesVersion(current.version));
        // A failover counts too: the next move comes at least an interval (and a delay) after it.
        const changed = plan.partitions.some((p) => p.leader !== (leaderOf.get(p.id) ?? null));
        if (moved !== undefined || changed) this.lastMoveMs = now;
        if (moved === undefined && changed) this.lastFailoverMs = now;
        this.deps.logger.info(
          { placement: plan.partitions.map((p) => `${p.id}:${p.leader ?? "-"}[${p.followers.join(",")}]`).join(" "), ...(moved !== undefined ? { evenedOut: moved } : {}) },
          "partition placement changed",
        );
      }
      return suspect;
    } catch (e) {
      if (this.nowMs() - this.lastWarnMs > 10_000) {
        this.lastWarnMs = this.nowMs();
        this.deps.logger.warn({ err: e }, "partition controller round failed; retrying");
      }
      return true;
    } finally {
      this.running = false;
    }
  }

  /** Keeps when each live worker came up (a new generation is a restart: it starts over); forgets the others. */
  private noteAlive(alive: readonly NodeId[], nowMs: number): void {
    const live = new Set<string>(alive);
    for (const n of [...this.aliveSince.keys()]) if (!live.has(n)) this.aliveSince.delete(n);
    for (const n of alive) {
      const generation = this.deps.liveness.generation(n);
      const known = this.aliveSince.get(n);
      if (known === undefined || known.generation !== generation) this.aliveSince.set(n, { sinceMs: nowMs, generation });
    }
  }

  private async probe(id: NodeId): Promise<void> {
    const timeoutMs = Math.max(50, Math.min(1000, Math.floor(this.deps.failureTimeoutMs / 2)));
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.abort.signal]);
    const answer = await this.deps.peers.ping(id, signal).catch(() => undefined);
    let result: ProbeResult = SILENT;
    if (answer !== undefined && answer.node === id) {
      result = ANSWERED(answer.generation);
      if ((answer.stoppedPartitions?.length ?? 0) > 0) this.reportsStopped.add(id);
      else this.reportsStopped.delete(id);
    }
    else if (answer === undefined && !signal.aborted) {
      const dial = AbortSignal.any([AbortSignal.timeout(500), this.abort.signal]);
      if (await this.deps.refusesConnections(id, dial).catch(() => false)) result = REFUSED;
    }
    this.deps.liveness.probed(id, this.nowMs(), result);
  }
}
