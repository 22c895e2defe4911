// The Raft protocol state machine: elections (pre-vote, check-quorum, leader lease for votes), log
// replication with flow control, commitment, ReadIndex, leader transfer, snapshots and single-server
// membership changes. It never does I/O: inputs are `tick`, `step` and local requests; outputs are
// queued in `msgs`/`readStates` and the log's unstable tail, which `RaftNode` turns into a Ready.
// Invariants asserted throughout: at most one leader per term as seen by this node, committed entries
// never change, commit only counts replicas for entries of the current term, a leader never
// truncates its own log.

import { invariant } from "./assert.ts";
import type { RaftConfig } from "./config.ts";
import { applyConfChange, validateConfChange } from "./confchange.ts";
import { RaftLog } from "./log.ts";
import type { Message } from "./messages.ts";
import { Progress, ProgressTracker } from "./progress.ts";
import type { Random } from "./random.ts";
import { randomBelow } from "./random.ts";
import { ReadIndexQueue } from "./read-index.ts";
import type { ConfChangeResult, ProposeResult, ReadIndexResult, TransferResult } from "./results.ts";
import type { RaftStorage } from "./storage.ts";
import { RaftStorageError } from "./storage.ts";
import type { ConfChange, ConfState, Entry, Index, RaftId, ReadState, Role, Snapshot, Term } from "./types.ts";
import { NO_NODE, confStateEqual, entrySizeBytes } from "./types.ts";

type CampaignKind = "preElection" | "election" | "transfer";

interface ConfLogItem {
  readonly index: Index;
  readonly conf: ConfState;
}

interface WaitingRead {
  readonly ctx: string;
  readonly from: RaftId;
}

/** Progress bookkeeping a leader keeps per follower beyond flow control. */
interface LeaderPeerState {
  /** Highest commit index this follower was told about (avoids redundant commit-only appends). */
  commitSent: Index;
}

export class Raft {
  readonly id: RaftId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  readonly tracker = new ProgressTracker();

  term: Term;
  vote: RaftId;
  lead: RaftId = NO_NODE;
  role: Role = "follower";
  leadTransferee: RaftId = NO_NODE;

  /** Messages to send once the Ready they are part of is persisted. */
  msgs: Message[] = [];
  /** ReadIndex answers for local requests. */
  readStates: ReadState[] = [];

  private readonly random: Random;
  private votes = new Map<RaftId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private transferElapsed = 0;

  /** Membership as of `baseConfIndex` (<= applied), then every change in the log above it. */
  private baseConf: ConfState;
  private baseConfIndex: Index;
  private confLog: ConfLogItem[] = [];

  private readonly readIndexQueue = new ReadIndexQueue();
  /** Reads that arrived before this leader committed an entry of its term. */
  private waitingReads: WaitingRead[] = [];
  private readonly waitingReadCtxs = new Set<string>();
  private readRoundPending = false;

  /** Sizes of this leader's uncommitted entries, from index `uncommittedFirstIndex` on. */
  private uncommittedSizes: number[] = [];
  private uncommittedFirstIndex: Index = 0 as Index;
  private uncommittedBytes = 0;
  private broadcastPending = false;
  private readonly peers = new Map<RaftId, LeaderPeerState>();

