import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { logletOffset } from "../../src/ids/index.ts";
import { LogStore, type ReadEntry } from "../../src/logserver/index.ts";
import { createdMarkerPath } from "../../src/logserver/store.ts";
import { CairnError, isCairnError } from "../../src/observability/errors.ts";
import { Registry } from "../../src/observability/metrics.ts";
import { eventually } from "../helpers/cluster.ts";
import { L1, L2, SEQ_A, SEQ_B, decode, storeReq, useTempDirs } from "./helpers.ts";

const tempDir = useTempDirs();

function openStore(dir = tempDir(), opts: Partial<Parameters<typeof LogStore.open>[0]> = {}): LogStore {
  return LogStore.open({ path: join(dir, "logstore.sqlite"), ...opts });
}

function dataOffsets(entries: readonly ReadEntry[]): number[] {
  return entries.flatMap((e) => (e.kind === "data" ? [e.offset] : []));
}

describe("log store", () => {
  test("creates the file with page_size 8192 in WAL mode", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    expect(store.pageSizeBytes()).toBe(8192);
    await store.close();
    const db = new Database(join(dir, "logstore.sqlite"), { readonly: true });
    expect(db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode).toBe("wal");
    db.close();
  });

  test("without the checkpoint thread a running store holds its file exclusively: another connection cannot read it until it closes", async () => {
    const dir = tempDir();
    const store = openStore(dir, { checkpointOffLoop: false });
    await store.store(storeReq(L1, 1, 3));
    const path = join(dir, "logstore.sqlite");
    expect(existsSync(`${path}-shm`)).toBe(false); // the WAL index lives in the owner's memory
    const other = new Database(path, { readonly: true });
    expect(() => other.query("SELECT count(*) AS n FROM records").get()).toThrow(/locked|busy/i);
    other.close();
    await store.close();
    const after = new Database(path, { readonly: true });
    expect(after.query<{ n: number }, []>("SELECT count(*) AS n FROM records").get()?.n).toBe(3);
    after.close();
  });

  test("the checkpoint thread copies the WAL into the store file while commits go on, and keeps the WAL bounded", async () => {
    const dir = tempDir();
    const path = join(dir, "logstore.sqlite");
    // Thresholds of 16 pages (128 KiB): 8 MiB of stores need many checkpoints.
    const store = openStore(dir, { walCheckpointPages: 16 });
    const emptyFileBytes = statSync(path).size;
    let walMaxBytes = 0;
    for (let first = 1; first <= 8192; first += 64) {
      const r = await store.store(storeReq(L1, first, 64, { size: 1024 }));
      expect(r.status).toBe("stored");
      walMaxBytes = Math.max(walMaxBytes, statSync(`${path}-wal`).size);
    }
    // Commits never checkpoint (wal_autocheckpoint 0 on the store's connection): only the thread
    // writes records into the file, and it did while the store was open.
    await eventually("records checkpointed into the store file", async () => (statSync(path).size > emptyFileBytes + 4 * 1024 * 1024 ? true : undefined), 20_000);
    expect(store.stats().threadCheckpoints).toBeGreaterThan(4);
    // The WAL restarted along the way instead of holding all 8 MiB (plus page overhead).
    expect(walMaxBytes).toBeLessThan(6 * 1024 * 1024);
    const read = await store.getRecords({ loglet: L1, from: logletOffset(8000), to: logletOffset(8192), byteBudget: 1 << 20 });
    expect(dataOffsets(read.entries)).toHaveLength(193);
    await store.close();
    const again = openStore(dir);
    expect((await again.getLogletInfo({ loglet: L1 })).localTail).toBe(logletOffset(8193));
    await again.close();
  });

  test("a bulk read is answered from the checkpoint thread with the same records, holes and trim gap as a read on the event loop", async () => {
    const store = openStore(tempDir());
    await store.store(storeReq(L1, 1, 10, { size: 1024 }));
    await store.store(storeReq(L1, 15, 6, { size: 1024 }));
    await store.trim({ loglet: L1, upTo: logletOffset(3) });
    const bulk = await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(30), byteBudget: 1 << 20 });
    expect(store.stats().threadReads).toBe(1);
    // The same range in small reads, on the event loop (budgets below the bulk threshold).
    const small: ReadEntry[] = [];
    for (let from = 1; from <= 30; ) {
      const r = await store.getRecords({ loglet: L1, from: logletOffset(from), to: logletOffset(30), byteBudget: 3000 });
      small.push(...r.entries);
      if (r.nextOffset <= from) break;
      from = r.nextOffset;
    }
    expect(store.stats().threadReads).toBe(1);
    const shape = (es: readonly ReadEntry[]) => es.map((e) => (e.kind === "data" ? `${e.offset}:${decode(e.payload)}` : `gap ${e.from}-${e.to}`));
    expect(shape(bulk.entries)).toEqual(shape(small));
    expect(shape(bulk.entries)[0]).toBe("gap 1-3");
    expect(dataOffsets(bulk.entries)).toEqual([4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 18, 19, 20]);
    expect(bulk.nextOffset).toBe(logletOffset(21));
    // The budget bounds a bulk read as it bounds any other (at least one record).
    const bounded = await store.getRecords({ loglet: L1, from: logletOffset(4), to: logletOffset(30), byteBudget: 256 * 1024 });
    expect(store.stats().threadReads).toBe(2);
    expect(dataOffsets(bounded.entries)).toHaveLength(13);
    await store.close();
  });

  test("repair stores beyond max-repair-batch-bytes wait for a later transaction; other loglets' stores go ahead, the same loglet's keep their order", async () => {
    const store = openStore(tempDir(), { maxRepairBatchBytes: 4096 });
    const order: string[] = [];
    const track = <T,>(name: string, p: Promise<T>) => p.then((v) => (order.push(name), v));
    // Queued in one turn: two repair stores of 8 KiB into L1, a normal store into L2, a normal store into L1.
    const all = await Promise.all([
      track("repair-1", store.store(storeReq(L1, 1, 8, { size: 1024, repair: true }))),
      track("repair-2", store.store(storeReq(L1, 9, 8, { size: 1024, repair: true }))),
      track("append-L2", store.store(storeReq(L2, 1, 1))),
      track("append-L1", store.store(storeReq(L1, 17, 1))),
    ]);
    expect(all.map((r) => r.status)).toEqual(["stored", "stored", "stored", "stored"]);
    // The first repair store goes alone (at least one per transaction) with the L2 append; the
    // second repair store waits, and L1's append waits behind it.
    expect(order).toEqual(["repair-1", "append-L2", "repair-2", "append-L1"]);
    expect(store.stats().transactions).toBe(2);
    await store.close();
  });

  test("many concurrent stores are group-committed into few transactions", async () => {
    const registry = new Registry();
    const store = openStore(tempDir(), { registry });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.store(storeReq(i % 2 === 0 ? L1 : L2, Math.floor(i / 2) + 1, 1))),
    );
    expect(results.every((r) => r.status === "stored")).toBe(true);
    const stats = store.stats();
    expect(stats.storeRequests).toBe(200);
    expect(stats.recordsWritten).toBe(200);
    expect(stats.transactions).toBeLessThanOrEqual(2);
    const metrics = await registry.getSingleMetricAsString("cairn_logserver_transactions_total");
    expect(metrics).toContain(`cairn_logserver_transactions_total ${stats.transactions}`);
    // Sequential stores each get their own transaction: the counter really counts commits.
    for (let i = 0; i < 5; i++) await store.store(storeReq(L1, 101 + i, 1));
    expect(store.stats().transactions).toBe(stats.transactions + 5);
    await store.close();
  });

  test("a group commit is bounded by maxBatchRecords", async () => {
    const store = openStore(tempDir(), { maxBatchRecords: 10 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.store(storeReq(L1, i * 2 + 1, 2))));
    expect(store.stats().transactions).toBe(10);
    await store.close();
  });

  test("stored records, seal, sequencer and trim point survive close and reopen", async () => {
    const dir = tempDir();
    const a = openStore(dir);
    expect((await a.store(storeReq(L1, 1, 10))).status).toBe("stored");
    expect((await a.store(storeReq(L2, 1, 3))).status).toBe("stored");
    await a.trim({ loglet: L1, upTo: logletOffset(2) });
    await a.seal({ loglet: L2 });
    await a.close();

    const b = openStore(dir);
    const info1 = await b.getLogletInfo({ loglet: L1 });
    expect(info1).toMatchObject({ localTail: 11, sealed: false, trimPoint: 2, sequencer: SEQ_A, authoritative: true });
    const info2 = await b.getLogletInfo({ loglet: L2 });
    expect(info2).toMatchObject({ localTail: 4, sealed: true });
    const read = await b.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(100), byteBudget: 1 << 20 });
    expect(read.entries[0]).toEqual({ kind: "trim-gap", from: logletOffset(1), to: logletOffset(2) });
    expect(dataOffsets(read.entries)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(read.entries.flatMap((e) => (e.kind === "data" ? [decode(e.payload)] : []))[0]).toBe("1_0@3");
    expect((await b.store(storeReq(L2, 4, 1))).status).toBe("sealed");
    expect((await b.store(storeReq(L1, 11, 1, { sequencer: SEQ_B }))).status).toBe("fenced");
    await b.close();
  });

  test("a sealed loglet refuses stores but takes repair stores; seal reports the frozen local tail", async () => {
    const store = openStore();
    await store.store(storeReq(L1, 1, 5));
    const sealed = await store.seal({ loglet: L1 });
    expect(sealed).toMatchObject({ localTail: 6, sealed: true, authoritative: true });
    const refused = await store.store(storeReq(L1, 6, 1));
    expect(refused).toMatchObject({ status: "sealed", localTail: 6, sealed: true });
    // Sealing twice is idempotent and answers the same tail.
    expect(await store.seal({ loglet: L1 })).toMatchObject({ localTail: 6, sealed: true });
    // Repair copies records below the sealed tail onto servers that lack them.
    expect((await store.store(storeReq(L1, 3, 1, { repair: true }))).status).toBe("stored");
    // A loglet sealed before any store exists, at tail 1.
    expect(await store.seal({ loglet: L2 })).toMatchObject({ localTail: 1, sealed: true });
    await store.close();
  });

  test("the first sequencer wins; a second one is refused, also for repair stores", async () => {
    const store = openStore();
    expect((await store.store(storeReq(L1, 1, 1, { sequencer: SEQ_A }))).status).toBe("stored");
    expect((await store.store(storeReq(L1, 2, 1, { sequencer: SEQ_B }))).status).toBe("fenced");
    expect((await store.store(storeReq(L1, 2, 1, { sequencer: SEQ_B, repair: true }))).status).toBe("fenced");
    // Two sequencers racing in one group commit: arrival order decides.
    const [x, y] = await Promise.all([
      store.store(storeReq(L2, 1, 1, { sequencer: SEQ_B })),
      store.store(storeReq(L2, 2, 1, { sequencer: SEQ_A })),
    ]);
    expect([x.status, y.status]).toEqual(["stored", "fenced"]);
    expect((await store.getLogletInfo({ loglet: L2 })).sequencer).toEqual(SEQ_B);
    await store.close();
  });

  test("malformed stores are refused and write nothing", async () => {
    const store = openStore();
    expect((await store.store({ ...storeReq(L1, 1, 1), payloads: [] })).status).toBe("malformed");
    expect((await store.store({ ...storeReq(L1, 1, 1), firstOffset: logletOffset(0) })).status).toBe("malformed");
    expect((await store.store(storeReq(L1, 2 ** 31 - 1, 2))).status).toBe("malformed");
    expect(await store.getLogletInfo({ loglet: L1 })).toMatchObject({ localTail: 1, sequencer: null });
    await store.close();
  });

  test("stores into a gap are accepted: the local tail is the high-water mark and the digest shows the hole", async () => {
    const store = openStore();
    await store.store(storeReq(L1, 1, 2));
    const r = await store.store(storeReq(L1, 6, 2)); // 3..5 still in flight elsewhere
    expect(r).toMatchObject({ status: "stored", localTail: 8 });
    const digest = await store.getDigest({ loglet: L1, from: logletOffset(1), to: logletOffset(10) });
    expect(digest.entries).toEqual([
      { from: logletOffset(1), to: logletOffset(2), status: "exists" },
      { from: logletOffset(6), to: logletOffset(7), status: "exists" },
    ]);
    expect(digest.nextOffset).toBe(logletOffset(11));
    const read = await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(10), byteBudget: 1 << 20 });
    expect(dataOffsets(read.entries)).toEqual([1, 2, 6, 7]);
    expect(read.nextOffset).toBe(logletOffset(8));
    // The hole fills later; a duplicate store is harmless and changes nothing.
    await store.store(storeReq(L1, 3, 3));
    await store.store(storeReq(L1, 1, 7));
    const again = await store.getDigest({ loglet: L1, from: logletOffset(1), to: logletOffset(10) });
    expect(again.entries).toEqual([{ from: logletOffset(1), to: logletOffset(7), status: "exists" }]);
    expect(store.stats().recordsWritten).toBe(4 + 3 + 7);
    await store.close();
  });

  test("trim: reads below the trim point report a trim gap; records are deleted in background chunks", async () => {
    const dir = tempDir();
    const store = openStore(dir, { trimChunkRecords: 7 });
    await store.store(storeReq(L1, 1, 100));
    await store.store(storeReq(L2, 1, 10));
    expect(await store.trim({ loglet: L1, upTo: logletOffset(60) })).toEqual({ trimPoint: logletOffset(60) });
    // Visible at once, before deletion finished.
    const read = await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(64), byteBudget: 1 << 20 });
    expect(read.entries[0]).toEqual({ kind: "trim-gap", from: logletOffset(1), to: logletOffset(60) });
    expect(dataOffsets(read.entries)).toEqual([61, 62, 63, 64]);
    await store.trimsSettled();
    const stats = store.stats();
    expect(stats.recordsTrimmed).toBe(60);
    expect(stats.trimChunks).toBe(9); // 8 full chunks of 7, one of 4
    // Trimming never goes backwards, and is clipped below the local tail.
    expect(await store.trim({ loglet: L1, upTo: logletOffset(10) })).toEqual({ trimPoint: logletOffset(60) });
    expect(await store.trim({ loglet: L1, upTo: logletOffset(5000) })).toEqual({ trimPoint: logletOffset(100) });
    await store.trimsSettled();
    const digest = await store.getDigest({ loglet: L1, from: logletOffset(1), to: logletOffset(100) });
    expect(digest.entries).toEqual([{ from: logletOffset(1), to: logletOffset(100), status: "trimmed" }]);
    // The other loglet was not touched (the delete is PK-prefixed).
    const other = await store.getDigest({ loglet: L2, from: logletOffset(1), to: logletOffset(10) });
    expect(other.entries).toEqual([{ from: logletOffset(1), to: logletOffset(10), status: "exists" }]);
    // A store of already-trimmed offsets is acknowledged without writing them.
    expect((await store.store(storeReq(L1, 99, 3))).status).toBe("stored");
    expect(dataOffsets((await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(200), byteBudget: 1e6 })).entries)).toEqual([101]);
    await store.close();
    const db = new Database(join(dir, "logstore.sqlite"), { readonly: true });
    expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM records WHERE loglet_id = '1_0'").get()?.n).toBe(1);
    db.close();
  });

  test("a restart finishes deleting records a trim left behind", async () => {
    const dir = tempDir();
    const a = openStore(dir, { trimChunkRecords: 1_000_000 });
    await a.store(storeReq(L1, 1, 20));
    // Close right after the trim is durable, before the background chunk ran.
    const trimmed = a.trim({ loglet: L1, upTo: logletOffset(15) });
    await trimmed;
    await a.close();
    const b = openStore(dir);
    await b.trimsSettled();
    await b.close();
    const db = new Database(join(dir, "logstore.sqlite"), { readonly: true });
    expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM records").get()?.n).toBe(5);
    db.close();
  });

  test("getRecords stops at the byte budget but always returns at least one record", async () => {
    const store = openStore();
    await store.store(storeReq(L1, 1, 20, { size: 1000 }));
    const one = await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(20), byteBudget: 10 });
    expect(dataOffsets(one.entries)).toEqual([1]);
    expect(one.nextOffset).toBe(logletOffset(2));
    const some = await store.getRecords({ loglet: L1, from: logletOffset(5), to: logletOffset(20), byteBudget: 3500 });
    expect(dataOffsets(some.entries)).toEqual([5, 6, 7]);
    expect(some.nextOffset).toBe(logletOffset(8));
    const rest = await store.getRecords({ loglet: L1, from: logletOffset(8), to: logletOffset(50), byteBudget: 1 << 20 });
    expect(dataOffsets(rest.entries)).toEqual(Array.from({ length: 13 }, (_, i) => i + 8));
    expect(rest.nextOffset).toBe(logletOffset(21)); // clipped to the local tail
    const beyond = await store.getRecords({ loglet: L1, from: logletOffset(21), to: logletOffset(50), byteBudget: 100 });
    expect(beyond.entries).toEqual([]);
    expect(beyond.nextOffset).toBe(logletOffset(21));
    await store.close();
  });

  test("waitForTail resolves when the local tail reaches the offset or the loglet is sealed, and honours abort", async () => {
    const store = openStore();
    const reached = store.waitForTail({ loglet: L1, offset: logletOffset(5) });
    let done = false;
    void reached.then(() => (done = true));
    await store.store(storeReq(L1, 1, 3));
    await Bun.sleep(1);
    expect(done).toBe(false);
    await store.store(storeReq(L1, 4, 1));
    expect(await reached).toEqual({ localTail: logletOffset(5), sealed: false });
    // Already reached: answers at once.
    expect(await store.waitForTail({ loglet: L1, offset: logletOffset(2) })).toEqual({ localTail: logletOffset(5), sealed: false });

    const bySeal = store.waitForTail({ loglet: L2, offset: logletOffset(100) });
    await store.seal({ loglet: L2 });
    expect(await bySeal).toEqual({ localTail: logletOffset(1), sealed: true });

    const controller = new AbortController();
    const aborted = store.waitForTail({ loglet: L1, offset: logletOffset(100) }, controller.signal);
    controller.abort(new Error("caller gave up"));
    await expect(aborted).rejects.toThrow("caller gave up");

    const pending = store.waitForTail({ loglet: L1, offset: logletOffset(100) });
    await store.close();
    const err = await pending.catch((e) => e);
    expect(isCairnError(err, "LOG_STORE_CLOSED")).toBe(true);
  });

  test("a closed store refuses requests with LOG_STORE_CLOSED; close finishes queued writes first", async () => {
    const dir = tempDir();
    const store = openStore(dir);
    const queued = store.store(storeReq(L1, 1, 1));
    await store.close();
    expect((await queued).status).toBe("stored");
    const err = await store.store(storeReq(L1, 2, 1)).catch((e) => e);
    expect(isCairnError(err, "LOG_STORE_CLOSED")).toBe(true);
    const again = openStore(dir);
    expect((await again.getLogletInfo({ loglet: L1 })).localTail).toBe(logletOffset(2));
    await again.close();
  });

  test("a store that lost its data answers as non-authoritative and takes only repair stores", async () => {
    const store = openStore(tempDir(), { dataLoss: true });
    expect((await store.store(storeReq(L1, 1, 1))).status).toBe("disabled");
    expect((await store.store(storeReq(L1, 1, 1, { repair: true }))).status).toBe("stored");
    expect(await store.seal({ loglet: L1 })).toMatchObject({ authoritative: false, localTail: 2 });
    await store.close();
  });
});

