// The simulated world of one seed: Raft nodes driven exactly as a real driver would drive them
// (Ready → persist after a disk delay → send → apply → advance), a network that delays, drops,
// duplicates, reorders and partitions (also one way), crashes that lose everything not yet persisted,
// clients writing and reading through any node, membership changes and leader transfers. Everything
// happens in simulated time on one event queue; the only randomness is the seed's.
// Phases: "safety" (faults on) then "liveness" (faults off, all nodes up): a leader must be elected
// and every write issued after healing must commit within a bounded number of ticks.

import type { Entry, Message, RaftId, Ready, UnsafeTestingFaults } from "../../src/raft/index.ts";
import {
  MemoryStorage,
  RaftNode,
  bootstrapPersistedState,
  decodeMessage,
  encodeMessage,
  joiningPersistedState,
} from "../../src/raft/index.ts";
import { SafetyChecker, SafetyViolation } from "./checker.ts";
import { EventQueue } from "./event-queue.ts";
import { SimRng } from "./rng.ts";
import type { Scenario } from "./scenario.ts";
import { describeScenario, drawScenario } from "./scenario.ts";
import { Trace } from "./trace.ts";

export interface WorldOptions {
  readonly seed: number;
  /** Founding voters (3 or 5). */
  readonly nodes: number;
  /** Length of the faulty phase in simulated ms. */
  readonly safetyMs?: number;
  /** Liveness bound: ticks after healing within which a leader and all liveness writes must commit. */
  readonly livenessBudgetTicks?: number;
  readonly livenessWrites?: number;
  readonly unsafeTestingFaults?: UnsafeTestingFaults;
  readonly traceCapacity?: number;
  /** Receives every trace line as it happens (replay with --trace). */
  readonly traceSink?: (line: string) => void;
  /** Pass messages through encodeMessage/decodeMessage like a real wire (default true). */
  readonly encodeMessages?: boolean;
  /** Override the seed's drawn scenario (tests use it to pin a fault mix). */
  readonly scenario?: Partial<Scenario>;
}

export interface SimStats {
  events: number;
  messagesSent: number;
  messagesDropped: number;
  writesIssued: number;
  writesAcked: number;
  readsServed: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  maxTerm: number;
  livenessTicks: number;
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ok: boolean;
  readonly failure: { readonly property: string; readonly message: string } | null;
  readonly simulatedMs: number;
  readonly stats: SimStats;
  readonly scenario: string;
  readonly traceHash: number;
  readonly traceTail: readonly string[];
}

interface PendingWrite {
  readonly op: WriteOp;
  readonly term: number;
}

interface WriteOp {
  readonly id: number;
  readonly key: string;
  readonly issuedAt: number;
  readonly liveness: boolean;
  ackedAt: number | null;
  attempts: number;
}

interface ReadOp {
  readonly id: number;
  readonly key: string;
  readonly ctx: string;
  readonly startedAt: number;
  /** Highest index of a write acknowledged before the read started. */
  readonly minIndex: number;
  index: number;
}

interface Proc {
  readonly id: RaftId;
  readonly storage: MemoryStorage;
  readonly tickMs: number;
  node: RaftNode | null;
  life: number;
  persisting: Ready | null;
  kv: Map<string, number>;
  applied: number;
  snapshotIndex: number;
  writes: Map<number, PendingWrite>;
  reads: Map<string, ReadOp>;
  waitingReads: ReadOp[];
  retired: boolean;
}

type SimEvent =
  | { readonly kind: "tick"; readonly proc: Proc; readonly life: number }
  | { readonly kind: "deliver"; readonly to: RaftId; readonly payload: Message | Uint8Array; readonly from: RaftId }
  | { readonly kind: "persisted"; readonly proc: Proc; readonly life: number }
  | { readonly kind: "restart"; readonly proc: Proc }
  | { readonly kind: "retire"; readonly proc: Proc }
  | { readonly kind: "fault" }
  | { readonly kind: "heal" }
  | { readonly kind: "write" }
  | { readonly kind: "read" }
  | { readonly kind: "membership" }
  | { readonly kind: "transfer" }
  | { readonly kind: "liveness" }
  | { readonly kind: "livenessWrite"; readonly op: WriteOp };