  constructor(config: RaftConfig, storage: RaftStorage, random: Random) {
    this.id = config.id;
    this.config = config;
    this.random = random;
    const { hardState, confState } = storage.initialState();
    const snapshotMeta = storage.snapshot().metadata;
    invariant(
      confStateEqual(confState, snapshotMeta.confState),
      "storage: initial conf state differs from the snapshot's",
    );
    // The driver restores its state machine from the snapshot, so at least that much is applied.
    this.log = new RaftLog(storage, hardState.commit, Math.max(config.appliedIndex, snapshotMeta.index) as Index);
    invariant(
      snapshotMeta.index >= this.log.firstIndex() - 1,
      () => `storage: entries below ${this.log.firstIndex()} compacted but the snapshot is at ${snapshotMeta.index}`,
    );
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.baseConf = snapshotMeta.confState;
    this.baseConfIndex = snapshotMeta.index;
    // Replay membership changes stored after the snapshot: the configuration is the log's latest.
    const last = this.log.lastIndex();
    for (let lo = (snapshotMeta.index + 1) as Index; lo <= last; ) {
      const chunk = this.log.slice(lo, (last + 1) as Index, 4 * 1024 * 1024);
      for (const e of chunk) {
        if (e.kind === "confChange") this.confLog.push({ index: e.index, conf: applyConfChange(this.currentConf(), e.change) });
      }
      lo = (chunk[chunk.length - 1]!.index + 1) as Index;
    }
    this.tracker.setConfState(this.currentConf());
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---- membership ------------------------------------------------------------------------------

  currentConf(): ConfState {
    return this.confLog[this.confLog.length - 1]?.conf ?? this.baseConf;
  }

  /** Membership as of the applied index: what a snapshot taken at that index must record. */
  appliedConf(): ConfState {
    let conf = this.baseConf;
    for (const item of this.confLog) {
      if (item.index > this.log.applied) break;
      conf = item.conf;
    }
    return conf;
  }

  private lastConfIndex(): Index {
    return this.confLog[this.confLog.length - 1]?.index ?? this.baseConfIndex;
  }

  private promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  /** After entries from `fromIndex` were (re)written: drop truncated changes, add the new ones. */
  private onLogWritten(fromIndex: Index, written: readonly Entry[]): void {
    let changed = false;
    while (this.confLog.length > 0 && this.confLog[this.confLog.length - 1]!.index >= fromIndex) {
      this.confLog.pop();
      changed = true;
    }
    for (const e of written) {
      if (e.kind !== "confChange") continue;
      this.confLog.push({ index: e.index, conf: applyConfChange(this.currentConf(), e.change) });
      changed = true;
    }
    if (changed) this.applyCurrentConf();
  }

  private applyCurrentConf(): void {
    const conf = this.currentConf();
    this.tracker.setConfState(conf);
    if (this.role !== "leader") return;
    const progress = this.tracker.progress;
    for (const id of [...conf.voters, ...conf.learners]) {
      if (progress.has(id)) continue;
      const pr = this.newProgress();
      // A new member must not make check-quorum fail before it had a chance to answer.
      pr.recentActive = true;
      if (id === this.id) pr.match = this.log.lastIndex();
      progress.set(id, pr);
      this.peers.set(id, { commitSent: 0 as Index });
    }
    for (const id of [...progress.keys()]) {
      if (!this.tracker.isMember(id)) {
        progress.delete(id);
        this.peers.delete(id);
      }
    }
    if (this.leadTransferee !== NO_NODE && !this.tracker.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    // A smaller quorum may commit more.
    this.maybeCommit();
  }

  /** Called once entries up to `applied` are applied: fold older membership changes into the base. */
  onApplied(): void {
    while (this.confLog.length > 0 && this.confLog[0]!.index <= this.log.applied) {
      const item = this.confLog.shift()!;
      this.baseConf = item.conf;
      this.baseConfIndex = item.index;
    }
  }

  // ---- role transitions --------------------------------------------------------------------

  private resetRandomizedElectionTimeout(): void {
    const t = this.config.electionTimeoutTicks;
    this.randomizedElectionTimeout = t + randomBelow(this.random, t);
  }

  private reset(term: Term): void {
    if (this.term !== term) {
      invariant(term > this.term, () => `term goes back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = NO_NODE;
    }
    this.lead = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes.clear();
    this.tracker.progress.clear();
    this.peers.clear();
    this.readIndexQueue.clear();
    this.waitingReads = [];
    this.waitingReadCtxs.clear();
    this.readRoundPending = false;
    this.uncommittedSizes = [];
    this.uncommittedBytes = 0;
    this.uncommittedFirstIndex = (this.log.lastIndex() + 1) as Index;
    this.broadcastPending = false;
  }

  private newProgress(): Progress {
    return new Progress((this.log.lastIndex() + 1) as Index, this.config.maxInflightMsgs, this.config.maxInflightBytes);
  }

  becomeFollower(term: Term, lead: RaftId): void {
    this.reset(term);
    this.role = "follower";
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== "leader", "a leader cannot become pre-candidate");
    // A pre-campaign changes neither the term nor the vote.
    this.votes.clear();
    this.role = "preCandidate";
    this.lead = NO_NODE;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    invariant(this.role !== "leader", "a leader cannot become candidate");
    this.reset((this.term + 1) as Term);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    invariant(this.role === "candidate", () => `${this.role} cannot become leader`);
    this.reset(this.term);
    this.role = "leader";
    this.lead = this.id;
    const conf = this.currentConf();
    for (const id of [...conf.voters, ...conf.learners]) {
      const pr = this.newProgress();
      if (id === this.id) {
        pr.match = this.log.lastIndex();
        pr.recentActive = true;
      }
      this.tracker.progress.set(id, pr);
      this.peers.set(id, { commitSent: 0 as Index });
    }
    // An empty entry of the new term: committing it commits everything before (Raft §5.4.2), and
    // ReadIndex and membership changes wait for it.
    this.appendEntries([{ kind: "normal", term: this.term, index: (this.log.lastIndex() + 1) as Index, data: new Uint8Array(0) }]);
    this.bcastAppend();
  }

  private campaign(kind: CampaignKind): void {
    if (!this.promotable()) return;
    let voteTerm: Term;
    let type: "vote" | "preVote";
    if (kind === "preElection") {
      this.becomePreCandidate();
      voteTerm = (this.term + 1) as Term;
      type = "preVote";
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      type = "vote";
    }
    this.votes.set(this.id, true);
    if (this.tracker.voteResult(this.votes) === "won") {
      // A single-voter configuration wins at once.
      if (kind === "preElection") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.msgs.push({ type, from: this.id, to: id, term: voteTerm, lastIndex, lastTerm, transfer: kind === "transfer" });
    }
  }

  // ---- ticks -------------------------------------------------------------------------------------

  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.config.preVote ? "preElection" : "election");
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) {
        if (!this.tracker.quorumActive(this.id)) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
        for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
      }
    }
    if (this.leadTransferee !== NO_NODE && ++this.transferElapsed >= this.config.transferTimeoutTicks) {
      this.abortLeaderTransfer();
    }
    const lastIndex = this.log.lastIndex();
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      if (pr.state === "snapshot" && ++pr.stalledTicks >= this.config.snapshotTimeoutTicks) {
        pr.becomeProbe();
        this.sendAppend(id, true);
      } else if (pr.state === "replicate" && pr.match < lastIndex && ++pr.stalledTicks >= this.config.appendStallTimeoutTicks) {
        // Appends were outstanding for a long time without any acknowledgement: assume they were
        // lost and probe from the last known match.
        pr.becomeProbe();
        this.sendAppend(id, true);
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readIndexQueue.lastCtx());
    }
  }

  // ---- messages in -------------------------------------------------------------------------

  step(m: Message): void {
    invariant(m.to === this.id, () => `message for ${m.to} stepped into ${this.id}`);
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const inLease =
          this.config.checkQuorum && this.lead !== NO_NODE && this.electionElapsed < this.config.electionTimeoutTicks;
        // While we hear from a leader, a candidate is most likely a disruptive node: ignore it.
        if (inLease && !m.transfer) return;
      }
      if (m.type === "preVote") {
        // A pre-vote never changes our term.
      } else if (m.type === "preVoteResponse" && !m.reject) {
        // A granted pre-vote carries the future term we asked for; it is counted below.
      } else if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NO_NODE);
      }
    } else if (m.term < this.term) {
      if ((this.config.checkQuorum || this.config.preVote) && (m.type === "append" || m.type === "heartbeat")) {
        // A stale leader (e.g. healed from a partition) learns the newer term and steps down; without
        // this it could keep a pre-voting cluster from ever electing anyone.
        this.msgs.push({
          type: "appendResponse",
          from: this.id,
          to: m.from,
          term: this.term,
          index: 0 as Index,
          reject: false,
          rejectHint: 0 as Index,
          rejectHintTerm: 0 as Term,
        });
      } else if (m.type === "preVote") {
        this.msgs.push({ type: "preVoteResponse", from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  private handleVoteRequest(m: Extract<Message, { type: "vote" | "preVote" }>): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.lead === NO_NODE) ||
      (m.type === "preVote" && m.term > this.term);
    const upToDate = this.config.unsafeTestingFaults.voteWithoutLogCheck === true || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    const responseType = m.type === "vote" ? "voteResponse" : "preVoteResponse";
    if (canVote && upToDate) {
      this.msgs.push({ type: responseType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.msgs.push({ type: responseType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        invariant(false, () => `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        break;
      case "appendResponse": {
        const pr = this.tracker.progress.get(m.from);
        if (pr !== undefined) this.handleAppendResponse(m, pr);
        break;
      }
      case "heartbeatResponse": {
        const pr = this.tracker.progress.get(m.from);
        if (pr !== undefined) this.handleHeartbeatResponse(m, pr);
        break;
      }
      case "readIndex":
        this.handleReadIndexRequest(m.ctx, m.from);
        break;
      case "transferLeader":
        this.handleTransferLeader(m.transferee);
        break;
      case "voteResponse":
      case "preVoteResponse":
      case "readIndexResponse":
      case "timeoutNow":
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        // Someone won this term: follow it.
        this.becomeFollower(this.term, m.from);
        this.stepFollower(m);
        break;
      case "voteResponse":
      case "preVoteResponse": {
        const expected = this.role === "preCandidate" ? "preVoteResponse" : "voteResponse";
        if (m.type !== expected) break;
        // Grants of a pre-vote carry the term asked for (ours + 1); anything else is stale.
        if (m.type === "preVoteResponse" && !m.reject && m.term !== this.term + 1) break;
        this.votes.set(m.from, !m.reject);
        const result = this.tracker.voteResult(this.votes);
        if (result === "won") {
          if (this.role === "preCandidate") this.campaign("election");
          else {
            this.becomeLeader();
          }
        } else if (result === "lost") {
          this.becomeFollower(this.term, NO_NODE);
        }
        break;
      }
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.log.commitTo(m.commit);
        this.msgs.push({ type: "heartbeatResponse", from: this.id, to: m.from, term: this.term, ctx: m.ctx });
        break;
      case "snapshot":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m.snapshot, m.from);
        break;
      case "timeoutNow":
        this.campaign("transfer");
        break;
      case "readIndexResponse":
        this.readStates.push({ index: m.index, ctx: m.ctx });
        break;
      default:
        // Requests meant for a leader (readIndex, transferLeader) reached a follower: the asker
        // times out and retries; stale responses are dropped.
        break;
    }
  }

  // ---- follower side of replication ---------------------------------------------------------

  private handleAppend(m: Extract<Message, { type: "append" }>): void {
    if (m.prevIndex < this.log.committed) {
      this.sendAppendResponse(m.from, this.log.committed, false, 0 as Index, 0 as Term);
      return;
    }
    const lastBefore = this.log.lastIndex();
    const result = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (result !== null) {
      if (result.firstWritten !== 0 && result.firstWritten <= lastBefore) this.retractAcksFrom(result.firstWritten);
      if (result.firstWritten !== 0) {
        const first = m.entries[0]!.index;
        this.onLogWritten(result.firstWritten, m.entries.slice(result.firstWritten - first));
      }
      this.sendAppendResponse(m.from, result.lastNew, false, 0 as Index, 0 as Term);
      return;
    }
    // Hint where our logs may agree: the last index at or below prevIndex whose term is <= prevTerm.
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()) as Index, m.prevTerm);
    this.sendAppendResponse(m.from, m.prevIndex, true, hint.index, hint.term);
  }

