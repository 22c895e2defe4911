// The log-server's record store: loglet records and per-loglet state in one SQLite file (WAL mode,
// page_size 8192, WITHOUT ROWID tables keyed by (loglet_id, offset)). A single writer group-commits
// every store, seal and trim queued since its last transaction into one transaction, so many
// concurrent stores cost one fsync; every answer is given only after its transaction is durable.
// The fsync is not SQLite's (synchronous = NORMAL: a commit only writes the WAL) but an fdatasync of
// the WAL file on the I/O thread pool after the commit: the event loop never blocks on the disk (it
// did for about a third of a busy node's time). Until that sync returns, the batch's states are not
// published and nothing is answered; the next batch gathers meanwhile and commits after it. WAL
// checkpoints run on a worker thread's connection (wal-checkpointer.ts), not inside commits.
//
// A new store file is built under a temporary name and renamed into place once initialised, so a
// store file is never legitimately empty: in a provisioned cluster's data directory an empty one (or
// a missing one beside a write-ahead log, or beside the `.created` marker written with every store) is
// damage that may have held acknowledged records, and opening it fails with CAIRN-LOG-0021 instead
// of starting an empty store in its place.
//
// A failed write disables writes (stores answer `disabled`) until a recovery probe succeeds: with
// backoff, a durable test transaction plus a WAL checkpoint on the same connection, both fsynced; only
// then does the store take writes again. Nothing a failed transaction wrote was ever published.
//
// Invariants: the acceptance rules are those of rules.ts, applied at commit time in arrival order;
// the in-memory state cache equals the durable state after every commit's sync (during the sync it
// holds the state before the batch); reads see durable data only; records at or below a loglet's trim point are never returned (a trim gap is reported
// instead), even before the background deletion has removed them.
import { Database, type Statement } from "bun:sqlite";
import { closeSync, existsSync, fdatasync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  formatGenerationalNodeId,
  logletOffset,
  parseGenerationalNodeId,
  type LogletId,
  type LogletOffset,
} from "../ids/index.ts";
import { CairnError, invariant } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";
import type {
  DigestEntry,
  GetDigestRequest,
  GetDigestResponse,
  GetLogletInfoRequest,
  GetRecordsRequest,
  GetRecordsResponse,
  LogServerApi,
  LogletInfo,
  ReadEntry,
  SealRequest,
  SealResponse,
  StoreRequest,
  StoreResponse,
  TrimRequest,
  TrimResponse,
  WaitForTailRequest,
  WaitForTailResponse,
} from "./protocol.ts";
import {
  EMPTY_LOGLET_STATE,
  applySeal,
  applyTrim,
  checkState,
  decideStore,
  tailReached,
  type LogletState,
} from "./rules.ts";
import { WalCheckpointer } from "./wal-checkpointer.ts";

const FORMAT_VERSION = "1";
/** getRecords with at least this byte budget reads on the checkpoint thread (bulk reads). */
const BULK_READ_MIN_BYTES = 256 * 1024;
/** The WAL may hold this many checkpoint thresholds of frames before a checkpoint catches up inline. */
const WAL_CAP_CHECKPOINTS = 8;
const PAGE_SIZE_BYTES = 8192;

export interface LogStoreOptions {
  /** The SQLite file. Created (with its directory's permissions) if missing. */
  readonly path: string;
  /** fsync every transaction (synchronous=FULL). false skips fsync: tests and dev only; the caller warns. */
  readonly sync?: boolean;
  /** Run `PRAGMA quick_check` when opening an existing file (reads the whole file once). */
  readonly checkOnOpen?: boolean;
  /** This store replaces one whose data was lost: it answers as non-authoritative and takes only repair stores. */
  readonly dataLoss?: boolean;
  /**
   * The data directory belongs to a provisioned cluster: the store may have acknowledged records, so
   * an empty file (or a missing one whose WAL is left) is refused (LOG_STORE_EMPTY), never recreated.
   * A missing file without a WAL is a store this node never created (e.g. the role was added later).
   */
  readonly provisioned?: boolean;
  /** Bounds of one group-commit transaction. */
  readonly maxBatchRecords?: number;
  readonly maxBatchBytes?: number;
  /**
   * Most payload bytes of repair stores (re-replication's bulk copies, tail repair) in one group
   * commit: normal stores queued behind them join the next transaction without waiting for a whole
   * bulk window's insert, commit and sync (a repair store bigger than this goes alone).
   */
  readonly maxRepairBatchBytes?: number;
  /**
   * WAL pages after which a commit checkpoints them into the database file (SQLite's
   * wal_autocheckpoint). A checkpoint runs inside the commit, on the event loop: small ones keep
   * every stall short (8 MiB took 20-25 ms here, 1 MiB 3-5 ms) for about the same total work.
   */
  readonly walCheckpointPages?: number;
  /**
   * Checkpoints run on a Worker thread with its own connection (wal-checkpointer.ts) instead of
   * inside commits on the event loop. The file is then not locked exclusively (a second connection
   * needs it); false: one exclusive connection that checkpoints inline.
   */
  readonly checkpointOffLoop?: boolean;
  /** Records deleted per trim transaction (each chunk blocks the event loop briefly). */
  readonly trimChunkRecords?: number;
  /** Most records in one getRecords answer, and most offsets one getDigest answer covers. */
  readonly maxReadRecords?: number;
  readonly maxDigestOffsets?: number;
  /** Bound on the WAL file after checkpoints (journal_size_limit). */
  readonly walSizeLimitBytes?: number;
  /** Delay before the first recovery probe after a failed write; doubled after every failed probe. */
  readonly recoveryProbeInitialDelayMs?: number;
  /** Longest delay between two recovery probes. */
  readonly recoveryProbeMaxDelayMs?: number;
  readonly registry?: Registry;
  readonly logger?: Logger;
}

export const LOG_STORE_DEFAULTS = {
  sync: true,
  checkOnOpen: true,
  maxBatchRecords: 4096,
  maxBatchBytes: 8 * 1024 * 1024,
  maxRepairBatchBytes: 256 * 1024,
  walCheckpointPages: 128,
  checkpointOffLoop: true,
  trimChunkRecords: 2000,
  maxReadRecords: 4096,
  maxDigestOffsets: 65_536,
  walSizeLimitBytes: 64 * 1024 * 1024,
  recoveryProbeInitialDelayMs: 1_000,
  recoveryProbeMaxDelayMs: 30_000,
} as const;