const KEYS = ["a", "b", "c", "d", "e"];
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class World {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly trace: Trace;
  readonly checker = new SafetyChecker();
  readonly stats: SimStats = {
    events: 0,
    messagesSent: 0,
    messagesDropped: 0,
    writesIssued: 0,
    writesAcked: 0,
    readsServed: 0,
    crashes: 0,
    partitions: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsSent: 0,
    maxTerm: 0,
    livenessTicks: 0,
  };

  private readonly opts: Required<Omit<WorldOptions, "traceSink" | "unsafeTestingFaults" | "scenario">> & WorldOptions;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly procs = new Map<RaftId, Proc>();
  private now = 0;
  private phase: "safety" | "liveness" | "done" = "safety";
  private nextNodeId: number;
  private nextOpId = 1;
  /** Directed links that drop everything: "from>to". */
  private blocked = new Set<string>();
  /** Latest scheduled delivery per directed link (keeps links FIFO). */
  private readonly linkLastDelivery = new Map<string, number>();

  private readonly netRng: SimRng;
  private readonly faultRng: SimRng;
  private readonly workRng: SimRng;
  private readonly nodeRng: SimRng;

  /** Highest log index of any acknowledged write so far (the read oracle). */
  private maxAckedIndex = 0;
  /** Reference history per key: indexes and write ids, in log order. */
  private readonly refIndexes = new Map<string, number[]>();
  private readonly refValues = new Map<string, number[]>();
  private refMaxIndex = 0;

  private livenessStart = 0;
  private livenessOps: WriteOp[] = [];
  private livenessDeadline = 0;

  constructor(options: WorldOptions) {
    this.opts = {
      safetyMs: 2000,
      livenessBudgetTicks: 300,
      livenessWrites: 5,
      traceCapacity: 4000,
      encodeMessages: true,
      ...options,
    };
    this.seed = options.seed;
    const root = new SimRng(options.seed);
    this.scenario = { ...drawScenario(root.fork(1)), ...options.scenario };
    this.netRng = root.fork(2);
    this.faultRng = root.fork(3);
    this.workRng = root.fork(4);
    this.nodeRng = root.fork(5);
    this.trace = new Trace(this.opts.traceCapacity, options.traceSink ?? null);
    this.nextNodeId = options.nodes + 1;

    const founders: RaftId[] = [];
    for (let n = 1; n <= options.nodes; n++) founders.push(n as RaftId);
    const persisted = bootstrapPersistedState(founders);
    this.log(() => `seed ${this.seed} nodes ${options.nodes}: ${describeScenario(this.scenario)}`);
    for (const id of founders) this.startProc(this.newProc(id, MemoryStorage.fromPersistedState(persisted)));

    const s = this.scenario;
    this.scheduleAfter(this.faultRng.exp(Math.min(s.partitionEveryMs, s.crashEveryMs, 1e9)), { kind: "fault" });
    this.scheduleAfter(this.workRng.exp(s.writeEveryMs), { kind: "write" });
    this.scheduleAfter(this.workRng.exp(s.readEveryMs), { kind: "read" });
    if (s.membershipEveryMs !== Infinity) this.scheduleAfter(this.faultRng.exp(s.membershipEveryMs), { kind: "membership" });
    if (s.transferEveryMs !== Infinity) this.scheduleAfter(this.faultRng.exp(s.transferEveryMs), { kind: "transfer" });
    this.schedule(this.opts.safetyMs, { kind: "liveness" });
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  private log(detail: (() => string) | string): void {
    this.trace.add(this.now, detail);
  }

  private schedule(time: number, ev: SimEvent): void {
    this.queue.push(time, ev);
  }

  private scheduleAfter(delayMs: number, ev: SimEvent): void {
    if (delayMs === Infinity || Number.isNaN(delayMs)) return;
    this.queue.push(this.now + delayMs, ev);
  }

  private newProc(id: RaftId, storage: MemoryStorage): Proc {
    const spread = this.scenario.tickSpread;
    const tickMs = this.scenario.baseTickMs * (1 - spread + 2 * spread * this.nodeRng.float());
    const proc: Proc = {
      id,
      storage,
      tickMs,
      node: null,
      life: 0,
      persisting: null,
      kv: new Map(),
      applied: 0,
      snapshotIndex: 0,
      writes: new Map(),
      reads: new Map(),
      waitingReads: [],
      retired: false,
    };
    this.procs.set(id, proc);
    return proc;
  }

  private startProc(p: Proc): void {
    const s = this.scenario;
    const snap = p.storage.snapshot();
    const node = new RaftNode({
      config: {
        id: p.id,
        electionTimeoutTicks: s.electionTimeoutTicks,
        heartbeatIntervalTicks: s.heartbeatIntervalTicks,
        maxInflightMsgs: s.maxInflightMsgs,
        maxSizePerMsgBytes: s.maxSizePerMsgBytes,
        maxUncommittedEntriesBytes: s.maxUncommittedEntriesBytes,
        appliedIndex: snap.metadata.index,
        learnerPromotionMaxLagEntries: 64,
        ...(this.opts.unsafeTestingFaults === undefined ? {} : { unsafeTestingFaults: this.opts.unsafeTestingFaults }),
      },
      storage: p.storage,
      random: this.nodeRng.fork(p.id * 1000 + p.life),
    });
    p.life++;
    p.node = node;
    p.persisting = null;
    p.kv = decodeKv(snap.data);
    p.applied = snap.metadata.index;
    p.snapshotIndex = snap.metadata.index;
    p.writes = new Map();
    p.reads = new Map();
    p.waitingReads = [];
    this.checker.onStart(p.id, node, p.storage);
    this.log(() => `N${p.id} start (life ${p.life}) term=${node.inspect.term()} log=[${node.inspect.firstIndex()},${node.inspect.lastIndex()}] commit=${node.inspect.commit()}`);
    this.scheduleAfter(p.tickMs * this.nodeRng.float(), { kind: "tick", proc: p, life: p.life });
    this.afterStep(p);
  }

  private crash(p: Proc): void {
    const node = p.node;
    if (node === null) return;
    this.stats.crashes++;
    this.log(() => `N${p.id} CRASH (lost: ${p.persisting === null ? "nothing in flight" : "an unpersisted Ready"}, role ${node.inspect.role()}, term ${node.inspect.term()})`);
    p.node = null;
    p.persisting = null;
    p.life++;
  }

  // ---- the node driver -------------------------------------------------------------------------

  /** After anything touched a node: check invariants, and start persisting a Ready if one is due. */
  private afterStep(p: Proc): void {
    const node = p.node;
    if (node === null) return;
    this.checker.afterEvent(p.id, node);
    const role = node.inspect.role();
    if ((role === "candidate" || role === "preCandidate") && !node.inspect.confState().voters.includes(p.id)) {
      throw new SafetyViolation("membership", `N${p.id} campaigns although it is not a voter of its configuration`);
    }
    const term = node.inspect.term();
    if (term > this.stats.maxTerm) this.stats.maxTerm = term;
    if (p.persisting === null && node.hasReady()) {
      const rd = node.ready();
      p.persisting = rd;
      const latency = this.scenario.diskMaxLatencyMs * this.nodeRng.float();
      this.scheduleAfter(latency, { kind: "persisted", proc: p, life: p.life });
    }
  }

  private onPersisted(p: Proc): void {
    const node = p.node!;
    const rd = p.persisting!;
    // 1. persist
    if (rd.snapshot !== null) p.storage.applySnapshot(rd.snapshot);
    p.storage.append(rd.entries);
    if (rd.hardState !== null) {
      p.storage.setHardState(rd.hardState);
      this.checker.onPersistHardState(p.id, rd.hardState.term, rd.hardState.commit);
    }
    this.log(() => describeReady(p.id, rd));
    // 2. send
    for (const m of rd.messages) {
      this.checker.onSend(p.id, m, p.storage);
      this.send(m);
    }
    // 3. apply
    if (rd.snapshot !== null) {
      p.kv = decodeKv(rd.snapshot.data);
      p.applied = rd.snapshot.metadata.index;
      p.snapshotIndex = rd.snapshot.metadata.index;
      // Writes waiting at indexes the snapshot covers: their fate is unknown to this proposer.
      for (const index of [...p.writes.keys()]) if (index <= p.applied) p.writes.delete(index);
    }
    for (const e of rd.committedEntries) this.apply(p, e);
    // 4. reads
    for (const rs of rd.readStates) {
      const read = p.reads.get(rs.ctx);
      if (read === undefined) continue;
      p.reads.delete(rs.ctx);
      read.index = rs.index;
      p.waitingReads.push(read);
    }
    this.serveReads(p);
    node.advance();
    p.persisting = null;
    this.maybeSnapshot(p, node);
    this.afterStep(p);
  }

  private apply(p: Proc, e: Entry): void {
    this.checker.onApply(p.id, e);
    if (e.index !== p.applied + 1) throw new SafetyViolation("apply order", `N${p.id} applied ${e.index} after ${p.applied}`);
    p.applied = e.index;
    let writeId = 0;
    let key = "";
    if (e.kind === "normal" && e.data.byteLength > 0) {
      const [w, k] = textDecoder.decode(e.data).split(":");
      writeId = Number(w);
      key = k!;
      p.kv.set(key, writeId);
    }
    if (e.index > this.refMaxIndex) {
      if (e.index !== this.refMaxIndex + 1) throw new SafetyViolation("apply order", `first apply of ${e.index} after ${this.refMaxIndex}`);
      this.refMaxIndex = e.index;
      if (writeId !== 0) {
        let idx = this.refIndexes.get(key);
        let val = this.refValues.get(key);
        if (idx === undefined || val === undefined) {
          idx = [];
          val = [];
          this.refIndexes.set(key, idx);
          this.refValues.set(key, val);
        }
        idx.push(e.index);
        val.push(writeId);
      }
      if (e.kind === "confChange") {
        this.stats.confChanges++;
        this.log(() => `committed ${e.change.type}(N${e.change.nodeId}) at ${e.index}`);
        if (e.change.type === "removeNode") {
          const removed = this.procs.get(e.change.nodeId);
          // Left running for a while: it must not disturb the cluster once it knows it is out.
          if (removed !== undefined) this.scheduleAfter(this.faultRng.float() * 1000, { kind: "retire", proc: removed });
        }
      }
    }
    const pending = p.writes.get(e.index);
    if (pending !== undefined) {
      p.writes.delete(e.index);
      if (pending.term === e.term && writeId === pending.op.id && pending.op.ackedAt === null) {
        pending.op.ackedAt = this.now;
        this.stats.writesAcked++;
        if (e.index > this.maxAckedIndex) this.maxAckedIndex = e.index;
        this.log(() => `ack write w${pending.op.id} at index ${e.index} via N${p.id}`);
      }
    }
  }

  private serveReads(p: Proc): void {
    if (p.waitingReads.length === 0) return;
    const still: ReadOp[] = [];
    for (const read of p.waitingReads) {
      if (p.applied < read.index) {
        still.push(read);
        continue;
      }
      this.stats.readsServed++;
      const value = p.kv.get(read.key) ?? 0;
      this.log(() => `read r${read.id} ${read.key}=${value} served by N${p.id} at applied ${p.applied} (read index ${read.index}, must be >= ${read.minIndex})`);
      if (p.applied < read.minIndex) {
        throw new SafetyViolation(
          "linearizable read",
          `read r${read.id} started at ${read.startedAt.toFixed(3)}ms was served by N${p.id} at index ${p.applied}, older than a write acknowledged at index ${read.minIndex} before it began`,
        );
      }
      const expected = this.referenceValue(read.key, p.applied);
      if (value !== expected) {
        throw new SafetyViolation("read value", `read r${read.id} of ${read.key} on N${p.id} at ${p.applied} returned w${value}, the log says w${expected}`);
      }
    }
    p.waitingReads = still;
  }

  private referenceValue(key: string, index: number): number {
    const idx = this.refIndexes.get(key);
    const val = this.refValues.get(key);
    if (idx === undefined || val === undefined) return 0;
    let lo = 0;
    let hi = idx.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (idx[mid]! <= index) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : val[found]!;
  }

  private maybeSnapshot(p: Proc, node: RaftNode): void {
    if (p.applied - p.snapshotIndex < this.scenario.snapshotEveryEntries) return;
    const index = p.applied;
    p.storage.createSnapshot(index as never, node.appliedConfState(), encodeKv(p.kv));
    p.snapshotIndex = index;
    const compactTo = index - this.scenario.compactKeepEntries;
    if (compactTo > p.storage.firstIndex()) p.storage.compact(compactTo as never);
    this.log(() => `N${p.id} snapshot at ${index}, log now [${p.storage.firstIndex()},${p.storage.lastIndex()}]`);
  }

  // ---- network -----------------------------------------------------------------------------------

  private send(m: Message): void {
    this.stats.messagesSent++;
    if (m.type === "snapshot") this.stats.snapshotsSent++;
    const s = this.scenario;
    const faulty = this.phase === "safety";
    const copies = faulty && this.netRng.chance(s.duplicateRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      if (this.blocked.has(`${m.from}>${m.to}`) || (faulty && this.netRng.chance(s.dropRate))) {
        this.stats.messagesDropped++;
        continue;
      }
      let at = this.now + s.netMinDelayMs + this.netRng.exp(s.netMeanDelayMs);
      if (m.type === "snapshot") at += m.snapshot.data.byteLength / 1000;
      // Links are FIFO like a TCP/HTTP2 connection, except for the seed's share of reordered messages.
      const link = `${m.from}>${m.to}`;
      const lastAt = this.linkLastDelivery.get(link) ?? 0;
      if (at < lastAt && !(faulty && this.netRng.chance(s.reorderRate))) at = lastAt;
      if (at > lastAt) this.linkLastDelivery.set(link, at);
      const payload = this.opts.encodeMessages ? encodeMessage(m) : m;
      this.schedule(at, { kind: "deliver", to: m.to, payload, from: m.from });
      // A copy replayed much later (a retransmission from a stale connection).
      if (faulty && this.netRng.chance(s.replayRate)) {
        this.schedule(this.now + 50 + this.netRng.float() * 1000, { kind: "deliver", to: m.to, payload, from: m.from });
      }
    }
  }

  private onDeliver(ev: Extract<SimEvent, { kind: "deliver" }>): void {
    const p = this.procs.get(ev.to);
    // Partitions also cut messages already on the wire.
    if (p === undefined || p.node === null || this.blocked.has(`${ev.from}>${ev.to}`)) {
      this.stats.messagesDropped++;
      return;
    }
    const m = ev.payload instanceof Uint8Array ? decodeMessage(ev.payload) : ev.payload;
    this.log(() => `N${m.to} <- ${describeMessage(m)}`);
    p.node.step(m);
    this.afterStep(p);
  }

  // ---- faults ------------------------------------------------------------------------------------

  private liveProcs(): Proc[] {
    return [...this.procs.values()].filter((p) => !p.retired && p.node !== null);
  }

  private onFault(): void {
    if (this.phase !== "safety") return;
    const s = this.scenario;
    const rng = this.faultRng;
    const crashWeight = s.crashEveryMs === Infinity ? 0 : 1 / s.crashEveryMs;
    const partitionWeight = s.partitionEveryMs === Infinity ? 0 : 1 / s.partitionEveryMs;
    if (crashWeight + partitionWeight === 0) return;
    if (rng.float() * (crashWeight + partitionWeight) < crashWeight) {
      const up = this.liveProcs();
      if (up.length > 0) {
        // Leaders are the interesting victims.
        const leaders = up.filter((p) => p.node!.inspect.role() === "leader");
        const victim = leaders.length > 0 && rng.chance(0.5) ? rng.pick(leaders) : rng.pick(up);
        this.crash(victim);
        this.scheduleAfter(rng.float() * s.downMaxMs, { kind: "restart", proc: victim });
      }
    } else {
      this.partition();
    }
    this.scheduleAfter(rng.exp(1 / (crashWeight + partitionWeight)), { kind: "fault" });
  }

  private partition(): void {
    const rng = this.faultRng;
    const ids = [...this.procs.values()].filter((p) => !p.retired).map((p) => p.id);
    if (ids.length < 2) return;
    const mode = rng.pick(["isolate", "split", "oneWayIn", "oneWayOut", "bridge"] as const);
    const blocked = new Set<string>();
    const cut = (a: RaftId, b: RaftId): void => {
      blocked.add(`${a}>${b}`);
    };
    // Cutting off the leader is what creates stale leaders, the interesting case.
    const leader = this.leaderProc();
    const victim = leader !== undefined && rng.chance(0.5) ? leader.id : rng.pick(ids);
    if (mode === "isolate" || mode === "oneWayIn" || mode === "oneWayOut") {
      for (const other of ids) {
        if (other === victim) continue;
        if (mode !== "oneWayIn") cut(victim, other); // victim cannot send
        if (mode !== "oneWayOut") cut(other, victim); // victim cannot receive
      }
    } else if (mode === "split") {
      const side = new Set(ids.filter(() => rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) cut(a, b);
    } else {
      // bridge: two halves that only `victim` connects.
      const others = ids.filter((x) => x !== victim);
      const side = new Set(others.filter((_, k) => k % 2 === 0));
      for (const a of others) for (const b of others) if (side.has(a) !== side.has(b)) cut(a, b);
    }
    this.blocked = blocked;
    this.stats.partitions++;
    this.log(() => `PARTITION ${mode} around N${victim}: blocked ${[...blocked].join(" ") || "nothing"}`);
    this.scheduleAfter(rng.float() * this.scenario.partitionHoldMaxMs, { kind: "heal" });
  }

  private onHeal(): void {
    if (this.blocked.size === 0) return;
    this.blocked = new Set();
    this.log("HEAL network");
  }

  private onRestart(p: Proc): void {
    if (p.retired || p.node !== null) return;
    this.startProc(p);
  }

  private onRetire(p: Proc): void {
    if (p.retired) return;
    p.retired = true;
    p.node = null;
    p.persisting = null;
    p.life++;
    this.log(() => `N${p.id} retired (its removal is committed)`);
  }

  // ---- clients -----------------------------------------------------------------------------------

  private leaderProc(): Proc | undefined {
    let best: Proc | undefined;
    for (const p of this.liveProcs()) {
      const n = p.node!;
      if (n.inspect.role() !== "leader") continue;
      if (best === undefined || n.inspect.term() > best.node!.inspect.term()) best = p;
    }
    return best;
  }

  /** Mostly the leader (as a client that found it), sometimes any node. */
  private clientTarget(rng: SimRng): Proc | undefined {
    const leader = this.leaderProc();
    if (leader !== undefined && rng.chance(0.8)) return leader;
    const up = this.liveProcs();
    return up.length === 0 ? undefined : rng.pick(up);
  }

  private propose(p: Proc, op: WriteOp): boolean {
    const node = p.node!;
    op.attempts++;
    const r = node.propose(textEncoder.encode(`${op.id}:${op.key}`));
    this.log(() => `client w${op.id} ${op.key} -> N${p.id}: ${r.ok ? `accepted at ${r.firstIndex} term ${r.term}` : `refused ${r.reason}`}`);
    if (r.ok) p.writes.set(r.firstIndex, { op, term: r.term });
    this.afterStep(p);
    return r.ok;
  }

  private onWrite(): void {
    if (this.phase !== "safety") return;
    const rng = this.workRng;
    const p = this.clientTarget(rng);
    if (p !== undefined) {
      const op: WriteOp = { id: this.nextOpId++, key: rng.pick(KEYS), issuedAt: this.now, liveness: false, ackedAt: null, attempts: 0 };
      this.stats.writesIssued++;
      this.propose(p, op);
    }
    this.scheduleAfter(rng.exp(this.scenario.writeEveryMs), { kind: "write" });
  }

  private onRead(): void {
    if (this.phase === "done") return;
    const rng = this.workRng;
    const up = this.liveProcs();
    if (up.length > 0) {
      const p = rng.pick(up);
      const id = this.nextOpId++;
      const read: ReadOp = { id, key: rng.pick(KEYS), ctx: `r${id}`, startedAt: this.now, minIndex: this.maxAckedIndex, index: 0 };
      const r = p.node!.readIndex(read.ctx);
      this.log(() => `client r${id} ${read.key} -> N${p.id}: ${r.ok ? "pending" : `refused ${r.reason}`}`);
      if (r.ok) p.reads.set(read.ctx, read);
      this.afterStep(p);
    }
    this.scheduleAfter(rng.exp(this.scenario.readEveryMs), { kind: "read" });
  }

  private onMembership(): void {
    if (this.phase !== "safety") return;
    const rng = this.faultRng;
    this.scheduleAfter(rng.exp(this.scenario.membershipEveryMs), { kind: "membership" });
    const leader = this.leaderProc();
    if (leader === undefined) return;
    const node = leader.node!;
    const conf = node.status().confState;
    const founders = this.opts.nodes;
    const options: (() => void)[] = [];
    const propose = (type: "addVoter" | "addLearner" | "removeNode", target: RaftId): boolean => {
      const r = node.proposeConfChange({ type, nodeId: target, context: new Uint8Array(0) });
      this.log(() => `admin ${type}(N${target}) -> N${leader.id}: ${r.ok ? `accepted at ${r.index}` : `refused ${r.reason}`}`);
      this.afterStep(leader);
      return r.ok;
    };
    if (conf.learners.length < 2 && conf.voters.length <= founders && this.procs.size < founders + 8) {
      options.push(() => {
        const id = this.nextNodeId++ as RaftId;
        const p = this.newProc(id, MemoryStorage.fromPersistedState(joiningPersistedState()));
        this.startProc(p);
        if (!propose("addLearner", id)) this.onRetire(p);
      });
    }
    if (conf.learners.length > 0 && conf.voters.length <= founders) {
      options.push(() => propose("addVoter", rng.pick(conf.learners)));
    }
    if (conf.voters.length >= founders) {
      options.push(() => {
        // Sometimes the leader removes itself.
        const target = rng.chance(0.3) ? leader.id : rng.pick(conf.voters);
        propose("removeNode", target);
      });
    }
    if (conf.learners.length > 0) options.push(() => propose("removeNode", rng.pick(conf.learners)));
    // Invalid requests must be refused without harm.
    options.push(() => propose("addVoter", rng.pick(conf.voters)));
    rng.pick(options)();
  }

  private onTransfer(): void {
    if (this.phase !== "safety") return;
    const rng = this.faultRng;
    this.scheduleAfter(rng.exp(this.scenario.transferEveryMs), { kind: "transfer" });
    const up = this.liveProcs();
    if (up.length === 0) return;
    const p = rng.pick(up);
    const candidates = [...this.procs.keys()];
    const target = rng.chance(0.1) ? ((this.nextNodeId + 50) as RaftId) : rng.pick(candidates);
    const r = p.node!.transferLeader(target);
    this.stats.transfers++;
    this.log(() => `admin transferLeader(N${target}) -> N${p.id}: ${r.ok ? "ok" : `refused ${r.reason}`}`);
    this.afterStep(p);
  }

  // ---- liveness phase ----------------------------------------------------------------------------

  private onLiveness(): void {
    this.phase = "liveness";
    this.livenessStart = this.now;
    this.blocked = new Set();
    this.log("=== LIVENESS: faults stop, network heals, every member restarts ===");
    for (const p of this.procs.values()) if (!p.retired && p.node === null) this.startProc(p);
    const tick = this.scenario.baseTickMs * (1 + this.scenario.tickSpread);
    this.livenessDeadline = this.now + this.opts.livenessBudgetTicks * tick;
    for (let k = 0; k < this.opts.livenessWrites; k++) {
      const op: WriteOp = { id: this.nextOpId++, key: KEYS[k % KEYS.length]!, issuedAt: this.now, liveness: true, ackedAt: null, attempts: 0 };
      this.livenessOps.push(op);
      this.stats.writesIssued++;
      this.scheduleAfter(k * 2 * this.scenario.baseTickMs, { kind: "livenessWrite", op });
    }
  }

  private onLivenessWrite(op: WriteOp): void {
    if (op.ackedAt !== null || this.phase !== "liveness") return;
    const leader = this.leaderProc();
    if (leader !== undefined) this.propose(leader, op);
    // Retry until acknowledged: a proposal can be lost to a leader change.
    this.scheduleAfter(5 * this.scenario.baseTickMs, { kind: "livenessWrite", op });
  }

  private livenessDone(): boolean {
    if (!this.livenessOps.every((op) => op.ackedAt !== null)) return false;
    // ...and every member of the leader's configuration has caught up with the last write.
    const leader = this.leaderProc();
    if (leader === undefined) return false;
    const target = leader.node!.inspect.commit();
    for (const id of [...leader.node!.status().confState.voters, ...leader.node!.status().confState.learners]) {
      const p = this.procs.get(id);
      if (p === undefined || p.node === null) return false;
      if (p.applied < target) return false;
    }
    return true;
  }

  // ---- run ---------------------------------------------------------------------------------------

  run(): SimResult {
    let failure: { property: string; message: string } | null = null;
    try {
      this.loop();
    } catch (e) {
      if (e instanceof SafetyViolation) failure = { property: e.property, message: e.message };
      else if (e instanceof Error) failure = { property: e.name, message: `${e.message}\n${e.stack ?? ""}` };
      else failure = { property: "unknown", message: String(e) };
      this.log(() => `FAILURE ${failure!.message.split("\n")[0]}`);
    }
    return {
      seed: this.seed,
      nodes: this.opts.nodes,
      ok: failure === null,
      failure,
      simulatedMs: this.now,
      stats: this.stats,
      scenario: describeScenario(this.scenario),
      traceHash: this.trace.hash,
      traceTail: failure === null ? [] : this.trace.lines(),
    };
  }

  private loop(): void {
    const endCheckEvery = 10;
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined) throw new SafetyViolation("liveness", "the event queue ran dry");
      this.now = next.time;
      this.stats.events++;
      this.trace.mix(this.stats.events);
      this.dispatch(next.item);
      if (this.phase === "liveness" && this.stats.events % endCheckEvery === 0) {
        if (this.livenessDone()) {
          this.stats.livenessTicks = Math.ceil((this.now - this.livenessStart) / this.scenario.baseTickMs);
          this.phase = "done";
          this.log(() => `=== DONE: liveness reached after ${this.stats.livenessTicks} ticks ===`);
          return;
        }
        if (this.now > this.livenessDeadline) {
          const pending = this.livenessOps.filter((op) => op.ackedAt === null).map((op) => `w${op.id}`);
          const leader = this.leaderProc();
          throw new SafetyViolation(
            "liveness",
            `${this.opts.livenessBudgetTicks} ticks after healing: leader ${leader === undefined ? "none" : `N${leader.id}`}, unacknowledged writes [${pending.join(",")}], ${this.describeNodes()}`,
          );
        }
      }
    }
  }

  describeNodes(): string {
    return [...this.procs.values()]
      .filter((p) => !p.retired)
      .map((p) => {
        const n = p.node;
        if (n === null) return `N${p.id}:down`;
        const st = n.status();
        return `N${p.id}:${st.role}@${st.term} lead=${st.leader} commit=${st.commit} applied=${p.applied} last=${st.lastIndex} conf=[${st.confState.voters.join(",")}|${st.confState.learners.join(",")}]`;
      })
      .join(" ");
  }

  private dispatch(ev: SimEvent): void {
    switch (ev.kind) {
      case "tick": {
        const p = ev.proc;
        if (p.life !== ev.life || p.node === null) return;
        p.node.tick();
        this.afterStep(p);
        this.scheduleAfter(p.tickMs, { kind: "tick", proc: p, life: p.life });
        return;
      }
      case "deliver":
        this.onDeliver(ev);
        return;
      case "persisted":
        if (ev.proc.life !== ev.life || ev.proc.node === null || ev.proc.persisting === null) return;
        this.onPersisted(ev.proc);
        return;
      case "restart":
        this.onRestart(ev.proc);
        return;
      case "retire":
        this.onRetire(ev.proc);
        return;
      case "fault":
        this.onFault();
        return;
      case "heal":
        this.onHeal();
        return;
      case "write":
        this.onWrite();
        return;
      case "read":
        this.onRead();
        return;
      case "membership":
        this.onMembership();
        return;
      case "transfer":
        this.onTransfer();
        return;
      case "liveness":
        this.onLiveness();
        return;
      case "livenessWrite":
        this.onLivenessWrite(ev.op);
        return;
    }
  }
}