  /**
   * Entries from `index` on were just overwritten before being persisted. Acknowledgements of them
   * still waiting in `msgs` would go out after the next Ready is persisted, which no longer holds
   * them: a leader could count a replica that does not exist. Drop them (a lost ack is harmless).
   * Messages of a Ready already handed out are fine: its entries are persisted before it is sent.
   */
  private retractAcksFrom(index: Index): void {
    this.msgs = this.msgs.filter((m) => m.type !== "appendResponse" || m.reject || m.index < index);
  }

  private sendAppendResponse(to: RaftId, index: Index, reject: boolean, rejectHint: Index, rejectHintTerm: Term): void {
    this.msgs.push({ type: "appendResponse", from: this.id, to, term: this.term, index, reject, rejectHint, rejectHintTerm });
  }

  private handleSnapshot(s: Snapshot, from: RaftId): void {
    const meta = s.metadata;
    if (meta.index <= this.log.committed) {
      this.sendAppendResponse(from, this.log.committed, false, 0 as Index, 0 as Term);
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already have the entries: just learn that they are committed.
      this.log.commitTo(meta.index);
      this.sendAppendResponse(from, this.log.committed, false, 0 as Index, 0 as Term);
      return;
    }
    this.retractAcksFrom((this.log.committed + 1) as Index);
    this.log.restore(s);
    this.confLog = [];
    this.baseConf = meta.confState;
    this.baseConfIndex = meta.index;
    this.applyCurrentConf();
    this.sendAppendResponse(from, this.log.lastIndex(), false, 0 as Index, 0 as Term);
  }

