// The snapshot job's decisions, pure (no clock, no I/O): which partitions to start now under the
// per-node and per-cluster limits, what a failure means (retry after exponential backoff, or give up
// after `maxAttempts`), when the job is over, and which partitions automatic snapshots make due.
// Invariants: never more than `maxPerNode` requests in flight on one node nor `maxCluster` in all;
// a partition is in flight at most once, across jobs too; a finished partition never runs again in
// the same job.
import { Type, type Static } from "@sinclair/typebox";
import { invariant } from "../../observability/errors.ts";

export const TASK_STATES = ["pending", "running", "retrying", "succeeded", "failed"] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const SnapshotTaskView = Type.Object(
  {
    partition: Type.Integer({ minimum: 0 }),
    state: Type.Union([Type.Literal("pending"), Type.Literal("running"), Type.Literal("retrying"), Type.Literal("succeeded"), Type.Literal("failed")], { description: "pending, running, retrying (waiting for its backoff), succeeded, failed" }),
    attempts: Type.Integer({ minimum: 0 }),
    node: Type.Union([Type.String(), Type.Null()], { description: "The leader that exported it (last attempt)." }),
    snapshotId: Type.Union([Type.String(), Type.Null()]),
    lsn: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: "The applied LSN the published snapshot is as of." }),
    sizeBytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    uploaded: Type.Union([Type.Boolean(), Type.Null()], { description: "False when the repository already held a snapshot at this LSN (nothing new was written)." }),
    durationMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: "Of the successful attempt." }),
    error: Type.Union([Type.String(), Type.Null()], { description: "The last attempt's error." }),
  },
  { additionalProperties: false },
);
export type SnapshotTaskView = Static<typeof SnapshotTaskView>;

export const SnapshotJobView = Type.Object(
  {
    id: Type.String(),
    state: Type.Union([Type.Literal("running"), Type.Literal("succeeded"), Type.Literal("failed")], { description: "failed: at least one partition failed after its retries." }),
    controller: Type.String({ description: "The node running the job (the metadata leader when it started)." }),
    createdAtMs: Type.Integer({ minimum: 0 }),
    finishedAtMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    partitions: Type.Array(SnapshotTaskView),
  },
  { additionalProperties: false },
);
export type SnapshotJobView = Static<typeof SnapshotJobView>;

export interface JobLimits {
  readonly maxPerNode: number;
  readonly maxCluster: number;
  readonly maxAttempts: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

interface Task extends SnapshotTaskView {
  /** Earliest time the next attempt may start (retrying). */
  notBeforeMs: number;
  startedAtMs: number;
}

export interface TaskResult {
  readonly node: string;
  readonly snapshotId: string;
  readonly lsn: number;
  readonly sizeBytes: number;
  readonly uploaded: boolean;
}

/** One job: its tasks and the decisions over them. The driver owns the clock and the RPCs. */
export class SnapshotJobCore {
  private readonly tasks = new Map<number, Task>();
  private finishedAtMs: number | null = null;

  constructor(
    readonly id: string,
    readonly controller: string,
    readonly createdAtMs: number,
    partitions: readonly number[],
    private readonly limits: JobLimits,
  ) {
    invariant(limits.maxPerNode >= 1 && limits.maxCluster >= 1 && limits.maxAttempts >= 1, "snapshot limits are at least 1");
    for (const partition of [...new Set(partitions)].sort((a, b) => a - b)) {
      this.tasks.set(partition, {
        partition,
        state: "pending",
        attempts: 0,
        node: null,
        snapshotId: null,
        lsn: null,
        sizeBytes: null,
        uploaded: null,
        durationMs: null,
        error: null,
        notBeforeMs: 0,
        startedAtMs: 0,
      });
    }
  }

  /**
   * The partitions to start now, with the node each goes to, given each partition's leader (absent:
   * none known; such a partition counts a failed attempt, so a leaderless partition ends the job).
   * Marks them running. Returns also the partitions that failed for want of a leader.
   */
  start(
    leaders: ReadonlyMap<number, string>,
    nowMs: number,
    /** Requests in flight across all jobs, this one's included (the limits are the cluster's). Default: this job's. */
    busy?: { perNode: ReadonlyMap<string, number>; total: number; partitions?: ReadonlySet<number> },
  ): { starts: Array<{ partition: number; node: string }>; noLeader: number[] } {
    const perNode = new Map<string, number>(busy?.perNode ?? []);
    let total = busy?.total ?? 0;
    if (busy === undefined) {
      for (const t of this.tasks.values()) {
        if (t.state !== "running") continue;
        total++;
        perNode.set(t.node!, (perNode.get(t.node!) ?? 0) + 1);
      }
    }
    const starts: Array<{ partition: number; node: string }> = [];
    const noLeader: number[] = [];
    for (const t of this.tasks.values()) {
      if (total >= this.limits.maxCluster) break;
      if (!(t.state === "pending" || (t.state === "retrying" && t.notBeforeMs <= nowMs))) continue;
      // Another job snapshots it right now: two uploads of one partition would race in retention.
      if (busy?.partitions?.has(t.partition)) continue;
      const node = leaders.get(t.partition);
      if (node === undefined) {
        noLeader.push(t.partition);
        continue;
      }
      if ((perNode.get(node) ?? 0) >= this.limits.maxPerNode) continue;
      t.state = "running";
      t.node = node;
      t.attempts++;
      t.startedAtMs = nowMs;
      perNode.set(node, (perNode.get(node) ?? 0) + 1);
      total++;
      starts.push({ partition: t.partition, node });
    }
    for (const p of noLeader) {
      const t = this.tasks.get(p)!;
      t.attempts++;
      this.failAttempt(t, `partition ${p} has no leader`, nowMs);
    }
    this.checkFinished(nowMs);
    return { starts, noLeader };
  }

