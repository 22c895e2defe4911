// Tail recovery of a replicated loglet after its sequencer is gone, as a pure core: seal, find the
// tail, repair, in that order.
//
// 1. Seal until an f-majority (n − r + 1) of servers that did not lose data answered sealed. Every
//    acknowledged record sits on a write quorum of r servers, and every write quorum intersects
//    every f-majority, so some answering server holds each acknowledged record; and no new record
//    can reach r copies any more.
// 2. Digest: ask servers which offsets they hold in [repairFrom, maxTail), maxTail being the highest
//    local tail among sealed servers. Wait for complete digests from an f-majority of servers that
//    were sealed when they answered and did not lose data: their content is frozen (only repair
//    stores still land), and each acknowledged record, even one acknowledged after this recovery
//    started, was stored by one of them before it sealed. The tail is the first offset at or above
//    the known global tail that no answering server holds (stores may land out of order, so a record
//    above a hole was never acknowledged: acknowledgement needs every earlier offset committed).
//    Hence tail ≥ every acknowledged offset. An unsealed server's digest only adds evidence of
//    presence, never of absence: it may still take stores.
// 3. Repair: copy every offset in [repairFrom, tail) held by fewer than r servers onto more servers
//    (repair stores, allowed into sealed loglets) until it has r copies. Only then is the tail done.
//    When no further server of the nodeset can take a copy (every one that lacks the record is
//    given up on, e.g. a nodeset of exactly r servers with one down), the record is published with
//    the copies it has and reported as under-replicated instead of blocking the log until that
//    server returns: it may have been acknowledged (its other copies may sit on the server that is
//    down), so it must stay below the tail, and an acknowledged record then still has its r copies.
//    A server that answered nothing during this recovery is given up on once its repair requests
//    have failed for `silentRepairTicks` (about a second), so a dead server delays the repair by
//    that much rather than by every retry of `maxAttemptsPerNode`, while one that is restarting
//    still gets its copies.
//
// The caller records the tail in the log chain (by compare-and-set, so concurrent recoveries agree
// on one). Invariants: done is reported once, after repair; every offset below the tail that some
// answering server holds has ≥ r copies when done, or is reported as under-replicated; offsets
// below the known global tail that no answering server holds are reported as lost, never skipped
// silently.
import type { GetDigestResponse, GetRecordsResponse, StoreResponse } from "../../logserver/protocol.ts";
import { invariant } from "../../observability/errors.ts";
import { logletOffset, type LogletOffset, type NodeId, type OffsetRange } from "../../ids/index.ts";
import { checkParams, fMajoritySize, type ReplicatedLogletParams } from "./params.ts";
import { sample, type Random } from "./random.ts";
import { Outbox, backoffTicks, type CoreReady, type ProtocolCore, type RequestId, type RpcOutcome } from "./requests.ts";
import { SealRounds } from "./seal.ts";
import { NodeRetries, PendingRequests, RETRY_DEFAULTS, type RetryOptions } from "./tracking.ts";

export interface RecoveryOptions extends RetryOptions {
  /**
   * First offset repair looks at. "known-global-tail" (default, Restate's range): only the region
   * a lost sequencer may have left under-replicated. 1: re-replicate every offset still held, e.g.
   * after a log-server lost its data.
   */
  readonly repairFrom: LogletOffset | "known-global-tail";
  /** Records fetched from one source per repair step, and their byte budget. */
  readonly repairWindowRecords: number;
  readonly repairByteBudget: number;
  /** Largest [repairFrom, maxTail) range one recovery handles (its digest is held in memory). */
  readonly maxRepairSpan: number;
  /** Ticks of failed repair requests after which a server that answered nothing in this recovery is given up on. */
  readonly silentRepairTicks: number;
}

export const RECOVERY_DEFAULTS: RecoveryOptions = {
  ...RETRY_DEFAULTS,
  repairFrom: "known-global-tail",
  repairWindowRecords: 256,
  repairByteBudget: 1024 * 1024,
  maxRepairSpan: 1 << 22,
  silentRepairTicks: 100,
};

