// A snapshot repository over a blob store: uploads a snapshot (store first, metadata.json last, all
// removed again if any step fails: nothing partial is ever visible), moves `latest.json` forward by
// conditional write, applies retention, lists snapshots and downloads one with its checksum checked.
// Invariants: latest.json only ever names a complete snapshot and never moves back; retention never
// deletes the snapshot latest.json names, nor a directory newer than it (an upload in flight).
import { createHash } from "node:crypto";
import { CairnError, invariant } from "../observability/errors.ts";
import type { BlobStore } from "./blob-store.ts";
import type { UploadPace } from "./pace.ts";
import {
  LatestPointer,
  METADATA_FILE,
  STORE_FILE,
  SnapshotMetadata,
  latestKey,
  parseDocument,
  parseSnapshotDirName,
  partitionPrefix,
  snapshotDirName,
  snapshotPrefix,
} from "./layout.ts";

export interface RepositoryOptions {
  /** Complete snapshots kept per partition (the newest ones); at least 1. */
  readonly numRetained: number;
}

/** What a partition's published pointer moved to, and what retention kept. */
export interface PublishResult {
  readonly latest: LatestPointer;
  /** Whether this call moved latest.json (false: it already named a snapshot at or past this LSN). */
  readonly moved: boolean;
  readonly retained: SnapshotMetadata[];
  readonly deleted: number;
}

/** Most attempts at moving latest.json when other writers keep winning the race. */
const PUBLISH_ATTEMPTS = 16;

export class SnapshotRepository {
  constructor(
    readonly store: BlobStore,
    private readonly options: RepositoryOptions,
  ) {
    invariant(options.numRetained >= 1, "at least one snapshot is retained");
  }

  get description(): string {
    return this.store.description;
  }

  /** Uploads the store file (at `pace`, if any) and then its metadata; on any failure removes what it wrote. */
  async upload(meta: SnapshotMetadata, storePath: string, pace?: UploadPace): Promise<void> {
    const prefix = snapshotPrefix(meta.partition, meta.lsn, meta.id);
    try {
      await this.store.putFile(prefix + STORE_FILE, storePath, pace);
      await this.store.putText(prefix + METADATA_FILE, JSON.stringify(meta, null, 2));
    } catch (e) {
      await this.removeSnapshot(meta.partition, meta.lsn, meta.id).catch(() => {});
      throw e;
    }
  }

  /** Deletes a snapshot's objects (metadata first, so a half-deleted one reads as incomplete). */
  async removeSnapshot(partition: number, lsn: number, id: string): Promise<void> {
    const prefix = snapshotPrefix(partition, lsn, id);
    await this.store.delete(prefix + METADATA_FILE);
    for (const key of await this.store.list(prefix)) await this.store.delete(key);
  }

  /** The snapshot latest.json names, undefined when the partition has none published. */
  async latest(partition: number): Promise<LatestPointer | undefined> {
    const v = await this.store.getText(latestKey(partition));
    return v === undefined ? undefined : parseDocument(LatestPointer, v.text, `${this.description}${latestKey(partition)}`);
  }

  /**
   * Moves latest.json to `meta` unless it already names a snapshot at or past its LSN (then it
   * stays: it only moves forward), then deletes all but the newest `numRetained` snapshots.
   */
  async publish(meta: SnapshotMetadata, nowMs: number): Promise<PublishResult> {
    const key = latestKey(meta.partition);
    const next: LatestPointer = { partition: meta.partition, lsn: meta.lsn, id: meta.id, path: snapshotDirName(meta.lsn, meta.id), updatedAtMs: nowMs };
    let latest: LatestPointer | undefined;
    let moved = false;
    for (let attempt = 0; ; attempt++) {
      const current = await this.store.getText(key);
      const pointer = current === undefined ? undefined : parseDocument(LatestPointer, current.text, `${this.description}${key}`);
      if (pointer !== undefined && pointer.lsn >= meta.lsn) {
        latest = pointer;
        break;
      }
      if (await this.store.putTextIf(key, JSON.stringify(next, null, 2), current?.token ?? null)) {
        latest = next;
        moved = true;
        break;
      }
      if (attempt + 1 >= PUBLISH_ATTEMPTS) {
        throw new CairnError("SNAPSHOT_REPOSITORY_UNAVAILABLE", `snapshot repository ${this.description}: ${key} kept changing under ${PUBLISH_ATTEMPTS} conditional writes`);
      }
    }
    const { retained, deleted } = await this.applyRetention(meta.partition, latest, meta);
    return { latest, moved, retained, deleted };
  }

  /** Complete snapshots of a partition, oldest first. */
  async list(partition: number): Promise<SnapshotMetadata[]> {
    const keys = await this.store.list(partitionPrefix(partition));
    const out: SnapshotMetadata[] = [];
    for (const key of keys) {
      const [, dir, file] = key.split("/");
      if (file !== METADATA_FILE || dir === undefined || parseSnapshotDirName(dir) === undefined) continue;
      const v = await this.store.getText(key);
      if (v === undefined) continue; // deleted meanwhile
      out.push(parseDocument(SnapshotMetadata, v.text, `${this.description}${key}`));
    }
    return out.sort((a, b) => a.lsn - b.lsn || a.id.localeCompare(b.id));
  }

