// Moving the metadata store to a member that needs a snapshot, with bounded memory on both sides and
// without pausing the serving member. The source pins one consistent read of its store (a read
// transaction on its own connection: SQLite's WAL lets the server keep writing meanwhile) and answers
// pages of rows; the sink writes them into staging tables and adopts them only once the last page
// arrived, in the same transaction that records the snapshot's Raft metadata. A transfer cut short
// (either side killed, a timeout) leaves only staging tables, which are dropped: a member never starts
// from a partial snapshot.
import { Database } from "bun:sqlite";
import { CairnError } from "../observability/errors.ts";

export type SnapshotTable = "kv" | "requests";

export interface SnapshotChunkRequest {
  /** Chosen by the sink; names one pinned read on the source. */
  transfer: string;
  table: SnapshotTable;
  /** Exclusive cursor within the table; null for its first page. */
  after: string | null;
  maxBytes: number;
}

export interface SnapshotChunk {
  /** The applied index of the pinned read (the same for every page of one transfer). */
  appliedIndex: number;
  versionFloor: number;
  /** kv: [key, version, value as JSON]; requests: [id, index, result as JSON]. */
  rows: Array<[string, number, string]>;
  /** Cursor of the next page of this table; null when the table is done. */
  next: string | null;
}

const PAGE_ROWS = 500;
const TABLE_SQL: Record<SnapshotTable, string> = {
  kv: "SELECT key AS a, version AS b, value AS c FROM kv WHERE key > ? ORDER BY key LIMIT " + PAGE_ROWS,
  requests: "SELECT id AS a, idx AS b, result AS c FROM kv_requests WHERE id > ? ORDER BY id LIMIT " + PAGE_ROWS,
};

interface OpenTransfer {
  db: Database;
  appliedIndex: number;
  versionFloor: number;
  timer: ReturnType<typeof setTimeout>;
}

/** Serves pages of pinned reads of the store at `path`. */
export class SnapshotSource {
  private readonly open = new Map<string, OpenTransfer>();

  constructor(
    private readonly path: string,
    private readonly options: { idleTimeoutMs: number; maxTransfers: number } = { idleTimeoutMs: 30_000, maxTransfers: 4 },
  ) {}

  get transfersOpen(): number {
    return this.open.size;
  }

  chunk(req: SnapshotChunkRequest): SnapshotChunk {
    let t = this.open.get(req.transfer);
    if (t === undefined) {
      if (req.table !== "kv" || req.after !== null) {
        throw new CairnError("METADATA_SNAPSHOT_TRANSFER", `snapshot transfer ${req.transfer} is not open here (expired, or served by another member)`);
      }
      if (this.open.size >= this.options.maxTransfers) {
        throw new CairnError("METADATA_SNAPSHOT_TRANSFER", `this member already serves ${this.open.size} snapshot transfers; try again shortly`);
      }
      t = this.pin(req.transfer);
    }
    this.touch(req.transfer, t);
    const rows: Array<[string, number, string]> = [];
    let bytes = 0;
    let full = false;
    // Row by row, so a page of large values stops at maxBytes without reading the rest into memory.
    for (const r of t.db.query<{ a: string; b: number; c: string }, [string]>(TABLE_SQL[req.table]).iterate(req.after ?? "")) {
      rows.push([r.a, r.b, r.c]);
      bytes += r.a.length + r.c.length + 16;
      if (bytes >= req.maxBytes || rows.length >= PAGE_ROWS) {
        full = true;
        break;
      }
    }
    const next = full ? rows[rows.length - 1]![0] : null;
    if (req.table === "requests" && next === null) this.finish(req.transfer);
    return { appliedIndex: t.appliedIndex, versionFloor: t.versionFloor, rows, next };
  }

  /** Releases every pinned read (the server stops). */
  close(): void {
    for (const id of [...this.open.keys()]) this.finish(id);
  }

  private pin(transfer: string): OpenTransfer {
    const db = new Database(this.path, { readonly: true, strict: true });
    // The first read inside BEGIN fixes the snapshot every later page of this transfer sees.
    db.exec("BEGIN");
    const meta = db.query<{ k: string; v: number }, []>("SELECT k, v FROM kv_meta").all();
    const value = (k: string) => meta.find((m) => m.k === k)?.v ?? 0;
    const t: OpenTransfer = { db, appliedIndex: value("applied"), versionFloor: value("version_floor"), timer: setTimeout(() => {}, 0) };
    this.open.set(transfer, t);
    return t;
  }