export interface RecoveryResult {
  /** The sealed tail: the first offset that is not part of the loglet. */
  readonly tail: LogletOffset;
  readonly knownGlobalTail: LogletOffset;
  readonly maxLocalTail: LogletOffset;
  readonly repairFrom: LogletOffset;
  /** Record copies written by repair. */
  readonly copiesWritten: number;
  /** Committed offsets (below the known global tail) that no answering server holds: data loss. */
  readonly lost: readonly OffsetRange[];
  /**
   * Offsets below the tail left with fewer than r copies because no further server of the nodeset
   * could take one (those that lack them were unreachable). Readable; re-replicated by nobody yet.
   */
  readonly underReplicated: readonly OffsetRange[];
}

export type RecoveryPhase = "seal" | "digest" | "repair";

export type RecoveryEvent =
  | { readonly kind: "done"; readonly result: RecoveryResult }
  | { readonly kind: "failed"; readonly phase: RecoveryPhase; readonly reason: string };

const ABSENT = 0;
const EXISTS = 1;
const TRIMMED = 2;

type Ctx =
  | { readonly kind: "seal" }
  | { readonly kind: "digest"; readonly node: NodeId }
  | { readonly kind: "fetch"; readonly node: NodeId }
  | { readonly kind: "store"; readonly node: NodeId; readonly from: number; readonly to: number };

interface Window {
  readonly from: number;
  /** Inclusive end requested from the source. */
  readonly to: number;
  readonly source: NodeId;
  fetchId: RequestId | null;
  /** Inclusive end actually fetched; -1 while fetching. */
  fetchedTo: number;
  readonly payloads: Map<number, Uint8Array>;
}

export class TailRecovery implements ProtocolCore<RecoveryEvent> {
  readonly params: ReplicatedLogletParams;
  private readonly options: RecoveryOptions;
  private readonly random: Random;
  private readonly outbox = new Outbox<RecoveryEvent>();
  private readonly pending = new PendingRequests<Ctx>();
  private now = 0;
  private phase: RecoveryPhase | "done" | "failed" = "seal";
  private readonly fMajority: number;
  private readonly sealRounds: SealRounds;

  // digest phase
  private start = 0;
  private end = 0; // exclusive
  private knownGlobalTail = 0;
  private maxLocalTail = 0;
  private digestRetries: NodeRetries | undefined;
  private readonly digestCursor = new Map<NodeId, number>();
  private readonly digestComplete = new Set<NodeId>();
  private readonly authoritative = new Map<NodeId, boolean>();
  /** Whether the server was sealed when it answered its digest (only then is absence evidence). */
  private readonly sealedAtDigest = new Map<NodeId, boolean>();
  /** Per server, per offset in [start, end): ABSENT, EXISTS or TRIMMED. */
  private readonly holdings = new Map<NodeId, Uint8Array>();

  // repair phase
  private tail = 0;
  private lost: OffsetRange[] = [];
  private cursor = 0;
  private window: Window | undefined;
  private readonly pendingCopies = new Map<number, number>();
  private readonly repairNodes = new Map<NodeId, { failures: number; until: number; gaveUp: boolean; firstFailure: number }>();
  private copiesWritten = 0;
  private readonly underReplicated = new Set<number>();
  /** Servers that answered any request of this recovery (the others are likely down). */
  private readonly answered = new Set<NodeId>();

  constructor(params: ReplicatedLogletParams, random: Random, options: Partial<RecoveryOptions> = {}) {
    checkParams(params);
    this.params = params;
    this.random = random;
    this.options = { ...RECOVERY_DEFAULTS, ...options };
    this.fMajority = this.evidenceQuorum();
    invariant(this.fMajority >= 1 && this.fMajority <= params.nodeset.length, "evidence quorum out of range");
    this.sealRounds = new SealRounds(params, { ...this.options, requireAuthoritative: true }, {
      newId: () => this.outbox.newId(),
      send: (r) => {
        this.pending.add(r.id, { kind: "seal" }, this.now + r.timeoutTicks);
        this.outbox.send(r);
      },
    });
    for (const n of params.nodeset) this.repairNodes.set(n, { failures: 0, until: 0, gaveUp: false, firstFailure: -1 });
    this.sealRounds.pump(this.now);
  }

  /** Servers whose answers must be evidence: an f-majority. (A seam for the simulator's broken variants.) */
  protected evidenceQuorum(): number {
    return fMajoritySize(this.params);
  }

  currentPhase(): RecoveryPhase | "done" | "failed" {
    return this.phase;
  }

  tick(): void {
    this.now++;
    for (const ctx of this.pending.expire(this.now)) this.onFailure(ctx);
    if (this.phase === "seal") this.sealRounds.tick(this.now);
    this.step();
  }

