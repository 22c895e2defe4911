// Durable storage of the metadata server in one SQLite file: the Raft log, hard state, the latest
// snapshot's metadata, this storage's identity (a random id chosen when the storage is created, so a
// member that comes back with a wiped disk is recognised), and the KV state itself (kv-store.ts). The
// core reads an in-memory mirror of the Raft part (MemoryStorage, bounded by log compaction); every
// write goes to SQLite first, in one fsynced transaction, then to the mirror.
// Invariants: the mirror equals what SQLite holds after every completed write; the KV's applied index
// never passes what the durable log and commit index cover (the WAL keeps transactions in order, so an
// apply transaction that survived a crash has every earlier, fsynced one with it).
import { Database } from "bun:sqlite";
import { statSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import {
  EMPTY_HARD_STATE,
  MemoryStorage,
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type PersistedState,
  type Snapshot,
} from "../raft/index.ts";
import { CairnError } from "../observability/errors.ts";
import type { IntegrityResult } from "./integrity.ts";
import { SqliteKvStore } from "./kv-store.ts";
import { dropIncoming } from "./snapshot-transfer.ts";
import { MetadataStateMachine, ON_DISK_SNAPSHOT_MARKER, legacySnapshotData } from "./state-machine.ts";

export const RAFT_STORAGE_FILE = "metadata-raft.sqlite";

/** A zero-byte database file where one must exist is damage: refuse it, naming the file. */
export function refuseEmptyFile(path: string, mustExist: boolean): void {
  if (!mustExist) return;
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return; // Absent: the caller decides (a node may never have had this store).
  }
  if (size === 0) {
    throw new CairnError(
      "METADATA_STORAGE_CORRUPT",
      `${path} is empty, but this data directory belongs to a provisioned cluster: the file was truncated or replaced`,
      { path },
    );
  }
}

/** Free bytes on the file system holding `path` (0 if it cannot be read). */
export function freeDiskBytes(path: string): number {
  try {
    const fs = statfsSync(dirname(path));
    return Number(fs.bavail) * Number(fs.bsize);
  } catch {
    return 0;
  }
}

export interface StorageIdentity {
  /** Random id of this storage; recorded in the nodes configuration when the node becomes a member. */
  storageId: string;
  createdAtMs: number;
  /** The Raft id (= node id) this storage belongs to. */
  nodeId: number;
}

export class MetadataRaftStorage {
  readonly mirror: MemoryStorage;
  readonly kv: SqliteKvStore;
  /** The quick_check run when the file was opened (a failed one refuses the file). */
  openIntegrity: IntegrityResult = { ok: true, detail: "ok", checkedAtMs: 0, durationMs: 0 };
  private identityValue: StorageIdentity | undefined;

  private constructor(
    readonly db: Database,
    readonly path: string,
  ) {
    this.kv = new SqliteKvStore(db);
    dropIncoming(db); // a snapshot transfer cut short by a crash: never adopted
    const get = db.query<{ v: Uint8Array }, [string]>("SELECT v FROM meta WHERE k = ?");
    const id = get.get("identity");
    this.identityValue = id ? (JSON.parse(new TextDecoder().decode(id.v)) as StorageIdentity) : undefined;
    const hs = get.get("hard_state");
    const snap = get.get("snapshot");
    const entries: Entry[] = db
      .query<{ data: Uint8Array }, []>("SELECT data FROM raft_log ORDER BY idx")
      .all()
      .map((r) => decodeEntry(r.data));
    const snapshot = snap ? decodeSnapshot(snap.v) : undefined;
    // The mirror starts at the snapshot; drop the entries kept below it so file and mirror agree.
    if (snapshot) db.query("DELETE FROM raft_log WHERE idx <= ?").run(snapshot.metadata.index);
    this.mirror = MemoryStorage.fromPersistedState({
      hardState: hs ? decodeHardState(hs.v) : EMPTY_HARD_STATE,
      entries: snapshot ? entries.filter((e) => e.index > snapshot.metadata.index) : entries,
      ...(snapshot ? { snapshot } : {}),
    });
  }

  /**
   * Open (or create) the storage. `mustExist`: this data directory belongs to a provisioned
   * cluster, so an empty or missing-content file is damage (a truncated file), not a new store.
   */
  static open(path: string, options: { mustExist?: boolean } = {}): MetadataRaftStorage {
    refuseEmptyFile(path, options.mustExist === true);
    try {
      const db = new Database(path, { create: true, strict: true });
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      const checkStarted = performance.now();
      const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").get();
      if (check?.quick_check !== "ok") throw new Error(`quick_check: ${check?.quick_check ?? "no answer"}`);
      const checkMs = performance.now() - checkStarted;
      db.exec("CREATE TABLE IF NOT EXISTS raft_log (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)");
      db.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
      const storage = new MetadataRaftStorage(db, path);
      storage.openIntegrity = { ok: true, detail: "ok", checkedAtMs: Date.now(), durationMs: checkMs };
      storage.upgradeLegacySnapshot();
      return storage;
    } catch (e) {
      if (e instanceof CairnError) throw e;
      throw new CairnError("METADATA_STORAGE_CORRUPT", `cannot open metadata storage ${path}: ${(e as Error).message}`, { path });
    }
  }

  /** Set once the storage holds Raft state (the node bootstrapped a cluster or joined one). */
  get identity(): StorageIdentity | undefined {
    return this.identityValue;
  }

