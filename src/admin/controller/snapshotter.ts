// The parallel snapshotter's driver, one per node: jobs run on the node that leads the metadata
// cluster (the cluster controller's node); any other node forwards create/job requests to it over
// the fabric (`snapshotter` RPCs). A job sends each partition's request to the node leading it
// (`worker/snapshot`), concurrently under the limits of snapshotter-core.ts, retries with backoff,
// and after each success moves the metadata index `snapshots/<p>` forward. Automatic snapshots start
// jobs for partitions the core finds due. Invariants: a job never publishes anything itself (the
// leader's worker uploads, publishes and rolls back); jobs live in memory on the controller only.
import { Type } from "@sinclair/typebox";
import { randomBytes } from "node:crypto";
import type { NodeDirectory } from "../../bifrost/index.ts";
import type { SnapshotsConfig } from "../../config/index.ts";
import type { NodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { KEYS, type ClusterInfo } from "../../metadata/nodes-config.ts";
import { defineRpc, type FabricClient, type FabricServer } from "../../net/index.ts";
import { CairnError, isCairnError } from "../../observability/errors.ts";
import type { Logger } from "../../observability/log.ts";
import { Counter, Gauge, Histogram, type Registry } from "../../observability/metrics.ts";
import { advanceSnapshotIndex, readSnapshotIndex, SnapshotMetadata, type SnapshotRepository } from "../../snapshot/index.ts";
import { epochKey, partitionsOverview, WORKER_RPCS, defaultSnapshotConcurrency, type EpochRecord, type WorkerRole } from "../../worker/index.ts";
import { dueForSnapshot, SnapshotJobCore, SnapshotJobView, type JobLimits } from "./snapshotter-core.ts";

export const CreateJobRequest = Type.Object({
  partitions: Type.Union([Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 65_536 }), Type.Null()]),
});
const JobRequest = Type.Object({ id: Type.String({ maxLength: 64 }) });

export const SNAPSHOTTER_RPCS = {
  create: defineRpc({ service: "snapshotter", method: "create", request: CreateJobRequest, response: SnapshotJobView }),
  job: defineRpc({ service: "snapshotter", method: "job", request: JobRequest, response: SnapshotJobView }),
};

/** A snapshot in the repository as GET /v1/snapshots lists it. */
export const SnapshotRow = Type.Object(
  {
    ...SnapshotMetadata.properties,
    latest: Type.Boolean({ description: "The partition's latest.json names it." }),
  },
  { additionalProperties: false },
);

export interface SnapshotterDeps {
  readonly config: SnapshotsConfig;
  readonly repository: SnapshotRepository | undefined;
  readonly fabricServer: FabricServer;
  readonly fabricClient: FabricClient;
  readonly directory: NodeDirectory;
  readonly refreshNodes: () => Promise<void>;
  readonly metadata: () => MetadataApi | undefined;
  readonly isLeader: () => boolean;
  readonly self: () => NodeId | undefined;
  readonly localWorker: () => WorkerRole | undefined;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

/** Deadline of a forwarded create/job request and of a leader lookup. */
const FORWARD_DEADLINE_MS = 5_000;
/** Least period of the automatic-snapshot check. */
const AUTO_CHECK_MIN_MS = 1_000;

export class Snapshotter {
  private readonly jobs = new Map<string, SnapshotJobCore>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly inFlight = new Map<NodeId | string, number>();
  private readonly partitionsInFlight = new Set<number>();
  private readonly lastSnapshot = new Map<number, { lsn: number; atMs: number }>();
  private autoTimer: ReturnType<typeof setInterval> | undefined;
  private autoJob: string | undefined;
  private stopped = false;
  private readonly nowMs: () => number;
  private readonly limits: JobLimits;
  private readonly metrics;