  // ---- leader side of replication -----------------------------------------------------------

  private appendEntries(entries: Entry[]): void {
    const first = entries[0]!;
    invariant(first.index === this.log.lastIndex() + 1, "leader appends must extend its log");
    for (const e of entries) {
      const size = entrySizeBytes(e);
      this.uncommittedSizes.push(size);
      this.uncommittedBytes += size;
    }
    this.log.append(entries);
    this.onLogWritten(first.index, entries);
    const self = this.tracker.progress.get(this.id);
    self?.maybeUpdate(this.log.lastIndex());
    // Only our own match moved, and no other voter can hold the new entries yet: the quorum index can
    // only change when a quorum is one voter.
    if (this.tracker.quorumSize() === 1) this.maybeCommit();
  }

  private maybeCommit(): boolean {
    if (this.role !== "leader") return false;
    const q = this.tracker.committedIndex();
    if (q <= this.log.committed) return false;
    // Raft §5.4.2: only entries of the current term are committed by counting replicas.
    if (this.log.term(q) !== this.term && this.config.unsafeTestingFaults.commitPreviousTermByCounting !== true) return false;
    this.log.commitTo(q);
    this.onLeaderCommit();
    return true;
  }

  private onLeaderCommit(): void {
    const committed = this.log.committed;
    // uncommittedSizes[k] is the size of entry uncommittedFirstIndex + k.
    const done = Math.min(committed - this.uncommittedFirstIndex + 1, this.uncommittedSizes.length);
    if (done > 0) {
      for (let k = 0; k < done; k++) this.uncommittedBytes -= this.uncommittedSizes[k]!;
      this.uncommittedSizes = done === this.uncommittedSizes.length ? [] : this.uncommittedSizes.slice(done);
      this.uncommittedFirstIndex = (this.uncommittedFirstIndex + done) as Index;
    }
    if (this.waitingReads.length > 0 && this.committedEntryInCurrentTerm()) {
      const waiting = this.waitingReads;
      this.waitingReads = [];
      this.waitingReadCtxs.clear();
      for (const r of waiting) this.handleReadIndexRequest(r.ctx, r.from);
    }
    if (!this.tracker.isVoter(this.id) && this.lastConfIndex() <= committed) {
      this.stepDownAfterRemoval();
      return;
    }
    this.broadcastPending = true;
  }

