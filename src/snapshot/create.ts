// One partition snapshot, end to end, on the node that leads the partition: export its store (as of
// one applied LSN), upload it with its metadata.json, move latest.json forward and apply retention.
// Invariants: the temporary export is always removed; an upload that fails is removed from the
// repository before the error is reported (nothing partial is published); a snapshot at an LSN the
// repository already holds is not uploaded again (the answer names the published one).
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_EXPORT_OPTIONS, exportStore, type ExportOptions } from "./export.ts";
import { SNAPSHOT_FORMAT_VERSION, snapshotDirName, type SnapshotMetadata } from "./layout.ts";
import type { UploadPace } from "./pace.ts";
import type { SnapshotRepository } from "./repository.ts";

export interface CreateSnapshotInput {
  readonly repository: SnapshotRepository;
  readonly partition: number;
  readonly keyRange: { start: string; end: string };
  readonly storePath: string;
  /** SQL over the exported copy returning its applied LSN as column `lsn`. */
  readonly lsnQuery: string;
  /** Where the export is staged before upload (a directory of the node's own disk). */
  readonly scratchDir: string;
  readonly cluster: { name: string; fingerprint: string };
  readonly node: string;
  readonly nowMs: () => number;
  readonly signal?: AbortSignal;
  readonly exportOptions?: ExportOptions;
  /** The rate the store's upload may use (asked as it goes; none: no limit). */
  readonly uploadPace?: UploadPace;
}

/** Where one snapshot's time went (milliseconds of the monotonic clock), for logs and the benchmark. */
export interface SnapshotPhasesMs {
  /** Copy of the store, checksum and staging write (the Worker thread), from its start to its answer. */
  readonly export: number;
  readonly copy: number;
  readonly hashWrite: number;
  /** The store and metadata.json into the repository. */
  readonly upload: number;
  /** Reading latest.json before the upload, moving it forward and retention. */
  readonly publish: number;
}

export interface CreatedSnapshot {
  readonly partition: number;
  readonly id: string;
  readonly lsn: number;
  readonly sizeBytes: number;
  readonly path: string;
  /** False when the repository already held a snapshot at this LSN or newer (nothing uploaded). */
  readonly uploaded: boolean;
  /** Lowest LSN among the snapshots retention kept (what a log may be trimmed up to). */
  readonly oldestRetainedLsn: number;
  readonly phasesMs: SnapshotPhasesMs;
  /** How the store was copied (`serialize`: a page copy in memory; `vacuum`: VACUUM INTO). */
  readonly exportMethod: string;
}

export function newSnapshotId(): string {
  return randomBytes(6).toString("hex");
}

export async function createSnapshot(input: CreateSnapshotInput): Promise<CreatedSnapshot> {
  const { repository, partition } = input;
  const id = newSnapshotId();
  await mkdir(input.scratchDir, { recursive: true });
  const staged = join(input.scratchDir, `p${partition}-${id}.sqlite`);
  try {
    const t0 = performance.now();
    const exported = await exportStore(input.storePath, staged, input.lsnQuery, input.signal, input.exportOptions ?? DEFAULT_EXPORT_OPTIONS);
    const t1 = performance.now();
    const phases = (uploadMs: number, publishMs: number): SnapshotPhasesMs => ({
      export: t1 - t0,
      copy: exported.copyMs,
      hashWrite: exported.hashWriteMs,
      upload: uploadMs,
      publish: publishMs,
    });
    const latest = await repository.latest(partition);
    if (latest !== undefined && latest.lsn >= exported.lsn) {
      const retained = await repository.list(partition);
      const published = retained.find((m) => m.id === latest.id);
      return {
        phasesMs: phases(0, performance.now() - t1),
        exportMethod: exported.method,
        partition,
        id: latest.id,
        lsn: latest.lsn,
        sizeBytes: published?.sizeBytes ?? 0,
        path: latest.path,
        uploaded: false,
        oldestRetainedLsn: Math.min(latest.lsn, ...retained.filter((m) => m.lsn <= latest.lsn).map((m) => m.lsn)),
      };
    }
    const meta: SnapshotMetadata = {
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      id,
      cluster: input.cluster.name,
      clusterFingerprint: input.cluster.fingerprint,
      partition,
      keyRange: input.keyRange,
      lsn: exported.lsn,
      node: input.node,
      createdAtMs: input.nowMs(),
      sizeBytes: exported.sizeBytes,
      checksum: exported.checksum,
    };
    const t2 = performance.now();
    await repository.upload(meta, staged, input.uploadPace);
    const t3 = performance.now();
    const result = await repository.publish(meta, input.nowMs());
    return {
      phasesMs: phases(t3 - t2, t2 - t1 + (performance.now() - t3)),
      exportMethod: exported.method,
      partition,
      id: result.latest.id,
      lsn: result.latest.lsn,
      sizeBytes: result.moved ? meta.sizeBytes : (result.retained.find((m) => m.id === result.latest.id)?.sizeBytes ?? 0),
      path: result.latest.path ?? snapshotDirName(result.latest.lsn, result.latest.id),
      uploaded: result.moved,
      oldestRetainedLsn: Math.min(result.latest.lsn, ...result.retained.map((m) => m.lsn)),
    };
  } finally {
    await rm(staged, { force: true });
  }
}