  constructor(private readonly deps: SnapshotterDeps) {
    this.nowMs = deps.nowMs ?? Date.now;
    const c = deps.config;
    this.limits = {
      maxPerNode: defaultSnapshotConcurrency(c["max-concurrent-per-node"]),
      maxCluster: c["max-concurrent-cluster"],
      maxAttempts: c["max-attempts"],
      backoffInitialMs: c["retry-backoff-initial-ms"],
      backoffMaxMs: Math.max(c["retry-backoff-initial-ms"], c["retry-backoff-max-ms"]),
    };
    const registers = [deps.registry];
    const last = this.lastSnapshot;
    const now = this.nowMs;
    this.metrics = {
      duration: new Histogram({
        name: "cairn_snapshot_duration_seconds",
        help: "Time to create one partition snapshot (export, upload, publish), as the controller saw it",
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        registers,
      }),
      bytes: new Counter({ name: "cairn_snapshot_bytes_total", help: "Bytes of partition snapshots uploaded", registers }),
      failures: new Counter({ name: "cairn_snapshot_failures_total", help: "Failed partition snapshot attempts (each rolled back)", registers }),
      inFlight: new Gauge({ name: "cairn_snapshots_in_flight", help: "Partition snapshot requests in flight from this controller", registers }),
      lastLsn: new Gauge({ name: "cairn_snapshot_last_lsn", help: "LSN of the partition's newest snapshot this controller published", labelNames: ["partition"], registers }),
      age: new Gauge({
        name: "cairn_snapshot_age_seconds",
        help: "Seconds since the partition's newest snapshot this controller published",
        labelNames: ["partition"],
        registers,
        collect() {
          for (const [p, s] of last) this.set({ partition: String(p) }, Math.max(0, (now() - s.atMs) / 1000));
        },
      }),
    };
  }

