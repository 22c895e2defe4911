// `RaftNode` is the core's public face: feed it ticks, messages and requests; it hands back a `Ready`
// of work for the driver, and the driver acknowledges it with `advance()`. The contract, in order:
//   1. persist `snapshot` (if any), append `entries`, store `hardState` — fsync first if `mustSync`;
//   2. only then send `messages`;
//   3. apply `snapshot` then `committedEntries` to the state machine, in order;
//   4. serve each `readStates` read once the applied index reaches its index;
//   5. call `advance()`.
// `tick`/`step`/requests may be called between `ready()` and `advance()`; a new `ready()` may not.

import { invariant } from "./assert.ts";
import type { RaftConfigInput } from "./config.ts";
import { resolveConfig } from "./config.ts";
import type { Message } from "./messages.ts";
import type { Random } from "./random.ts";
import { Raft } from "./raft.ts";
import type { ConfChangeResult, ProposeResult, ReadIndexResult, TransferResult } from "./results.ts";
import type { PersistedState, RaftStorage } from "./storage.ts";
import { MemoryStorage } from "./storage.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Index,
  RaftId,
  ReadState,
  Role,
  Snapshot,
  SoftState,
  Term,
} from "./types.ts";
import { confStateEqual, hardStateEqual } from "./types.ts";

export interface Ready {
  /** Leader/role, when they changed since the previous Ready (not persisted). */
  readonly softState: SoftState | null;
  /** To persist, when it changed. */
  readonly hardState: HardState | null;
  /** To append to the stored log (replacing any stored suffix from entries[0].index on). */
  readonly entries: readonly Entry[];
  /** To persist (replacing the stored log) and to restore the state machine from. */
  readonly snapshot: Snapshot | null;
  /** True when entries, snapshot, term or vote changed: they must be fsynced before sending. */
  readonly mustSync: boolean;
  /** To send once the above is persisted. */
  readonly messages: readonly Message[];
  /** To apply, in order (already persisted, or in `entries` of this Ready). */
  readonly committedEntries: readonly Entry[];
  /** Reads that are safe once the applied index reaches `index`. */
  readonly readStates: readonly ReadState[];
}

export interface RaftNodeOptions {
  readonly config: RaftConfigInput;
  /** Read side of the node's durable state; the driver writes it while handling Ready. */
  readonly storage: RaftStorage;
  /** The node's only source of randomness (election timeouts). */
  readonly random: Random;
}

export interface ProgressStatus {
  readonly match: Index;
  readonly next: Index;
  readonly state: "probe" | "replicate" | "snapshot";
  readonly recentActive: boolean;
  readonly inflightMsgs: number;
}

export interface RaftStatus {
  readonly id: RaftId;
  readonly role: Role;
  readonly leader: RaftId;
  readonly term: Term;
  readonly vote: RaftId;
  readonly commit: Index;
  readonly applied: Index;
  readonly firstIndex: Index;
  readonly lastIndex: Index;
  readonly confState: ConfState;
  readonly leadTransferee: RaftId;
  /** Leader only: what it knows about each member. */
  readonly progress: ReadonlyMap<RaftId, ProgressStatus>;
}

export interface FromPersistedStateOptions {
  readonly config: RaftConfigInput;
  readonly state: PersistedState;
  readonly random: Random;
}

export class RaftNode {
  /**
   * Builds a MemoryStorage holding `state` and a node on it. If `state.confState` is given it must
   * equal the membership derived from the snapshot and the log (a cheap consistency check).
   */
  static fromPersistedState(options: FromPersistedStateOptions): { node: RaftNode; storage: MemoryStorage } {
    const storage = MemoryStorage.fromPersistedState(options.state);
    const node = new RaftNode({ config: options.config, storage, random: options.random });
    const expected = options.state.confState;
    invariant(
      expected === undefined || confStateEqual(expected, node.raft.currentConf()),
      "persisted conf state differs from the one derived from the snapshot and the log",
    );
    return { node, storage };
  }

  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private outstanding: Ready | null = null;

  constructor(options: RaftNodeOptions) {
    this.raft = new Raft(resolveConfig(options.config), options.storage, options.random);
    this.prevSoftState = this.softState();
    this.prevHardState = options.storage.initialState().hardState;
  }

  get id(): RaftId {
    return this.raft.id;
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum, timeouts). */
  tick(): void {
    this.raft.tick();
  }

  /** Feeds a message received from a peer. Messages for another node are a driver bug. */
  step(message: Message): void {
    this.raft.step(message);
  }

