// Worker thread of export.ts: copies a live SQLite store as of one read transaction of its own
// read-only connection (writers on the event loop keep committing to the WAL meanwhile), reads the
// LSN the copy is exactly as of inside that same transaction, and checksums what it writes.
// Invariants: the LSN and the pages come from one read transaction; the checksum and size are of the
// bytes written to `targetPath`; the thread runs at the niceness asked for (the node's event loop
// keeps the CPU first).
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { closeSync, openSync, readlinkSync, readSync, writeSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

declare const self: Worker;

export interface ExportJob {
  readonly sourcePath: string;
  readonly targetPath: string;
  /** A query over the store returning one row with column `lsn` (read in the copy's transaction). */
  readonly lsnQuery: string;
  /**
   * Stores up to this size are copied page by page into memory (sqlite3_serialize inside the read
   * transaction: a page copy, no rebuild); larger ones with `VACUUM INTO` (bounded memory, more CPU).
   */
  readonly inMemoryMaxBytes: number;
  /** Niceness of this thread (0..19; 0 leaves it alone): the copy yields the CPU to the node's work. */
  readonly threadNice: number;
}

export type ExportMethod = "serialize" | "vacuum";

export type ExportReply =
  | { ok: true; lsn: number; sizeBytes: number; checksum: string; method: ExportMethod; copyMs: number; hashWriteMs: number; threadNice: number | null }
  | { ok: false; message: string };

/** Bytes hashed and written per step of the in-memory path. */
const WRITE_CHUNK_BYTES = 1 << 20;

self.onmessage = (event: MessageEvent<ExportJob>) => {
  const job = event.data;
  let reply: ExportReply;
  try {
    const threadNice = lowerThreadPriority(job.threadNice);
    reply = { ok: true, ...copyStore(job), threadNice };
  } catch (e) {
    reply = { ok: false, message: (e as Error).message };
  }
  self.postMessage(reply);
};

function copyStore(job: ExportJob): { lsn: number; sizeBytes: number; checksum: string; method: ExportMethod; copyMs: number; hashWriteMs: number } {
  const source = new Database(job.sourcePath, { readonly: true });
  const t0 = performance.now();
  let image: Uint8Array | undefined;
  let lsn: number;
  try {
    source.exec("PRAGMA busy_timeout = 5000");
    const pages = source.query<{ bytes: number }, []>("SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()").get();
    if ((pages?.bytes ?? 0) <= job.inMemoryMaxBytes) {
      // BEGIN is deferred: the first read fixes the snapshot, and both the LSN and every page come from it.
      source.exec("BEGIN");
      try {
        lsn = source.query<{ lsn: number | null }, []>(job.lsnQuery).get()?.lsn ?? 0;
        image = source.serialize();
      } finally {
        source.exec("COMMIT");
      }
    } else {
      source.query("VACUUM INTO ?").run(job.targetPath);
      lsn = -1;
    }
  } finally {
    source.close();
  }
  const t1 = performance.now();
  const hash = createHash("sha256");
  let sizeBytes: number;
  if (image !== undefined) {
    // One pass: each chunk is hashed and written (`wx`: the target must not exist).
    const fd = openSync(job.targetPath, "wx");
    try {
      for (let off = 0; off < image.byteLength; off += WRITE_CHUNK_BYTES) {
        const chunk = image.subarray(off, Math.min(image.byteLength, off + WRITE_CHUNK_BYTES));
        hash.update(chunk);
        for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done, chunk.byteLength - done);
      }
    } finally {
      closeSync(fd);
    }
    sizeBytes = image.byteLength;
  } else {
    // VACUUM INTO ran in its own read transaction: the LSN is read back from the copy.
    const copy = new Database(job.targetPath, { readonly: true });
    try {
      lsn = copy.query<{ lsn: number | null }, []>(job.lsnQuery).get()?.lsn ?? 0;
    } finally {
      copy.close();
    }
    sizeBytes = 0;
    const fd = openSync(job.targetPath, "r");
    try {
      const buf = new Uint8Array(WRITE_CHUNK_BYTES);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.byteLength, sizeBytes);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        sizeBytes += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return { lsn, sizeBytes, checksum: `sha256:${hash.digest("hex")}`, method: image !== undefined ? "serialize" : "vacuum", copyMs: t1 - t0, hashWriteMs: performance.now() - t1 };
}

/**
 * Sets this thread's niceness (Linux: setpriority on the thread id applies to that thread only);
 * the niceness it runs at, null where it cannot be known (no /proc, another system).
 */
function lowerThreadPriority(nice: number): number | null {
  if (process.platform !== "linux") return null;
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isInteger(tid) || tid <= 0) return null;
    if (nice > 0) setPriority(tid, nice);
    return getPriority(tid);
  } catch {
    // No /proc (a container without it), or not allowed: the copy runs at the node's priority.
    return null;
  }
}