  succeeded(partition: number, result: TaskResult, nowMs: number): void {
    const t = this.running(partition);
    t.state = "succeeded";
    t.node = result.node;
    t.snapshotId = result.snapshotId;
    t.lsn = result.lsn;
    t.sizeBytes = result.sizeBytes;
    t.uploaded = result.uploaded;
    t.durationMs = Math.max(0, nowMs - t.startedAtMs);
    t.error = null;
    this.checkFinished(nowMs);
  }

  failed(partition: number, error: string, nowMs: number): void {
    this.failAttempt(this.running(partition), error, nowMs);
    this.checkFinished(nowMs);
  }

  /** When the next retry becomes due (undefined: none waits). */
  nextRetryAtMs(): number | undefined {
    let at: number | undefined;
    for (const t of this.tasks.values()) if (t.state === "retrying") at = Math.min(at ?? Infinity, t.notBeforeMs);
    return at;
  }

  /** Partitions waiting to start (pending, or retrying and due). */
  waiting(nowMs: number): number[] {
    return [...this.tasks.values()].filter((t) => t.state === "pending" || (t.state === "retrying" && t.notBeforeMs <= nowMs)).map((t) => t.partition);
  }

  get done(): boolean {
    return this.finishedAtMs !== null;
  }

  view(): SnapshotJobView {
    const tasks = [...this.tasks.values()];
    return {
      id: this.id,
      state: !this.done ? "running" : tasks.every((t) => t.state === "succeeded") ? "succeeded" : "failed",
      controller: this.controller,
      createdAtMs: this.createdAtMs,
      finishedAtMs: this.finishedAtMs,
      partitions: tasks.map(({ notBeforeMs: _n, startedAtMs: _s, ...view }) => view),
    };
  }

  private running(partition: number): Task {
    const t = this.tasks.get(partition);
    invariant(t !== undefined && t.state === "running", () => `snapshot task ${partition} of job ${this.id} is not running`);
    return t;
  }

  private failAttempt(t: Task, error: string, nowMs: number): void {
    t.error = error;
    if (t.attempts >= this.limits.maxAttempts) {
      t.state = "failed";
      return;
    }
    t.state = "retrying";
    t.notBeforeMs = nowMs + backoffMs(t.attempts, this.limits);
  }

  private checkFinished(nowMs: number): void {
    if (this.finishedAtMs !== null) return;
    if ([...this.tasks.values()].every((t) => t.state === "succeeded" || t.state === "failed")) this.finishedAtMs = nowMs;
  }
}

/** Wait before attempt `attempts + 1`: initial, doubled per attempt, capped. */
export function backoffMs(attempts: number, limits: Pick<JobLimits, "backoffInitialMs" | "backoffMaxMs">): number {
  return Math.min(limits.backoffMaxMs, limits.backoffInitialMs * 2 ** Math.max(0, attempts - 1));
}

export interface AutoSnapshotInput {
  readonly partition: number;
  /** The leader's applied LSN (undefined: unknown right now). */
  readonly appliedLsn: number | undefined;
  /** The newest published snapshot's LSN and when it was published (undefined: none yet). */
  readonly lastLsn: number | undefined;
  readonly lastAtMs: number | undefined;
}

/**
 * Partitions automatic snapshots make due: `everyRecords` applied since the last snapshot, or
 * `everySeconds` passed since it while records were applied (0 turns either off; a partition never
 * snapshotted is due at once under `everySeconds`). A partition
 * with nothing applied since its last snapshot is never due.
 */
export function dueForSnapshot(inputs: readonly AutoSnapshotInput[], nowMs: number, everyRecords: number, everySeconds: number): number[] {
  const due: number[] = [];
  for (const i of inputs) {
    if (i.appliedLsn === undefined) continue;
    const since = i.appliedLsn - (i.lastLsn ?? 0);
    if (since <= 0) continue;
    if (everyRecords > 0 && since >= everyRecords) due.push(i.partition);
    // A partition never snapshotted is due at once (as soon as it has records).
    else if (everySeconds > 0 && (i.lastAtMs === undefined || nowMs - i.lastAtMs >= everySeconds * 1000)) due.push(i.partition);
  }
  return due;
}