describe("a store disabled by a failed write", () => {
  /** A real SQLite write failure that lasts until lifted: the connection refuses every write (SQLITE_READONLY). */
  function db(store: LogStore): Database {
    return (store as unknown as { db: Database }).db;
  }


  test("refuses writes while the fault lasts, probing with backoff, and takes writes again once a probe succeeds", async () => {
    const registry = new Registry();
    const store = openStore(tempDir(), { registry, recoveryProbeInitialDelayMs: 10, recoveryProbeMaxDelayMs: 40 });
    expect((await store.store(storeReq(L1, 1, 3))).status).toBe("stored");
    db(store).run("PRAGMA query_only = 1");
    expect((await store.store(storeReq(L1, 4, 2))).status).toBe("disabled");
    expect(store.writable).toBe(false);
    expect(store.writeFailureReason).toBeDefined();
    expect(isCairnError(await store.seal({ loglet: L1 }).catch((e) => e), "LOG_STORE_UNAVAILABLE")).toBe(true);
    // Probes fail while the fault lasts; the delay doubles up to its bound.
    await eventually("three failed probes", async () => ((store.recoveryStatus?.failedProbes ?? 0) >= 3) || undefined);
    expect(store.writable).toBe(false);
    expect(store.recoveryStatus?.nextProbeDelayMs).toBe(40);
    expect((await store.store(storeReq(L1, 4, 2))).status).toBe("disabled");
    expect(await registry.getSingleMetricAsString("cairn_logserver_store_writable")).toContain("cairn_logserver_store_writable 0");
    // Reads keep working meanwhile, and nothing of the failed batches is visible.
    expect(dataOffsets((await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(10), byteBudget: 1 << 20 })).entries)).toEqual([1, 2, 3]);

    db(store).run("PRAGMA query_only = 0"); // the fault is gone
    await eventually("the store to take writes again", async () => (store.writable) || undefined);
    expect(store.recoveryStatus).toBeUndefined();
    expect((await store.store(storeReq(L1, 4, 2))).status).toBe("stored");
    expect((await store.seal({ loglet: L1 })).sealed).toBe(true);
    expect(await registry.getSingleMetricAsString("cairn_logserver_store_writable")).toContain("cairn_logserver_store_writable 1");
    expect(await registry.getSingleMetricAsString("cairn_logserver_store_reenabled_total")).toContain("cairn_logserver_store_reenabled_total 1");
    expect(await registry.getSingleMetricAsString("cairn_logserver_store_recovery_probes_total")).toMatch(/result="failed"\} [3-9]/);
    await store.close();
  });

  test("failing again soon after a recovery backs off from the last delay (flap damping); later failures start afresh", async () => {
    const store = openStore(tempDir(), { recoveryProbeInitialDelayMs: 10, recoveryProbeMaxDelayMs: 3_000 });
    const fail = async (offset: number) => {
      db(store).run("PRAGMA query_only = 1");
      expect((await store.store(storeReq(L1, offset, 1))).status).toBe("disabled");
    };
    const recover = async (offset: number) => {
      db(store).run("PRAGMA query_only = 0");
      await eventually("recovery", async () => store.writable || undefined);
      expect((await store.store(storeReq(L1, offset, 1))).status).toBe("stored");
    };
    await fail(1);
    expect(store.recoveryStatus?.nextProbeDelayMs).toBe(10);
    await recover(1);
    await fail(2); // within the maximum delay of the recovery: flapping
    expect(store.recoveryStatus?.nextProbeDelayMs).toBe(20);
    await recover(2);
    await fail(3);
    expect(store.recoveryStatus?.nextProbeDelayMs).toBe(40);
    await recover(3);
    await Bun.sleep(3_100); // a quiet spell longer than the maximum delay
    await fail(4);
    expect(store.recoveryStatus?.nextProbeDelayMs).toBe(10);
    await recover(4);
    await store.close();
  }, 20_000);

  test("closing a disabled store stops its probe (no timer keeps the process alive)", async () => {
    const store = openStore(tempDir(), { recoveryProbeInitialDelayMs: 60_000, recoveryProbeMaxDelayMs: 60_000 });
    db(store).run("PRAGMA query_only = 1");
    expect((await store.store(storeReq(L1, 1, 1))).status).toBe("disabled");
    expect((store as unknown as { probeTimer: unknown }).probeTimer).toBeDefined();
    await store.close();
    expect((store as unknown as { probeTimer: unknown }).probeTimer).toBeUndefined();
  });
});

