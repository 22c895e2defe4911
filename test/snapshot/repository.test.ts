// The file repository: the layout on disk, latest.json only moving forward, retention, uploads that
// fail leaving nothing behind, and a damaged store refused on download by its checksum.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileBlobStore, fileChecksum, SnapshotRepository, type SnapshotMetadata } from "../../src/snapshot/index.ts";
import { isCairnError } from "../../src/observability/errors.ts";
import { expectConditionalWrites, metadataFor, removeTempDirs, tempDir } from "./support.ts";

afterEach(removeTempDirs);

async function storeFile(content: string): Promise<{ path: string; sizeBytes: number; checksum: string }> {
  const path = join(tempDir(), "store.sqlite");
  writeFileSync(path, content);
  return { path, ...(await fileChecksum(path)) };
}

async function uploadAndPublish(repo: SnapshotRepository, partition: number, lsn: number, id: string): Promise<SnapshotMetadata> {
  const f = await storeFile(`store of ${partition} at ${lsn}`);
  const meta = metadataFor(partition, lsn, id, { sizeBytes: f.sizeBytes, checksum: f.checksum });
  await repo.upload(meta, f.path);
  await repo.publish(meta, 2_000 + lsn);
  return meta;
}

describe("file snapshot repository", () => {
  test("a snapshot lands as <partition>/lsn_<20 digits>-<id>/{store.sqlite,metadata.json} with latest.json beside", async () => {
    const root = tempDir();
    const repo = new SnapshotRepository(new FileBlobStore(root), { numRetained: 1 });
    const meta = await uploadAndPublish(repo, 3, 42, "abc123");
    expect(readdirSync(join(root, "3")).sort()).toEqual(["latest.json", "lsn_00000000000000000042-abc123"]);
    expect(readdirSync(join(root, "3", "lsn_00000000000000000042-abc123")).sort()).toEqual(["metadata.json", "store.sqlite"]);
    expect(JSON.parse(readFileSync(join(root, "3", "lsn_00000000000000000042-abc123", "metadata.json"), "utf8"))).toEqual(meta);
    const latest = JSON.parse(readFileSync(join(root, "3", "latest.json"), "utf8"));
    expect(latest).toMatchObject({ partition: 3, lsn: 42, id: "abc123", path: "lsn_00000000000000000042-abc123" });
    expect(await repo.list(3)).toEqual([meta]);
    expect(await repo.partitions()).toEqual([3]);
  });

  test("latest.json only moves forward: publishing an older snapshot leaves it, and retention deletes the older one", async () => {
    const repo = new SnapshotRepository(new FileBlobStore(tempDir()), { numRetained: 1 });
    await uploadAndPublish(repo, 0, 100, "new");
    const f = await storeFile("older");
    const older = metadataFor(0, 50, "old", { sizeBytes: f.sizeBytes, checksum: f.checksum });
    await repo.upload(older, f.path);
    const r = await repo.publish(older, 9_999);
    expect(r.moved).toBe(false);
    expect(r.latest).toMatchObject({ lsn: 100, id: "new" });
    expect((await repo.latest(0))?.lsn).toBe(100);
    expect((await repo.list(0)).map((m) => m.id)).toEqual(["new"]);
  });

  test("retention keeps the newest num-retained snapshots and deletes the rest after each publish", async () => {
    const repo = new SnapshotRepository(new FileBlobStore(tempDir()), { numRetained: 2 });
    await uploadAndPublish(repo, 1, 10, "a");
    await uploadAndPublish(repo, 1, 20, "b");
    expect((await repo.list(1)).map((m) => m.lsn)).toEqual([10, 20]);
    const r = await repo.publish(await uploadAndPublish(repo, 1, 30, "c"), 5_000);
    expect((await repo.list(1)).map((m) => m.lsn)).toEqual([20, 30]);
    expect(r.retained.map((m) => m.lsn)).toEqual([20, 30]);
    expect((await repo.latest(1))?.id).toBe("c");
  });

  test("an incomplete snapshot (no metadata.json: an upload that died) is never listed and is cleaned up by the next publish", async () => {
    const root = tempDir();
    const store = new FileBlobStore(root);
    const repo = new SnapshotRepository(store, { numRetained: 1 });
    const f = await storeFile("half");
    await store.putFile("2/lsn_00000000000000000005-dead/store.sqlite", f.path);
    expect(await repo.list(2)).toEqual([]);
    await uploadAndPublish(repo, 2, 9, "live");
    expect(existsSync(join(root, "2", "lsn_00000000000000000005-dead"))).toBe(false);
    expect((await repo.list(2)).map((m) => m.id)).toEqual(["live"]);
  });

  test("a failed upload removes what it wrote: nothing partial stays", async () => {
    const root = tempDir();
    const repo = new SnapshotRepository(new FileBlobStore(root), { numRetained: 1 });
    const missing = join(tempDir(), "does-not-exist.sqlite");
    const err = await repo.upload(metadataFor(4, 7, "x"), missing).catch((e: unknown) => e);
    expect(isCairnError(err, "SNAPSHOT_REPOSITORY_UNAVAILABLE")).toBe(true);
    expect(await repo.list(4)).toEqual([]);
    expect(existsSync(join(root, "4", "lsn_00000000000000000007-x"))).toBe(false);
    expect(await repo.latest(4)).toBeUndefined();
  });

  test("a store that does not match its checksum is refused on download", async () => {
    const root = tempDir();
    const repo = new SnapshotRepository(new FileBlobStore(root), { numRetained: 1 });
    const meta = await uploadAndPublish(repo, 5, 11, "t");
    writeFileSync(join(root, "5", "lsn_00000000000000000011-t", "store.sqlite"), "tampered!");
    const target = join(tempDir(), "out.sqlite");
    const err = await repo.download(meta, target).catch((e: unknown) => e);
    expect(isCairnError(err, "SNAPSHOT_CHECKSUM_MISMATCH")).toBe(true);
  });

  test("a conditional write of latest.json fails when another writer moved it since it was read", async () => {
    await expectConditionalWrites(new FileBlobStore(tempDir()));
  });

  test("concurrent publishers of one partition end with latest.json at the highest LSN", async () => {
    const repo = new SnapshotRepository(new FileBlobStore(tempDir()), { numRetained: 3 });
    const metas = await Promise.all(
      [5, 9, 7, 3].map(async (lsn) => {
        const f = await storeFile(`s${lsn}`);
        const m = metadataFor(6, lsn, `id${lsn}`, { sizeBytes: f.sizeBytes, checksum: f.checksum });
        await repo.upload(m, f.path);
        return m;
      }),
    );
    await Promise.all(metas.map((m) => repo.publish(m, 1)));
    expect((await repo.latest(6))?.lsn).toBe(9);
  });

  test("a repository object that is not ours is reported with CAIRN-SNAPSHOT-0008, not a crash", async () => {
    const root = tempDir();
    const store = new FileBlobStore(root);
    await store.putText("7/latest.json", "{not json");
    const err = await new SnapshotRepository(store, { numRetained: 1 }).latest(7).catch((e: unknown) => e);
    expect(isCairnError(err, "SNAPSHOT_INVALID_METADATA")).toBe(true);
  });
});