/** Counters a test or the admin API can read without a metrics registry. */
export interface LogStoreStats {
  /** Group-commit transactions (stores, seals and trim-point updates). */
  transactions: number;
  storeRequests: number;
  recordsWritten: number;
  payloadBytesWritten: number;
  seals: number;
  trimChunks: number;
  recordsTrimmed: number;
  /** WAL checkpoints the checkpoint thread ran (0 when checkpoints run inline, inside commits). */
  threadCheckpoints: number;
  /** getRecords answered from the checkpoint thread's connection (bulk reads). */
  threadReads: number;
}

type Settle<T> = { resolve: (value: T) => void; reject: (error: unknown) => void };

type WriteOp =
  | ({ kind: "store"; request: StoreRequest; records: number; bytes: number } & Settle<StoreResponse>)
  | ({ kind: "seal"; loglet: LogletId } & Settle<SealResponse>)
  | ({ kind: "trim"; loglet: LogletId; upTo: LogletOffset } & Settle<TrimResponse>);

interface TailWaiter {
  offset: LogletOffset;
  resolve: (r: WaitForTailResponse) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

interface StoreMetrics {
  transactions: Counter;
  storeRequests: Counter<"status">;
  records: Counter;
  bytes: Counter;
  commitSeconds: Histogram;
  batchOps: Histogram;
  trimmed: Counter;
  writable: Gauge;
  recovering: Gauge;
  probes: Counter<"result">;
  reenabled: Counter;
}

const metricsByRegistry = new WeakMap<Registry, StoreMetrics>();

function storeMetrics(registry: Registry): StoreMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      transactions: new Counter({ name: "cairn_logserver_transactions_total", help: "Group-commit transactions of the record store", registers }),
      storeRequests: new Counter({ name: "cairn_logserver_store_requests_total", help: "Store requests answered, by status", labelNames: ["status"], registers }),
      records: new Counter({ name: "cairn_logserver_records_written_total", help: "Records written by store requests", registers }),
      bytes: new Counter({ name: "cairn_logserver_payload_bytes_written_total", help: "Payload bytes written by store requests", registers }),
      commitSeconds: new Histogram({
        name: "cairn_logserver_commit_seconds",
        help: "Duration of one group-commit transaction including fsync",
        buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
        registers,
      }),
      batchOps: new Histogram({
        name: "cairn_logserver_commit_batch_requests",
        help: "Requests (stores, seals, trims) per group-commit transaction",
        buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
        registers,
      }),
      trimmed: new Counter({ name: "cairn_logserver_records_trimmed_total", help: "Records deleted by trims", registers }),
      writable: new Gauge({
        name: "cairn_logserver_store_writable",
        help: "1 while the record store takes writes; 0 once a failed write disabled it, until a recovery probe (test write + fsync) succeeds",
        registers,
      }),
      probes: new Counter({
        name: "cairn_logserver_store_recovery_probes_total",
        help: "Recovery probes of a disabled record store (a durable test transaction and a WAL checkpoint), by result",
        labelNames: ["result"],
        registers,
      }),
      reenabled: new Counter({
        name: "cairn_logserver_store_reenabled_total",
        help: "Times a recovery probe re-enabled writes to a record store that a failed write had disabled",
        registers,
      }),
      recovering: new Gauge({
        name: "cairn_logserver_store_recovering",
        help: "1 while the record store is in data-loss mode (it came back empty where this node had one): no seal, tail or digest evidence, repair stores only, until no segment names the node",
        registers,
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

interface StateRow {
  sequencer: string | null;
  sealed: number;
  trim_point: number;
  local_tail: number;
  known_global_tail: number;
}

export class LogStore implements LogServerApi {
  readonly path: string;
  private readonly db: Database;
  private readonly opts: Required<Omit<LogStoreOptions, "registry" | "logger" | "path" | "dataLoss" | "provisioned">>;
  /** Data-loss (recovering) mode: see README "Data loss". Persisted in `meta` until cleared. */
  private dataLoss: boolean;
  private readonly logger: Logger | undefined;
  private readonly metrics: StoreMetrics | undefined;
  private readonly states = new Map<LogletId, LogletState>();
  private readonly waiters = new Map<LogletId, Set<TailWaiter>>();
  private queue: WriteOp[] = [];
  private flushScheduled = false;
  /** Set after a failed transaction: stores answer `disabled`, seals and trims fail (Restate's failsafe). */
  private writeFailure: Error | undefined;
  /** When the write failure began (Unix ms), while the store is disabled. */
  private writeFailureSinceMs: number | undefined;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private probeDelayMs: number;
  private failedProbes = 0;
  /** When a probe last re-enabled writes, and the delay that probe had waited (flap damping). */
  private lastReenabled: { atMs: number; delayMs: number } | undefined;

  /** False once a write failed (the store then refuses writes until a recovery probe succeeds) or it closed. */
  get writable(): boolean {
    return !this.closed && this.writeFailure === undefined;
  }

  /**
   * True in data-loss mode: the store came back empty where this node had one (see README "Data
   * loss"). It answers non-authoritatively (no evidence for seals and find-tail) and takes repair
   * stores only, until `clearDataLoss` (the node, once no segment in the chains names it).
   */
  get recovering(): boolean {
    return this.dataLoss;
  }

  /** When data-loss mode began (Unix ms), if the store is in it and the time was recorded. */
  readonly dataLossSinceMs: number | undefined;

  /**
   * Enters data-loss mode (persisted first): the node learnt that this store replaces one it had
   * (its data directory was wiped: the nodes configuration knows it from another incarnation).
   */
  enterDataLoss(): void {
    if (this.dataLoss) return;
    if (this.closed) throw closedError(this.path);
    this.db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [DATA_LOSS_KEY, String(Date.now())]);
    this.dataLoss = true;
    this.metrics?.recovering.set(1);
    this.logger?.warn(
      { path: this.path, code: "CAIRN-LOG-0025" },
      "this node's data directory was replaced (the cluster knows it from another incarnation): the log-server record store enters data-loss mode (no seal, tail or digest evidence, repair stores only) until no segment names this node",
    );
  }

  /** Leaves data-loss mode for good (persisted before it takes effect). */
  clearDataLoss(): void {
    if (!this.dataLoss) return;
    if (this.closed) throw closedError(this.path);
    this.db.run("DELETE FROM meta WHERE key = ?", [DATA_LOSS_KEY]);
    this.dataLoss = false;
    this.metrics?.recovering.set(0);
  }

  /** Why the store takes no writes any more (the failed write's error), if a write failed. */
  get writeFailureReason(): string | undefined {
    return this.writeFailure?.message;
  }

  /** While disabled: since when, how many recovery probes failed, and the delay before the next one. */
  get recoveryStatus(): { sinceMs: number; failedProbes: number; nextProbeDelayMs: number } | undefined {
    if (this.writeFailure === undefined || this.writeFailureSinceMs === undefined) return undefined;
    return { sinceMs: this.writeFailureSinceMs, failedProbes: this.failedProbes, nextProbeDelayMs: this.probeDelayMs };
  }
  private closed = false;
  private readonly pendingTrims = new Map<LogletId, LogletOffset>();
  private trimScheduled = false;
  private drained: (() => void) | undefined;
  /** The sync of the last committed batch, while it runs (no other batch commits meanwhile). */
  private syncing: Promise<void> | undefined;
  /** File descriptor of the WAL, opened at the first sync. */
  private walFd: number | undefined;
  /** The checkpoint thread, while checkpoints run off the event loop. */
  private checkpointer: WalCheckpointer | undefined;
  private checkpointRunning = false;
  /** Estimated WAL pages committed since the last checkpoint started. */
  private walPagesSinceCheckpoint = 0;
  private readonly counters: LogStoreStats = {
    transactions: 0,
    storeRequests: 0,
    recordsWritten: 0,
    payloadBytesWritten: 0,
    seals: 0,
    trimChunks: 0,
    recordsTrimmed: 0,
    threadCheckpoints: 0,
    threadReads: 0,
  };
  private readonly q: {
    loadState: Statement<StateRow, [string]>;
    upsertState: Statement<unknown, [string, string | null, number, number, number, number]>;
    insertRecord: Statement<unknown, [string, number, Uint8Array]>;
    readRecords: Statement<{ record_offset: number; payload: Uint8Array }, [string, number, number]>;
    digestOffsets: Statement<{ record_offset: number }, [string, number, number]>;
    trimChunk: Statement<unknown, [string, number, number]>;
  };

  private constructor(options: LogStoreOptions, db: Database) {
    this.path = options.path;
    this.db = db;
    this.opts = {
      sync: options.sync ?? LOG_STORE_DEFAULTS.sync,
      checkOnOpen: options.checkOnOpen ?? LOG_STORE_DEFAULTS.checkOnOpen,
      maxBatchRecords: options.maxBatchRecords ?? LOG_STORE_DEFAULTS.maxBatchRecords,
      maxBatchBytes: options.maxBatchBytes ?? LOG_STORE_DEFAULTS.maxBatchBytes,
      maxRepairBatchBytes: options.maxRepairBatchBytes ?? LOG_STORE_DEFAULTS.maxRepairBatchBytes,
      walCheckpointPages: options.walCheckpointPages ?? LOG_STORE_DEFAULTS.walCheckpointPages,
      checkpointOffLoop: options.checkpointOffLoop ?? LOG_STORE_DEFAULTS.checkpointOffLoop,
      trimChunkRecords: options.trimChunkRecords ?? LOG_STORE_DEFAULTS.trimChunkRecords,
      maxReadRecords: options.maxReadRecords ?? LOG_STORE_DEFAULTS.maxReadRecords,
      maxDigestOffsets: options.maxDigestOffsets ?? LOG_STORE_DEFAULTS.maxDigestOffsets,
      walSizeLimitBytes: options.walSizeLimitBytes ?? LOG_STORE_DEFAULTS.walSizeLimitBytes,
      recoveryProbeInitialDelayMs: options.recoveryProbeInitialDelayMs ?? LOG_STORE_DEFAULTS.recoveryProbeInitialDelayMs,
      recoveryProbeMaxDelayMs: options.recoveryProbeMaxDelayMs ?? LOG_STORE_DEFAULTS.recoveryProbeMaxDelayMs,
    };
    for (const [k, v] of Object.entries(this.opts)) {
      if (typeof v === "number") invariant(Number.isSafeInteger(v) && v > 0, () => `log store option ${k} must be a positive integer, got ${v}`);
    }
    invariant(this.opts.recoveryProbeInitialDelayMs <= this.opts.recoveryProbeMaxDelayMs, "recovery probe initial delay above its maximum");
    this.probeDelayMs = this.opts.recoveryProbeInitialDelayMs;
    const lostAt = db.query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?").get(DATA_LOSS_KEY);
    this.dataLoss = (options.dataLoss ?? false) || lostAt !== null;
    this.dataLossSinceMs = lostAt === null ? undefined : Number(lostAt.value);
    this.logger = options.logger;
    this.metrics = options.registry ? storeMetrics(options.registry) : undefined;
    this.metrics?.writable.set(1);
    this.metrics?.recovering.set(this.dataLoss ? 1 : 0);
    this.q = {
      loadState: db.query(
        "SELECT sequencer, sealed, trim_point, local_tail, known_global_tail FROM loglets WHERE loglet_id = ?",
      ),
      upsertState: db.query(
        `INSERT INTO loglets (loglet_id, sequencer, sealed, trim_point, local_tail, known_global_tail)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(loglet_id) DO UPDATE SET sequencer = excluded.sequencer, sealed = excluded.sealed,
           trim_point = excluded.trim_point, local_tail = excluded.local_tail,
           known_global_tail = excluded.known_global_tail`,
      ),
      insertRecord: db.query("INSERT OR IGNORE INTO records (loglet_id, record_offset, payload) VALUES (?, ?, ?)"),
      readRecords: db.query(
        "SELECT record_offset, payload FROM records WHERE loglet_id = ? AND record_offset BETWEEN ? AND ? ORDER BY record_offset",
      ),
      digestOffsets: db.query(
        "SELECT record_offset FROM records WHERE loglet_id = ? AND record_offset BETWEEN ? AND ? ORDER BY record_offset",
      ),
      // PK-prefixed: the subquery seeks (loglet_id, lowest offset) and walks at most `limit` rows.
      trimChunk: db.query(
        `DELETE FROM records WHERE loglet_id = ?1 AND record_offset IN
           (SELECT record_offset FROM records WHERE loglet_id = ?1 AND record_offset <= ?2 ORDER BY record_offset LIMIT ?3)`,
      ),
    };
    if (this.opts.checkpointOffLoop) {
      try {
        this.checkpointer = new WalCheckpointer(this.path, this.opts.sync);
      } catch (e) {
        this.checkpointInline(e);
      }
    }
    // Finish deletions that a restart interrupted: trim points are durable, deletion is background work.
    const trimmed = db
      .query<{ loglet_id: string; trim_point: number }, []>("SELECT loglet_id, trim_point FROM loglets WHERE trim_point > 0")
      .all();
    for (const row of trimmed) this.pendingTrims.set(row.loglet_id as LogletId, logletOffset(row.trim_point));
    if (this.pendingTrims.size > 0) this.scheduleTrim();
  }

  /**
   * Opens (or creates) the store. An existing file is checked with `PRAGMA quick_check`; a damaged,
   * truncated or foreign file fails with LOG_STORE_CORRUPT naming the file, never silently.
   */
  static open(options: LogStoreOptions): LogStore {
    const path = options.path;
    let db: Database | undefined;
    try {
      const size = fileSize(path);
      const marker = createdMarkerPath(path);
      if (size === undefined || size === 0) {
        const walBytes = fileSize(`${path}-wal`) ?? 0;
        const hadStore = existsSync(marker);
        if (options.provisioned === true && (size === 0 || walBytes > 0 || hadStore)) {
          const what =
            size === 0
              ? "is empty (0 bytes)"
              : walBytes > 0
                ? `is missing, but its write-ahead log ${path}-wal (${walBytes} bytes) is not`
                : `is missing, but ${marker} says this node created it (${describeMarker(marker)})`;
          throw new CairnError(
            "LOG_STORE_EMPTY",
            `log store ${path} ${what}, and this data directory belongs to a provisioned cluster: the file was truncated, replaced or removed`,
            { path },
          );
        }
        createStoreFile(path);
        // Provisioned, no store and no trace of one: either this node never had a store (it gained
        // the role later) or its store was wiped with its marker. It cannot tell which, so it starts
        // in data-loss mode; the node clears it at once if no segment names it.
        if (options.provisioned === true) markDataLoss(path, Date.now());
      }
      // Stores created before the marker existed get one now: from here on, losing the file is noticed.
      if (!existsSync(marker)) writeCreatedMarker(marker);
      db = new Database(path, { create: false });
      const offLoop = options.checkpointOffLoop ?? LOG_STORE_DEFAULTS.checkpointOffLoop;
      // Without the checkpoint thread one connection owns the file (the node's data-dir lock keeps
      // other nodes out): an exclusive lock taken once, before the first WAL access, spares every
      // transaction its file-lock system calls and keeps the WAL index in memory instead of a shared
      // -shm file. With it, the checkpointer's connection shares the file (WAL index in -shm).
      if (!offLoop) db.run("PRAGMA locking_mode = EXCLUSIVE");
      const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get();
      if (mode?.journal_mode !== "wal") throw new Error(`cannot switch to WAL mode (got ${mode?.journal_mode})`);
      // NORMAL: commits write the WAL without syncing it (the store syncs it off the event loop
      // before answering, see flush); checkpoints still sync the WAL before and the database after.
      db.run(`PRAGMA synchronous = ${(options.sync ?? true) ? "NORMAL" : "OFF"}`);
      db.run(`PRAGMA journal_size_limit = ${options.walSizeLimitBytes ?? LOG_STORE_DEFAULTS.walSizeLimitBytes}`);
      db.run(`PRAGMA wal_autocheckpoint = ${offLoop ? 0 : (options.walCheckpointPages ?? LOG_STORE_DEFAULTS.walCheckpointPages)}`);
      if (options.checkOnOpen ?? LOG_STORE_DEFAULTS.checkOnOpen) {
        const rows = db.query<{ quick_check: string }, []>("PRAGMA quick_check").all();
        if (rows.length !== 1 || rows[0]?.quick_check !== "ok") {
          const problems = rows.slice(0, 5).map((r) => r.quick_check);
          throw corrupt(path, `quick_check found damage: ${problems.join("; ")}`);
        }
      }
      const hasMeta = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
      if (!hasMeta) throw corrupt(path, "the file is an SQLite database but not a cairn log store (no meta table)");
      const version = db.query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?").get("format_version");
      if (version?.value !== FORMAT_VERSION) {
        throw corrupt(path, `unsupported log store format version ${version?.value ?? "(none)"}, expected ${FORMAT_VERSION}`);
      }
      return new LogStore(options, db);
    } catch (e) {
      try {
        db?.close();
      } catch {
        // The original error is the one to report.
      }
      if (e instanceof CairnError) throw e;
      const code = (e as { code?: string }).code ?? "";
      const message = e instanceof Error ? e.message : String(e);
      if (code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB") || /malformed|not a database/i.test(message)) {
        throw corrupt(path, message, e);
      }
      throw new CairnError("LOG_STORE_UNAVAILABLE", `cannot open the log store ${path}: ${message}`, { path }, { cause: e });
    }
  }

  /** The page size the file actually uses (8192 unless it was created elsewhere). */
  pageSizeBytes(): number {
    return this.db.query<{ page_size: number }, []>("PRAGMA page_size").get()?.page_size ?? 0;
  }

  stats(): LogStoreStats {
    return { ...this.counters };
  }

  // ---- writes: queued, group-committed --------------------------------------------------------

  store(request: StoreRequest): Promise<StoreResponse> {
    let bytes = 0;
    for (const p of request.payloads) bytes += p.byteLength;
    return this.enqueue<StoreResponse>((s) => ({ kind: "store", request, records: request.payloads.length, bytes, ...s }));
  }

  seal(request: SealRequest): Promise<SealResponse> {
    return this.enqueue<SealResponse>((s) => ({ kind: "seal", loglet: request.loglet, ...s }));
  }

  trim(request: TrimRequest): Promise<TrimResponse> {
    return this.enqueue<TrimResponse>((s) => ({ kind: "trim", loglet: request.loglet, upTo: request.upTo, ...s }));
  }

  private enqueue<T>(make: (settle: Settle<T>) => WriteOp): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.path));
    return new Promise<T>((resolve, reject) => {
      this.queue.push(make({ resolve, reject } as Settle<T>));
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate runs after this turn's I/O callbacks: every request that arrived meanwhile joins.
    setImmediate(() => {
      this.flushScheduled = false;
      // A batch is being synced: its completion schedules the next flush.
      if (this.syncing !== undefined) return;
      this.flush();
      if (this.syncing !== undefined) return;
      if (this.queue.length > 0) this.scheduleFlush();
      else this.drained?.();
    });
  }

  /** fdatasync of the WAL file on the I/O thread pool (what synchronous = FULL would do in the commit). */
  private syncWal(): Promise<void> {
    this.walFd ??= openSync(`${this.path}-wal`, "r");
    const fd = this.walFd;
    return new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * The next group commit's operations, in arrival order, within the batch bounds. Repair stores
   * beyond `maxRepairBatchBytes` wait for a later transaction while later operations go ahead,
   * except those of a loglet with a waiting operation: every loglet's operations stay in arrival
   * order (the rules are per loglet; concurrent requests of different loglets have no order).
   */
  private takeBatch(): WriteOp[] {
    let records = 0;
    let bytes = 0;
    let repairBytes = 0;
    const batch: WriteOp[] = [];
    const waiting: WriteOp[] = [];
    const held = new Set<LogletId>();
    let i = 0;
    for (; i < this.queue.length; i++) {
      const op = this.queue[i]!;
      const loglet = op.kind === "store" ? op.request.loglet : op.loglet;
      const r = op.kind === "store" ? op.records : 0;
      const b = op.kind === "store" ? op.bytes : 0;
      if (batch.length > 0 && (records + r > this.opts.maxBatchRecords || bytes + b > this.opts.maxBatchBytes)) break;
      const repair = op.kind === "store" && op.request.repair === true;
      if (held.has(loglet) || (repair && repairBytes > 0 && repairBytes + b > this.opts.maxRepairBatchBytes)) {
        held.add(loglet);
        waiting.push(op);
        continue;
      }
      if (repair) repairBytes += b;
      records += r;
      bytes += b;
      batch.push(op);
    }
    this.queue = waiting.length === 0 ? this.queue.slice(i) : [...waiting, ...this.queue.slice(i)];
    return batch;
  }

  /** One group-commit transaction over a bounded prefix of the queue. */
  private flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.takeBatch();

    if (this.writeFailure) {
      for (const op of batch) this.answerAfterFailure(op);
      return;
    }

    const staged = new Map<LogletId, LogletState>();
    const answers: Array<() => void> = [];
    const trimsToRun: Array<[LogletId, LogletOffset]> = [];
    let recordsWritten = 0;
    let bytesWritten = 0;
    const statusCounts = new Map<string, number>();
    const started = performance.now();
    try {
      // Readers look at cached states only while this batch is synced: cache what it starts from.
      const pinBefore = (loglet: LogletId) => {
        if (!this.states.has(loglet)) {
          const s = this.loadState(loglet);
          if (s !== EMPTY_LOGLET_STATE) this.states.set(loglet, s);
        }
      };
      for (const op of batch) pinBefore(op.kind === "store" ? op.request.loglet : op.loglet);
      this.db.transaction(() => {
        for (const op of batch) {
          const loglet = op.kind === "store" ? op.request.loglet : op.loglet;
          const before = staged.get(loglet) ?? this.loadState(loglet);
          switch (op.kind) {
            case "store": {
              const decision = decideStore(before, op.request, { acceptsNormalStores: !this.dataLoss });
              statusCounts.set(decision.status, (statusCounts.get(decision.status) ?? 0) + 1);
              let after = before;
              if (decision.status === "stored") {
                after = decision.state;
                if (decision.write) {
                  const first = op.request.firstOffset;
                  for (let o = decision.write.from; o <= decision.write.to; o++) {
                    const payload = op.request.payloads[o - first];
                    invariant(payload !== undefined, "store payload index out of range");
                    this.q.insertRecord.run(loglet, o, payload);
                    recordsWritten++;
                    bytesWritten += payload.byteLength;
                  }
                }
                staged.set(loglet, after);
              }
              const header = after;
              answers.push(() => op.resolve({ status: decision.status, ...tailHeader(header) }));
              break;
            }
            case "seal": {
              const after = applySeal(before);
              staged.set(loglet, after);
              answers.push(() => op.resolve({ ...tailHeader(after), authoritative: !this.dataLoss }));
              break;
            }
            case "trim": {
              const after = applyTrim(before, op.upTo);
              if (after !== before) {
                staged.set(loglet, after);
                trimsToRun.push([loglet, after.trimPoint]);
              }
              answers.push(() => op.resolve({ trimPoint: after.trimPoint }));
              break;
            }
          }
        }
        for (const [loglet, state] of staged) {
          checkState(state);
          this.q.upsertState.run(
            loglet,
            state.sequencer ? formatGenerationalNodeId(state.sequencer) : null,
            state.sealed ? 1 : 0,
            state.trimPoint,
            state.localTail,
            state.knownGlobalTail,
          );
        }
      })();
    } catch (e) {
      // The transaction rolled back: nothing of this batch is durable. Stop taking writes (a disk that
      // failed once is not trusted again until a recovery probe proves it writes and syncs); reads
      // keep working.
      this.disable(e);
      for (const op of batch) this.answerAfterFailure(op);
      return;
    }
    if (this.opts.sync ?? true) {
      this.syncing = this.syncWal().then(
        () => this.publish(batch, staged, answers, trimsToRun, recordsWritten, bytesWritten, statusCounts, started),
        (e: unknown) => {
          // Committed but maybe not on disk: nothing of the batch is answered as stored, and the store
          // takes no more writes until a recovery probe (whose checkpoint writes and syncs whatever
          // the file holds, this batch included) succeeds. The cached states of the batch's loglets
          // are dropped: from here on the file is the truth.
          for (const loglet of staged.keys()) this.states.delete(loglet);
          this.disable(e);
          for (const op of batch) this.answerAfterFailure(op);
        },
      );
      void this.syncing.finally(() => {
        this.syncing = undefined;
        if (this.queue.length > 0) this.scheduleFlush();
        else this.drained?.();
      });
      return;
    }
    this.publish(batch, staged, answers, trimsToRun, recordsWritten, bytesWritten, statusCounts, started);
  }

  /** The batch is durable: publish its states, then answer, then wake tail waiters. */
  private publish(
    batch: WriteOp[],
    staged: Map<LogletId, LogletState>,
    answers: Array<() => void>,
    trimsToRun: Array<[LogletId, LogletOffset]>,
    recordsWritten: number,
    bytesWritten: number,
    statusCounts: Map<string, number>,
    started: number,
  ): void {
    const seconds = (performance.now() - started) / 1000;
    // Durable: publish the new states, then answer, then wake tail waiters.
    for (const [loglet, state] of staged) this.states.set(loglet, state);
    for (const [loglet, upTo] of trimsToRun) this.pendingTrims.set(loglet, upTo);
    this.counters.transactions++;
    this.counters.recordsWritten += recordsWritten;
    this.counters.payloadBytesWritten += bytesWritten;
    for (const op of batch) {
      if (op.kind === "store") this.counters.storeRequests++;
      else if (op.kind === "seal") this.counters.seals++;
    }
    if (this.metrics) {
      this.metrics.transactions.inc();
      this.metrics.records.inc(recordsWritten);
      this.metrics.bytes.inc(bytesWritten);
      this.metrics.commitSeconds.observe(seconds);
      this.metrics.batchOps.observe(batch.length);
      for (const [status, n] of statusCounts) this.metrics.storeRequests.inc({ status }, n);
    }
    for (const answer of answers) answer();
    for (const [loglet, state] of staged) this.wakeWaiters(loglet, state);
    if (trimsToRun.length > 0) this.scheduleTrim();
    // Estimated WAL pages: the payload's (rows fill about 85% of a page), the state row's, an interior one.
    this.walPagesSinceCheckpoint += Math.ceil(bytesWritten / (PAGE_SIZE_BYTES * 0.85)) + 2;
    if (this.walPagesSinceCheckpoint >= this.opts.walCheckpointPages) this.startCheckpoint();
  }

  // ---- WAL checkpoints off the event loop ----------------------------------------------------

  /**
   * Asks the checkpoint thread for a PASSIVE checkpoint (commits go on meanwhile). The WAL restarts
   * from its beginning (and stops growing) only at a commit that finds every frame copied, which
   * commits during a checkpoint prevent: once the WAL holds more than WAL_CAP_CHECKPOINTS
   * checkpoints' worth, the few frames behind the thread's checkpoint are copied here, inline.
   */
  private startCheckpoint(): void {
    const c = this.checkpointer;
    if (c === undefined || this.checkpointRunning || this.closed) return;
    this.checkpointRunning = true;
    this.walPagesSinceCheckpoint = 0;
    c.checkpoint().then(
      (r) => {
        this.checkpointRunning = false;
        this.counters.threadCheckpoints++;
        if (this.closed) return;
        if (r.logFrames >= WAL_CAP_CHECKPOINTS * this.opts.walCheckpointPages) this.catchUpInline();
        if (this.walPagesSinceCheckpoint >= this.opts.walCheckpointPages) this.startCheckpoint();
      },
      (e: unknown) => {
        this.checkpointRunning = false;
        if (!this.closed) this.checkpointInline(e);
      },
    );
  }

  private catchUpInline(): void {
    try {
      this.db.query("PRAGMA wal_checkpoint(PASSIVE)").get();
    } catch (e) {
      this.logger?.warn({ err: e, path: this.path }, "an inline WAL checkpoint failed; the next one retries");
    }
  }

  /** The checkpoint thread failed: SQLite checkpoints inside commits again (slower, as safe). */
  private checkpointInline(e: unknown): void {
    const c = this.checkpointer;
    this.checkpointer = undefined;
    void c?.close();
    this.logger?.warn({ err: e, path: this.path }, "the log store's checkpoint thread failed: WAL checkpoints run inside commits, on the event loop");
    try {
      this.db.run(`PRAGMA wal_autocheckpoint = ${this.opts.walCheckpointPages}`);
    } catch (err) {
      this.logger?.warn({ err, path: this.path }, "cannot re-enable inline WAL checkpoints");
    }
  }

  // ---- disabled after a failed write: recovery probe ------------------------------------------

  private disable(e: unknown): void {
    this.writeFailure = e instanceof Error ? e : new Error(String(e));
    this.writeFailureSinceMs = Date.now();
    this.failedProbes = 0;
    // Failing again soon after a recovery (a disk with a little room freed, a flaky device): the
    // probe is not proof enough, so back off from where the last recovery stood instead of
    // re-enabling every initial delay.
    const last = this.lastReenabled;
    const flapping = last !== undefined && this.writeFailureSinceMs - last.atMs < this.opts.recoveryProbeMaxDelayMs;
    this.probeDelayMs = flapping ? Math.min(last.delayMs * 2, this.opts.recoveryProbeMaxDelayMs) : this.opts.recoveryProbeInitialDelayMs;
    this.metrics?.writable.set(0);
    this.logger?.error(
      { err: this.writeFailure, path: this.path, code: "CAIRN-LOG-0007", probeInMs: this.probeDelayMs },
      "log store write failed; store writes disabled until a recovery probe (test write + fsync) succeeds",
    );
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closed || this.probeTimer !== undefined) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.probe();
    }, this.probeDelayMs);
  }

  /**
   * One recovery probe: a test transaction (the WAL written) and a truncating checkpoint (the WAL
   * synced, the main file written and synced, the WAL reset), on the connection that failed. A
   * failed commit was rolled back; a commit whose sync failed is in the file and is made durable by
   * the checkpoint (its loglets' cached states were dropped, so the file is what the store serves).
   * The probe proves both files take writes and syncs again before any store does.
   * Runs between event-loop turns, so no group commit interleaves with it.
   */
  private probe(): void {
    if (this.closed || this.writeFailure === undefined) return;
    try {
      this.db.transaction(() => {
        this.db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [PROBE_KEY, String(Date.now())]);
      })();
      const cp = this.db.query<{ busy: number }, []>("PRAGMA wal_checkpoint(TRUNCATE)").get();
      if (cp === null || cp.busy !== 0) throw new Error(`the WAL checkpoint did not complete (${JSON.stringify(cp)})`);
    } catch (e) {
      this.failedProbes++;
      this.metrics?.probes.inc({ result: "failed" });
      const delayMs = this.probeDelayMs;
      this.probeDelayMs = Math.min(this.probeDelayMs * 2, this.opts.recoveryProbeMaxDelayMs);
      this.logger?.warn(
        { err: e, path: this.path, failedProbes: this.failedProbes, nextProbeInMs: this.probeDelayMs, lastDelayMs: delayMs },
        "log store recovery probe failed; store writes stay disabled",
      );
      this.scheduleProbe();
      return;
    }
    const failure = this.writeFailure;
    const disabledMs = Date.now() - (this.writeFailureSinceMs ?? Date.now());
    this.lastReenabled = { atMs: Date.now(), delayMs: this.probeDelayMs };
    this.writeFailure = undefined;
    this.writeFailureSinceMs = undefined;
    this.failedProbes = 0;
    this.probeDelayMs = this.opts.recoveryProbeInitialDelayMs;
    this.metrics?.probes.inc({ result: "succeeded" });
    this.metrics?.reenabled.inc();
    this.metrics?.writable.set(1);
    this.logger?.warn(
      { path: this.path, disabledMs, failure: failure.message },
      "log store recovery probe succeeded (test write and checkpoint fsynced): store writes re-enabled",
    );
    if (this.queue.length > 0) this.scheduleFlush();
  }

  private answerAfterFailure(op: WriteOp): void {
    if (op.kind === "store") {
      const state = this.loadState(op.request.loglet);
      op.resolve({ status: "disabled", ...tailHeader(state) });
    } else {
      op.reject(
        new CairnError("LOG_STORE_UNAVAILABLE", `log store ${this.path} cannot write: ${this.writeFailure?.message}`, {
          path: this.path,
        }),
      );
    }
  }

  // ---- trim: background deletion in bounded chunks -------------------------------------------

  private scheduleTrim(): void {
    if (this.trimScheduled || this.closed) return;
    this.trimScheduled = true;
    setImmediate(() => {
      this.trimScheduled = false;
      if (this.closed) return;
      this.trimOneChunk();
      if (this.pendingTrims.size > 0) this.scheduleTrim();
    });
  }

  private trimOneChunk(): void {
    const first = this.pendingTrims.entries().next();
    if (first.done) return;
    const [loglet, upTo] = first.value;
    try {
      const { changes } = this.q.trimChunk.run(loglet, upTo, this.opts.trimChunkRecords);
      this.counters.trimChunks++;
      this.counters.recordsTrimmed += changes;
      this.metrics?.trimmed.inc(changes);
      // A later trim of the same loglet may have replaced upTo meanwhile: keep it if so.
      if (changes < this.opts.trimChunkRecords && this.pendingTrims.get(loglet) === upTo) this.pendingTrims.delete(loglet);
    } catch (e) {
      // Deletion is housekeeping: the trim point is durable and reads honour it; try again later.
      this.logger?.warn({ err: e, loglet, path: this.path }, "deleting trimmed records failed; the next start retries");
      this.pendingTrims.delete(loglet);
    }
  }

  /** Resolves when no trim deletion is pending (tests, benchmarks). */
  async trimsSettled(): Promise<void> {
    while (this.pendingTrims.size > 0 && !this.closed) await new Promise((r) => setImmediate(r));
  }

  // ---- reads --------------------------------------------------------------------------------

  async getLogletInfo(request: GetLogletInfoRequest): Promise<LogletInfo> {
    this.assertOpen();
    const s = this.loadState(request.loglet);
    return { ...tailHeader(s), trimPoint: s.trimPoint, sequencer: s.sequencer, authoritative: !this.dataLoss };
  }

  async getRecords(request: GetRecordsRequest): Promise<GetRecordsResponse> {
    this.assertOpen();
    const s = this.loadState(request.loglet);
    const from = request.from < 1 ? 1 : request.from;
    const to = Math.min(request.to, s.localTail - 1);
    const entries: ReadEntry[] = [];
    if (from > to) return { entries, nextOffset: logletOffset(from), ...tailHeader(s) };
    let cursor = from;
    if (cursor <= s.trimPoint) {
      const gapTo = Math.min(s.trimPoint, to);
      entries.push({ kind: "trim-gap", from: logletOffset(cursor), to: logletOffset(gapTo) });
      cursor = gapTo + 1;
    }
    let next = to + 1;
    // A bulk read (re-replication's source windows) runs on the checkpoint thread's connection:
    // reading a MiB here would hold the event loop for milliseconds. Clipped above to the published
    // (durable) tail, like this connection's reads; any failure falls back to reading here.
    if (cursor <= to && this.checkpointer !== undefined && request.byteBudget >= BULK_READ_MIN_BYTES) {
      const r = await this.checkpointer.read(request.loglet, cursor, to, request.byteBudget, this.opts.maxReadRecords).catch(() => undefined);
      this.assertOpen();
      if (r !== undefined) {
        this.counters.threadReads++;
        for (let i = 0; i < r.offsets.length; i++) entries.push({ kind: "data", offset: logletOffset(r.offsets[i]!), payload: r.payloads[i]! });
        return { entries, nextOffset: logletOffset(r.next), ...tailHeader(s) };
      }
    }
    if (cursor <= to) {
      let bytes = 0;
      let count = 0;
      for (const row of this.q.readRecords.iterate(request.loglet, cursor, to)) {
        if (count > 0 && (bytes + row.payload.byteLength > request.byteBudget || count >= this.opts.maxReadRecords)) {
          next = row.record_offset;
          break;
        }
        entries.push({ kind: "data", offset: logletOffset(row.record_offset), payload: row.payload });
        bytes += row.payload.byteLength;
        count++;
      }
    }
    return { entries, nextOffset: logletOffset(next), ...tailHeader(s) };
  }

  async getDigest(request: GetDigestRequest): Promise<GetDigestResponse> {
    this.assertOpen();
    // A batch being synced may fill holes below a tail: a digest (evidence for repair) waits for it.
    if (this.syncing !== undefined) await this.syncing.catch(() => undefined);
    this.assertOpen();
    const s = this.loadState(request.loglet);
    const from = request.from < 1 ? 1 : request.from;
    const coveredTo = Math.min(request.to, from + this.opts.maxDigestOffsets - 1);
    const entries: DigestEntry[] = [];
    const scanTo = Math.min(coveredTo, s.localTail - 1);
    let cursor = from;
    if (cursor <= scanTo && cursor <= s.trimPoint) {
      const gapTo = Math.min(s.trimPoint, scanTo);
      entries.push({ from: logletOffset(cursor), to: logletOffset(gapTo), status: "trimmed" });
      cursor = gapTo + 1;
    }
    if (cursor <= scanTo) {
      let runFrom = -1;
      let runTo = -1;
      for (const row of this.q.digestOffsets.iterate(request.loglet, cursor, scanTo)) {
        const o = row.record_offset;
        if (runFrom >= 0 && o === runTo + 1) {
          runTo = o;
          continue;
        }
        if (runFrom >= 0) entries.push({ from: logletOffset(runFrom), to: logletOffset(runTo), status: "exists" });
        runFrom = o;
        runTo = o;
      }
      if (runFrom >= 0) entries.push({ from: logletOffset(runFrom), to: logletOffset(runTo), status: "exists" });
    }
    return {
      entries,
      nextOffset: logletOffset(Math.max(from, coveredTo + 1)),
      authoritative: !this.dataLoss,
      ...tailHeader(s),
    };
  }

  waitForTail(request: WaitForTailRequest, signal?: AbortSignal): Promise<WaitForTailResponse> {
    if (this.closed) return Promise.reject(closedError(this.path));
    const s = this.loadState(request.loglet);
    if (tailReached(s, request.offset)) return Promise.resolve({ localTail: s.localTail, sealed: s.sealed });
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<WaitForTailResponse>((resolve, reject) => {
      let set = this.waiters.get(request.loglet);
      if (!set) {
        set = new Set();
        this.waiters.set(request.loglet, set);
      }
      const waiters = set;
      const onAbort = () => {
        waiter.cleanup();
        reject(signal?.reason);
      };
      const waiter: TailWaiter = {
        offset: request.offset,
        resolve,
        reject,
        cleanup: () => {
          signal?.removeEventListener("abort", onAbort);
          waiters.delete(waiter);
          if (waiters.size === 0) this.waiters.delete(request.loglet);
        },
      };
      waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private wakeWaiters(loglet: LogletId, state: LogletState): void {
    const set = this.waiters.get(loglet);
    if (!set) return;
    for (const w of [...set]) {
      if (tailReached(state, w.offset)) {
        w.cleanup();
        w.resolve({ localTail: state.localTail, sealed: state.sealed });
      }
    }
  }

  // ---- state ----------------------------------------------------------------------------------

  private loadState(loglet: LogletId): LogletState {
    const cached = this.states.get(loglet);
    if (cached) return cached;
    const row = this.q.loadState.get(loglet);
    if (!row) return EMPTY_LOGLET_STATE; // unknown loglets are not cached: reads must not grow memory
    const sequencer = row.sequencer === null ? null : parseGenerationalNodeId(row.sequencer);
    if (sequencer === undefined) throw corrupt(this.path, `loglet ${loglet} has an unreadable sequencer "${row.sequencer}"`);
    const state: LogletState = {
      sequencer,
      sealed: row.sealed !== 0,
      trimPoint: logletOffset(row.trim_point),
      localTail: logletOffset(row.local_tail),
      knownGlobalTail: logletOffset(row.known_global_tail),
    };
    checkState(state);
    this.states.set(loglet, state);
    return state;
  }

  private assertOpen(): void {
    if (this.closed) throw closedError(this.path);
  }

  /** Finishes queued writes, fails tail waiters, stops trimming and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.queue.length > 0 || this.flushScheduled || this.syncing !== undefined) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        this.scheduleFlush();
      });
    }
    this.closed = true;
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    // The checkpointer's connection first: the last one to close checkpoints and removes the WAL.
    const c = this.checkpointer;
    this.checkpointer = undefined;
    await c?.close();
    for (const set of this.waiters.values()) {
      for (const w of [...set]) {
        w.cleanup();
        w.reject(closedError(this.path));
      }
    }
    this.waiters.clear();
    this.db.close();
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function tailHeader(s: LogletState) {
  return { localTail: s.localTail, sealed: s.sealed, knownGlobalTail: s.knownGlobalTail };
}

/** Size of a file in bytes, undefined if it does not exist. */
function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Builds an empty, initialised store at `path`: under a temporary name first (closed, so its WAL is
 * checkpointed into it, and fsynced), then renamed into place. A crash leaves either no file or a
 * complete one. Stale WAL/SHM files beside `path` belong to no store now and are removed first.
 */
function createStoreFile(path: string): void {
  const temp = `${path}.creating`;
  for (const f of [temp, `${temp}-wal`, `${temp}-shm`, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  const db = new Database(temp, { create: true });
  try {
    // Must precede the first table: at 4096 every 1 KiB row spills into an overflow page.
    db.run(`PRAGMA page_size = ${PAGE_SIZE_BYTES}`);
    const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get();
    if (mode?.journal_mode !== "wal") throw new Error(`cannot switch to WAL mode (got ${mode?.journal_mode})`);
    db.run("PRAGMA synchronous = FULL");
    db.transaction(() => {
      db.run("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
      db.run(
        `CREATE TABLE loglets (
           loglet_id TEXT PRIMARY KEY,
           sequencer TEXT,
           sealed INTEGER NOT NULL,
           trim_point INTEGER NOT NULL,
           local_tail INTEGER NOT NULL,
           known_global_tail INTEGER NOT NULL
         ) WITHOUT ROWID`,
      );
      db.run(
        `CREATE TABLE records (
           loglet_id TEXT NOT NULL,
           record_offset INTEGER NOT NULL,
           payload BLOB NOT NULL,
           PRIMARY KEY (loglet_id, record_offset)
         ) WITHOUT ROWID`,
      );
      db.run("INSERT INTO meta (key, value) VALUES ('format_version', ?)", [FORMAT_VERSION]);
    })();
  } finally {
    db.close();
  }
  fsyncPath(temp);
  renameSync(temp, path);
  fsyncPath(dirname(path));
}

/** `meta` key the recovery probe writes (value: when, Unix ms); nothing reads it. */
const PROBE_KEY = "recovery_probe_at_ms";

/** `meta` key present while the store is in data-loss mode (value: since when, Unix ms). */
const DATA_LOSS_KEY = "data_loss_since_ms";

function markDataLoss(path: string, nowMs: number): void {
  const db = new Database(path, { create: false });
  try {
    db.run("PRAGMA synchronous = FULL");
    db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [DATA_LOSS_KEY, String(nowMs)]);
  } finally {
    db.close();
  }
  fsyncPath(path);
}

/**
 * Beside the store, a small file that outlives it: "this node created a record store here, at this
 * time". A provisioned node whose store file is gone but whose marker is not lost records it may
 * have acknowledged, and must not start an empty store in its place (CAIRN-LOG-0021).
 */
export function createdMarkerPath(storePath: string): string {
  return `${storePath}.created`;
}

function writeCreatedMarker(marker: string): void {
  const temp = `${marker}.tmp`;
  writeFileSync(temp, `${JSON.stringify({ createdAtMs: Date.now(), note: "this node created its log-server record store; see CAIRN-LOG-0021 in docs/errors.md before deleting either file" })}\n`);
  fsyncPath(temp);
  renameSync(temp, marker);
  fsyncPath(dirname(marker));
}

function describeMarker(marker: string): string {
  try {
    const createdAtMs = (JSON.parse(readFileSync(marker, "utf8")) as { createdAtMs?: unknown }).createdAtMs;
    return typeof createdAtMs === "number" ? `at ${new Date(createdAtMs).toISOString()}` : "unreadable time";
  } catch {
    return "unreadable time";
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function corrupt(path: string, reason: string, cause?: unknown): CairnError {
  return new CairnError("LOG_STORE_CORRUPT", `log store ${path} is damaged: ${reason}`, { path }, cause ? { cause } : undefined);
}

function closedError(path: string): CairnError {
  return new CairnError("LOG_STORE_CLOSED", `log store ${path} is closed`, { path });
}

