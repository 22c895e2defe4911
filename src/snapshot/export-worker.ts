// Worker thread of export.ts: copies a live SQLite store with `VACUUM INTO` from its own read-only
// connection (a read transaction: writers on the event loop keep committing to the WAL meanwhile),
// then reads the LSN the copy is exactly as of from the copy itself, and checksums it.
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";

declare const self: Worker;

export interface ExportJob {
  readonly sourcePath: string;
  readonly targetPath: string;
  /** A query over the copy returning one row with column `lsn`. */
  readonly lsnQuery: string;
}

export type ExportReply = { ok: true; lsn: number; sizeBytes: number; checksum: string } | { ok: false; message: string };

self.onmessage = async (event: MessageEvent<ExportJob>) => {
  const job = event.data;
  let reply: ExportReply;
  try {
    const source = new Database(job.sourcePath, { readonly: true });
    try {
      source.exec("PRAGMA busy_timeout = 5000");
      source.query("VACUUM INTO ?").run(job.targetPath);
    } finally {
      source.close();
    }
    const copy = new Database(job.targetPath, { readonly: true });
    let lsn: number;
    try {
      const row = copy.query<{ lsn: number | null }, []>(job.lsnQuery).get();
      lsn = row?.lsn ?? 0;
    } finally {
      copy.close();
    }
    const hash = createHash("sha256");
    let sizeBytes = 0;
    for await (const chunk of Bun.file(job.targetPath).stream()) {
      hash.update(chunk);
      sizeBytes += chunk.byteLength;
    }
    reply = { ok: true, lsn, sizeBytes, checksum: `sha256:${hash.digest("hex")}` };
  } catch (e) {
    reply = { ok: false, message: (e as Error).message };
  }
  self.postMessage(reply);
};
