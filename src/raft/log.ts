// A node's log as the core sees it: what storage holds, plus the "unstable" tail (entries and perhaps
// a snapshot) that was accepted in memory and is handed to the driver in the next Ready to persist.
// Invariants: firstIndex - 1 <= applied <= committed <= lastIndex; committed entries are never
// truncated; the unstable tail starts right after what it does not cover in storage.

import { invariant } from "./assert.ts";
import type { RaftStorage } from "./storage.ts";
import type { Entry, Index, Snapshot, Term } from "./types.ts";
import { entrySizeBytes } from "./types.ts";

class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0] (or where the next unstable entry goes). */
  offset: Index;

  constructor(offset: Index) {
    this.offset = offset;
  }

  firstIndexIfKnown(): Index | null {
    return this.snapshot === null ? null : ((this.snapshot.metadata.index + 1) as Index);
  }

  lastIndexIfKnown(): Index | null {
    if (this.entries.length > 0) return (this.offset + this.entries.length - 1) as Index;
    return this.snapshot === null ? null : this.snapshot.metadata.index;
  }

  termIfKnown(i: Index): Term | null {
    if (i < this.offset) {
      const s = this.snapshot;
      return s !== null && s.metadata.index === i ? s.metadata.term : null;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? null : e.term;
  }

  /** Entries up to (index, term) reached storage; a later truncation makes the call a no-op. */
  stableTo(index: Index, term: Term): void {
    if (index < this.offset) return;
    if (this.termIfKnown(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = (index + 1) as Index;
  }

  stableSnapshotTo(index: Index): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  restore(s: Snapshot): void {
    this.snapshot = s;
    this.entries = [];
    this.offset = (s.metadata.index + 1) as Index;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything unstable (and the driver's storage append replaces its suffix).
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: Index, hi: Index): Entry[] {
    invariant(lo >= this.offset && hi <= this.offset + this.entries.length, () => `unstable slice [${lo},${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  committed: Index;
  applied: Index;
  private readonly unstable: Unstable;
  /** Lowest index whose entry changed since the last `takeChangedFloor()` (for the simulator's checker). */
  private changedFloor: number = Number.POSITIVE_INFINITY;

  constructor(
    readonly storage: RaftStorage,
    committed: Index,
    applied: Index,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable((last + 1) as Index);
    invariant(committed >= first - 1, () => `log: commit ${committed} below the snapshot ${first - 1}`);
    invariant(committed <= last, () => `log: commit ${committed} beyond last index ${last}`);
    invariant(applied <= committed, () => `log: applied ${applied} beyond commit ${committed}`);
    this.committed = committed;
    this.applied = Math.max(applied, first - 1) as Index;
  }

  firstIndex(): Index {
    return this.unstable.firstIndexIfKnown() ?? this.storage.firstIndex();
  }

  lastIndex(): Index {
    return this.unstable.lastIndexIfKnown() ?? this.storage.lastIndex();
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    invariant(t !== null, "log: term of the last index unknown");
    return t;
  }

  /** Term of entry i, or null if it was compacted away or is beyond the last index. */
  term(i: Index): Term | null {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return null;
    return this.unstable.termIfKnown(i) ?? this.storage.term(i);
  }

  matchTerm(i: Index, t: Term): boolean {
    return this.term(i) === t;
  }

  /** Raft's election restriction: is a log ending at (lastIndex, lastTerm) at least as up to date? */
  isUpToDate(lastIndex: Index, lastTerm: Term): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Index of the first entry that is missing or has another term here, or 0 if all match. */
  findConflict(ents: readonly Entry[]): Index {
    const first = ents[0];
    // The common case, a pure extension of the log, needs no term lookups.
    if (first !== undefined && first.index === this.lastIndex() + 1) return first.index;
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0 as Index;
  }

  /**
   * The largest j <= index whose term is <= term (the term is 0 when unknown, e.g. compacted).
   * Used to skip a whole conflicting term per append round trip.
   */
  findConflictByTerm(index: Index, term: Term): { index: Index; term: Term } {
    let j = index;
    for (;;) {
      const t = this.term(j);
      if (t === null) return { index: j, term: 0 as Term };
      if (t <= term) return { index: j, term: t };
      j = (j - 1) as Index;
    }
  }

  /**
   * Follower side of an append. Returns null if the log does not contain (prevIndex, prevTerm);
   * otherwise appends what is new, advances the commit and returns the last index known to match and
   * the first index that was written (0 if nothing was).
   */
  maybeAppend(prevIndex: Index, prevTerm: Term, leaderCommit: Index, ents: readonly Entry[]): { lastNew: Index; firstWritten: Index } | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = (prevIndex + ents.length) as Index;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      invariant(conflict > this.committed, () => `log: conflict at ${conflict} at or below commit ${this.committed}`);
      this.append(ents.slice(conflict - ents[0]!.index));
    }
    this.commitTo(Math.min(leaderCommit, lastNew) as Index);
    return { lastNew, firstWritten: conflict };
  }

  append(ents: readonly Entry[]): Index {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    invariant(first.index > this.committed, () => `log: append at ${first.index} overwrites committed ${this.committed}`);
    invariant(first.index <= this.lastIndex() + 1, () => `log: append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(ents);
    if (first.index < this.changedFloor) this.changedFloor = first.index;
    return this.lastIndex();
  }

  /** Entries in [lo, hi) bounded by `maxSizeBytes` (at least one); lo must not be compacted. */
  slice(lo: Index, hi: Index, maxSizeBytes: number): Entry[] {
    if (lo >= hi) return [];
    invariant(lo >= this.firstIndex(), () => `log: slice from ${lo} below first index ${this.firstIndex()}`);
    invariant(hi <= this.lastIndex() + 1, () => `log: slice to ${hi} beyond last index ${this.lastIndex()}`);
    const offset = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < offset) {
      const storedHi = Math.min(hi, offset) as Index;
      out = this.storage.entries(lo, storedHi, maxSizeBytes);
      if (out.length < storedHi - lo) return out; // the size bound stopped it
    }
    if (hi > offset) {
      const unstable = this.unstable.slice(Math.max(lo, offset) as Index, hi);
      if (out.length === 0) out = unstable;
      else for (const e of unstable) out.push(e);
    }
    return limitSize(out, maxSizeBytes);
  }

  /** Entries from `lo` to the end (bounded), or null if `lo` was compacted away. */
  entriesFrom(lo: Index, maxSizeBytes: number): Entry[] | null {
    if (lo < this.firstIndex()) return null;
    return this.slice(lo, (this.lastIndex() + 1) as Index, maxSizeBytes);
  }

  commitTo(i: Index): void {
    if (i <= this.committed) return;
    invariant(i <= this.lastIndex(), () => `log: commit ${i} beyond last index ${this.lastIndex()}`);
    this.committed = i;
  }

  appliedTo(i: Index): void {
    if (i === 0) return;
    invariant(i <= this.committed, () => `log: applied ${i} beyond commit ${this.committed}`);
    invariant(i >= this.applied, () => `log: applied goes back from ${this.applied} to ${i}`);
    this.applied = i;
  }

  hasNextCommittedEntries(): boolean {
    return this.unstable.snapshot === null && this.committed > this.applied;
  }

  nextCommittedEntries(maxSizeBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice((this.applied + 1) as Index, (this.committed + 1) as Index, maxSizeBytes);
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable.entries;
  }

  unstableSnapshot(): Snapshot | null {
    return this.unstable.snapshot;
  }

  stableTo(index: Index, term: Term): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: Index): void {
    this.unstable.stableSnapshotTo(index);
  }

  /** Replaces the log with a snapshot sent by the leader. */
  restore(s: Snapshot): void {
    invariant(s.metadata.index > this.committed, "log: restoring a snapshot at or below the commit index");
    this.committed = s.metadata.index;
    this.unstable.restore(s);
    if (s.metadata.index < this.changedFloor) this.changedFloor = s.metadata.index;
  }

  /** Returns and resets the lowest index changed since the previous call (Infinity if none). */
  takeChangedFloor(): number {
    const floor = this.changedFloor;
    this.changedFloor = Number.POSITIVE_INFINITY;
    return floor;
  }
}

function limitSize(ents: Entry[], maxSizeBytes: number): Entry[] {
  let size = 0;
  for (let k = 0; k < ents.length; k++) {
    size += entrySizeBytes(ents[k]!);
    if (k > 0 && size > maxSizeBytes) return ents.slice(0, k);
  }
  return ents;
}