  receive(id: RequestId, outcome: RpcOutcome): void {
    if (this.phase === "seal" && this.sealRounds.owns(id)) {
      this.pending.take(id);
      this.sealRounds.receive(id, outcome, this.now);
      this.step();
      return;
    }
    const ctx = this.pending.take(id);
    if (!ctx || ctx.kind === "seal") return;
    if (!outcome.ok) {
      this.onFailure(ctx);
    } else if (ctx.kind === "digest" && outcome.rpc === "getDigest") {
      this.onDigest(ctx.node, outcome.response);
    } else if (ctx.kind === "fetch" && outcome.rpc === "getRecords") {
      this.onRecords(ctx.node, id, outcome.response);
    } else if (ctx.kind === "store" && outcome.rpc === "store") {
      this.onStored(ctx, outcome.response);
    } else {
      invariant(false, () => `recovery got a ${outcome.rpc} answer to a ${ctx.kind} request`);
    }
    this.step();
  }

  hasReady(): boolean {
    return this.outbox.hasReady();
  }

  ready(): CoreReady<RecoveryEvent> {
    return this.outbox.ready();
  }

  advance(): void {
    this.outbox.advance();
  }

  // ---- phase transitions -----------------------------------------------------------------------

  private step(): void {
    if (this.phase === "seal") {
      if (this.sealRounds.status === "failed") return this.fail("seal", this.sealRounds.failureReason());
      if (this.sealRounds.status === "pending") return this.sealRounds.pump(this.now);
      this.startDigest();
    }
    if (this.phase === "digest") {
      if (this.digestEnough()) this.startRepair();
      else return this.pumpDigest();
    }
    if (this.phase === "repair") this.pumpRepair();
  }

  private fail(phase: RecoveryPhase, reason: string): void {
    this.phase = "failed";
    this.pending.clear();
    this.outbox.emit({ kind: "failed", phase, reason });
  }

  private finish(): void {
    this.phase = "done";
    this.pending.clear();
    this.outbox.emit({
      kind: "done",
      result: {
        tail: logletOffset(this.tail),
        knownGlobalTail: logletOffset(this.knownGlobalTail),
        maxLocalTail: logletOffset(this.maxLocalTail),
        repairFrom: logletOffset(this.start),
        copiesWritten: this.copiesWritten,
        lost: this.lost,
        underReplicated: toRanges([...this.underReplicated].sort((a, b) => a - b)),
      },
    });
  }

  private startDigest(): void {
    for (const n of this.sealRounds.responses.keys()) this.answered.add(n);
    let gt = 1;
    let maxTail = 1;
    for (const r of this.sealRounds.responses.values()) {
      gt = Math.max(gt, r.knownGlobalTail);
      maxTail = Math.max(maxTail, r.localTail);
    }
    this.knownGlobalTail = gt;
    this.maxLocalTail = maxTail;
    const from = this.options.repairFrom === "known-global-tail" ? gt : Math.max(1, Math.min(this.options.repairFrom, gt));
    this.start = from;
    this.end = Math.max(maxTail, gt);
    if (this.end - this.start > this.options.maxRepairSpan) {
      return this.fail("digest", `repair range [${this.start}, ${this.end}) exceeds ${this.options.maxRepairSpan} offsets`);
    }
    this.phase = "digest";
    if (this.start >= this.end) {
      this.tail = this.end;
      return this.finish();
    }
    this.digestRetries = new NodeRetries(this.params.nodeset, this.options);
    for (const n of this.params.nodeset) {
      this.digestCursor.set(n, this.start);
      this.holdings.set(n, new Uint8Array(this.end - this.start));
    }
  }

  private isEvidence(node: NodeId): boolean {
    return this.digestComplete.has(node) && this.authoritative.get(node) === true && this.sealedAtDigest.get(node) === true;
  }

  private pumpDigest(): void {
    const retries = this.digestRetries!;
    let complete = 0;
    let possible = 0;
    for (const n of this.params.nodeset) {
      if (this.isEvidence(n)) {
        complete++;
        possible++;
      } else if (!this.digestComplete.has(n) && this.authoritative.get(n) !== false && retries.status(n) !== "gave-up") {
        possible++;
      }
    }
    if (possible < this.fMajority) {
      return this.fail("digest", `only ${complete} of the ${this.fMajority} digests of sealed, authoritative log-servers needed could be had`);
    }
    for (const node of retries.due(this.now)) {
      const from = this.digestCursor.get(node)!;
      const id = this.outbox.newId();
      retries.sent(node);
      this.pending.add(id, { kind: "digest", node }, this.now + this.options.requestTimeoutTicks);
      this.outbox.send({
        id,
        to: node,
        rpc: "getDigest",
        timeoutTicks: this.options.requestTimeoutTicks,
        request: { loglet: this.params.loglet, from: logletOffset(from), to: logletOffset(this.end - 1) },
      });
    }
  }

