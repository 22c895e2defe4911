// The storage contract between the core and its driver. The core only reads through `RaftStorage`;
// the driver writes (entries, hard state, snapshots) when it handles a Ready and before `advance()`.
// `MemoryStorage` is the reference implementation: the simulator's "disk", and the behaviour a
// durable (SQLite) store must mimic. Invariant kept: the stored log is contiguous from
// `firstIndex()` to `lastIndex()`, and `term(firstIndex() - 1)` is the snapshot's term.

import { invariant } from "./assert.ts";
import type { ConfState, Entry, HardState, Index, Snapshot, Term } from "./types.ts";
import { EMPTY_HARD_STATE, EMPTY_SNAPSHOT, ZERO_INDEX, ZERO_TERM, entrySizeBytes } from "./types.ts";

export type RaftStorageErrorCode = "compacted" | "unavailable" | "snapshotTemporarilyUnavailable";

/** An expected storage condition (reading below the compaction point or past the end). */
export class RaftStorageError extends Error {
  override readonly name = "RaftStorageError";
  constructor(
    readonly code: RaftStorageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface InitialState {
  readonly hardState: HardState;
  /** Membership as of the snapshot (the core derives the current one by replaying the log's changes). */
  readonly confState: ConfState;
}

/** What the core reads. Implementations must be synchronous and reflect every completed write. */
export interface RaftStorage {
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at least one if lo < hi, stopping before the total exceeds `maxSizeBytes`.
   * Throws RaftStorageError("compacted") if lo < firstIndex(), ("unavailable") if hi > lastIndex() + 1.
   */
  entries(lo: Index, hi: Index, maxSizeBytes: number): Entry[];
  /** Term of entry i, for firstIndex() - 1 <= i <= lastIndex(); throws RaftStorageError otherwise. */
  term(i: Index): Term;
  firstIndex(): Index;
  lastIndex(): Index;
  /** The most recent snapshot (may throw "snapshotTemporarilyUnavailable" while one is being built). */
  snapshot(): Snapshot;
}

/** Everything a node persists; what `MemoryStorage` is built from and what a restart reads back. */
export interface PersistedState {
  readonly hardState: HardState;
  /** Entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  /**
   * Optional cross-check: the membership after the last entry. The core derives membership from the
   * snapshot and the log; if given, this must agree with the derived one.
   */
  readonly confState?: ConfState;
}

export class MemoryStorage implements RaftStorage {
  private hardStateValue: HardState = EMPTY_HARD_STATE;
  private snapshotValue: Snapshot = EMPTY_SNAPSHOT;
  /** The compaction point: entries up to it are gone; it never passes the snapshot index. */
  private offsetIndex: Index = ZERO_INDEX;
  private offsetTerm: Term = ZERO_TERM;
  /** log[k] has index offsetIndex + 1 + k. */
  private log: Entry[] = [];

  static fromPersistedState(state: PersistedState): MemoryStorage {
    const s = new MemoryStorage();
    if (state.snapshot !== undefined) s.applySnapshot(state.snapshot);
    if (state.entries.length > 0) s.append(state.entries);
    s.setHardState(state.hardState);
    return s;
  }

  initialState(): InitialState {
    return { hardState: this.hardStateValue, confState: this.snapshotValue.metadata.confState };
  }

  hardState(): HardState {
    return this.hardStateValue;
  }

  firstIndex(): Index {
    return (this.offsetIndex + 1) as Index;
  }

  lastIndex(): Index {
    return (this.offsetIndex + this.log.length) as Index;
  }

  term(i: Index): Term {
    if (i === this.offsetIndex) return this.offsetTerm;
    if (i < this.offsetIndex) throw new RaftStorageError("compacted", `term(${i}) below compaction point ${this.offsetIndex}`);
    const e = this.log[i - this.offsetIndex - 1];
    if (e === undefined) throw new RaftStorageError("unavailable", `term(${i}) beyond last index ${this.lastIndex()}`);
    return e.term;
  }

  entries(lo: Index, hi: Index, maxSizeBytes: number): Entry[] {
    if (lo <= this.offsetIndex) {
      throw new RaftStorageError("compacted", `entries from ${lo}, compacted through ${this.offsetIndex}`);
    }
    if (hi > this.lastIndex() + 1) {
      throw new RaftStorageError("unavailable", `entries up to ${hi - 1}, last index ${this.lastIndex()}`);
    }
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - this.offsetIndex - 1]!;
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxSizeBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snapshotValue;
  }

  // ---- driver-side writes ------------------------------------------------------------------

  setHardState(hs: HardState): void {
    this.hardStateValue = hs;
  }

  /** Appends entries, replacing any existing suffix from the first new index on. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    for (let k = 1; k < entries.length; k++) {
      invariant(entries[k]!.index === first.index + k, "storage append: entries not contiguous");
    }
    invariant(
      first.index <= this.lastIndex() + 1,
      () => `storage append: gap, last index ${this.lastIndex()}, first new ${first.index}`,
    );
    // Entries at or below the compaction point are covered by the snapshot already.
    const skip = Math.max(0, this.offsetIndex + 1 - first.index);
    if (skip >= entries.length) return;
    this.log.length = first.index + skip - this.offsetIndex - 1;
    for (let k = skip; k < entries.length; k++) this.log.push(entries[k]!);
  }

  /** Replaces the whole log with a snapshot (a follower installing one sent by its leader). */
  applySnapshot(snapshot: Snapshot): void {
    invariant(
      snapshot.metadata.index >= this.snapshotValue.metadata.index,
      () => `storage: snapshot ${snapshot.metadata.index} older than ${this.snapshotValue.metadata.index}`,
    );
    this.snapshotValue = snapshot;
    this.offsetIndex = snapshot.metadata.index;
    this.offsetTerm = snapshot.metadata.term;
    this.log = [];
  }

  /**
   * Records a snapshot of the driver's state machine as of `index` (an applied, hence stored, index).
   * Entries are kept so followers slightly behind can still be sent entries; `compact` drops them.
   */
  createSnapshot(index: Index, confState: ConfState, data: Uint8Array): Snapshot {
    invariant(
      index >= this.snapshotValue.metadata.index,
      () => `storage: snapshot at ${index} older than ${this.snapshotValue.metadata.index}`,
    );
    invariant(index <= this.lastIndex(), () => `storage: snapshot at ${index} beyond last index ${this.lastIndex()}`);
    this.snapshotValue = { metadata: { index, term: this.term(index), confState }, data };
    return this.snapshotValue;
  }

  /**
   * Discards entries up to and including `index`. Only allowed up to the snapshot index: entries below
   * `firstIndex` must be covered by a snapshot that a lagging follower can be sent instead.
   */
  compact(index: Index): void {
    if (index <= this.offsetIndex) return;
    invariant(index <= this.snapshotValue.metadata.index, "storage: compact beyond the snapshot");
    invariant(index <= this.lastIndex(), "storage: compact beyond the last index");
    const term = this.term(index);
    this.log = this.log.slice(index - this.offsetIndex);
    this.offsetIndex = index;
    this.offsetTerm = term;
  }

  /** A copy of everything stored, in the shape a node is created from. */
  toPersistedState(): PersistedState {
    const entries = this.log.filter((e) => e.index > this.snapshotValue.metadata.index);
    return { hardState: this.hardStateValue, entries, snapshot: this.snapshotValue };
  }
}
