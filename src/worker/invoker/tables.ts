// The invocation tables of a partition store (same SQLite database, same transactions as the
// applied LSN): invocation status rows, journals (raw protocol frames, replayed verbatim), virtual
// object locks and FIFO inboxes, durable timers, workflow promises, the outbox to other partitions
// and the dedup marks of records received from them.
// Invariants: journal indexes of an invocation are dense from 0; a notification entry carries its id
// (`c:<completion>`, `s:<signal>`, `n:<name>`) so suspensions are checked by index, not by decoding;
// a completed invocation keeps its row (and result) until `expire_ms`, not its journal.
import type { Database } from "bun:sqlite";
import type { CallerSink, FailureValue, ResultValue, TargetSpec } from "./records.ts";

export type InvocationStatus = "scheduled" | "inboxed" | "ready" | "suspended" | "backing-off" | "paused" | "completed";
export const INVOCATION_STATUSES: readonly InvocationStatus[] = ["scheduled", "inboxed", "ready", "suspended", "backing-off", "paused", "completed"];

export interface Awaiting {
  readonly completions: readonly number[];
  readonly signals: readonly number[];
  readonly namedSignals: readonly string[];
}

/** A sink of an invocation's result: a caller's Call (0x800D) or AttachInvocation (0x8012) completion. */
export interface ResultSink extends CallerSink {
  readonly notificationType: number;
}

export interface InvocationRow {
  readonly id: string;
  readonly status: InvocationStatus;
  readonly target: TargetSpec;
  readonly idempotencyKey: string | null;
  readonly createdMs: number;
  readonly modifiedMs: number;
  readonly executeAtMs: number | null;
  /** Attempts whose outcome was recorded (ended, suspended or failed). */
  readonly attempts: number;
  /** Failed attempts since the journal last grew (Start.retry_count_since_last_stored_entry). */
  readonly retryCount: number;
  /** Record time when the journal last grew. */
  readonly lastEntryMs: number;
  readonly nextRetryMs: number | null;
  readonly journalLength: number;
  readonly commandCount: number;
  readonly awaiting: Awaiting | null;
  readonly sinks: readonly ResultSink[];
  readonly lastError: string | null;
  readonly completedMs: number | null;
  readonly retentionMs: number;
  readonly result: ResultValue | null;
}

export interface JournalEntry {
  readonly type: number;
  readonly frame: Uint8Array;
  /** For notifications: `c:<id>`, `s:<idx>`, `n:<name>`; null for commands. */
  readonly nid: string | null;
}

export type PromiseState = { readonly completed: ResultValue } | { readonly waiters: ReadonlyArray<{ readonly invocationId: string; readonly completionId: number }> };

export interface OutboxEntry {
  readonly seq: number;
  readonly partition: number;
  /** The record to deliver, in envelope encoding (see outbox in state-machine.ts). */
  readonly record: Uint8Array;
}

type Doc = Omit<InvocationRow, "id" | "status" | "result">;

export class InvocationTables {
  private readonly q;

