// The physical limit of this disk for the log-server's kind of write: SQLite in WAL mode,
// page_size 8192, synchronous=FULL (fsync per commit), 256 records of 1 KiB per transaction, one
// writer, nothing else (no network, no sequencer). Runs in-process and blocks the event loop.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { percentile, round } from "../metadata/load.ts";

export interface DiskLimit {
  recordsPerTxn: number;
  recordBytes: number;
  seconds: number;
  records: number;
  recordsPerSecond: number;
  mbPerSecond: number;
  txnMsP50: number;
  txnMsP99: number;
}

export function sqliteGroupCommitLimit(dir: string, seconds: number, recordBytes: number, recordsPerTxn = 256): DiskLimit {
  const db = new Database(join(dir, "disk-limit.sqlite"), { create: true, strict: true });
  try {
    db.run("PRAGMA page_size = 8192");
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = FULL");
    db.run("CREATE TABLE records (loglet TEXT NOT NULL, offset INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (loglet, offset)) WITHOUT ROWID");
    const insert = db.prepare("INSERT INTO records (loglet, offset, payload) VALUES (?, ?, ?)");
    const payload = new Uint8Array(recordBytes).fill(0x78);
    let offset = 0;
    const txn = db.transaction(() => {
      for (let i = 0; i < recordsPerTxn; i++) insert.run("0_0", ++offset, payload);
    });
    for (let i = 0; i < 5; i++) txn(); // warm-up
    const start = offset;
    const samples: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      const t = performance.now();
      txn();
      samples.push(performance.now() - t);
    }
    const elapsed = (performance.now() - t0) / 1000;
    const records = offset - start;
    samples.sort((a, b) => a - b);
    return {
      recordsPerTxn,
      recordBytes,
      seconds: round(elapsed, 2),
      records,
      recordsPerSecond: Math.round(records / elapsed),
      mbPerSecond: round((records * recordBytes) / elapsed / 1e6, 2),
      txnMsP50: round(percentile(samples, 50), 2),
      txnMsP99: round(percentile(samples, 99), 2),
    };
  } finally {
    db.close();
  }
}
