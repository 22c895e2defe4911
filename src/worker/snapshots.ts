// The worker's side of the snapshotter: answers `worker/snapshot` for a partition this node leads by
// exporting its store as of one applied LSN and publishing it to the repository (snapshot/create.ts),
// at most `maxConcurrent` at once on this node (more wait their turn, within the caller's deadline).
// While the node serves data-plane writes (at least `busyWritesPerSecond`), a snapshot's upload flows
// at most at `busyUploadBytesPerSecond`, and (when `dutyCyclePercent` < 100) a slot rests after each
// snapshot so that snapshots hold it only that share of the time: background work yields to the
// foreground. Invariant: only the partition's current leader snapshots it; a failed attempt leaves
// nothing published (create.ts removes what it uploaded).
import { cpus } from "node:os";
import { join } from "node:path";
import { KEYS, type ClusterInfo } from "../metadata/nodes-config.ts";
import type { MetadataApi } from "../metadata/api.ts";
import { CairnError, invariant } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { createSnapshot, type ExportOptions, type SnapshotRepository } from "../snapshot/index.ts";
import type { PartitionTable } from "./partition-table.ts";
import type { PartitionProcessor } from "./processor.ts";
import type { SnapshotAnswer, SnapshotRequest } from "./rpc.ts";
import { APPLIED_LSN_QUERY } from "./store.ts";

export interface WorkerSnapshotSettings {
  readonly repository: SnapshotRepository | undefined;
  /** Most snapshots this node exports at once; 0: half its cores, at least 1. */
  readonly maxConcurrent: number;
  /** How stores are copied (in memory up to a size, the export thread's niceness); default DEFAULT_EXPORT_OPTIONS. */
  readonly export?: ExportOptions;
  /** Pacing of snapshots while the node is busy; default DEFAULT_SNAPSHOT_PACING. */
  readonly pacing?: SnapshotPacing;
}

export interface SnapshotPacing {
  /** Share of the time (1..100) a slot may snapshot while the node is busy; 100: no pacing. */
  readonly dutyCyclePercent: number;
  /** Data-plane writes per second (this node's, over the last second) from which the node is busy. */
  readonly busyWritesPerSecond: number;
  /** Rate of a snapshot's upload while the node is busy (bytes per second; 0: no limit). */
  readonly busyUploadBytesPerSecond: number;
}

export const DEFAULT_SNAPSHOT_PACING: SnapshotPacing = { dutyCyclePercent: 100, busyWritesPerSecond: 100, busyUploadBytesPerSecond: 16 * 1024 * 1024 };

/** The rate a snapshot's upload may use now: the busy rate while the node is busy, else no limit. */
export function uploadRateNow(recentWrites: number, pacing: SnapshotPacing): number {
  return pacing.busyUploadBytesPerSecond > 0 && recentWrites >= pacing.busyWritesPerSecond ? pacing.busyUploadBytesPerSecond : Number.POSITIVE_INFINITY;
}

/**
 * How long a slot rests after a snapshot that held it `heldMs`, with `recentWrites` data-plane writes
 * in the last second: none while the node is not busy, else enough that the snapshot held the slot
 * `dutyCyclePercent` of the time.
 */
export function restAfterSnapshotMs(heldMs: number, recentWrites: number, pacing: SnapshotPacing): number {
  invariant(pacing.dutyCyclePercent >= 1 && pacing.dutyCyclePercent <= 100, "the snapshot duty cycle is 1..100 %");
  if (pacing.dutyCyclePercent >= 100 || recentWrites < pacing.busyWritesPerSecond) return 0;
  return Math.round((Math.max(0, heldMs) * (100 - pacing.dutyCyclePercent)) / pacing.dutyCyclePercent);
}

/** Events counted in buckets of `bucketMs` over the last `windowMs` (time passed in: no clock here). */
export class RecentCount {
  private readonly buckets: Array<{ startMs: number; count: number }> = [];

  constructor(
    private readonly windowMs: number,
    private readonly bucketMs: number,
  ) {
    invariant(bucketMs > 0 && windowMs >= bucketMs, "a window holds at least one bucket");
  }

  note(nowMs: number): void {
    const startMs = nowMs - (nowMs % this.bucketMs);
    const last = this.buckets.at(-1);
    if (last !== undefined && last.startMs === startMs) last.count++;
    else this.buckets.push({ startMs, count: 1 });
    this.prune(nowMs);
  }

  /** Events in the buckets that overlap the last `windowMs`. */
  count(nowMs: number): number {
    this.prune(nowMs);
    return this.buckets.reduce((a, b) => a + b.count, 0);
  }

  private prune(nowMs: number): void {
    while (this.buckets.length > 0 && this.buckets[0]!.startMs + this.bucketMs <= nowMs - this.windowMs) this.buckets.shift();
  }
}

