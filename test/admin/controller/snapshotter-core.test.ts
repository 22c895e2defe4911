// The snapshot job's pure decisions, step by step: the per-node and per-cluster limits, retries
// with capped exponential backoff up to max-attempts, a leaderless partition, the job's end state,
// and which partitions automatic snapshots make due.
import { describe, expect, test } from "bun:test";
import { backoffMs, dueForSnapshot, SnapshotJobCore, type JobLimits } from "../../../src/admin/controller/snapshotter-core.ts";

const LIMITS: JobLimits = { maxPerNode: 2, maxCluster: 3, maxAttempts: 3, backoffInitialMs: 100, backoffMaxMs: 250 };
const leaders = (entries: Array<[number, string]>) => new Map(entries);
const ok = (node: string, lsn: number) => ({ node, snapshotId: `s${lsn}`, lsn, sizeBytes: 10, uploaded: true });

describe("snapshot job core", () => {
  test("never more than max-per-node on one node nor max-cluster in all; finishing one frees its slot", () => {
    const job = new SnapshotJobCore("j", "N1", 0, [0, 1, 2, 3, 4, 5], LIMITS);
    const all = leaders([[0, "N1"], [1, "N1"], [2, "N1"], [3, "N2"], [4, "N2"], [5, "N3"]]);
    const first = job.start(all, 0).starts;
    expect(first).toEqual([
      { partition: 0, node: "N1" },
      { partition: 1, node: "N1" },
      { partition: 3, node: "N2" },
    ]);
    expect(job.start(all, 1).starts).toEqual([]);
    job.succeeded(0, ok("N1", 7), 5);
    // Partition 2 (N1) fits again; the cluster limit still holds at 3.
    expect(job.start(all, 6).starts).toEqual([{ partition: 2, node: "N1" }]);
    expect(job.view().partitions.find((p) => p.partition === 0)).toMatchObject({ state: "succeeded", lsn: 7, durationMs: 5, attempts: 1 });
  });

  test("requests of other jobs count against the same limits, and a partition another job snapshots waits", () => {
    const job = new SnapshotJobCore("j", "N1", 0, [0, 1, 2], LIMITS);
    const busy = { perNode: new Map([["N1", 2]]), total: 2, partitions: new Set([2]) };
    expect(job.start(leaders([[0, "N1"], [1, "N2"], [2, "N3"]]), 0, busy).starts).toEqual([{ partition: 1, node: "N2" }]);
    expect(job.view().partitions.find((p) => p.partition === 2)!.state).toBe("pending");
    expect(job.start(leaders([[0, "N1"], [1, "N2"], [2, "N3"]]), 1, { perNode: new Map([["N2", 1]]), total: 1, partitions: new Set([1]) }).starts).toEqual([
      { partition: 0, node: "N1" },
      { partition: 2, node: "N3" },
    ]);
  });

  test("a failed attempt is retried after a backoff that doubles up to its cap, and fails the partition after max-attempts", () => {
    const job = new SnapshotJobCore("j", "N1", 0, [4], LIMITS);
    const l = leaders([[4, "N2"]]);
    expect(job.start(l, 0).starts.length).toBe(1);
    job.failed(4, "disk full", 10);
    expect(job.view().partitions[0]).toMatchObject({ state: "retrying", attempts: 1, error: "disk full" });
    expect(job.nextRetryAtMs()).toBe(110);
    expect(job.start(l, 109).starts).toEqual([]);
    expect(job.start(l, 110).starts.length).toBe(1);
    job.failed(4, "disk full", 120);
    expect(job.nextRetryAtMs()).toBe(320);
    expect(job.start(l, 320).starts.length).toBe(1);
    expect(job.done).toBe(false);
    job.failed(4, "still full", 400);
    expect(job.done).toBe(true);
    expect(job.view()).toMatchObject({ state: "failed", finishedAtMs: 400 });
    expect(job.view().partitions[0]).toMatchObject({ state: "failed", attempts: 3, error: "still full" });
    expect(backoffMs(1, LIMITS)).toBe(100);
    expect(backoffMs(2, LIMITS)).toBe(200);
    expect(backoffMs(5, LIMITS)).toBe(250);
  });

  test("a partition without a known leader counts failed attempts, so the job ends rather than waits forever", () => {
    const job = new SnapshotJobCore("j", "N1", 0, [0, 1], { ...LIMITS, maxAttempts: 2 });
    const r = job.start(leaders([[1, "N2"]]), 0);
    expect(r.noLeader).toEqual([0]);
    expect(r.starts).toEqual([{ partition: 1, node: "N2" }]);
    job.succeeded(1, ok("N2", 3), 1);
    expect(job.start(leaders([]), 100).noLeader).toEqual([0]);
    expect(job.done).toBe(true);
    expect(job.view().state).toBe("failed");
    expect(job.view().partitions[0]!.error).toContain("no leader");
  });

  test("a job whose partitions all succeed succeeds; duplicates are snapshotted once", () => {
    const job = new SnapshotJobCore("j", "N1", 0, [2, 2, 1], LIMITS);
    expect(job.view().partitions.map((p) => p.partition)).toEqual([1, 2]);
    job.start(leaders([[1, "N1"], [2, "N2"]]), 0);
    job.succeeded(2, ok("N2", 4), 3);
    expect(job.done).toBe(false);
    job.succeeded(1, ok("N1", 9), 4);
    expect(job.view()).toMatchObject({ state: "succeeded", finishedAtMs: 4 });
  });

  test("reporting a partition that is not running is a bug, not a silent change", () => {
    const job = new SnapshotJobCore("j", "N1", 0, [0], LIMITS);
    expect(() => job.succeeded(0, ok("N1", 1), 0)).toThrow();
  });
});

describe("automatic snapshots", () => {
  test("due after every-records applied, or every-seconds passed with records applied; never without new records", () => {
    const inputs = [
      { partition: 0, appliedLsn: 150, lastLsn: 100, lastAtMs: 0 },
      { partition: 1, appliedLsn: 120, lastLsn: 100, lastAtMs: 0 },
      { partition: 2, appliedLsn: 100, lastLsn: 100, lastAtMs: 0 },
      { partition: 3, appliedLsn: 5, lastLsn: undefined, lastAtMs: undefined },
      { partition: 4, appliedLsn: undefined, lastLsn: undefined, lastAtMs: undefined },
    ];
    expect(dueForSnapshot(inputs, 1_000, 50, 0)).toEqual([0]);
    expect(dueForSnapshot(inputs, 60_000, 0, 60)).toEqual([0, 1, 3]);
    expect(dueForSnapshot(inputs, 59_999, 0, 60)).toEqual([3]);
    expect(dueForSnapshot(inputs, 1_000_000, 0, 0)).toEqual([]);
  });
});