  /** Partitions with anything in the repository. */
  async partitions(): Promise<number[]> {
    const keys = await this.store.list("");
    const ids = new Set<number>();
    for (const key of keys) {
      const first = key.split("/")[0] ?? "";
      if (/^\d+$/.test(first)) ids.add(Number(first));
    }
    return [...ids].sort((a, b) => a - b);
  }

  /** Metadata of one complete snapshot. */
  async metadata(partition: number, lsn: number, id: string): Promise<SnapshotMetadata | undefined> {
    const key = snapshotPrefix(partition, lsn, id) + METADATA_FILE;
    const v = await this.store.getText(key);
    return v === undefined ? undefined : parseDocument(SnapshotMetadata, v.text, `${this.description}${key}`);
  }

  /** Copies a snapshot's store to `localPath` and checks it against the checksum in its metadata. */
  async download(meta: SnapshotMetadata, localPath: string): Promise<void> {
    const key = snapshotPrefix(meta.partition, meta.lsn, meta.id) + STORE_FILE;
    if (!(await this.store.getFile(key, localPath))) {
      throw new CairnError("SNAPSHOT_NOT_FOUND", `snapshot ${snapshotDirName(meta.lsn, meta.id)} of partition ${meta.partition} has no store in ${this.description}`);
    }
    const actual = await fileChecksum(localPath);
    if (actual.checksum !== meta.checksum || actual.sizeBytes !== meta.sizeBytes) {
      throw new CairnError(
        "SNAPSHOT_CHECKSUM_MISMATCH",
        `snapshot ${snapshotDirName(meta.lsn, meta.id)} of partition ${meta.partition}: the store is ${actual.sizeBytes} bytes with ${actual.checksum}, its metadata says ${meta.sizeBytes} bytes with ${meta.checksum}`,
        { partition: meta.partition, lsn: meta.lsn, id: meta.id },
      );
    }
  }

  /**
   * Keeps the newest `numRetained` complete snapshots (always the one latest.json names) and deletes
   * every other directory at or below latest.json's LSN, incomplete leftovers of dead uploads too.
   * One listing decides (a directory's name holds its LSN and id, a metadata.json in it makes it
   * complete); only the kept snapshots' metadata is read, `known` (just uploaded) not even that.
   */
  private async applyRetention(partition: number, latest: LatestPointer, known?: SnapshotMetadata): Promise<{ retained: SnapshotMetadata[]; deleted: number }> {
    const keysOf = new Map<string, string[]>();
    const complete: Array<{ lsn: number; id: string; dir: string }> = [];
    for (const key of await this.store.list(partitionPrefix(partition))) {
      const [, dir, file] = key.split("/");
      const parsed = dir === undefined ? undefined : parseSnapshotDirName(dir);
      if (parsed === undefined) continue;
      keysOf.set(dir!, [...(keysOf.get(dir!) ?? []), key]);
      if (file === METADATA_FILE && parsed.lsn <= latest.lsn) complete.push({ ...parsed, dir: dir! });
    }
    complete.sort((a, b) => a.lsn - b.lsn || a.id.localeCompare(b.id));
    const keep = new Set<string>([latest.path]);
    for (const m of [...complete].reverse()) {
      if (keep.size >= this.options.numRetained) break;
      keep.add(m.dir);
    }
    let deleted = 0;
    for (const [dir, keys] of keysOf) {
      const parsed = parseSnapshotDirName(dir)!;
      if (keep.has(dir) || parsed.lsn > latest.lsn) continue;
      // Metadata first: a directory half deleted reads as incomplete, never as a damaged snapshot.
      const meta = snapshotPrefix(partition, parsed.lsn, parsed.id) + METADATA_FILE;
      if (keys.includes(meta)) await this.store.delete(meta);
      for (const key of keys) if (key !== meta) await this.store.delete(key);
      deleted++;
    }
    const retained: SnapshotMetadata[] = [];
    for (const m of complete) {
      if (!keep.has(m.dir)) continue;
      if (known !== undefined && known.lsn === m.lsn && known.id === m.id) retained.push(known);
      else {
        const found = await this.metadata(partition, m.lsn, m.id);
        if (found !== undefined) retained.push(found); // else deleted meanwhile
      }
    }
    return { retained, deleted };
  }
}

/** `sha256:<hex>` and size of a file, read in chunks (a store may be large). */
export async function fileChecksum(path: string): Promise<{ checksum: string; sizeBytes: number }> {
  const hash = createHash("sha256");
  let sizeBytes = 0;
  for await (const chunk of Bun.file(path).stream()) {
    hash.update(chunk);
    sizeBytes += chunk.byteLength;
  }
  return { checksum: `sha256:${hash.digest("hex")}`, sizeBytes };
}
