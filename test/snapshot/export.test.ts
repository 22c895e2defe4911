// Export and import of a partition store: the copy is exactly the store as of one applied LSN (equal
// by digest to a replay of the same writes up to it) although writes kept committing during the
// export, which runs in a Worker; an import checks the checksum and installs the store atomically.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_EXPORT_OPTIONS, exportStore, fileChecksum, FileBlobStore, importStore, SnapshotRepository } from "../../src/snapshot/index.ts";
import { isCairnError } from "../../src/observability/errors.ts";
import { PartitionStore, APPLIED_LSN_QUERY } from "../../src/worker/store.ts";
import { applyWrite, removeTempDirs, snapshotStore, storeDigest, tempDir } from "./support.ts";

afterEach(removeTempDirs);

/** A store with `n` writes of `valueBytes` each. */
function seeded(n: number, valueBytes: number): PartitionStore {
  const store = new PartitionStore(join(tempDir(), "p0.sqlite"));
  for (let lsn = 1; lsn <= n; lsn++) applyWrite(store, lsn, valueBytes);
  return store;
}

/** The same writes 1..lsn replayed into a fresh store: what a copy at `lsn` must equal. */
function replayed(lsn: number, valueBytes: number): string {
  const store = new PartitionStore(join(tempDir(), "replay.sqlite"));
  for (let l = 1; l <= lsn; l++) applyWrite(store, l, valueBytes);
  store.checkpoint();
  store.close();
  return storeDigest(store.path).digest;
}

describe("partition store export", () => {
  test("a copy is the store as of exactly one applied LSN while writes keep committing on the event loop", async () => {
    const valueBytes = 4096;
    const store = seeded(3000, valueBytes);
    let lsn = 3000;
    let exporting = true;
    let writesDuringExport = 0;
    const writer = (async () => {
      while (exporting) {
        applyWrite(store, ++lsn, valueBytes);
        writesDuringExport++;
        await Bun.sleep(0);
      }
    })();
    const target = join(tempDir(), "copy.sqlite");
    const result = await exportStore(store.path, target, APPLIED_LSN_QUERY);
    exporting = false;
    await writer;
    // The export ran off the event loop: the writer got turns while it ran.
    expect(writesDuringExport).toBeGreaterThan(0);
    expect(result.lsn).toBeGreaterThanOrEqual(3000);
    expect(result.lsn).toBeLessThanOrEqual(lsn);
    const copy = storeDigest(target);
    expect(copy.lsn).toBe(result.lsn);
    expect(copy.digest).toBe(replayed(result.lsn, valueBytes));
    store.close();
  }, 60_000);

  test("both ways of copying (pages in memory; VACUUM INTO above the size bound) give a sound store equal to the replay, with the checksum of the file written", async () => {
    const valueBytes = 2048;
    const store = seeded(600, valueBytes);
    for (const [inMemoryMaxBytes, method] of [[DEFAULT_EXPORT_OPTIONS.inMemoryMaxBytes, "serialize"], [0, "vacuum"]] as const) {
      const target = join(tempDir(), `copy-${method}.sqlite`);
      const result = await exportStore(store.path, target, APPLIED_LSN_QUERY, undefined, { inMemoryMaxBytes, threadNice: 0 });
      expect(result.method).toBe(method);
      expect(result.lsn).toBe(600);
      expect(await fileChecksum(target)).toEqual({ checksum: result.checksum, sizeBytes: result.sizeBytes });
      const db = new Database(target, { readonly: true });
      expect(db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()?.integrity_check).toBe("ok");
      db.close();
      expect(storeDigest(target)).toMatchObject({ lsn: 600, digest: replayed(600, valueBytes) });
    }
    store.close();
  }, 60_000);

  test("the export thread runs at the niceness asked for, the calling thread keeps its own", async () => {
    if (process.platform !== "linux") return;
    const store = seeded(10, 100);
    const { getPriority } = await import("node:os");
    const before = getPriority();
    const result = await exportStore(store.path, join(tempDir(), "nice.sqlite"), APPLIED_LSN_QUERY, undefined, { inMemoryMaxBytes: 1 << 20, threadNice: 15 });
    expect(result.threadNice).toBe(15);
    expect(getPriority()).toBe(before);
    store.close();
  });

  test("export, upload, import: the imported store equals the source at the snapshot's LSN", async () => {
    const store = seeded(500, 100);
    const repo = new SnapshotRepository(new FileBlobStore(tempDir()), { numRetained: 1 });
    const created = await snapshotStore(repo, store.path, 0, 1_000);
    expect(created).toMatchObject({ partition: 0, lsn: 500, uploaded: true, oldestRetainedLsn: 500 });
    // More writes after the snapshot do not change it.
    applyWrite(store, 501, 100);
    const [meta] = await repo.list(0);
    const target = join(tempDir(), "imported.sqlite");
    await importStore(repo, meta!, target);
    expect(storeDigest(target)).toEqual({ ...storeDigest(target), lsn: 500, digest: replayed(500, 100) });
    const reopened = new PartitionStore(target);
    expect(reopened.meta().appliedLsn).toBe(500);
    reopened.close();
    // Nothing new applied: a second snapshot uploads nothing and names the published one.
    const again = await snapshotStore(repo, target, 0, 2_000);
    expect(again).toMatchObject({ lsn: 500, id: created.id, uploaded: false });
    store.close();
  }, 60_000);

  test("an import whose store fails its checksum leaves the target store as it was", async () => {
    const store = seeded(50, 10);
    const root = tempDir();
    const repo = new SnapshotRepository(new FileBlobStore(root), { numRetained: 1 });
    const created = await snapshotStore(repo, store.path, 0, 1);
    store.close();
    writeFileSync(join(root, "0", created.path, "store.sqlite"), "not the store");
    const target = join(tempDir(), "existing.sqlite");
    writeFileSync(target, "the old store");
    const [meta] = await repo.list(0);
    const err = await importStore(repo, meta!, target).catch((e: unknown) => e);
    expect(isCairnError(err, "SNAPSHOT_CHECKSUM_MISMATCH")).toBe(true);
    expect(await Bun.file(target).text()).toBe("the old store");
    expect(existsSync(`${target}.import-${meta!.id}`)).toBe(false);
  });

  test("exporting a store that does not exist fails with CAIRN-SNAPSHOT-0007", async () => {
    const err = await exportStore(join(tempDir(), "missing.sqlite"), join(tempDir(), "out.sqlite"), APPLIED_LSN_QUERY).catch((e: unknown) => e);
    expect(isCairnError(err, "SNAPSHOT_FAILED")).toBe(true);
  });
});
