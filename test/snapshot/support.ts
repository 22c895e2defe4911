// Helpers of the snapshot tests: temporary directories, a digest of a partition store's contents,
// deterministic writes into a store (so a copy at LSN L can be compared with a replay up to L).
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProcessorMeta } from "../../src/worker/core.ts";
import { PartitionStore } from "../../src/worker/store.ts";
import { expect } from "bun:test";
import { createSnapshot, SNAPSHOT_FORMAT_VERSION, type BlobStore, type CreatedSnapshot, type SnapshotMetadata, type SnapshotRepository } from "../../src/snapshot/index.ts";
import { APPLIED_LSN_QUERY } from "../../src/worker/store.ts";

const dirs: string[] = [];
export function tempDir(prefix = "cairn-snap-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** sha256 over every object and state row, in key order, plus the applied LSN. */
export function storeDigest(path: string): { lsn: number; digest: string; rows: number } {
  const db = new Database(path, { readonly: true });
  try {
    const hash = createHash("sha256");
    let rows = 0;
    for (const r of db.query<{ service: string; key: string; version: number }, []>("SELECT service, key, version FROM objects ORDER BY service, key").all()) {
      hash.update(`o|${r.service}|${r.key}|${r.version}\n`);
      rows++;
    }
    for (const r of db.query<{ service: string; key: string; name: string; value: Uint8Array; content_type: string }, []>("SELECT * FROM state ORDER BY service, key, name").all()) {
      hash.update(`s|${r.service}|${r.key}|${r.name}|${r.content_type}|`).update(r.value).update("\n");
      rows++;
    }
    const meta = db.query<{ v: string }, []>("SELECT v FROM meta WHERE k = 'processor'").get();
    const lsn = meta === null ? 0 : (JSON.parse(meta.v) as ProcessorMeta).appliedLsn;
    return { lsn, digest: hash.digest("hex"), rows };
  } finally {
    db.close();
  }
}

/** Applies deterministic write number `lsn` (each LSN one transaction, as the processor does). */
export function applyWrite(store: PartitionStore, lsn: number, valueBytes = 64): void {
  store.transaction(() => {
    const key = `k${lsn % 97}`;
    store.execute([
      { type: "set", service: "svc", key, name: `e${lsn % 5}`, value: new Uint8Array(valueBytes).fill(lsn % 251), contentType: "application/octet-stream" },
      { type: "version", service: "svc", key, version: lsn },
    ]);
    const m = store.meta();
    store.writeMeta({ ...m, appliedLsn: lsn });
  });
}

export function metadataFor(partition: number, lsn: number, id: string, extra: Partial<SnapshotMetadata> = {}): SnapshotMetadata {
  return {
    formatVersion: SNAPSHOT_FORMAT_VERSION,
    id,
    cluster: "test",
    clusterFingerprint: "fp",
    partition,
    keyRange: { start: "0", end: "18446744073709551615" },
    lsn,
    node: "N1",
    createdAtMs: 1_000,
    sizeBytes: 0,
    checksum: "sha256:0",
    ...extra,
  };
}

/** One snapshot of the store at `storePath` into `repository`, as a partition leader makes it. */
export function snapshotStore(repository: SnapshotRepository, storePath: string, partition = 0, nowMs = 1_000): Promise<CreatedSnapshot> {
  return createSnapshot({
    repository,
    partition,
    keyRange: { start: "0", end: "9" },
    storePath,
    lsnQuery: APPLIED_LSN_QUERY,
    scratchDir: tempDir(),
    cluster: { name: "c", fingerprint: "f" },
    node: "N1",
    nowMs: () => nowMs,
  });
}

/** What every backend's conditional write must do: refuse a writer that read an older version. */
export async function expectConditionalWrites(store: BlobStore): Promise<void> {
  expect(await store.putTextIf("0/latest.json", "one", null)).toBe(true);
  expect(await store.putTextIf("0/latest.json", "two", null)).toBe(false);
  const v = await store.getText("0/latest.json");
  expect(await store.putTextIf("0/latest.json", "three", v!.token)).toBe(true);
  expect(await store.putTextIf("0/latest.json", "four", v!.token)).toBe(false);
  expect((await store.getText("0/latest.json"))?.text).toBe("three");
}