describe("log store damage", () => {
  async function filledFile(): Promise<string> {
    const dir = tempDir();
    const store = openStore(dir);
    for (let i = 0; i < 20; i++) await store.store(storeReq(L1, i * 50 + 1, 50, { size: 1024 }));
    await store.close();
    return join(dir, "logstore.sqlite");
  }

  function expectCorrupt(path: string): CairnError {
    let error: unknown;
    try {
      LogStore.open({ path }).close();
    } catch (e) {
      error = e;
    }
    expect(isCairnError(error, "LOG_STORE_CORRUPT")).toBe(true);
    const e = error as CairnError;
    expect(e.message).toContain(path);
    return e;
  }

  test("a truncated file is refused at open, naming the file", async () => {
    const path = await filledFile();
    truncateSync(path, Math.floor(statSync(path).size / 2));
    expectCorrupt(path);
  });

  test("a file with overwritten pages is refused at open, naming the file", async () => {
    const path = await filledFile();
    const fd = openSync(path, "r+");
    const junk = new Uint8Array(8192 * 3).fill(0xa5);
    writeSync(fd, junk, 0, junk.length, 8192 * 4);
    closeSync(fd);
    expectCorrupt(path);
  });

  test("a file that is not a database is refused at open", () => {
    const path = join(tempDir(), "logstore.sqlite");
    writeFileSync(path, new Uint8Array(65536).fill(7));
    expectCorrupt(path);
  });

  test("an SQLite file that is not a log store is refused at open", () => {
    const path = join(tempDir(), "logstore.sqlite");
    const db = new Database(path, { create: true });
    db.run("CREATE TABLE something (x)");
    db.close();
    expect(expectCorrupt(path).message).toContain("not a cairn log store");
  });

  function openError(options: Parameters<typeof LogStore.open>[0]): unknown {
    try {
      LogStore.open(options).close();
    } catch (e) {
      return e;
    }
    return undefined;
  }

  test("an empty file in a provisioned data directory is refused with LOG_STORE_EMPTY naming the file, and left as it was", async () => {
    const path = await filledFile();
    truncateSync(path, 0);
    const e = openError({ path, provisioned: true });
    expect(isCairnError(e, "LOG_STORE_EMPTY")).toBe(true);
    expect((e as CairnError).message).toContain(path);
    expect(statSync(path).size).toBe(0);
    expect(existsSync(`${path}.creating`)).toBe(false);
  });

  test("a missing file beside a write-ahead log that holds data is refused in a provisioned data directory, and the log is kept", async () => {
    const path = join(tempDir(), "logstore.sqlite");
    writeFileSync(`${path}-wal`, new Uint8Array(4096).fill(1));
    expect(isCairnError(openError({ path, provisioned: true }), "LOG_STORE_EMPTY")).toBe(true);
    expect(statSync(`${path}-wal`).size).toBe(4096);
    expect(existsSync(path)).toBe(false);
  });

  test("a store that is legitimately new is created: a missing file (also when provisioned), an empty one where nothing was provisioned", async () => {
    const missing = join(tempDir(), "logstore.sqlite");
    const a = LogStore.open({ path: missing, provisioned: true });
    expect(a.pageSizeBytes()).toBe(8192);
    a.clearDataLoss(); // provisioned: created in data-loss mode (next test); the node clears it
    await a.store(storeReq(L1, 1, 3));
    await a.close();
    const reopened = LogStore.open({ path: missing, provisioned: true });
    expect((await reopened.getLogletInfo({ loglet: L1 })).localTail).toBe(logletOffset(4));
    await reopened.close();
    const empty = join(tempDir(), "logstore.sqlite");
    writeFileSync(empty, "");
    writeFileSync(`${empty}-wal`, new Uint8Array(4096).fill(1)); // belongs to no store: discarded
    const b = LogStore.open({ path: empty });
    expect((await b.getLogletInfo({ loglet: L1 })).localTail).toBe(logletOffset(1));
    await b.close();
  });

  test("a store created missing in a provisioned data directory starts in data-loss mode, kept across restarts until cleared", async () => {
    const path = join(tempDir(), "logstore.sqlite");
    const a = LogStore.open({ path, provisioned: true });
    expect(a.recovering).toBe(true);
    expect(a.dataLossSinceMs).toBeGreaterThan(0);
    // No evidence: non-authoritative seals and digests; only repair stores are taken.
    expect((await a.store(storeReq(L1, 1, 2))).status).toBe("disabled");
    expect((await a.seal({ loglet: L1 })).authoritative).toBe(false);
    expect((await a.getDigest({ loglet: L1, from: logletOffset(1), to: logletOffset(5) })).authoritative).toBe(false);
    expect((await a.store({ ...storeReq(L1, 1, 2), repair: true })).status).toBe("stored");
    await a.close();
    const b = LogStore.open({ path, provisioned: true });
    expect(b.recovering).toBe(true);
    b.clearDataLoss();
    expect(b.recovering).toBe(false);
    expect((await b.getLogletInfo({ loglet: L1 })).authoritative).toBe(true);
    await b.close();
    const c = LogStore.open({ path, provisioned: true });
    expect(c.recovering).toBe(false);
    await c.close();
    // Never provisioned: nothing can have been acknowledged, so no data-loss mode — until the node
    // learns its data directory replaced an earlier incarnation's (enterDataLoss, persisted).
    const freshPath = join(tempDir(), "logstore.sqlite");
    const fresh = LogStore.open({ path: freshPath });
    expect(fresh.recovering).toBe(false);
    fresh.enterDataLoss();
    expect(fresh.recovering).toBe(true);
    expect((await fresh.store(storeReq(L1, 1, 1))).status).toBe("disabled");
    await fresh.close();
    const again = LogStore.open({ path: freshPath });
    expect(again.recovering).toBe(true);
    await again.close();
  });

  test("a crash while creating leaves no store under its name; the next open discards the leftovers and creates it", async () => {
    const dir = tempDir();
    const path = join(dir, "logstore.sqlite");
    // What a crash in the middle of creating leaves: a half-built temporary file and its WAL.
    writeFileSync(`${path}.creating`, new Uint8Array(1000).fill(3));
    writeFileSync(`${path}.creating-wal`, new Uint8Array(1000).fill(4));
    const store = LogStore.open({ path, provisioned: true });
    await store.close();
    expect(readdirSync(dir).sort()).toEqual(["logstore.sqlite", "logstore.sqlite.created"]);
  });

  test("a provisioned store that is gone while its .created marker remains is refused, not recreated empty", async () => {
    const dir = tempDir();
    const path = join(dir, "logstore.sqlite");
    const first = LogStore.open({ path, provisioned: true });
    await first.store(storeReq(L1, 1, 3));
    await first.close();
    expect(existsSync(createdMarkerPath(path))).toBe(true);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    let err: unknown;
    try {
      LogStore.open({ path, provisioned: true });
    } catch (e) {
      err = e;
    }
    expect(isCairnError(err, "LOG_STORE_EMPTY")).toBe(true);
    expect((err as Error).message).toContain(createdMarkerPath(path));
    expect(existsSync(path)).toBe(false);
    // Before provisioning nothing can have been acknowledged: a new store is created.
    const fresh = LogStore.open({ path, provisioned: false });
    await fresh.close();
  });

  test("an intact file still opens after the damage tests' setup", async () => {
    const path = await filledFile();
    expect(readFileSync(path).length).toBeGreaterThan(0);
    const store = LogStore.open({ path });
    expect((await store.getLogletInfo({ loglet: L1 })).localTail).toBe(logletOffset(1001));
    await store.close();
  });
});