  private onDigest(node: NodeId, r: GetDigestResponse): void {
    this.answered.add(node);
    if (this.phase !== "digest") return;
    const retries = this.digestRetries!;
    const from = this.digestCursor.get(node)!;
    const held = this.holdings.get(node)!;
    this.authoritative.set(node, r.authoritative);
    this.sealedAtDigest.set(node, (this.sealedAtDigest.get(node) ?? true) && r.sealed);
    for (const e of r.entries) {
      const lo = Math.max(e.from, from, this.start);
      const hi = Math.min(e.to, this.end - 1);
      for (let o = lo; o <= hi; o++) held[o - this.start] = e.status === "trimmed" ? TRIMMED : EXISTS;
    }
    if (r.nextOffset <= from) {
      retries.failed(node, this.now); // no progress: treat like an error
    } else if (r.nextOffset < this.end) {
      this.digestCursor.set(node, r.nextOffset);
      retries.succeeded(node, false);
    } else {
      retries.succeeded(node, true);
      this.digestComplete.add(node);
    }
  }

  private digestEnough(): boolean {
    let n = 0;
    for (const node of this.params.nodeset) if (this.isEvidence(node)) n++;
    return n >= this.fMajority;
  }

  private startRepair(): void {
    this.phase = "repair";
    // Only complete digests are evidence; forget partial ones.
    for (const n of this.params.nodeset) if (!this.digestComplete.has(n)) this.holdings.get(n)!.fill(ABSENT);
    let tail = this.maxLocalTail;
    for (let o = this.knownGlobalTail; o < this.maxLocalTail; o++) {
      if (this.copies(o) === 0 && !this.trimmed(o)) {
        tail = o;
        break;
      }
    }
    this.tail = Math.max(tail, this.knownGlobalTail);
    const lost: number[] = [];
    for (let o = this.start; o < Math.min(this.knownGlobalTail, this.tail); o++) {
      if (this.copies(o) === 0 && !this.trimmed(o)) lost.push(o);
    }
    this.lost = toRanges(lost);
    this.cursor = this.start;
  }

  // ---- repair ------------------------------------------------------------------------------------

  private copies(o: number): number {
    let n = 0;
    for (const h of this.holdings.values()) if (h[o - this.start] === EXISTS) n++;
    return n;
  }

  private trimmed(o: number): boolean {
    for (const h of this.holdings.values()) if (h[o - this.start] === TRIMMED) return true;
    return false;
  }

  private holds(node: NodeId, o: number): boolean {
    return this.holdings.get(node)![o - this.start] === EXISTS;
  }

  private needsRepair(o: number): boolean {
    const c = this.copies(o);
    return c > 0 && c < this.params.replication && !this.trimmed(o) && !this.underReplicated.has(o);
  }

  private usable(node: NodeId): boolean {
    const s = this.repairNodes.get(node)!;
    return !s.gaveUp && s.until <= this.now;
  }

  private pumpRepair(): void {
    for (;;) {
      if (!this.window) {
        while (this.cursor < this.tail && !this.needsRepair(this.cursor)) this.cursor++;
        if (this.cursor >= this.tail) return this.finish();
        if (!this.openWindow()) return;
      }
      const w = this.window!;
      if (w.fetchedTo < 0) {
        if (w.fetchId === null) this.sendFetch(w);
        return;
      }
      let complete = true;
      for (let o = w.from; o <= w.fetchedTo; o++) {
        if (!this.needsRepair(o)) continue;
        complete = false;
        invariant(w.payloads.has(o), () => `repair window lacks the payload of offset ${o}`);
        if (!this.dispatchCopies(o)) return;
      }
      this.sendStores(w);
      if (!complete) return;
      this.cursor = w.fetchedTo + 1;
      this.window = undefined;
    }
  }

