// Global oracles the simulator runs after every event. They see every node's in-memory log (through
// `RaftNode.inspect`), its durable storage and what it applies, and fail the run on:
// - election safety: two leaders in one term; leader append-only: a leader rewriting its own log;
// - log matching: two logs with the same (index, term) but different prefixes (a rolling prefix hash
//   per node, registered globally per (index, term));
// - leader completeness: a leader of term T missing an entry committed in a term < T (the term in
//   which it was committed, not the entry's own term);
// - state machine safety: two nodes applying different entries at one index, or applying an entry
//   that is not the committed one;
// - monotonicity: a node's commit index going back within one life, durable term/commit going back;
// - durability before promise: a vote or an append acknowledgement sent before it was persisted.
// Linearizability of reads is checked by the world (it knows the client history).

import type { Entry, Index, Message, RaftId, RaftNode, Term } from "../../src/raft/index.ts";
import type { MemoryStorage } from "../../src/raft/index.ts";

export class SafetyViolation extends Error {
  override readonly name = "SafetyViolation";
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

const LANE_B_MASK = 0x1fffff;
const TWO_32 = 4294967296;

function fnv(h: number, byte: number): number {
  return Math.imul(h ^ byte, 0x01000193) >>> 0;
}

/** A 53-bit digest of an entry's content (not its index). */
export function entryDigest(e: Entry): number {
  let a = 0x811c9dc5;
  let b = 0x2545f491;
  if (e.kind === "normal") {
    a = fnv(a, 1);
    b = fnv(b, 1);
    const d = e.data;
    for (let i = 0; i < d.length; i++) {
      a = fnv(a, d[i]!);
      b = Math.imul(b ^ d[i]!, 0x5bd1e995) >>> 0;
    }
  } else {
    const kind = e.change.type === "addVoter" ? 2 : e.change.type === "addLearner" ? 3 : 4;
    a = fnv(fnv(a, kind), e.change.nodeId & 0xff);
    b = Math.imul(b ^ (kind * 65599 + e.change.nodeId), 0x5bd1e995) >>> 0;
  }
  return a + (b & LANE_B_MASK) * TWO_32;
}

function chain(prev: number, term: number, digest: number): number {
  const pa = prev % TWO_32;
  const pb = Math.floor(prev / TWO_32);
  const da = digest % TWO_32;
  const db = Math.floor(digest / TWO_32);
  let a = Math.imul(pa ^ da, 0x01000193) >>> 0;
  a = Math.imul(a ^ term, 0x85ebca6b) >>> 0;
  let b = Math.imul(pb ^ db ^ (term << 7), 0x5bd1e995) >>> 0;
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35) >>> 0;
  return a + (b & LANE_B_MASK) * TWO_32;
}

interface NodeView {
  /** Index of hashes[0]. */
  base: number;
  /** hashes[k] = prefix hash through index base + k. */
  hashes: number[];
  terms: number[];
  commit: number;
  durableTerm: number;
  durableCommit: number;
  /** While leader: the term and the last index it had (leader append-only). */
  leaderTerm: number;
  leaderLast: number;
}

export class SafetyChecker {
  private readonly leaderByTerm = new Map<number, RaftId>();
  /** index → (term → prefix hash) */
  private readonly registry = new Map<number, Map<number, number>>();
  private readonly committedHash: number[] = [0];
  private readonly committedTerm: number[] = [0];
  /**
   * The term in which each index became committed, as seen by the first node found committing it (its
   * current term then): an entry of term 5 may be committed only in term 7, and a leader of term 6
   * that lacks it breaks nothing. Never below the true term of commitment, so checks based on it are
   * sound.
   */
  private readonly commitTermOf: number[] = [0];
  private maxCommitted = 0;
  private readonly appliedDigest: number[] = [];
  private readonly appliedTerm: number[] = [];
  private readonly views = new Map<RaftId, NodeView>();
  checks = 0;

  /** The highest index known committed anywhere. */
  get maxCommittedIndex(): number {
    return this.maxCommitted;
  }

  private register(index: number, term: number, hash: number, who: RaftId): void {
    let byTerm = this.registry.get(index);
    if (byTerm === undefined) {
      byTerm = new Map();
      this.registry.set(index, byTerm);
    }
    const known = byTerm.get(term);
    if (known === undefined) byTerm.set(term, hash);
    else if (known !== hash) {
      throw new SafetyViolation("log matching", `node ${who} holds (index ${index}, term ${term}) with a different prefix than another node`);
    }
  }

