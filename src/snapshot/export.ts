// Export and import of a partition store. Export copies the live store as of exactly one applied LSN
// in a Worker thread (a page copy inside one read transaction, or `VACUUM INTO` for stores too large
// to copy in memory: the processor keeps applying and is never paused; the event loop never runs the
// copy); import verifies a downloaded store against its metadata's checksum and moves it into place
// atomically (rename), never over a store in use.
import { rename, rm } from "node:fs/promises";
import { CairnError } from "../observability/errors.ts";
import type { ExportJob, ExportMethod, ExportReply } from "./export-worker.ts";
import { SnapshotRepository } from "./repository.ts";
import type { SnapshotMetadata } from "./layout.ts";

export interface ExportResult {
  readonly lsn: number;
  readonly sizeBytes: number;
  readonly checksum: string;
  readonly method: ExportMethod;
  /** Time the copy held its read transaction (serialize) or ran VACUUM INTO. */
  readonly copyMs: number;
  /** Time spent hashing and writing the copy (reading it back, for VACUUM INTO). */
  readonly hashWriteMs: number;
  /** The niceness the export thread ran at (null: unknown on this system). */
  readonly threadNice: number | null;
}

export interface ExportOptions {
  /** Stores up to this size are copied page by page in memory; larger ones by `VACUUM INTO`. */
  readonly inMemoryMaxBytes: number;
  /** Niceness of the export thread (0: the node's own; 19: only idle CPU). */
  readonly threadNice: number;
}

export const DEFAULT_EXPORT_OPTIONS: ExportOptions = { inMemoryMaxBytes: 128 * 1024 * 1024, threadNice: 10 };

/** The worker's URL: inside the compiled binary the entry point lives in its virtual file system. */
function workerUrl(): string {
  const here = import.meta.url;
  if (here.includes("/$bunfs/") || here.includes("%24bunfs")) return "/$bunfs/root/snapshot/export-worker.ts";
  return new URL("./export-worker.ts", here).href;
}

/**
 * Copies the SQLite database at `sourcePath` to `targetPath` (which must not exist) in a Worker;
 * `lsnQuery` reads the LSN the copy is as of (in the copy's read transaction). Rejects with
 * CAIRN-SNAPSHOT-0007.
 */
export function exportStore(
  sourcePath: string,
  targetPath: string,
  lsnQuery: string,
  signal?: AbortSignal,
  options: ExportOptions = DEFAULT_EXPORT_OPTIONS,
): Promise<ExportResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl());
    const finish = () => {
      signal?.removeEventListener("abort", onAbort);
      worker.terminate();
    };
    const onAbort = () => {
      finish();
      reject(new CairnError("SNAPSHOT_FAILED", `exporting ${sourcePath} was cancelled`));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.onmessage = (event: MessageEvent<ExportReply>) => {
      finish();
      const r = event.data;
      if (r.ok) resolve({ lsn: r.lsn, sizeBytes: r.sizeBytes, checksum: r.checksum, method: r.method, copyMs: r.copyMs, hashWriteMs: r.hashWriteMs, threadNice: r.threadNice });
      else reject(new CairnError("SNAPSHOT_FAILED", `exporting the store ${sourcePath} failed: ${r.message}`));
    };
    worker.onerror = (event) => {
      finish();
      reject(new CairnError("SNAPSHOT_FAILED", `the export worker for ${sourcePath} failed: ${event.message}`));
    };
    const job: ExportJob = { sourcePath, targetPath, lsnQuery, inMemoryMaxBytes: options.inMemoryMaxBytes, threadNice: options.threadNice };
    worker.postMessage(job);
  });
}

/**
 * Downloads snapshot `meta` from `repository` and installs it as the store at `targetPath` (which
 * no one may have open). The checksum is checked before anything is moved into place: a damaged
 * snapshot leaves `targetPath` as it was and fails with CAIRN-SNAPSHOT-0003.
 */
export async function importStore(repository: SnapshotRepository, meta: SnapshotMetadata, targetPath: string): Promise<void> {
  const tmp = `${targetPath}.import-${meta.id}`;
  try {
    await repository.download(meta, tmp);
    for (const suffix of ["-wal", "-shm"]) await rm(targetPath + suffix, { force: true });
    await rename(tmp, targetPath);
  } finally {
    await rm(tmp, { force: true });
  }
}