  /** Proposes one command. Only a leader accepts; see `ProposeResult`. */
  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose([data]);
  }

  /** Proposes several commands as one batch (one append per follower). */
  proposeBatch(datas: readonly Uint8Array[]): ProposeResult {
    return this.raft.propose(datas);
  }

  /**
   * Proposes a single-server membership change. Accepted only by a leader that has committed an entry
   * of its term and has no other change uncommitted; takes effect as soon as it is in the log.
   */
  proposeConfChange(change: ConfChange): ConfChangeResult {
    return this.raft.proposeConfChange(change);
  }

  /**
   * Starts a linearizable read identified by `ctx`. Never reuse a ctx (a late duplicate answer could
   * otherwise be matched to a newer read): use a per-node counter or a random id. On a follower the
   * request goes to the leader. The answer is a ReadState in a later Ready; if none comes (leader
   * change, lost message), the caller retries with a new ctx.
   */
  readIndex(ctx: string): ReadIndexResult {
    return this.raft.readIndex(ctx);
  }

  /** Asks the leader to hand leadership to voter `to` (refused for learners and unknown nodes). */
  transferLeader(to: RaftId): TransferResult {
    return this.raft.transferLeader(to);
  }

  reportUnreachable(id: RaftId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: RaftId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  /** Whether `ready()` has anything to do. */
  hasReady(): boolean {
    const raft = this.raft;
    if (this.outstanding !== null) return false;
    // Deferred broadcasts (batched proposals, commit updates, ReadIndex rounds) become messages now.
    raft.flush();
    const ss = this.softState();
    return (
      raft.msgs.length > 0 ||
      raft.log.unstableEntries().length > 0 ||
      raft.log.unstableSnapshot() !== null ||
      raft.log.hasNextCommittedEntries() ||
      raft.readStates.length > 0 ||
      !hardStateEqual(this.hardState(), this.prevHardState) ||
      ss.leader !== this.prevSoftState.leader ||
      ss.role !== this.prevSoftState.role
    );
  }

  /** Collects the work to do. Must be followed by `advance()` before the next `ready()`. */
  ready(): Ready {
    invariant(this.outstanding === null, "ready() called again before advance()");
    const raft = this.raft;
    raft.flush();
    const ss = this.softState();
    const hs = this.hardState();
    const softChanged = ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = [...raft.log.unstableEntries()];
    const snapshot = raft.log.unstableSnapshot();
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      entries,
      snapshot,
      mustSync:
        entries.length > 0 ||
        snapshot !== null ||
        hs.term !== this.prevHardState.term ||
        hs.vote !== this.prevHardState.vote,
      messages: raft.msgs,
      committedEntries: raft.log.nextCommittedEntries(raft.config.maxCommittedSizePerReadyBytes),
      readStates: raft.readStates,
    };
    raft.msgs = [];
    raft.readStates = [];
    if (softChanged) this.prevSoftState = ss;
    this.outstanding = rd;
    return rd;
  }

  /** Acknowledges the outstanding Ready: it is persisted, sent and applied. */
  advance(): void {
    const rd = this.outstanding;
    invariant(rd !== null, "advance() without an outstanding ready()");
    const log = this.raft.log;
    if (rd.hardState !== null) this.prevHardState = rd.hardState;
    if (rd.snapshot !== null) {
      log.stableSnapshotTo(rd.snapshot.metadata.index);
      log.appliedTo(rd.snapshot.metadata.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) log.appliedTo(lastApplied.index);
    this.raft.onApplied();
    this.outstanding = null;
  }

  /** Membership as of the applied index: record it in a snapshot taken there. */
  appliedConfState(): ConfState {
    return this.raft.appliedConf();
  }

  status(): RaftStatus {
    const raft = this.raft;
    const progress = new Map<RaftId, ProgressStatus>();
    if (raft.role === "leader") {
      for (const [id, pr] of raft.tracker.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          inflightMsgs: pr.inflights.count,
        });
      }
    }
    return {
      id: raft.id,
      role: raft.role,
      leader: raft.lead,
      term: raft.term,
      vote: raft.vote,
      commit: raft.log.committed,
      applied: raft.log.applied,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      confState: raft.currentConf(),
      leadTransferee: raft.leadTransferee,
      progress,
    };
  }

  /** Read-only views for tests and the simulator's checkers. */
  readonly inspect = {
    role: (): Role => this.raft.role,
    term: (): Term => this.raft.term,
    leader: (): RaftId => this.raft.lead,
    commit: (): Index => this.raft.log.committed,
    applied: (): Index => this.raft.log.applied,
    firstIndex: (): Index => this.raft.log.firstIndex(),
    lastIndex: (): Index => this.raft.log.lastIndex(),
    termAt: (i: Index): Term | null => this.raft.log.term(i),
    entries: (lo: Index, hi: Index): Entry[] => this.raft.log.slice(lo, hi, Number.MAX_SAFE_INTEGER),
    confState: (): ConfState => this.raft.currentConf(),
    /** Lowest log index rewritten since the previous call (Infinity if none). */
    takeChangedFloor: (): number => this.raft.log.takeChangedFloor(),
  };
}