  private lookup(index: number, term: number): number | undefined {
    if (index === 0) return 0;
    return this.registry.get(index)?.get(term);
  }

  /** A node (re)started from storage: rebuild its view from scratch. */
  onStart(id: RaftId, node: RaftNode, storage: MemoryStorage): void {
    const first = node.inspect.firstIndex();
    const base = first - 1;
    const baseTerm = node.inspect.termAt(base as Index) ?? 0;
    const baseHash = this.lookup(base, baseTerm);
    if (baseHash === undefined) {
      throw new SafetyViolation("durability", `node ${id} restarted on a snapshot (${base}, ${baseTerm}) nobody ever had`);
    }
    const prev = this.views.get(id);
    const view: NodeView = {
      base,
      hashes: [baseHash],
      terms: [baseTerm],
      // Registered (and checked against the global committed log) by the first afterEvent.
      commit: base,
      durableTerm: prev?.durableTerm ?? 0,
      durableCommit: prev?.durableCommit ?? 0,
      leaderTerm: 0,
      leaderLast: 0,
    };
    this.views.set(id, view);
    node.inspect.takeChangedFloor();
    this.rehash(id, node, view, base + 1);
    const hs = storage.hardState();
    if (hs.term < view.durableTerm) throw new SafetyViolation("monotonicity", `node ${id} restarted with an older durable term`);
  }

  /** Brings a node's view up to date after its log changed from index `from` on (Infinity: only compacted). */
  private rehash(id: RaftId, node: RaftNode, view: NodeView, from: number): void {
    const last = node.inspect.lastIndex();
    const first = node.inspect.firstIndex();
    const newBase = first - 1;
    if (from <= newBase || from <= view.base || newBase - view.base >= view.hashes.length) {
      // The log was replaced by a snapshot: restart the view from the new base.
      const baseTerm = node.inspect.termAt(newBase as Index) ?? 0;
      const baseHash = this.lookup(newBase, baseTerm);
      if (baseHash === undefined) {
        throw new SafetyViolation("snapshot", `node ${id} installed a snapshot at (${newBase}, ${baseTerm}) that matches no log`);
      }
      view.base = newBase;
      view.hashes = [baseHash];
      view.terms = [baseTerm];
      from = first;
    } else if (newBase > view.base) {
      // Compacted: forget the prefix.
      view.hashes.splice(0, newBase - view.base);
      view.terms.splice(0, newBase - view.base);
      view.base = newBase;
    }
    if (from > last + 1) from = last + 1;
    const keep = from - view.base;
    if (keep < view.hashes.length) {
      view.hashes.length = keep;
      view.terms.length = keep;
    }
    if (from > last) return;
    const ents = node.inspect.entries(from as Index, (last + 1) as Index);
    let h = view.hashes[view.hashes.length - 1]!;
    for (const e of ents) {
      h = chain(h, e.term, entryDigest(e));
      view.hashes.push(h);
      view.terms.push(e.term);
      this.register(e.index, e.term, h, id);
    }
  }

  private hashAt(view: NodeView, index: number): number | undefined {
    return view.hashes[index - view.base];
  }

  /** Runs every per-node check after an event touched `id`. */
  afterEvent(id: RaftId, node: RaftNode): void {
    this.checks++;
    const view = this.views.get(id);
    if (view === undefined) throw new Error(`checker: unknown node ${id}`);
    const floor = node.inspect.takeChangedFloor();
    // Leader append-only: while leading a term, a node never rewrites an entry it already had.
    const isLeader = node.inspect.role() === "leader";
    if (isLeader && view.leaderTerm === node.inspect.term() && floor <= view.leaderLast) {
      throw new SafetyViolation("leader append-only", `leader ${id} rewrote its log from index ${floor} (it had ${view.leaderLast})`);
    }
    if (isLeader) {
      view.leaderTerm = node.inspect.term();
      view.leaderLast = node.inspect.lastIndex();
    } else {
      view.leaderTerm = 0;
    }
    if (floor !== Number.POSITIVE_INFINITY || node.inspect.firstIndex() - 1 > view.base) this.rehash(id, node, view, floor);

    // Commit index: monotonic, and what is committed is registered globally.
    const commit = node.inspect.commit();
    if (commit < view.commit) throw new SafetyViolation("monotonic commit", `node ${id} commit went from ${view.commit} to ${commit}`);
    if (commit > view.commit) {
      for (let i = Math.max(view.commit + 1, view.base); i <= commit; i++) {
        const h = this.hashAt(view, i);
        if (h === undefined) throw new SafetyViolation("commit", `node ${id} committed ${i} beyond its log`);
        const known = this.committedHash[i];
        if (known === undefined) {
          this.committedHash[i] = h;
          this.committedTerm[i] = view.terms[i - view.base]!;
          this.commitTermOf[i] = node.inspect.term();
        } else if (known !== h) {
          throw new SafetyViolation("state machine safety", `node ${id} committed a different entry (or prefix) at index ${i}`);
        }
      }
      if (commit > this.maxCommitted) this.maxCommitted = commit;
      view.commit = commit;
    }

    if (node.inspect.role() === "leader") this.checkLeader(id, node, view);
  }