  /** This leader's removal is committed: tell everyone the commit index, hand over, step down. */
  private stepDownAfterRemoval(): void {
    this.bcastAppend();
    let best: RaftId = NO_NODE;
    let bestMatch = -1;
    for (const id of this.tracker.voters) {
      const pr = this.tracker.progress.get(id);
      if (pr !== undefined && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== NO_NODE && bestMatch === this.log.lastIndex()) {
      this.msgs.push({ type: "timeoutNow", from: this.id, to: best, term: this.term });
    }
    this.becomeFollower(this.term, NO_NODE);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /**
   * Sends an append to `to` unless flow control pauses it. Returns whether a message was sent.
   * Falls back to a snapshot when the entries needed were compacted.
   */
  private sendAppend(to: RaftId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const prevIndex = (pr.next - 1) as Index;
    const prevTerm = this.log.term(prevIndex);
    const entries = prevTerm === null ? null : this.log.entriesFrom(pr.next, this.config.maxSizePerMsgBytes);
    if (prevTerm === null || entries === null) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    const commit = this.log.committed;
    this.msgs.push({ type: "append", from: this.id, to, term: this.term, prevIndex, prevTerm, entries, commit });
    const lastNew = prevIndex + entries.length;
    const peer = this.peers.get(to);
    if (peer !== undefined) peer.commitSent = Math.max(peer.commitSent, Math.min(commit, lastNew)) as Index;
    if (entries.length > 0 && pr.state === "replicate") {
      let bytes = 0;
      for (const e of entries) bytes += entrySizeBytes(e);
      pr.optimisticUpdate(lastNew as Index);
      pr.inflights.add(lastNew as Index, bytes);
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: RaftId, pr: Progress): boolean {
    let snapshot: Snapshot;
    try {
      snapshot = this.log.storage.snapshot();
    } catch (e) {
      if (e instanceof RaftStorageError && e.code === "snapshotTemporarilyUnavailable") return false; // retried later
      throw e;
    }
    invariant(snapshot.metadata.index > 0, "a snapshot is needed but storage has none");
    this.msgs.push({ type: "snapshot", from: this.id, to, term: this.term, snapshot });
    pr.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  /** Tells `to` the commit index without sending entries (an empty append at its match index). */
  private sendCommit(to: RaftId): void {
    const pr = this.tracker.progress.get(to);
    const peer = this.peers.get(to);
    if (pr === undefined || peer === undefined) return;
    const commit = Math.min(this.log.committed, pr.match) as Index;
    if (commit <= peer.commitSent) return;
    const prevTerm = this.log.term(pr.match);
    if (prevTerm === null) return;
    this.msgs.push({ type: "append", from: this.id, to, term: this.term, prevIndex: pr.match, prevTerm, entries: [], commit: this.log.committed });
    peer.commitSent = commit;
  }

  private bcastAppend(): void {
    for (const id of this.tracker.progress.keys()) {
      if (id === this.id) continue;
      if (!this.sendAppend(id, false)) this.sendCommit(id);
    }
  }

  private bcastHeartbeat(ctx: string | null): void {
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed) as Index;
      this.msgs.push({ type: "heartbeat", from: this.id, to: id, term: this.term, commit, ctx });
      const peer = this.peers.get(id);
      if (peer !== undefined && commit > peer.commitSent) peer.commitSent = commit;
    }
  }

  private handleAppendResponse(m: Extract<Message, { type: "appendResponse" }>, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.rejectHintTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.rejectHintTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot") {
      if (pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
    } else {
      pr.inflights.freeLE(m.index);
    }
    this.maybeCommit();
    if (this.role !== "leader") return; // stepped down after its own removal committed
    while (this.sendAppend(m.from, false)) {
      // keep the pipeline full
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.msgs.push({ type: "timeoutNow", from: this.id, to: m.from, term: this.term });
    }
  }

  private handleHeartbeatResponse(m: Extract<Message, { type: "heartbeatResponse" }>, pr: Progress): void {
    pr.recentActive = true;
    if (pr.state === "probe") {
      // The probe (or its answer) may have been lost: send another.
      pr.probeSent = false;
      if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    }

    if (m.ctx === null || !this.tracker.isVoter(m.from)) return;
    const read = this.readIndexQueue.ack(m.from, m.ctx);
    if (read === undefined) return;
    if (this.tracker.isVoter(this.id)) read.acks.add(this.id);
    if (!this.tracker.hasQuorum(read.acks)) return;
    for (const r of this.readIndexQueue.releaseThrough(m.ctx)) this.respondRead(r.from, r.index, r.ctx);
  }

  // ---- local requests ----------------------------------------------------------------------

  propose(datas: readonly Uint8Array[]): ProposeResult {
    if (datas.length === 0) return { ok: false, reason: "emptyBatch", leader: this.lead };
    if (datas.length > this.config.maxProposalBatchEntries) return { ok: false, reason: "batchTooLarge", leader: this.lead };
    if (this.role !== "leader") return { ok: false, reason: "notLeader", leader: this.lead };
    if (this.leadTransferee !== NO_NODE) return { ok: false, reason: "transferInProgress", leader: this.lead };
    let bytes = 0;
    for (const d of datas) bytes += d.byteLength + 24;
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.maxUncommittedEntriesBytes) {
      return { ok: false, reason: "uncommittedBytesExceeded", leader: this.lead };
    }
    const firstIndex = (this.log.lastIndex() + 1) as Index;
    const entries: Entry[] = [];
    for (let k = 0; k < datas.length; k++) {
      entries.push({ kind: "normal", term: this.term, index: (firstIndex + k) as Index, data: datas[k]! });
    }
    this.appendEntries(entries);
    this.broadcastPending = true;
    return { ok: true, term: this.term, firstIndex, lastIndex: (firstIndex + datas.length - 1) as Index };
  }

  proposeConfChange(change: ConfChange): ConfChangeResult {
    const refuse = (reason: Extract<ConfChangeResult, { ok: false }>["reason"]): ConfChangeResult => ({
      ok: false,
      reason,
      leader: this.lead,
    });
    if (this.role !== "leader") return refuse("notLeader");
    if (this.leadTransferee !== NO_NODE) return refuse("transferInProgress");
    // Single-server changes are only safe once this leader committed an entry of its own term
    // (Ongaro, raft-dev 2015) and no earlier change is still uncommitted.
    if (!this.committedEntryInCurrentTerm()) return refuse("leaderNotReady");
    if (this.lastConfIndex() > this.log.committed) return refuse("confChangePending");
    const refusal = validateConfChange(this.currentConf(), change);
    if (refusal !== null) return refuse(refusal);
    if (change.type === "addVoter" && this.tracker.isLearner(change.nodeId)) {
      const pr = this.tracker.progress.get(change.nodeId);
      if (pr === undefined || pr.match + this.config.learnerPromotionMaxLagEntries < this.log.lastIndex()) {
        return refuse("learnerBehind");
      }
    }
    const index = (this.log.lastIndex() + 1) as Index;
    this.appendEntries([{ kind: "confChange", term: this.term, index, change }]);
    this.broadcastPending = true;
    return { ok: true, term: this.term, index };
  }

  readIndex(ctx: string): ReadIndexResult {
    if (this.role === "leader") return this.handleReadIndexRequest(ctx, this.id);
    if (this.lead === NO_NODE) return { ok: false, reason: "noLeader" };
    this.msgs.push({ type: "readIndex", from: this.id, to: this.lead, term: this.term, ctx });
    return { ok: true };
  }

  private handleReadIndexRequest(ctx: string, from: RaftId): ReadIndexResult {
    if (this.readIndexQueue.size + this.waitingReads.length >= this.config.maxPendingReadIndexRequests) {
      return { ok: false, reason: "tooManyPendingReads" };
    }
    if (this.readIndexQueue.has(ctx) || this.waitingReadCtxs.has(ctx)) return { ok: false, reason: "duplicateCtx" };
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may still be behind the cluster's until our first entry commits.
      this.waitingReads.push({ ctx, from });
      this.waitingReadCtxs.add(ctx);
      return { ok: true };
    }
    const soleVoter = this.tracker.voters.size === 1 && this.tracker.isVoter(this.id);
    if (soleVoter || this.config.unsafeTestingFaults.readIndexWithoutQuorum === true) {
      this.respondRead(from, this.log.committed, ctx);
      return { ok: true };
    }
    const read = this.readIndexQueue.add(ctx, this.log.committed, from);
    if (this.tracker.isVoter(this.id)) read.acks.add(this.id);
    // One heartbeat round (sent when the Ready is built) confirms every read queued before it.
    this.readRoundPending = true;
    return { ok: true };
  }

