// Pacing of snapshots on a busy node (worker/snapshots.ts, snapshot/pace.ts): the rest a snapshot
// slot takes after a snapshot (none while the node serves fewer writes than the threshold, else
// enough for the duty cycle), the upload rate, the count of recent writes they are decided by, and
// paced uploads into both repository backends (every byte arrives; the rate holds them back).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { FileBlobStore, paceWaitMs, pacedChunks } from "../../src/snapshot/index.ts";
import { RecentCount, restAfterSnapshotMs, uploadRateNow } from "../../src/worker/index.ts";
import { removeTempDirs, tempDir } from "../snapshot/support.ts";

describe("snapshot pacing", () => {
  const pacing = { dutyCyclePercent: 25, busyWritesPerSecond: 100, busyUploadBytesPerSecond: 1_000_000 };

  test("a node below the busy threshold never rests; a busy one rests so snapshots hold the slot the duty cycle", () => {
    expect(restAfterSnapshotMs(400, 99, pacing)).toBe(0);
    expect(restAfterSnapshotMs(400, 100, pacing)).toBe(1_200);
    expect(restAfterSnapshotMs(400, 5_000, { dutyCyclePercent: 50, busyWritesPerSecond: 100, busyUploadBytesPerSecond: 0 })).toBe(400);
    // 100 %: pacing off, however busy.
    expect(restAfterSnapshotMs(400, 5_000, { dutyCyclePercent: 100, busyWritesPerSecond: 1, busyUploadBytesPerSecond: 0 })).toBe(0);
    // A clock that went back counts as no time held.
    expect(restAfterSnapshotMs(-5, 5_000, pacing)).toBe(0);
  });

  test("an upload is limited while the node is busy and the limit is set, else it runs free", () => {
    expect(uploadRateNow(99, pacing)).toBe(Number.POSITIVE_INFINITY);
    expect(uploadRateNow(100, pacing)).toBe(1_000_000);
    expect(uploadRateNow(5_000, { ...pacing, busyUploadBytesPerSecond: 0 })).toBe(Number.POSITIVE_INFINITY);
  });

  test("a paced chunk waits for what its time at the rate exceeds the time it already took", () => {
    expect(paceWaitMs(1_000_000, 0, 10_000_000)).toBe(100);
    expect(paceWaitMs(1_000_000, 40, 10_000_000)).toBe(60);
    expect(paceWaitMs(1_000_000, 500, 10_000_000)).toBe(0);
    expect(paceWaitMs(1_000_000, 0, Number.POSITIVE_INFINITY)).toBe(0);
    expect(() => paceWaitMs(1, 0, 0)).toThrow();
  });

  test("a paced upload into a directory repository writes every byte, held back by the rate; without a limit it does not wait", async () => {
    try {
      const dir = tempDir();
      const data = new Uint8Array(3 * 1024 * 1024 + 17);
      for (let i = 0; i < data.length; i += 1000) data[i] = (i / 1000) % 253;
      await Bun.write(join(dir, "src"), data);
      const rates: number[] = [];
      let n = 0;
      for await (const chunk of pacedChunks(join(dir, "src"), () => (rates.push(1), Number.POSITIVE_INFINITY))) n += chunk.byteLength;
      expect(n).toBe(data.length);
      expect(rates.length).toBe(4); // asked after each of the 4 chunks
      const store = new FileBlobStore(join(dir, "repo"));
      const started = performance.now();
      // 4 chunks at 16 MiB/s: at least 3 waits of ~62 ms (the sleeps are a floor, whatever the load).
      await store.putFile("0/x/store.sqlite", join(dir, "src"), () => 16 * 1024 * 1024);
      expect(performance.now() - started).toBeGreaterThanOrEqual(150);
      expect(Buffer.compare(new Uint8Array(await Bun.file(join(dir, "repo", "0", "x", "store.sqlite")).arrayBuffer()), data)).toBe(0);
      expect(await store.list("0/")).toEqual(["0/x/store.sqlite"]);
    } finally {
      removeTempDirs();
    }
  });

  test("a duty cycle outside 1..100 % is a bug", () => {
    expect(() => restAfterSnapshotMs(1, 1, { dutyCyclePercent: 0, busyWritesPerSecond: 1, busyUploadBytesPerSecond: 0 })).toThrow();
    expect(() => restAfterSnapshotMs(1, 1, { dutyCyclePercent: 101, busyWritesPerSecond: 1, busyUploadBytesPerSecond: 0 })).toThrow();
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