function encodeKv(kv: Map<string, number>): Uint8Array {
  return textEncoder.encode(JSON.stringify([...kv.entries()].sort()));
}

function decodeKv(data: Uint8Array): Map<string, number> {
  if (data.byteLength === 0) return new Map();
  return new Map(JSON.parse(textDecoder.decode(data)) as [string, number][]);
}

export function describeMessage(m: Message): string {
  const head = `${m.type} N${m.from}->N${m.to} t${m.term}`;
  switch (m.type) {
    case "append":
      return `${head} prev=(${m.prevIndex},t${m.prevTerm}) n=${m.entries.length} commit=${m.commit}`;
    case "appendResponse":
      return `${head} index=${m.index}${m.reject ? ` REJECT hint=(${m.rejectHint},t${m.rejectHintTerm})` : ""}`;
    case "vote":
    case "preVote":
      return `${head} last=(${m.lastIndex},t${m.lastTerm})${m.transfer ? " transfer" : ""}`;
    case "voteResponse":
    case "preVoteResponse":
      return `${head} ${m.reject ? "REJECT" : "grant"}`;
    case "heartbeat":
      return `${head} commit=${m.commit}${m.ctx === null ? "" : ` ctx=${m.ctx}`}`;
    case "heartbeatResponse":
      return `${head}${m.ctx === null ? "" : ` ctx=${m.ctx}`}`;
    case "snapshot":
      return `${head} at=(${m.snapshot.metadata.index},t${m.snapshot.metadata.term}) voters=[${m.snapshot.metadata.confState.voters.join(",")}]`;
    case "readIndex":
      return `${head} ctx=${m.ctx}`;
    case "readIndexResponse":
      return `${head} ctx=${m.ctx} index=${m.index}`;
    case "timeoutNow":
      return head;
    case "transferLeader":
      return `${head} to=N${m.transferee}`;
  }
}

function describeReady(id: RaftId, rd: Ready): string {
  const parts = [`N${id} persisted`];
  if (rd.softState !== null) parts.push(`role=${rd.softState.role} lead=${rd.softState.leader}`);
  if (rd.hardState !== null) parts.push(`hs=(t${rd.hardState.term},v${rd.hardState.vote},c${rd.hardState.commit})`);
  if (rd.entries.length > 0) parts.push(`entries=[${rd.entries[0]!.index}..${rd.entries[rd.entries.length - 1]!.index}]`);
  if (rd.snapshot !== null) parts.push(`snapshot@${rd.snapshot.metadata.index}`);
  if (rd.committedEntries.length > 0) {
    parts.push(`apply=[${rd.committedEntries[0]!.index}..${rd.committedEntries[rd.committedEntries.length - 1]!.index}]`);
  }
  if (rd.messages.length > 0) parts.push(`send=${rd.messages.length}`);
  if (rd.readStates.length > 0) parts.push(`reads=${rd.readStates.map((r) => `${r.ctx}@${r.index}`).join(",")}`);
  return parts.join(" ");
}