  /** Picks a source for the offset at the cursor and the run it can serve; false = wait or failed. */
  private openWindow(): boolean {
    const o = this.cursor;
    const holders = this.params.nodeset.filter((n) => this.holds(n, o));
    const live = holders.filter((n) => !this.repairNodes.get(n)!.gaveUp);
    if (live.length === 0) {
      this.fail("repair", `no reachable log-server still holds offset ${o}`);
      return false;
    }
    const ready = live.filter((n) => this.usable(n));
    if (ready.length === 0) return false; // every holder is backing off: wait for a tick
    const source = ready[this.random.int(ready.length)]!;
    let to = o;
    let lastNeeded = o;
    while (to + 1 < this.tail && to + 1 - o < this.options.repairWindowRecords) {
      const next = to + 1;
      if (this.needsRepair(next)) {
        if (!this.holds(source, next)) break;
        lastNeeded = next;
      }
      to = next;
    }
    this.window = { from: o, to: lastNeeded, source, fetchId: null, fetchedTo: -1, payloads: new Map() };
    return true;
  }

  private sendFetch(w: Window): void {
    if (!this.usable(w.source)) {
      this.window = undefined; // choose another source (or wait) on the next step
      return;
    }
    const id = this.outbox.newId();
    w.fetchId = id;
    this.pending.add(id, { kind: "fetch", node: w.source }, this.now + this.options.requestTimeoutTicks);
    this.outbox.send({
      id,
      to: w.source,
      rpc: "getRecords",
      timeoutTicks: this.options.requestTimeoutTicks,
      request: { loglet: this.params.loglet, from: logletOffset(w.from), to: logletOffset(w.to), byteBudget: this.options.repairByteBudget },
    });
  }

  private onRecords(node: NodeId, id: RequestId, r: GetRecordsResponse): void {
    this.answered.add(node);
    const w = this.window;
    if (this.phase !== "repair" || !w || w.fetchId !== id) return;
    const held = this.holdings.get(node)!;
    for (const e of r.entries) {
      if (e.kind === "data") {
        if (e.offset >= w.from && e.offset <= w.to) w.payloads.set(e.offset, e.payload);
      } else {
        for (let o = Math.max(e.from, w.from); o <= Math.min(e.to, w.to); o++) held[o - this.start] = TRIMMED;
      }
    }
    let fetchedTo = Math.min(w.to, r.nextOffset - 1);
    // Stop before the first offset the source should have had but did not return: correct the
    // digest and let the next window take it from another holder.
    for (let o = w.from; o <= fetchedTo; o++) {
      if (held[o - this.start] === EXISTS && !w.payloads.has(o)) {
        held[o - this.start] = ABSENT;
        if (this.copies(o) === 0 && !this.trimmed(o)) {
          return this.fail("repair", `offset ${o} vanished from log-server ${node} after its digest; recover again`);
        }
        fetchedTo = o - 1;
        break;
      }
    }
    this.repairNodes.get(node)!.failures = 0;
    if (fetchedTo < w.from) {
      this.window = undefined;
      return;
    }
    w.fetchedTo = fetchedTo;
  }

  private readonly plannedStores = new Map<NodeId, number[]>();

  /** Plans enough new copies of offset o; false when that is impossible (then the recovery failed). */
  private dispatchCopies(o: number): boolean {
    const pendingCopies = this.pendingCopies.get(o) ?? 0;
    const missing = this.params.replication - this.copies(o) - pendingCopies;
    if (missing <= 0) return true;
    const candidates = this.params.nodeset.filter(
      (n) => !this.holds(n, o) && !this.repairNodes.get(n)!.gaveUp && !this.storeInFlight(n, o) && !this.plannedStores.get(n)?.includes(o),
    );
    if (candidates.length === 0 && pendingCopies === 0) {
      // Every server lacking the record is given up on: publish it with the copies it has.
      this.underReplicated.add(o);
      return true;
    }
    const ready = candidates.filter((n) => this.usable(n));
    // Servers that answered during this recovery first: a silent one is probably down.
    const answering = ready.filter((n) => this.answered.has(n));
    const silent = ready.filter((n) => !this.answered.has(n));
    const chosen = sample(this.random, answering, missing);
    if (chosen.length < missing) chosen.push(...sample(this.random, silent, missing - chosen.length));
    for (const n of chosen) {
      const list = this.plannedStores.get(n) ?? [];
      list.push(o);
      this.plannedStores.set(n, list);
      this.pendingCopies.set(o, (this.pendingCopies.get(o) ?? 0) + 1);
    }
    return true;
  }