  constructor(private readonly db: Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS invocations (id TEXT PRIMARY KEY, status TEXT NOT NULL, service TEXT NOT NULL, created_ms INTEGER NOT NULL,
        expire_ms INTEGER, doc TEXT NOT NULL, result_value BLOB, result_failure TEXT) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS invocations_by_status ON invocations (status) WHERE status <> 'completed';
      CREATE INDEX IF NOT EXISTS invocations_by_expiry ON invocations (expire_ms) WHERE expire_ms IS NOT NULL;
      CREATE TABLE IF NOT EXISTS journal (id TEXT NOT NULL, idx INTEGER NOT NULL, type INTEGER NOT NULL, nid TEXT, frame BLOB NOT NULL, PRIMARY KEY (id, idx)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS vo_locks (service TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (service, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS vo_inbox (service TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (service, key, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS timers (fire_ms INTEGER NOT NULL, id TEXT NOT NULL, completion_id INTEGER NOT NULL, PRIMARY KEY (fire_ms, id, completion_id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS promises (service TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, value BLOB, PRIMARY KEY (service, key, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, partition INTEGER NOT NULL, record BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS inbound (source INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
    `);
    this.q = {
      get: db.query<{ id: string; status: string; doc: string; result_value: Uint8Array | null; result_failure: string | null }, [string]>(
        "SELECT id, status, doc, result_value, result_failure FROM invocations WHERE id = ?",
      ),
      put: db.query(
        "INSERT OR REPLACE INTO invocations (id, status, service, created_ms, expire_ms, doc, result_value, result_failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      del: db.query("DELETE FROM invocations WHERE id = ?"),
      active: db.query<{ id: string }, []>("SELECT id FROM invocations WHERE status <> 'completed'"),
      expired: db.query<{ id: string }, [number, number]>("SELECT id FROM invocations WHERE expire_ms IS NOT NULL AND expire_ms < ? ORDER BY expire_ms LIMIT ?"),
      oldestExpiry: db.query<{ e: number | null }, []>("SELECT min(expire_ms) AS e FROM invocations WHERE expire_ms IS NOT NULL"),
      list: db.query<{ id: string }, [string, string, number]>(
        "SELECT id FROM invocations WHERE (?1 = '' OR service = ?1) AND (?2 = '' OR status = ?2) ORDER BY created_ms DESC LIMIT ?3",
      ),
      countByStatus: db.query<{ status: string; n: number }, []>("SELECT status, count(*) AS n FROM invocations GROUP BY status"),
      countActive: db.query<{ status: string; n: number }, []>("SELECT status, count(*) AS n FROM invocations WHERE status <> 'completed' GROUP BY status"),
      journal: db.query<{ type: number; nid: string | null; frame: Uint8Array }, [string]>("SELECT type, nid, frame FROM journal WHERE id = ? ORDER BY idx"),
      journalFrom: db.query<{ idx: number; type: number; nid: string | null; frame: Uint8Array }, [string, number]>(
        "SELECT idx, type, nid, frame FROM journal WHERE id = ? AND idx >= ? ORDER BY idx",
      ),
      journalPut: db.query("INSERT INTO journal (id, idx, type, nid, frame) VALUES (?, ?, ?, ?, ?)"),
      journalDelFrom: db.query("DELETE FROM journal WHERE id = ? AND idx >= ?"),
      journalHasNid: db.query<{ n: number }, [string, string]>("SELECT count(*) AS n FROM journal WHERE id = ? AND nid = ?"),
      lockGet: db.query<{ id: string }, [string, string]>("SELECT id FROM vo_locks WHERE service = ? AND key = ?"),
      lockPut: db.query("INSERT OR REPLACE INTO vo_locks (service, key, id) VALUES (?, ?, ?)"),
      lockDel: db.query("DELETE FROM vo_locks WHERE service = ? AND key = ?"),
      inboxPush: db.query("INSERT INTO vo_inbox (service, key, seq, id) VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM vo_inbox WHERE service = ?1 AND key = ?2), ?3)"),
      inboxHead: db.query<{ seq: number; id: string }, [string, string]>("SELECT seq, id FROM vo_inbox WHERE service = ? AND key = ? ORDER BY seq LIMIT 1"),
      inboxDel: db.query("DELETE FROM vo_inbox WHERE service = ? AND key = ? AND id = ?"),
      timerPut: db.query("INSERT OR IGNORE INTO timers (fire_ms, id, completion_id) VALUES (?, ?, ?)"),
      timerDel: db.query("DELETE FROM timers WHERE id = ? AND completion_id = ?"),
      timerDelAll: db.query("DELETE FROM timers WHERE id = ?"),
      timers: db.query<{ fire_ms: number; id: string; completion_id: number }, [number]>("SELECT fire_ms, id, completion_id FROM timers ORDER BY fire_ms LIMIT ?"),
      promiseGet: db.query<{ state: string; value: Uint8Array | null }, [string, string, string]>("SELECT state, value FROM promises WHERE service = ? AND key = ? AND name = ?"),
      promisePut: db.query("INSERT OR REPLACE INTO promises (service, key, name, state, value) VALUES (?, ?, ?, ?, ?)"),
      promisesDel: db.query("DELETE FROM promises WHERE service = ? AND key = ?"),
      outboxPut: db.query("INSERT INTO outbox (seq, partition, record) VALUES (?, ?, ?)"),
      outboxMax: db.query<{ s: number | null }, []>("SELECT max(seq) AS s FROM outbox"),
      outboxRead: db.query<{ seq: number; partition: number; record: Uint8Array }, [number]>("SELECT seq, partition, record FROM outbox ORDER BY seq LIMIT ?"),
      outboxTruncate: db.query("DELETE FROM outbox WHERE seq <= ?"),
      inboundGet: db.query<{ seq: number }, [number]>("SELECT seq FROM inbound WHERE source = ?"),
      inboundPut: db.query("INSERT OR REPLACE INTO inbound (source, seq) VALUES (?, ?)"),
    };
  }

  get(id: string): InvocationRow | undefined {
    const r = this.q.get.get(id);
    if (r === null) return undefined;
    const doc = JSON.parse(r.doc) as Doc;
    const result: ResultValue | null = r.result_value !== null ? { value: r.result_value } : r.result_failure !== null ? { failure: JSON.parse(r.result_failure) as FailureValue } : null;
    return { ...doc, id: r.id, status: r.status as InvocationStatus, result };
  }

  put(row: InvocationRow): void {
    const { id, status, result, ...doc } = row;
    const expireMs = row.completedMs !== null ? row.completedMs + row.retentionMs : null;
    const value = result !== null && "value" in result ? result.value : null;
    const failure = result !== null && "failure" in result ? JSON.stringify(result.failure) : null;
    this.q.put.run(id, status, row.target.service, row.createdMs, expireMs, JSON.stringify(doc), value, failure);
  }

  /** Deletes an invocation with its journal and timers. */
  delete(id: string): void {
    this.q.del.run(id);
    this.q.journalDelFrom.run(id, 0);
    this.q.timerDelAll.run(id);
  }

  /** Ids of invocations that are not completed (a new leader resumes them). */
  activeIds(): string[] {
    return this.q.active.all().map((r) => r.id);
  }

  expiredIds(beforeMs: number, limit: number): string[] {
    return this.q.expired.all(beforeMs, limit).map((r) => r.id);
  }

  oldestExpiryMs(): number {
    return this.q.oldestExpiry.get()?.e ?? Number.POSITIVE_INFINITY;
  }

  list(service: string | null, status: InvocationStatus | null, limit: number): InvocationRow[] {
    return this.q.list.all(service ?? "", status ?? "", limit).flatMap((r) => this.get(r.id) ?? []);
  }

  countByStatus(): Record<string, number> {
    return Object.fromEntries(this.q.countByStatus.all().map((r) => [r.status, r.n]));
  }

  /** Counts of the invocations that are not completed (cheap: a partial index holds only those). */
  countActiveByStatus(): Record<string, number> {
    return Object.fromEntries(this.q.countActive.all().map((r) => [r.status, r.n]));
  }

  journal(id: string): JournalEntry[] {
    return this.q.journal.all(id);
  }

  /** Writes `entries` at `at` (the length the attempt started with); entries already there move after them. */
  insertJournal(id: string, at: number, entries: readonly JournalEntry[]): void {
    if (entries.length === 0) return;
    const moved = this.q.journalFrom.all(id, at);
    this.q.journalDelFrom.run(id, at);
    let idx = at;
    for (const e of entries) this.q.journalPut.run(id, idx++, e.type, e.nid, e.frame);
    for (const e of moved) this.q.journalPut.run(id, idx++, e.type, e.nid, e.frame);
  }

  appendJournal(id: string, at: number, entry: JournalEntry): void {
    this.q.journalPut.run(id, at, entry.type, entry.nid, entry.frame);
  }

  deleteJournal(id: string): void {
    this.q.journalDelFrom.run(id, 0);
  }

  hasNotification(id: string, nid: string): boolean {
    return (this.q.journalHasNid.get(id, nid)?.n ?? 0) > 0;
  }

  lockHolder(service: string, key: string): string | undefined {
    return this.q.lockGet.get(service, key)?.id;
  }

  lock(service: string, key: string, id: string): void {
    this.q.lockPut.run(service, key, id);
  }

  unlock(service: string, key: string): void {
    this.q.lockDel.run(service, key);
  }

  inboxPush(service: string, key: string, id: string): void {
    this.q.inboxPush.run(service, key, id);
  }

  inboxHead(service: string, key: string): string | undefined {
    return this.q.inboxHead.get(service, key)?.id;
  }

  inboxRemove(service: string, key: string, id: string): void {
    this.q.inboxDel.run(service, key, id);
  }

  addTimer(fireMs: number, id: string, completionId: number): void {
    this.q.timerPut.run(fireMs, id, completionId);
  }

  deleteTimer(id: string, completionId: number): void {
    this.q.timerDel.run(id, completionId);
  }

  timers(limit: number): Array<{ fireMs: number; invocationId: string; completionId: number }> {
    return this.q.timers.all(limit).map((r) => ({ fireMs: r.fire_ms, invocationId: r.id, completionId: r.completion_id }));
  }

  promise(service: string, key: string, name: string): PromiseState | undefined {
    const r = this.q.promiseGet.get(service, key, name);
    if (r === null) return undefined;
    const state = JSON.parse(r.state) as { completed?: { failure?: FailureValue }; waiters?: Array<{ invocationId: string; completionId: number }> };
    if (state.completed !== undefined) return { completed: state.completed.failure !== undefined ? { failure: state.completed.failure } : { value: r.value ?? new Uint8Array() } };
    return { waiters: state.waiters ?? [] };
  }

  putPromise(service: string, key: string, name: string, state: PromiseState): void {
    if ("completed" in state) {
      const c = state.completed;
      if ("value" in c) this.q.promisePut.run(service, key, name, JSON.stringify({ completed: {} }), c.value);
      else this.q.promisePut.run(service, key, name, JSON.stringify({ completed: { failure: c.failure } }), null);
    } else this.q.promisePut.run(service, key, name, JSON.stringify({ waiters: state.waiters }), null);
  }

  deletePromises(service: string, key: string): void {
    this.q.promisesDel.run(service, key);
  }

  pushOutbox(seq: number, partition: number, record: Uint8Array): void {
    this.q.outboxPut.run(seq, partition, record);
  }

  maxOutboxSeq(): number {
    return this.q.outboxMax.get()?.s ?? 0;
  }

  outbox(limit: number): OutboxEntry[] {
    return this.q.outboxRead.all(limit);
  }

  truncateOutbox(upToSeq: number): void {
    this.q.outboxTruncate.run(upToSeq);
  }

  inboundSeq(source: number): number {
    return this.q.inboundGet.get(source)?.seq ?? 0;
  }

  setInboundSeq(source: number, seq: number): void {
    this.q.inboundPut.run(source, seq);
  }
}
