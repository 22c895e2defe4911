// Pacing of snapshots on a busy node (worker/snapshots.ts), its pure parts: the rest a snapshot slot
// takes after a snapshot (none while the node serves fewer writes than the threshold, else enough
// for the duty cycle), and the count of recent writes it is decided by.
import { describe, expect, test } from "bun:test";
import { RecentCount, restAfterSnapshotMs } from "../../src/worker/index.ts";

describe("snapshot pacing", () => {
  const pacing = { dutyCyclePercent: 25, busyWritesPerSecond: 100 };

  test("a node below the busy threshold never rests; a busy one rests so snapshots hold the slot the duty cycle", () => {
    expect(restAfterSnapshotMs(400, 99, pacing)).toBe(0);
    expect(restAfterSnapshotMs(400, 100, pacing)).toBe(1_200);
    expect(restAfterSnapshotMs(400, 5_000, { dutyCyclePercent: 50, busyWritesPerSecond: 100 })).toBe(400);
    // 100 %: pacing off, however busy.
    expect(restAfterSnapshotMs(400, 5_000, { dutyCyclePercent: 100, busyWritesPerSecond: 1 })).toBe(0);
    // A clock that went back counts as no time held.
    expect(restAfterSnapshotMs(-5, 5_000, pacing)).toBe(0);
  });

  test("a duty cycle outside 1..100 % is a bug", () => {
    expect(() => restAfterSnapshotMs(1, 1, { dutyCyclePercent: 0, busyWritesPerSecond: 1 })).toThrow();
    expect(() => restAfterSnapshotMs(1, 1, { dutyCyclePercent: 101, busyWritesPerSecond: 1 })).toThrow();
  });

  test("recent writes are those of the last window, counted in buckets", () => {
    const c = new RecentCount(1_000, 100);
    expect(c.count(0)).toBe(0);
    for (let t = 0; t < 500; t += 5) c.note(10_000 + t);
    expect(c.count(10_500)).toBe(100);
    // The buckets from 10 000 on overlap the last second until 11 100.
    expect(c.count(11_050)).toBe(100);
    expect(c.count(11_250)).toBe(60);
    expect(c.count(11_600)).toBe(0);
    c.note(11_600);
    expect(c.count(11_600)).toBe(1);
  });
});