  private readonly inFlightStores = new Map<NodeId, Array<{ from: number; to: number }>>();

  private storeInFlight(node: NodeId, o: number): boolean {
    return (this.inFlightStores.get(node) ?? []).some((s) => s.from <= o && o <= s.to);
  }

  /** Sends the planned copies, one store per contiguous run per server. */
  private sendStores(w: Window): void {
    for (const [node, offsets] of this.plannedStores) {
      offsets.sort((a, b) => a - b);
      let i = 0;
      while (i < offsets.length) {
        let j = i;
        while (j + 1 < offsets.length && offsets[j + 1] === offsets[j]! + 1) j++;
        const from = offsets[i]!;
        const to = offsets[j]!;
        const payloads: Uint8Array[] = [];
        for (let o = from; o <= to; o++) payloads.push(w.payloads.get(o)!);
        const id = this.outbox.newId();
        this.pending.add(id, { kind: "store", node, from, to }, this.now + this.options.requestTimeoutTicks);
        const list = this.inFlightStores.get(node) ?? [];
        list.push({ from, to });
        this.inFlightStores.set(node, list);
        this.outbox.send({
          id,
          to: node,
          rpc: "store",
          timeoutTicks: this.options.requestTimeoutTicks,
          request: {
            loglet: this.params.loglet,
            sequencer: this.params.sequencer,
            firstOffset: logletOffset(from),
            payloads,
            knownGlobalTail: logletOffset(this.knownGlobalTail),
            repair: true,
          },
        });
        i = j + 1;
      }
    }
    this.plannedStores.clear();
  }

  private settleStore(ctx: Extract<Ctx, { kind: "store" }>): void {
    const list = this.inFlightStores.get(ctx.node) ?? [];
    const i = list.findIndex((s) => s.from === ctx.from && s.to === ctx.to);
    if (i >= 0) list.splice(i, 1);
    for (let o = ctx.from; o <= ctx.to; o++) {
      const left = (this.pendingCopies.get(o) ?? 1) - 1;
      if (left <= 0) this.pendingCopies.delete(o);
      else this.pendingCopies.set(o, left);
    }
  }

  private onStored(ctx: Extract<Ctx, { kind: "store" }>, r: StoreResponse): void {
    this.answered.add(ctx.node);
    this.settleStore(ctx);
    if (this.phase !== "repair") return;
    if (r.status === "stored") {
      const held = this.holdings.get(ctx.node)!;
      for (let o = ctx.from; o <= ctx.to; o++) {
        if (held[o - this.start] !== EXISTS) this.copiesWritten++;
        held[o - this.start] = EXISTS;
      }
      this.repairNodes.get(ctx.node)!.failures = 0;
    } else {
      // A repair store is refused only by a server that cannot take it at all (fenced, malformed).
      this.repairNodes.get(ctx.node)!.gaveUp = true;
    }
  }

  private onFailure(ctx: Ctx): void {
    if (ctx.kind === "seal") return; // the seal rounds track their own timeouts
    if (ctx.kind === "digest") {
      if (this.phase === "digest") this.digestRetries!.failed(ctx.node, this.now);
      return;
    }
    if (ctx.kind === "store") this.settleStore(ctx);
    if (ctx.kind === "fetch" && this.window && this.window.source === ctx.node && this.window.fetchedTo < 0) this.window = undefined;
    const s = this.repairNodes.get(ctx.node)!;
    s.failures++;
    if (s.firstFailure < 0) s.firstFailure = this.now;
    const silentTooLong = !this.answered.has(ctx.node) && this.now - s.firstFailure >= this.options.silentRepairTicks;
    if (s.failures >= this.options.maxAttemptsPerNode || silentTooLong) s.gaveUp = true;
    else s.until = this.now + backoffTicks(s.failures, this.options.retryMinTicks, this.options.retryMaxTicks);
  }
}

/** Ascending offsets as ranges of consecutive ones. */
function toRanges(ascending: readonly number[]): OffsetRange[] {
  const out: OffsetRange[] = [];
  for (const o of ascending) {
    const last = out[out.length - 1];
    if (last && last.to === o - 1) out[out.length - 1] = { from: last.from, to: logletOffset(o) };
    else out.push({ from: logletOffset(o), to: logletOffset(o) });
  }
  return out;
}
