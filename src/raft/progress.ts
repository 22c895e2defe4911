// What a leader knows about each member's log, and the flow control of appends to it.
// A follower is in one of three states: `probe` (one append in flight until it answers, used after a
// rejection or a restart of leadership), `replicate` (pipelined appends, at most `maxInflightMsgs`
// messages / `maxInflightBytes` bytes unacknowledged) or `snapshot` (waiting for a snapshot install).
// Invariants: match < next; in replicate state every in-flight append ends below `next`.

import { invariant } from "./assert.ts";
import type { ConfState, Index, RaftId } from "./types.ts";

/** A bounded FIFO of (last index, bytes) of appends in flight to one follower. */
export class Inflights {
  private readonly lastIndexes: number[];
  private readonly sizes: number[];
  private start = 0;
  private countValue = 0;
  private bytesValue = 0;

  constructor(
    private readonly maxMsgs: number,
    private readonly maxBytes: number,
  ) {
    this.lastIndexes = new Array<number>(maxMsgs).fill(0);
    this.sizes = new Array<number>(maxMsgs).fill(0);
  }

  get count(): number {
    return this.countValue;
  }

  get bytes(): number {
    return this.bytesValue;
  }

  full(): boolean {
    return this.countValue >= this.maxMsgs || this.bytesValue >= this.maxBytes;
  }

  add(lastIndex: Index, bytes: number): void {
    invariant(this.countValue < this.maxMsgs, "inflights: add while full");
    if (this.countValue > 0) {
      const prev = this.lastIndexes[(this.start + this.countValue - 1) % this.maxMsgs]!;
      invariant(lastIndex > prev, () => `inflights: ${lastIndex} not after ${prev}`);
    }
    const slot = (this.start + this.countValue) % this.maxMsgs;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.countValue++;
    this.bytesValue += bytes;
  }

  /** Frees every append whose last index is <= `index` (acknowledged). */
  freeLE(index: Index): void {
    while (this.countValue > 0 && this.lastIndexes[this.start]! <= index) {
      this.bytesValue -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxMsgs;
      this.countValue--;
    }
    if (this.countValue === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.countValue > 0) this.freeLE(this.lastIndexes[this.start]! as Index);
  }

  reset(): void {
    this.start = 0;
    this.countValue = 0;
    this.bytesValue = 0;
  }
}

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match: Index = 0 as Index;
  next: Index;
  state: ProgressState = "probe";
  /** In snapshot state: the index of the snapshot being installed. */
  pendingSnapshot: Index = 0 as Index;
  /** In probe state: an append was sent and no answer has come back yet. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Ticks spent in snapshot state, or in replicate state without any acknowledgement. */
  stalledTicks = 0;
  readonly inflights: Inflights;

  constructor(next: Index, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    this.stalledTicks = 0;
    if (this.state === "snapshot") {
      this.next = (Math.max(this.match, this.pendingSnapshot) + 1) as Index;
    } else {
      this.next = (this.match + 1) as Index;
    }
    this.state = "probe";
    this.pendingSnapshot = 0 as Index;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.stalledTicks = 0;
    this.state = "replicate";
    this.next = (this.match + 1) as Index;
    this.pendingSnapshot = 0 as Index;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.stalledTicks = 0;
    this.state = "snapshot";
    this.pendingSnapshot = snapshotIndex;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** An acknowledgement up to `index`; returns whether `match` advanced. */
  maybeUpdate(index: Index): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      this.stalledTicks = 0;
      updated = true;
    }
    if (this.next < index + 1) this.next = (index + 1) as Index;
    return updated;
  }

  /** After sending entries up to `lastIndex` in replicate state. */
  optimisticUpdate(lastIndex: Index): void {
    this.next = (lastIndex + 1) as Index;
  }

  /**
   * A rejection of the append with prevIndex `rejected`. `matchHint` is the highest index the logs may
   * still agree at. Returns false for a stale rejection (of an append sent before the current state).
   */
  maybeDecrTo(rejected: Index, matchHint: Index): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = (this.match + 1) as Index;
      return true;
    }
    if (this.state === "snapshot") return false;
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1) as Index;
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}

/** Membership and per-member progress. Voter/learner sets always equal the current configuration. */
export class ProgressTracker {
  voters: ReadonlySet<RaftId> = new Set();
  learners: ReadonlySet<RaftId> = new Set();
  /** Progress of every member (leader only; empty on other roles). */
  readonly progress = new Map<RaftId, Progress>();

  setConfState(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
  }

  isVoter(id: RaftId): boolean {
    return this.voters.has(id);
  }

  isLearner(id: RaftId): boolean {
    return this.learners.has(id);
  }

  isMember(id: RaftId): boolean {
    return this.voters.has(id) || this.learners.has(id);
  }

  quorumSize(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  hasQuorum(ids: ReadonlySet<RaftId>): boolean {
    let n = 0;
    for (const id of this.voters) if (ids.has(id)) n++;
    return n >= this.quorumSize();
  }

  /** The largest index stored on a quorum of voters (0 without voters). */
  committedIndex(): Index {
    if (this.voters.size === 0) return 0 as Index;
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    return matches[this.quorumSize() - 1]! as Index;
  }

  /** "won" / "lost" / "pending" for a vote tally (true = granted). */
  voteResult(votes: ReadonlyMap<RaftId, boolean>): "won" | "lost" | "pending" {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorumSize();
    if (granted >= q) return "won";
    if (this.voters.size - rejected < q) return "lost";
    return "pending";
  }

  /** Whether a quorum of voters was heard from recently (`self` always counts as active). */
  quorumActive(self: RaftId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= this.quorumSize();
  }
}