  start(): void {
    this.deps.fabricServer
      .register(SNAPSHOTTER_RPCS.create, (req) => this.createHere(req.partitions))
      .register(SNAPSHOTTER_RPCS.job, (req) => this.jobHere(req.id));
    const c = this.deps.config;
    if (c.repository !== "none" && (c["auto-every-records"] > 0 || c["auto-every-seconds"] > 0)) {
      const periodMs = Math.max(AUTO_CHECK_MIN_MS, c["auto-every-seconds"] > 0 ? Math.min(10_000, (c["auto-every-seconds"] * 1000) / 2) : 5_000);
      this.autoTimer = setInterval(() => void this.autoCheck(), periodMs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.autoTimer) clearInterval(this.autoTimer);
    await Promise.allSettled(this.running.values());
  }

  /** Starts a job (here if this node is the controller, else on the controller); its first view. */
  async create(partitions: number[] | null): Promise<SnapshotJobView> {
    this.requireMetadata();
    if (this.deps.isLeader()) return this.createHere(partitions);
    return this.forward((address) => this.deps.fabricClient.call(address, SNAPSHOTTER_RPCS.create, { partitions }, { deadlineMs: FORWARD_DEADLINE_MS }), "SNAPSHOT_NOT_CONTROLLER");
  }

  /** A job's progress, from whichever node runs it. */
  async job(id: string): Promise<SnapshotJobView> {
    const here = this.jobs.get(id);
    if (here !== undefined) return here.view();
    return this.forward((address) => this.deps.fabricClient.call(address, SNAPSHOTTER_RPCS.job, { id }, { deadlineMs: FORWARD_DEADLINE_MS }), "SNAPSHOT_NOT_FOUND", id);
  }

  /** The snapshots the repository holds (all partitions, or one), oldest first per partition. */
  async list(partition: number | undefined): Promise<Array<SnapshotMetadata & { latest: boolean }>> {
    const repository = this.requireRepository();
    const partitions = partition === undefined ? await repository.partitions() : [partition];
    const rows: Array<SnapshotMetadata & { latest: boolean }> = [];
    for (const p of partitions) {
      const [latest, list] = await Promise.all([repository.latest(p), repository.list(p)]);
      for (const m of list) rows.push({ ...m, latest: latest?.id === m.id && latest.lsn === m.lsn });
    }
    return rows;
  }

  private requireRepository(): SnapshotRepository {
    if (this.deps.repository === undefined) throw new CairnError("SNAPSHOT_NO_REPOSITORY", `snapshots.repository is "none" on this node`);
    return this.deps.repository;
  }

  private async createHere(requested: number[] | null): Promise<SnapshotJobView> {
    const self = this.deps.self();
    if (!this.deps.isLeader() || self === undefined || this.stopped) {
      throw new CairnError("SNAPSHOT_NOT_CONTROLLER", "this node does not run the cluster controller (it does not lead the metadata cluster)", { retryAfterSeconds: 1 });
    }
    this.requireRepository();
    const api = this.requireMetadata();
    const cluster = (await api.get(KEYS.cluster, { consistency: "stale" }))?.value as ClusterInfo | undefined;
    if (cluster === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
    const all = Array.from({ length: cluster.numPartitions }, (_, i) => i);
    const partitions = requested === null || requested.length === 0 ? all : requested;
    const unknown = partitions.filter((p) => p >= cluster.numPartitions);
    if (unknown.length > 0) {
      throw new CairnError("SNAPSHOT_INVALID_REQUEST", `partitions ${unknown.join(", ")} do not exist (the cluster has ${cluster.numPartitions}: 0..${cluster.numPartitions - 1})`);
    }
    if (this.running.size >= this.deps.config["max-running-jobs"]) {
      throw new CairnError("SNAPSHOT_JOB_LIMIT", `${this.running.size} snapshot jobs are running (snapshots.max-running-jobs)`, { retryAfterSeconds: 1 });
    }
    const job = new SnapshotJobCore(`snap-${randomBytes(6).toString("hex")}`, self, this.nowMs(), partitions, this.limits);
    this.jobs.set(job.id, job);
    this.forgetOldJobs();
    this.deps.logger.info({ job: job.id, partitions }, `snapshot job ${job.id} started for ${partitions.length} partitions`);
    const run = this.runJob(job)
      .catch((e: unknown) => this.deps.logger.error({ err: e, job: job.id }, "snapshot job failed unexpectedly"))
      .finally(() => this.running.delete(job.id));
    this.running.set(job.id, run);
    return job.view();
  }

  private jobHere(id: string): SnapshotJobView {
    const job = this.jobs.get(id);
    if (job === undefined) throw new CairnError("SNAPSHOT_NOT_FOUND", `no snapshot job ${id} on this node`, { job: id });
    return job.view();
  }

  private async runJob(job: SnapshotJobCore): Promise<void> {
    const attempts = new Set<Promise<void>>();
    let wake: (() => void) | undefined;
    // An attempt that ends while no one waits (the loop is reading leaders) must not be missed: the
    // loop then goes round at once instead of waiting for the timer.
    let ended = false;
    while (!job.done && !this.stopped) {
      ended = false;
      const waiting = job.waiting(this.nowMs());
      if (waiting.length > 0) {
        const leaders = await this.leadersOf(waiting);
        const busy = { perNode: new Map(this.inFlight), total: [...this.inFlight.values()].reduce((a, b) => a + b, 0), partitions: this.partitionsInFlight };
        const { starts } = job.start(leaders, this.nowMs(), busy);
        for (const s of starts) {
          const a: Promise<void> = this.attempt(job, s.partition, s.node).finally(() => {
            attempts.delete(a);
            ended = true;
            wake?.();
          });
          attempts.add(a);
        }
      }
      if (job.done) break;
      const retryAtMs = job.nextRetryAtMs();
      if (ended) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, retryAtMs === undefined ? 1_000 : Math.max(1, retryAtMs - this.nowMs()));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    await Promise.allSettled(attempts);
    const view = job.view();
    const failed = view.partitions.filter((p) => p.state !== "succeeded");
    this.deps.logger.info({ job: job.id, state: view.state, failed: failed.map((p) => ({ partition: p.partition, error: p.error })) }, `snapshot job ${job.id} ${view.state}`);
  }

  /** Each partition's leader as its epoch record names it (none: unknown or its node unknown). */
  private async leadersOf(partitions: number[]): Promise<Map<number, string>> {
    const api = this.deps.metadata();
    const out = new Map<number, string>();
    if (api === undefined) return out;
    await Promise.all(
      partitions.map(async (p) => {
        const v = await api.get(epochKey(p), { consistency: "linearizable" }).catch(() => undefined);
        const rec = v?.value as EpochRecord | undefined;
        if (rec !== undefined) out.set(p, rec.node);
      }),
    );
    return out;
  }

  private async attempt(job: SnapshotJobCore, partition: number, node: string): Promise<void> {
    const startedMs = this.nowMs();
    this.inFlight.set(node, (this.inFlight.get(node) ?? 0) + 1);
    this.partitionsInFlight.add(partition);
    this.metrics.inFlight.inc();
    try {
      const timeoutMs = this.deps.config["request-timeout-ms"];
      const request = { partition, jobId: job.id, timeoutMs };
      const local = node === this.deps.self() ? this.deps.localWorker() : undefined;
      let address = this.deps.directory.addressOf(node as NodeId);
      if (local === undefined && address === undefined) {
        await this.deps.refreshNodes().catch(() => {});
        address = this.deps.directory.addressOf(node as NodeId);
      }
      if (local === undefined && address === undefined) throw new CairnError("SNAPSHOT_FAILED", `the address of node ${node} (leader of partition ${partition}) is not known`);
      const answer = local !== undefined ? await local.snapshot(request) : await this.deps.fabricClient.call(address!, WORKER_RPCS.snapshot, request, { deadlineMs: timeoutMs + 1_000 });
      await advanceSnapshotIndex(this.requireMetadata(), {
        partition,
        latestLsn: answer.lsn,
        latestId: answer.id,
        oldestRetainedLsn: answer.oldestRetainedLsn,
        updatedAtMs: this.nowMs(),
      });
      const now = this.nowMs();
      job.succeeded(partition, { node: answer.node, snapshotId: answer.id, lsn: answer.lsn, sizeBytes: answer.sizeBytes, uploaded: answer.uploaded }, now);
      this.metrics.duration.observe((now - startedMs) / 1000);
      if (answer.uploaded) this.metrics.bytes.inc(answer.sizeBytes);
      this.metrics.lastLsn.set({ partition: String(partition) }, answer.lsn);
      this.lastSnapshot.set(partition, { lsn: answer.lsn, atMs: now });
    } catch (e) {
      const message = isCairnError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
      this.metrics.failures.inc();
      this.deps.logger.warn({ job: job.id, partition, node, error: message }, `snapshot of partition ${partition} on ${node} failed`);
      job.failed(partition, message, this.nowMs());
    } finally {
      this.inFlight.set(node, (this.inFlight.get(node) ?? 1) - 1);
      if (this.inFlight.get(node) === 0) this.inFlight.delete(node);
      this.partitionsInFlight.delete(partition);
      this.metrics.inFlight.dec();
    }
  }

  /** Automatic snapshots: one job at a time for the partitions due (controller only). */
  private async autoCheck(): Promise<void> {
    if (this.stopped || !this.deps.isLeader() || (this.autoJob !== undefined && this.running.has(this.autoJob))) return;
    try {
      const api = this.requireMetadata();
      const overview = await partitionsOverview({
        metadata: api,
        bifrost: undefined,
        directory: this.deps.directory,
        fabricClient: this.deps.fabricClient,
        self: this.deps.self(),
        localWorker: this.deps.localWorker(),
        deadlineMs: FORWARD_DEADLINE_MS,
      });
      const inputs = await Promise.all(
        overview.map(async (p) => {
          const index = await readSnapshotIndex(api, p.id, "stale").catch(() => undefined);
          return { partition: p.id, appliedLsn: p.appliedLsn ?? undefined, lastLsn: index?.latestLsn, lastAtMs: index?.updatedAtMs };
        }),
      );
      const c = this.deps.config;
      const due = dueForSnapshot(inputs, this.nowMs(), c["auto-every-records"], c["auto-every-seconds"]);
      if (due.length === 0) return;
      this.autoJob = (await this.createHere(due)).id;
    } catch (e) {
      this.deps.logger.debug({ err: e }, "automatic snapshot check failed; retrying next round");
    }
  }

  private requireMetadata(): MetadataApi {
    const api = this.deps.metadata();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
    return api;
  }

  /** Asks every other node at once; the one that runs the controller (or the job) answers. */
  private async forward(call: (address: string) => Promise<SnapshotJobView>, skip: "SNAPSHOT_NOT_CONTROLLER" | "SNAPSHOT_NOT_FOUND", jobId?: string): Promise<SnapshotJobView> {
    await this.deps.refreshNodes().catch(() => {});
    const self = this.deps.self();
    const others = this.deps.directory.all().filter((n) => n.id !== self);
    try {
      return await Promise.any(others.map((n) => call(n.fabricAddress)));
    } catch (e) {
      const errors = e instanceof AggregateError ? e.errors : [e];
      // A node that is not the one wanted refuses with one of these, an unreachable one fails in
      // the fabric: the controller's own refusal (a bad request, a limit) is the answer.
      const real = errors.find(
        (x) => isCairnError(x) && !x.code.startsWith("CAIRN-NET-") && !(isCairnError(x, "SNAPSHOT_NOT_CONTROLLER") || isCairnError(x, "SNAPSHOT_NOT_FOUND")),
      );
      if (skip === "SNAPSHOT_NOT_FOUND") throw new CairnError("SNAPSHOT_NOT_FOUND", `no node knows snapshot job ${jobId}`, { job: jobId });
      if (isCairnError(real)) throw real;
      throw new CairnError("SNAPSHOT_NOT_CONTROLLER", "no node acting as cluster controller answered", { retryAfterSeconds: 1 });
    }
  }

  private forgetOldJobs(): void {
    const max = this.deps.config["max-finished-jobs"];
    const finished = [...this.jobs.values()].filter((j) => j.done);
    for (const j of finished.slice(0, Math.max(0, finished.length - max))) this.jobs.delete(j.id);
  }
}