  raftNodeId(): number | undefined {
    return this.identityValue?.nodeId;
  }

  /** Give a new storage its identity and first durable state (bootstrap or join). */
  initialize(identity: StorageIdentity, state: PersistedState): void {
    if (this.identityValue !== undefined) throw new Error("metadata storage is already initialized");
    this.db.transaction(() => {
      this.putMeta("identity", new TextEncoder().encode(JSON.stringify(identity)));
      if (state.snapshot) this.putMeta("snapshot", encodeSnapshot(state.snapshot));
      this.insertEntries(state.entries);
      this.putMeta("hard_state", encodeHardState(state.hardState));
    })();
    if (state.snapshot) this.mirror.applySnapshot(state.snapshot);
    this.mirror.append(state.entries);
    this.mirror.setHardState(state.hardState);
    this.identityValue = identity;
  }

  /**
   * Persist what a Ready asks for, in one transaction, then update the mirror. The transaction is
   * fsynced when `mustSync` (entries, snapshot, term or vote changed); a Ready that only moves the
   * commit index is written without an fsync: the commit index can be learned again from the
   * leader, and the next synced transaction makes it durable anyway (the WAL is written in order).
   */
  persist(
    ready: { hardState: HardState | null; entries: readonly Entry[]; snapshot: Snapshot | null; mustSync: boolean },
    /** More writes for the same transaction (installing a snapshot's state with its metadata). */
    also?: () => void,
  ): void {
    if (ready.hardState === null && ready.entries.length === 0 && ready.snapshot === null && also === undefined) return;
    const relaxed = !ready.mustSync;
    if (relaxed) this.db.exec("PRAGMA synchronous = NORMAL");
    try {
      this.writeReady(ready, also);
    } finally {
      if (relaxed) this.db.exec("PRAGMA synchronous = FULL");
    }
    if (ready.snapshot !== null) this.mirror.applySnapshot(ready.snapshot);
    this.mirror.append(ready.entries);
    if (ready.hardState !== null) this.mirror.setHardState(ready.hardState);
  }

  private writeReady(ready: { hardState: HardState | null; entries: readonly Entry[]; snapshot: Snapshot | null }, also?: () => void): void {
    this.db.transaction(() => {
      also?.();
      if (ready.snapshot !== null) {
        this.putMeta("snapshot", encodeSnapshot(ready.snapshot));
        this.db.query("DELETE FROM raft_log").run();
      }
      const first = ready.entries[0];
      if (first !== undefined) {
        this.db.query("DELETE FROM raft_log WHERE idx >= ?").run(first.index);
        this.insertEntries(ready.entries);
      }
      if (ready.hardState !== null) this.putMeta("hard_state", encodeHardState(ready.hardState));
    })();
  }

  /**
   * Record a snapshot of the state machine at `index` (applied) and drop log entries up to
   * `index - keepEntries`, which lagging followers may still need.
   */
  saveSnapshot(index: Index, confState: ConfState, data: Uint8Array, keepEntries: number): Snapshot {
    const snapshot = this.mirror.createSnapshot(index, confState, data);
    const compactTo = Math.max(0, index - keepEntries) as Index;
    this.db.transaction(() => {
      this.putMeta("snapshot", encodeSnapshot(snapshot));
      this.db.query("DELETE FROM raft_log WHERE idx <= ?").run(compactTo);
    })();
    this.mirror.compact(compactTo);
    return snapshot;
  }

  /**
   * Run `fn` in one transaction without an fsync at commit (SQLite's synchronous = NORMAL in WAL
   * mode: consistent after a crash, durable at the next fsynced transaction). For applying committed
   * entries: they are in the fsynced log, so losing their application to a crash only means applying
   * them again at restart.
   */
  applyTransaction<T>(fn: () => T): T {
    this.db.exec("PRAGMA synchronous = NORMAL");
    try {
      return this.db.transaction(fn)();
    } finally {
      this.db.exec("PRAGMA synchronous = FULL");
    }
  }

  /**
   * A storage written before the KV moved to disk holds its state as a serialised snapshot (format 1)
   * and no KV tables: load it into the tables once, at the snapshot's index, and keep only the marker.
   */
  private upgradeLegacySnapshot(): void {
    const snap = this.mirror.snapshot();
    const legacy = legacySnapshotData(snap.data);
    if (legacy === undefined) return;
    if (this.kv.appliedIndex() < snap.metadata.index) {
      const sm = new MetadataStateMachine(this.kv, this.db);
      this.db.transaction(() => sm.restoreLegacy(legacy, snap.metadata.index))();
    }
    const marked = this.mirror.createSnapshot(snap.metadata.index, snap.metadata.confState, ON_DISK_SNAPSHOT_MARKER);
    this.db.transaction(() => this.putMeta("snapshot", encodeSnapshot(marked)))();
  }

  /** File size, for status. */
  sizeBytes(): number {
    const r = this.db.query<{ s: number }, []>("SELECT page_count * page_size AS s FROM pragma_page_count(), pragma_page_size()").get();
    return r?.s ?? 0;
  }

  close(): void {
    this.db.close();
  }

  private putMeta(k: string, v: Uint8Array): void {
    this.db.query("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)").run(k, v);
  }

  private insertEntries(entries: readonly Entry[]): void {
    const ins = this.db.query("INSERT OR REPLACE INTO raft_log (idx, data) VALUES (?, ?)");
    for (const e of entries) ins.run(e.index, encodeEntry(e));
  }
}
