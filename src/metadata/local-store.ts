// The local (non-replicated) metadata store: the KV state machine persisted in one SQLite file of
// the node's data directory. For explicit single-node use (`metadata-server.type = "local"`), and the
// source of the automatic migration to the replicated server. Every write is durable (fsync) before
// it is acknowledged. A sealed store refuses writes forever: after migration it is only a record.
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { CairnError } from "../observability/errors.ts";
import { refuseEmptyFile } from "./raft-storage.ts";
import { KvStateMachine, type KvCommand, type KvSnapshot, type KvResult, type Version, type VersionedValue } from "./kv.ts";

export const LOCAL_STORE_FILE = "metadata-local.sqlite";

export class LocalMetadataStore {
  private readonly kv: KvStateMachine;
  private sealedValue: boolean;

  private constructor(
    private readonly db: Database,
    readonly path: string,
  ) {
    // Tombstones are rebuilt too, so versions continue across restarts and deletes.
    this.kv = KvStateMachine.fromSnapshot({
      formatVersion: 1,
      entries: db
        .query<{ key: string; value: string | null; version: number; live: number }, []>("SELECT key, value, version, live FROM kv")
        .all()
        .map((r) => ({ key: r.key, value: r.live ? JSON.parse(r.value ?? "null") : null, version: r.version, live: r.live === 1 })),
    });
    this.sealedValue = db.query<{ v: string }, [string]>("SELECT v FROM meta WHERE k = ?").get("sealed") !== null;
  }

  static exists(path: string): boolean {
    return existsSync(path);
  }

  static open(path: string, options: { mustExist?: boolean } = {}): LocalMetadataStore {
    refuseEmptyFile(path, options.mustExist === true);
    let db: Database;
    try {
      db = new Database(path, { create: true, strict: true });
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").get();
      if (check?.quick_check !== "ok") throw new Error(`quick_check: ${check?.quick_check ?? "no answer"}`);
      db.exec(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT, version INTEGER NOT NULL, live INTEGER NOT NULL) WITHOUT ROWID",
      );
      db.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
    } catch (e) {
      throw new CairnError("METADATA_STORAGE_CORRUPT", `cannot open local metadata store ${path}: ${(e as Error).message}`, {
        path,
      });
    }
    return new LocalMetadataStore(db, path);
  }

  get sealed(): boolean {
    return this.sealedValue;
  }

  get(key: string): VersionedValue | undefined {
    return this.kv.get(key);
  }

  getVersion(key: string): Version {
    return this.kv.getVersion(key);
  }

  list(prefix = ""): Array<{ key: string; version: Version }> {
    return this.kv.list(prefix);
  }

  /** Every live entry with its version (what a migration copies). */
  entries(): Array<{ key: string; value: unknown; version: Version }> {
    return this.kv.list().map(({ key }) => ({ key, ...this.kv.get(key)! }));
  }

  /** The whole state, deleted keys' last versions included (what a migration copies). */
  snapshot(): KvSnapshot {
    return this.kv.snapshot();
  }

  /** Apply one command durably. The result is returned only after the transaction is fsynced. */
  apply(cmd: KvCommand): KvResult {
    if (this.sealedValue) {
      throw new CairnError("METADATA_STORE_SEALED", `local metadata store ${this.path} is sealed; it was migrated to the replicated metadata server`);
    }
    const result = this.kv.apply(cmd);
    if (result.ok) {
      const live = cmd.op === "put";
      this.db
        .query(
          "INSERT INTO kv (key, value, version, live) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version, live = excluded.live",
        )
        .run(cmd.key, live ? JSON.stringify(cmd.value) : null, result.version, live ? 1 : 0);
    }
    return result;
  }

  /** Seal: no write is accepted afterwards, by this process or any later one. */
  seal(reason: string, nowMs: number): void {
    this.db.query("INSERT OR REPLACE INTO meta (k, v) VALUES ('sealed', ?)").run(JSON.stringify({ reason, atMs: nowMs }));
    this.sealedValue = true;
  }

  sizeBytes(): number {
    return this.db.query<{ s: number }, []>("SELECT page_count * page_size AS s FROM pragma_page_count(), pragma_page_size()").get()?.s ?? 0;
  }

  integrityOk(): boolean {
    return this.db.query<{ quick_check: string }, []>("PRAGMA quick_check").get()?.quick_check === "ok";
  }

  close(): void {
    this.db.close();
  }
}
