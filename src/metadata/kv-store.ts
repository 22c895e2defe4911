// The replicated metadata KV, on disk: its tables live in the metadata server's SQLite file beside the
// Raft log, so the state machine is the store and nothing of it needs to fit in memory. Versions are
// assigned and preconditions checked exactly as by the in-memory KvStateMachine (kv.ts), with one
// difference: a delete removes the row, so the store cannot remember a deleted key's last version.
// It remembers the highest version any deleted key had (`version_floor`) instead, and a key that does
// not exist is created above that floor.
//
// Invariants: a key's version only grows, across deletes too (re-created above every version it ever
// had: no ABA); the applied index is written in the same transaction as the effects of the entries up
// to it; applying the same entries from the same state gives the same rows on every replica.
import type { Database, Statement } from "bun:sqlite";
import { invariant } from "../observability/errors.ts";
import { NO_VERSION, asVersion, checkPrecondition, type KvCommand, type KvResult, type Version, type VersionedValue } from "./kv.ts";

/**
 * Keys whose parsed value is kept in memory: read on every applied entry by the membership logic
 * (nodes_config, cluster), or by every node's loops several times a second (the placement, the
 * partition table, the logs' chains). Readers share the cached object: the keys added for the loops
 * are frozen (deeply), so a reader that mutates what it read fails loudly instead of corrupting it.
 */
const CACHED_KEYS = new Set(["nodes_config", "cluster", "partition_placement", "partition_table", "logs"]);
const FROZEN_KEYS = new Set(["partition_placement", "partition_table", "logs"]);

export interface KvListPage {
  entries: Array<{ key: string; version: Version }>;
  /** Pass as `after` to get the next page; null when this page is the last. */
  next: string | null;
}

export interface KvListOptions {
  prefix?: string;
  /** Exclusive: list keys after this one. */
  after?: string;
  /** At most this many keys (the caller bounds it). */
  limit: number;
}

/** The smallest string greater than every string starting with `prefix` (undefined: no bound). */
export function prefixUpperBound(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xffff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}

export const KV_SCHEMA = [
  // A rowid table (not WITHOUT ROWID): values may be large, and large rows belong in overflow pages.
  "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL)",
  // Results of recently applied requests, for exactly-once retries; bounded by kv_requests pruning.
  "CREATE TABLE IF NOT EXISTS kv_requests (id TEXT PRIMARY KEY, idx INTEGER NOT NULL, result TEXT NOT NULL) WITHOUT ROWID",
  "CREATE INDEX IF NOT EXISTS kv_requests_by_idx ON kv_requests (idx)",
  // applied: last applied Raft index; version_floor: highest version of any deleted key.
  "CREATE TABLE IF NOT EXISTS kv_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID",
];

export class SqliteKvStore {
  private readonly qGet: Statement<{ value: string; version: number }, [string]>;
  private readonly qVersion: Statement<{ version: number }, [string]>;
  private readonly qUpsert: Statement<unknown, [string, number, string]>;
  private readonly qDelete: Statement<unknown, [string]>;
  private readonly qMetaGet: Statement<{ v: number }, [string]>;
  private readonly qMetaSet: Statement<unknown, [string, number]>;
  private readonly qAny: Statement<{ one: number }, []>;
  private readonly qCount: Statement<{ n: number }, []>;
  private floor: number;
  private readonly cache = new Map<string, VersionedValue | null>();

