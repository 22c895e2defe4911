// The partition store: one SQLite database per partition holding object state (entries and per-object
// versions), idempotency results (on disk, expired by record time: memory stays bounded however many
// keys there are) and the processor's metadata. Invariants: the applied LSN is written in the same
// transaction as the effects of the records up to it; the durable LSN is the applied LSN as of the
// last checkpoint that fsynced the store (commits themselves are not fsynced: the log is the truth).
import { Database } from "bun:sqlite";
import { closeSync, existsSync, fdatasync, openSync } from "node:fs";
import { invariant } from "../observability/errors.ts";
import { INITIAL_META, type Effect, type Outcome, type ProcessorMeta, type StoreView } from "./core.ts";
import { InvocationTables } from "./invoker/tables.ts";
import type { ObjectState } from "./invoker/state-machine.ts";

export interface StateEntry {
  readonly name: string;
  readonly value: Uint8Array;
  readonly contentType: string;
}

export class PartitionStore implements StoreView, ObjectState {
  private readonly db: Database;
  /** Durable invocations' tables, in this database (same transactions as the applied LSN). */
  readonly invocations: InvocationTables;
  private durableLsnValue: number;
  private walFd: number | undefined;
  private readonly q;
  /** The processor metadata as last written (or read at open). */
  private metaValue: ProcessorMeta = INITIAL_META;
  /**
   * No idempotency result is older than this (Infinity: none is kept). Lets the expiry that every
   * write carries skip its DELETE when nothing can have expired yet, which is almost always.
   */
  private oldestIdempotencyMs = Number.POSITIVE_INFINITY;