export interface WorkerSnapshotDeps {
  readonly settings: WorkerSnapshotSettings;
  readonly dataDir: string;
  readonly leading: (partition: number) => PartitionProcessor | undefined;
  readonly metadata: () => MetadataApi | undefined;
  readonly node: () => string;
  readonly nowMs: () => number;
  readonly logger: Logger;
}

export function defaultSnapshotConcurrency(configured: number): number {
  return configured > 0 ? configured : Math.max(1, Math.floor(cpus().length / 2));
}

export class WorkerSnapshots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly limit: number;
  private readonly pacing: SnapshotPacing;
  private readonly writes = new RecentCount(1_000, 100);
  private readonly resting = new Set<ReturnType<typeof setTimeout>>();

  constructor(private readonly deps: WorkerSnapshotDeps) {
    this.limit = defaultSnapshotConcurrency(deps.settings.maxConcurrent);
    this.pacing = deps.settings.pacing ?? DEFAULT_SNAPSHOT_PACING;
  }

  /** One data-plane write served by a partition this node leads (the pacing's measure of busy). */
  noteWrite(): void {
    this.writes.note(this.deps.nowMs());
  }

  /** Opens every resting slot at once (the node stops). */
  stop(): void {
    for (const t of this.resting) clearTimeout(t);
    const n = this.resting.size;
    this.resting.clear();
    for (let i = 0; i < n; i++) this.release();
  }

  async handle(req: SnapshotRequest): Promise<SnapshotAnswer> {
    const repository = this.deps.settings.repository;
    if (repository === undefined) throw new CairnError("SNAPSHOT_NO_REPOSITORY", `node ${this.deps.node()} has no snapshot repository (snapshots.repository = "none")`);
    const signal = AbortSignal.timeout(req.timeoutMs);
    await this.acquire(signal);
    const heldFromMs = this.deps.nowMs();
    try {
      const p = this.deps.leading(req.partition);
      if (p === undefined) throw new CairnError("PARTITION_NOT_LEADER", `node ${this.deps.node()} does not lead partition ${req.partition}`, { partition: req.partition });
      const api = this.deps.metadata();
      if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
      const [clusterV, tableV] = await Promise.all([api.get(KEYS.cluster, { consistency: "stale" }), api.get(KEYS.partitionTable, { consistency: "stale" })]);
      const cluster = clusterV?.value as ClusterInfo | undefined;
      const range = (tableV?.value as PartitionTable | undefined)?.partitions.find((x) => x.id === req.partition)?.keyRange;
      if (cluster === undefined || range === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
      const started = this.deps.nowMs();
      const created = await createSnapshot({
        repository,
        partition: req.partition,
        keyRange: range,
        storePath: p.store.path,
        lsnQuery: APPLIED_LSN_QUERY,
        scratchDir: join(this.deps.dataDir, "snapshot-scratch"),
        cluster: { name: cluster.name, fingerprint: cluster.fingerprint },
        node: this.deps.node(),
        nowMs: this.deps.nowMs,
        signal,
        exportOptions: this.deps.settings.export,
        uploadPace: () => uploadRateNow(this.writes.count(this.deps.nowMs()), this.pacing),
      });
      const phasesMs = Object.fromEntries(Object.entries(created.phasesMs).map(([k, v]) => [k, Math.round(v * 10) / 10]));
      this.deps.logger.info(
        {
          partition: req.partition,
          job: req.jobId,
          lsn: created.lsn,
          id: created.id,
          bytes: created.sizeBytes,
          uploaded: created.uploaded,
          ms: this.deps.nowMs() - started,
          phasesMs,
          exportMethod: created.exportMethod,
        },
        `snapshot of partition ${req.partition} at LSN ${created.lsn} published to ${repository.description}`,
      );
      const { partition, id, lsn, sizeBytes, path, uploaded, oldestRetainedLsn } = created;
      return { partition, id, lsn, sizeBytes, path, uploaded, oldestRetainedLsn, node: this.deps.node() };
    } finally {
      const nowMs = this.deps.nowMs();
      const restMs = restAfterSnapshotMs(nowMs - heldFromMs, this.writes.count(nowMs), this.pacing);
      if (restMs === 0) this.release();
      else {
        const t = setTimeout(() => {
          this.resting.delete(t);
          this.release();
        }, restMs);
        this.resting.add(t);
      }
    }
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener("abort", onAbort);
        this.running++;
        resolve();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new CairnError("SNAPSHOT_FAILED", `waited too long for a snapshot slot on node ${this.deps.node()} (snapshots.max-concurrent-per-node = ${this.limit})`));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(go);
    });
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }
}