  private respondRead(from: RaftId, index: Index, ctx: string): void {
    if (from === this.id) this.readStates.push({ index, ctx });
    else this.msgs.push({ type: "readIndexResponse", from: this.id, to: from, term: this.term, index, ctx });
  }

  transferLeader(to: RaftId): TransferResult {
    if (this.role === "leader") return this.handleTransferLeader(to);
    if (!this.tracker.isVoter(to)) return { ok: false, reason: "notVoter" };
    if (this.lead === NO_NODE) return { ok: false, reason: "noLeader" };
    this.msgs.push({ type: "transferLeader", from: this.id, to: this.lead, term: this.term, transferee: to });
    return { ok: true };
  }

  private handleTransferLeader(to: RaftId): TransferResult {
    if (to === this.id) {
      this.abortLeaderTransfer();
      return { ok: true };
    }
    // Only a voter can win an election; a learner or an unknown node is refused.
    if (!this.tracker.isVoter(to)) return { ok: false, reason: "notVoter" };
    if (this.leadTransferee === to) return { ok: true };
    this.abortLeaderTransfer();
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const pr = this.tracker.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) {
      this.msgs.push({ type: "timeoutNow", from: this.id, to, term: this.term });
    } else {
      this.sendAppend(to, true);
    }
    return { ok: true };
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NO_NODE;
    this.transferElapsed = 0;
  }

  /** The transport could not reach `id`: stop pipelining to it until it answers again. */
  reportUnreachable(id: RaftId): void {
    if (this.role !== "leader") return;
    const pr = this.tracker.progress.get(id);
    if (pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  /** The transport finished sending a snapshot to `id` (`ok` false: it failed). */
  reportSnapshot(id: RaftId, ok: boolean): void {
    if (this.role !== "leader") return;
    const pr = this.tracker.progress.get(id);
    if (pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0 as Index;
    pr.becomeProbe();
    // Wait for the follower's answer to the snapshot before probing.
    if (ok) pr.probeSent = true;
  }

  /** Sends what was deferred to batch it: appends for new proposals/commits, ReadIndex rounds. */
  flush(): void {
    if (this.role !== "leader") return;
    if (this.broadcastPending) {
      this.broadcastPending = false;
      this.bcastAppend();
    }
    if (this.readRoundPending) {
      this.readRoundPending = false;
      this.bcastHeartbeat(this.readIndexQueue.lastCtx());
    }
  }

}