  constructor(private readonly db: Database) {
    for (const sql of KV_SCHEMA) db.exec(sql);
    this.qGet = db.query("SELECT value, version FROM kv WHERE key = ?");
    this.qVersion = db.query("SELECT version FROM kv WHERE key = ?");
    this.qUpsert = db.query("INSERT INTO kv (key, version, value) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value");
    this.qDelete = db.query("DELETE FROM kv WHERE key = ?");
    this.qMetaGet = db.query("SELECT v FROM kv_meta WHERE k = ?");
    this.qMetaSet = db.query("INSERT INTO kv_meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
    this.qAny = db.query("SELECT 1 AS one FROM kv LIMIT 1");
    this.qCount = db.query("SELECT count(*) AS n FROM kv");
    this.floor = this.meta("version_floor");
  }

  /** Last Raft index whose effects are in the store (0: none). */
  appliedIndex(): number {
    return this.meta("applied");
  }

  /** Record the applied index; call inside the transaction that applied the entries. */
  setAppliedIndex(index: number): void {
    invariant(index >= this.appliedIndex(), () => `kv applied index goes back from ${this.appliedIndex()} to ${index}`);
    this.qMetaSet.run("applied", index);
  }

  get versionFloor(): number {
    return this.floor;
  }

  get(key: string): VersionedValue | undefined {
    const cacheable = CACHED_KEYS.has(key);
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit !== undefined) return hit ?? undefined;
    }
    const row = this.qGet.get(key);
    const v = row === null ? undefined : { value: parseValue(key, row.value), version: asVersion(row.version) };
    if (cacheable) this.cache.set(key, v ?? null);
    return v;
  }

  getVersion(key: string): Version {
    const row = this.qVersion.get(key);
    return row === null ? NO_VERSION : asVersion(row.version);
  }

  isEmpty(): boolean {
    return this.qAny.get() === null;
  }

  /** Number of keys (counts rows: for status and tests, not for hot paths). */
  size(): number {
    return this.qCount.get()?.n ?? 0;
  }

  /** One page of live keys in key order, with their versions. */
  list(options: KvListOptions): KvListPage {
    invariant(Number.isInteger(options.limit) && options.limit >= 1, () => `list limit must be a positive integer, got ${options.limit}`);
    const prefix = options.prefix ?? "";
    const after = options.after;
    const from = after !== undefined && after >= prefix ? after : prefix;
    const upper = prefix === "" ? undefined : prefixUpperBound(prefix);
    const op = after !== undefined && after >= prefix ? ">" : ">=";
    const sql = `SELECT key, version FROM kv WHERE key ${op} ?1${upper !== undefined ? " AND key < ?2" : ""} ORDER BY key LIMIT ${options.limit + 1}`;
    const rows = (upper !== undefined ? this.db.query(sql).all(from, upper) : this.db.query(sql).all(from)) as Array<{ key: string; version: number }>;
    const more = rows.length > options.limit;
    const page = more ? rows.slice(0, options.limit) : rows;
    return { entries: page.map((r) => ({ key: r.key, version: asVersion(r.version) })), next: more ? page[page.length - 1]!.key : null };
  }

  /** Apply one command; call inside a transaction (the caller records the applied index with it). */
  apply(cmd: KvCommand): KvResult {
    const current = this.getVersion(cmd.key);
    const failed = checkPrecondition(current, cmd.precondition);
    if (failed !== undefined) return failed;
    if (cmd.op === "put") {
      const version = asVersion(current === NO_VERSION ? this.floor + 1 : current + 1);
      this.write(cmd.key, cmd.value, version);
      return { ok: true, version };
    }
    if (current === NO_VERSION) return { ok: false, reason: "not-found", currentVersion: NO_VERSION };
    this.qDelete.run(cmd.key);
    this.cache.delete(cmd.key);
    if (current > this.floor) {
      this.floor = current;
      this.qMetaSet.run("version_floor", current);
    }
    return { ok: true, version: current };
  }

  /** Load a value with a given version (an import keeps every version); call inside a transaction. */
  restoreEntry(key: string, value: unknown, version: Version): void {
    invariant(version > 0, () => `restored version of ${key} must be positive`);
    this.write(key, value, version);
  }

  /** Raise the floor to cover a deleted key's last version (imports of stores that kept tombstones). */
  raiseFloor(version: number): void {
    if (version <= this.floor) return;
    this.floor = version;
    this.qMetaSet.run("version_floor", version);
  }

  /** Delete every key and the floor (an import or snapshot replaces the whole state); inside a transaction. */
  clear(): void {
    this.db.exec("DELETE FROM kv");
    this.qMetaSet.run("version_floor", 0);
    this.floor = 0;
    this.cache.clear();
  }

  /** Forget cached values and re-read the floor (after the tables were replaced by a snapshot). */
  reload(): void {
    this.cache.clear();
    this.floor = this.meta("version_floor");
  }

  private write(key: string, value: unknown, version: Version): void {
    const text = JSON.stringify(value === undefined ? null : value);
    this.qUpsert.run(key, version, text);
    if (CACHED_KEYS.has(key)) this.cache.set(key, { value: parseValue(key, text), version });
  }

  private meta(k: string): number {
    return this.qMetaGet.get(k)?.v ?? 0;
  }
}

function parseValue(key: string, text: string): unknown {
  const value = JSON.parse(text) as unknown;
  return FROZEN_KEYS.has(key) ? deepFreeze(value) : value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