  constructor(readonly path: string) {
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec("PRAGMA page_size = 8192");
    this.db.exec("PRAGMA journal_mode = WAL");
    // Commits are not fsynced (the log holds every record); sync() and checkpoint() make the store durable.
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (service TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (service, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS state (service TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, content_type TEXT NOT NULL,
        PRIMARY KEY (service, key, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS idempotency (service TEXT NOT NULL, key TEXT NOT NULL, ikey TEXT NOT NULL, request_hash TEXT NOT NULL, outcome TEXT NOT NULL,
        ts_ms INTEGER NOT NULL, PRIMARY KEY (service, key, ikey)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS idempotency_by_time ON idempotency (ts_ms);
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
    `);
    this.q = {
      version: this.db.query<{ version: number }, [string, string]>("SELECT version FROM objects WHERE service = ? AND key = ?"),
      setVersion: this.db.query("INSERT INTO objects (service, key, version) VALUES (?, ?, ?) ON CONFLICT (service, key) DO UPDATE SET version = excluded.version"),
      entries: this.db.query<{ name: string; value: Uint8Array; content_type: string }, [string, string]>(
        "SELECT name, value, content_type FROM state WHERE service = ? AND key = ? ORDER BY name",
      ),
      entry: this.db.query<{ name: string; value: Uint8Array; content_type: string }, [string, string, string]>(
        "SELECT name, value, content_type FROM state WHERE service = ? AND key = ? AND name = ?",
      ),
      set: this.db.query(
        "INSERT INTO state (service, key, name, value, content_type) VALUES (?, ?, ?, ?, ?) ON CONFLICT (service, key, name) DO UPDATE SET value = excluded.value, content_type = excluded.content_type",
      ),
      delete: this.db.query("DELETE FROM state WHERE service = ? AND key = ? AND name = ?"),
      names: this.db.query<{ name: string }, [string, string]>("SELECT name FROM state WHERE service = ? AND key = ? ORDER BY name"),
      clear: this.db.query("DELETE FROM state WHERE service = ? AND key = ?"),
      idem: this.db.query<{ request_hash: string; outcome: string }, [string, string, string]>(
        "SELECT request_hash, outcome FROM idempotency WHERE service = ? AND key = ? AND ikey = ?",
      ),
      remember: this.db.query("INSERT OR REPLACE INTO idempotency (service, key, ikey, request_hash, outcome, ts_ms) VALUES (?, ?, ?, ?, ?, ?)"),
      expire: this.db.query("DELETE FROM idempotency WHERE (service, key, ikey) IN (SELECT service, key, ikey FROM idempotency WHERE ts_ms < ? ORDER BY ts_ms LIMIT ?)"),
      idemCount: this.db.query<{ n: number }, []>("SELECT count(*) AS n FROM idempotency"),
      idemOldest: this.db.query<{ ts: number | null }, []>("SELECT min(ts_ms) AS ts FROM idempotency"),
      getMeta: this.db.query<{ v: string }, [string]>("SELECT v FROM meta WHERE k = ?"),
      putMeta: this.db.query("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)"),
    };
    this.invocations = new InvocationTables(this.db);
    this.loadCaches();
    // What survived is durable as far as this process knows: reopening reads it from disk.
    this.durableLsnValue = this.meta().appliedLsn;
  }

  /** Reads what this class keeps of the database in memory (at open, and after a rolled-back transaction). */
  private loadCaches(): void {
    const row = this.q.getMeta.get("processor");
    this.metaValue = row === null ? INITIAL_META : (JSON.parse(row.v) as ProcessorMeta);
    this.oldestIdempotencyMs = this.q.idemOldest.get()?.ts ?? Number.POSITIVE_INFINITY;
  }

  meta(): ProcessorMeta {
    return this.metaValue;
  }

  objectVersion(service: string, key: string): number {
    return this.q.version.get(service, key)?.version ?? 0;
  }

  idempotency(service: string, key: string, idempotencyKey: string): { requestHash: string; outcome: Outcome } | undefined {
    const row = this.q.idem.get(service, key, idempotencyKey);
    return row === null ? undefined : { requestHash: row.request_hash, outcome: JSON.parse(row.outcome) as Outcome };
  }

  idempotencyCount(): number {
    return this.q.idemCount.get()?.n ?? 0;
  }

  object(service: string, key: string): { version: number; entries: StateEntry[] } {
    const entries = this.q.entries.all(service, key).map((r) => ({ name: r.name, value: r.value, contentType: r.content_type }));
    return { version: this.objectVersion(service, key), entries };
  }

  entry(service: string, key: string, name: string): StateEntry | undefined {
    const r = this.q.entry.get(service, key, name);
    return r === null ? undefined : { name: r.name, value: r.value, contentType: r.content_type };
  }

  // ---- object state as durable invocations use it (ObjectState) ----

  get(service: string, key: string, name: string): Uint8Array | undefined {
    return this.q.entry.get(service, key, name)?.value ?? undefined;
  }

  names(service: string, key: string): string[] {
    return this.q.names.all(service, key).map((r) => r.name);
  }

  set(service: string, key: string, name: string, value: Uint8Array): void {
    this.q.set.run(service, key, name, value, INVOCATION_STATE_CONTENT_TYPE);
  }

  delete(service: string, key: string, name: string): void {
    this.q.delete.run(service, key, name);
  }

  clear(service: string, key: string): void {
    this.q.clear.run(service, key);
  }

  touch(service: string, key: string): void {
    this.q.setVersion.run(service, key, this.objectVersion(service, key) + 1);
  }

  /** Runs `body` in one transaction (its effects and the metadata it writes commit together). */
  transaction<T>(body: () => T): T {
    try {
      return this.db.transaction(body)();
    } catch (e) {
      // Rolled back: what was cached during the transaction may not be in the database.
      this.loadCaches();
      throw e;
    }
  }

  /** Writes effects; call inside transaction(), followed by writeMeta in the same transaction. */
  execute(effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case "set":
          this.q.set.run(e.service, e.key, e.name, e.value, e.contentType);
          break;
        case "delete":
          this.q.delete.run(e.service, e.key, e.name);
          break;
        case "clear":
          this.q.clear.run(e.service, e.key);
          break;
        case "version":
          this.q.setVersion.run(e.service, e.key, e.version);
          break;
        case "remember":
          this.q.remember.run(e.service, e.key, e.idempotencyKey, e.requestHash, JSON.stringify(e.outcome), e.tsMs);
          this.oldestIdempotencyMs = Math.min(this.oldestIdempotencyMs, e.tsMs);
          break;
        case "invocation":
          // Applied by the invocation state machine (processor.ts), in this same transaction.
          break;
        case "expire-idempotency":
          // Deletes rows with ts_ms < beforeMs: none while the oldest is not older.
          if (this.oldestIdempotencyMs >= e.beforeMs) break;
          this.q.expire.run(e.beforeMs, e.limit);
          this.oldestIdempotencyMs = this.q.idemOldest.get()?.ts ?? Number.POSITIVE_INFINITY;
          break;
      }
    }
  }

  writeMeta(meta: ProcessorMeta): void {
    invariant(meta.appliedLsn >= this.meta().appliedLsn, "the applied LSN never goes back");
    this.q.putMeta.run("processor", JSON.stringify(meta));
    this.metaValue = meta;
  }

  /**
   * Makes what is committed durable without blocking the event loop: an fdatasync of the WAL on the
   * I/O thread pool (with synchronous = NORMAL a commit only writes the WAL; SQLite's own checkpoints
   * sync it before copying it into the database and sync the database after). The applied LSN as of
   * the call becomes the durable LSN once the sync returns.
   */
  async sync(): Promise<number> {
    const applied = this.meta().appliedLsn;
    // Nothing applied since the last sync: the durable LSN would not move (an idle partition costs no fsync).
    if (applied === this.durableLsnValue) return applied;
    if (this.walFd === undefined) {
      // No WAL yet: nothing was ever committed through it, the database file holds everything.
      if (!existsSync(`${this.path}-wal`)) {
        this.checkpoint();
        return applied;
      }
      this.walFd = openSync(`${this.path}-wal`, "r");
    }
    const fd = this.walFd;
    await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
    this.durableLsnValue = Math.max(this.durableLsnValue, applied);
    return applied;
  }

  /** Fsyncs the store (checkpoint of the WAL, on the caller's thread); the applied LSN at that point becomes the durable LSN. */
  checkpoint(): number {
    const applied = this.meta().appliedLsn;
    this.db.exec("PRAGMA wal_checkpoint(FULL)");
    this.durableLsnValue = applied;
    return applied;
  }

  get durableLsn(): number {
    return this.durableLsnValue;
  }

  close(): void {
    this.db.close();
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
  }
}

/** Values handlers write with ctx.set are the SDK's serialized bytes (JSON with its default serde). */
export const INVOCATION_STATE_CONTENT_TYPE = "application/json";

/** Over a copy of a partition store (a snapshot): the applied LSN it is exactly as of. */
export const APPLIED_LSN_QUERY = "SELECT json_extract(v, '$.appliedLsn') AS lsn FROM meta WHERE k = 'processor'";