  private touch(transfer: string, t: OpenTransfer): void {
    clearTimeout(t.timer);
    // A sink that went away must not pin the WAL (and the old pages) forever.
    t.timer = setTimeout(() => this.finish(transfer), this.options.idleTimeoutMs);
    t.timer.unref?.();
  }

  private finish(transfer: string): void {
    const t = this.open.get(transfer);
    if (t === undefined) return;
    this.open.delete(transfer);
    clearTimeout(t.timer);
    try {
      t.db.exec("ROLLBACK");
    } catch {
      // nothing was open
    }
    t.db.close();
  }
}

const INCOMING_SCHEMA = [
  "CREATE TABLE kv_incoming (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL)",
  "CREATE TABLE kv_requests_incoming (id TEXT PRIMARY KEY, idx INTEGER NOT NULL, result TEXT NOT NULL) WITHOUT ROWID",
];

/** Drops staging tables of a transfer that never completed. */
export function dropIncoming(db: Database): void {
  db.exec("DROP TABLE IF EXISTS kv_incoming");
  db.exec("DROP TABLE IF EXISTS kv_requests_incoming");
}

/**
 * Pulls a whole pinned read from a source page by page into staging tables. Resolves with the read's
 * applied index and version floor; the caller adopts the staging tables (adoptIncoming) in the
 * transaction that records the snapshot. Rejects if the source changes its answer half-way.
 */
export async function pullSnapshot(args: {
  db: Database;
  transfer: string;
  fetch: (req: SnapshotChunkRequest) => Promise<SnapshotChunk>;
  maxBytes: number;
  signal: AbortSignal;
  /** Inserts go through here (the store's connection, without an fsync per page). */
  transaction: <T>(fn: () => T) => T;
}): Promise<{ appliedIndex: number; versionFloor: number; rows: number }> {
  dropIncoming(args.db);
  for (const sql of INCOMING_SCHEMA) args.db.exec(sql);
  const insert = {
    kv: args.db.query("INSERT INTO kv_incoming (key, version, value) VALUES (?1, ?2, ?3)"),
    requests: args.db.query("INSERT INTO kv_requests_incoming (id, idx, result) VALUES (?1, ?2, ?3)"),
  };
  let pinned: { appliedIndex: number; versionFloor: number } | undefined;
  let total = 0;
  for (const table of ["kv", "requests"] as const) {
    let after: string | null = null;
    for (;;) {
      if (args.signal.aborted) throw new CairnError("METADATA_SNAPSHOT_TRANSFER", "snapshot transfer aborted");
      const chunk: SnapshotChunk = await args.fetch({ transfer: args.transfer, table, after, maxBytes: args.maxBytes });
      if (pinned === undefined) pinned = { appliedIndex: chunk.appliedIndex, versionFloor: chunk.versionFloor };
      else if (pinned.appliedIndex !== chunk.appliedIndex) {
        throw new CairnError("METADATA_SNAPSHOT_TRANSFER", `snapshot transfer ${args.transfer} changed its index half-way (${pinned.appliedIndex} → ${chunk.appliedIndex})`);
      }
      args.transaction(() => {
        for (const r of chunk.rows) insert[table].run(r[0], r[1], r[2]);
      });
      total += chunk.rows.length;
      if (chunk.next === null) break;
      after = chunk.next;
    }
  }
  return { ...pinned!, rows: total };
}

/** Replaces the store's tables with the staging tables; call inside the transaction recording the snapshot. */
export function adoptIncoming(db: Database, pinned: { appliedIndex: number; versionFloor: number }): void {
  db.exec("DROP TABLE kv");
  db.exec("ALTER TABLE kv_incoming RENAME TO kv");
  db.exec("DROP TABLE kv_requests");
  db.exec("ALTER TABLE kv_requests_incoming RENAME TO kv_requests");
  db.exec("CREATE INDEX kv_requests_by_idx ON kv_requests (idx)");
  const set = db.query("INSERT INTO kv_meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
  set.run("applied", pinned.appliedIndex);
  set.run("version_floor", pinned.versionFloor);
}