  private checkLeader(id: RaftId, node: RaftNode, view: NodeView): void {
    const term = node.inspect.term();
    const known = this.leaderByTerm.get(term);
    if (known === undefined) this.leaderByTerm.set(term, id);
    else if (known !== id) throw new SafetyViolation("election safety", `nodes ${known} and ${id} both lead term ${term}`);

    // Leader completeness: the highest index committed in an earlier term must be in this log.
    let c = this.maxCommitted;
    while (c > 0 && (this.commitTermOf[c] ?? term) >= term) c--;
    if (c <= 0 || c < view.base) return;
    const h = this.hashAt(view, c);
    if (h === undefined || h !== this.committedHash[c]) {
      throw new SafetyViolation(
        "leader completeness",
        `leader ${id} of term ${term} lacks entry ${c} (of term ${this.committedTerm[c]}, committed in term ${this.commitTermOf[c]}); its last index is ${node.inspect.lastIndex()}`,
      );
    }
  }

  /** `id` applies `e` (from a Ready's committedEntries). */
  onApply(id: RaftId, e: Entry): void {
    const view = this.views.get(id)!;
    const digest = entryDigest(e);
    const known = this.appliedDigest[e.index];
    if (known === undefined) {
      this.appliedDigest[e.index] = digest;
      this.appliedTerm[e.index] = e.term;
    } else if (known !== digest || this.appliedTerm[e.index] !== e.term) {
      throw new SafetyViolation("state machine safety", `node ${id} applied a different entry at index ${e.index}`);
    }
    const committed = this.committedHash[e.index];
    if (committed === undefined) throw new SafetyViolation("state machine safety", `node ${id} applied uncommitted index ${e.index}`);
    const h = this.hashAt(view, e.index);
    if (h !== undefined && h !== committed) {
      throw new SafetyViolation("state machine safety", `node ${id} applied index ${e.index} that differs from the committed entry`);
    }
  }

  /** `id` persisted a hard state. */
  onPersistHardState(id: RaftId, term: Term, commit: Index): void {
    const view = this.views.get(id)!;
    if (term < view.durableTerm) throw new SafetyViolation("monotonicity", `node ${id} persisted term ${term} after ${view.durableTerm}`);
    if (commit < view.durableCommit) {
      throw new SafetyViolation("monotonicity", `node ${id} persisted commit ${commit} after ${view.durableCommit}`);
    }
    view.durableTerm = term;
    view.durableCommit = commit;
  }

  /** `id` is about to send `m`: every promise in it must already be durable. */
  onSend(id: RaftId, m: Message, storage: MemoryStorage): void {
    if (m.type === "voteResponse" && !m.reject) {
      const hs = storage.hardState();
      if (hs.term < m.term || (hs.term === m.term && hs.vote !== m.to)) {
        throw new SafetyViolation("durability", `node ${id} granted its vote in term ${m.term} to ${m.to} before persisting it`);
      }
    } else if (m.type === "appendResponse" && !m.reject && m.index > 0) {
      if (storage.lastIndex() < m.index && storage.snapshot().metadata.index < m.index) {
        throw new SafetyViolation("durability", `node ${id} acknowledged index ${m.index} but stored only ${storage.lastIndex()}`);
      }
    }
  }

  /** The index → term of committed entries (for the world's read checks). */
  committedTermAt(index: number): number | undefined {
    return this.committedTerm[index];
  }
}
