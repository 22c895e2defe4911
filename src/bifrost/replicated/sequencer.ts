// The sequencer of a replicated loglet, as a pure core (no I/O, no clock, injected randomness):
// it assigns dense offsets to appended batches, sends each batch to log-servers of the nodeset,
// retries failed or timed-out stores, and reports a batch committed once r servers stored it and
// every earlier batch is committed. Several batches are in flight at once (bounded in count and
// bytes); log-servers accept them in any order, so nothing waits for an earlier batch to land.
//
// Spread: each batch goes to `spreadWidth` servers at once (default: r, the sequencer's own node
// first when it is in the nodeset, since that store skips the network; "flood" = the whole nodeset);
// a batch still short of r copies after `hedgeTicks` goes to every usable server (so one slow server
// costs a few ticks, not a store timeout); a failed server is replaced by another one, or retried
// after a backoff. Invariants: offsets are assigned densely from 1 without
// reuse; `committedTail` only grows and every offset below it is stored on ≥ r servers; commits are
// reported in offset order; once the loglet is known sealed (an f-majority answered sealed, or the
// driver says so) nothing more is reported committed and every pending batch fails.
import { MAX_STORE_RECORDS } from "../../logserver/rules.ts";
import type { StoreResponse } from "../../logserver/protocol.ts";
import { invariant } from "../../observability/errors.ts";
import {
  MAX_LOGLET_OFFSET,
  OFFSET_OLDEST,
  logletOffset,
  type LogletOffset,
  type NodeId,
} from "../../ids/index.ts";
import { checkParams, fMajoritySize, type ReplicatedLogletParams } from "./params.ts";
import { sample, type Random } from "./random.ts";
import { Outbox, backoffTicks, type CoreReady, type ProtocolCore, type RequestId, type RpcOutcome } from "./requests.ts";

export interface SequencerOptions {
  /** Batches appended but not yet committed. */
  readonly maxInflightBatches: number;
  /** Payload bytes appended but not yet committed. */
  readonly maxInflightBytes: number;
  /** Servers each batch is sent to at once; "flood" = every usable server of the nodeset; "r" = replication. */
  readonly spreadWidth: number | "flood" | "r";
  /** A batch not committed after this many ticks is sent to every usable server (0 = never). */
  readonly hedgeTicks: number;
  /** A store without answer after this many ticks counts as failed (its late answer still counts). */
  readonly storeTimeoutTicks: number;
  /** Backoff before the same server is retried for the same batch: min · 2^(failures−1), capped. */
  readonly retryMinTicks: number;
  readonly retryMaxTicks: number;
  /** A server that failed is avoided by new batches for this long when others are available. */
  readonly graylistTicks: number;
}

export const SEQUENCER_DEFAULTS: SequencerOptions = {
  maxInflightBatches: 64,
  maxInflightBytes: 32 * 1024 * 1024,
  spreadWidth: "r",
  hedgeTicks: 3,
  storeTimeoutTicks: 20,
  retryMinTicks: 1,
  retryMaxTicks: 50,
  graylistTicks: 50,
};

export type AppendRefusal = "sealed" | "backpressure" | "write-unavailable" | "loglet-full" | "too-large" | "empty";

export type AppendOutcome =
  | { readonly ok: true; readonly first: LogletOffset; readonly last: LogletOffset }
  | { readonly ok: false; readonly reason: AppendRefusal };

export type SequencerEvent =
  /** Durable on ≥ r servers, and so is every earlier offset. */
  | { readonly kind: "committed"; readonly first: LogletOffset; readonly last: LogletOffset }
  /** Will never be reported committed by this sequencer (it may still be found committed by find-tail). */
  | { readonly kind: "failed"; readonly first: LogletOffset; readonly last: LogletOffset; readonly reason: "sealed" | "write-unavailable" }
  | { readonly kind: "sealed"; readonly committedTail: LogletOffset }
  /** Fewer than r servers accept stores (the others are sealed, fenced or disabled): reconfigure. */
  | { readonly kind: "write-unavailable"; readonly committedTail: LogletOffset }
  /** A server refused this sequencer for good; for logs and metrics. */
  | { readonly kind: "server-refused"; readonly node: NodeId; readonly status: "fenced" | "disabled" | "malformed" };

type NodeStatus = "usable" | "sealed" | "fenced" | "disabled" | "malformed";

interface Attempt {
  state: "idle" | "inflight" | "stored" | "backoff";
  /** The current request to this server for this batch; its answer counts even after a timeout. */
  id: RequestId | null;
  deadline: number;
  until: number;
  failures: number;
}

interface Batch {
  readonly first: LogletOffset;
  readonly last: LogletOffset;
  readonly payloads: readonly Uint8Array[];
  readonly bytes: number;
  readonly attempts: Map<NodeId, Attempt>;
  stored: number;
  /** Tick at which the batch was appended (for the hedge). */
  readonly born: number;
}

export class SequencerCore implements ProtocolCore<SequencerEvent> {
  readonly params: ReplicatedLogletParams;
  private readonly options: SequencerOptions;
  private readonly random: Random;
  private readonly outbox = new Outbox<SequencerEvent>();
  private now = 0;
  private next: LogletOffset = OFFSET_OLDEST;
  private committed: LogletOffset = OFFSET_OLDEST;
  /** Uncommitted batches in offset order. */
  private readonly batches: Batch[] = [];
  private inflightBytes = 0;
  private readonly requests = new Map<RequestId, { batch: Batch; node: NodeId }>();
  private readonly nodeStatus = new Map<NodeId, NodeStatus>();
  private readonly graylistUntil = new Map<NodeId, number>();
  private state: "open" | "sealed" | "write-unavailable" = "open";

  constructor(params: ReplicatedLogletParams, random: Random, options: Partial<SequencerOptions> = {}) {
    checkParams(params);
    this.params = params;
    this.random = random;
    this.options = { ...SEQUENCER_DEFAULTS, ...options };
    const o = this.options;
    invariant(o.maxInflightBatches >= 1 && o.maxInflightBytes >= 1, "sequencer in-flight bounds must be positive");
    invariant(
      o.spreadWidth === "flood" || o.spreadWidth === "r" || (o.spreadWidth >= params.replication && o.spreadWidth <= params.nodeset.length),
      () => `spread width ${o.spreadWidth} must lie in [r=${params.replication}, n=${params.nodeset.length}]`,
    );
    invariant(o.hedgeTicks >= 0, "hedge ticks must not be negative");
    invariant(o.storeTimeoutTicks >= 1 && o.retryMinTicks >= 1 && o.retryMaxTicks >= o.retryMinTicks, "sequencer timeouts must be positive");
    for (const n of params.nodeset) this.nodeStatus.set(n, "usable");
  }

  /** The first offset not yet committed: every offset below it is durable on ≥ r servers. */
  committedTail(): LogletOffset {
    return this.committed;
  }

  /** The offset the next appended record gets. */
  nextOffset(): LogletOffset {
    return this.next;
  }

  isSealed(): boolean {
    return this.state === "sealed";
  }

  inflight(): { batches: number; bytes: number } {
    return { batches: this.batches.length, bytes: this.inflightBytes };
  }

  /** Assigns offsets to a batch and starts storing it, or says why not (nothing is assigned then). */
  append(payloads: readonly Uint8Array[]): AppendOutcome {
    if (this.state === "sealed") return { ok: false, reason: "sealed" };
    if (this.state === "write-unavailable") return { ok: false, reason: "write-unavailable" };
    if (payloads.length === 0) return { ok: false, reason: "empty" };
    let bytes = 0;
    for (const p of payloads) bytes += p.byteLength;
    if (payloads.length > MAX_STORE_RECORDS || bytes > this.options.maxInflightBytes) return { ok: false, reason: "too-large" };
    if (this.next + payloads.length - 1 > MAX_LOGLET_OFFSET) return { ok: false, reason: "loglet-full" };
    if (this.batches.length >= this.options.maxInflightBatches || this.inflightBytes + bytes > this.options.maxInflightBytes) {
      return { ok: false, reason: "backpressure" };
    }
    const first = this.next;
    const last = logletOffset(first + payloads.length - 1);
    const prev = this.batches[this.batches.length - 1];
    invariant(prev ? prev.last + 1 === first : first === this.committed, "offsets must be dense");
    const attempts = new Map<NodeId, Attempt>();
    for (const n of this.params.nodeset) attempts.set(n, { state: "idle", id: null, deadline: 0, until: 0, failures: 0 });
    this.batches.push({ first, last, payloads, bytes, attempts, stored: 0, born: this.now });
    this.inflightBytes += bytes;
    this.next = logletOffset(last + 1);
    this.pump();
    return { ok: true, first, last };
  }

  /** The loglet was sealed (learnt elsewhere, or this sequencer is draining): stop committing. */
  markSealed(): void {
    if (this.state !== "sealed") this.enter("sealed");
  }

  tick(): void {
    this.now++;
    for (const batch of this.batches) {
      for (const [node, a] of batch.attempts) {
        if (a.state === "inflight" && a.deadline <= this.now) this.failAttempt(node, a);
      }
    }
    this.pump();
  }

  receive(id: RequestId, outcome: RpcOutcome): void {
    const ctx = this.requests.get(id);
    if (!ctx) return; // the batch completed or failed meanwhile, or a newer attempt replaced this one
    const { batch, node } = ctx;
    const attempt = batch.attempts.get(node);
    invariant(attempt !== undefined && attempt.id === id, "request index out of sync with attempts");
    if (!outcome.ok) {
      if (attempt.state === "inflight") this.failAttempt(node, attempt);
      this.pump();
      return;
    }
    invariant(outcome.rpc === "store", () => `sequencer got a ${outcome.rpc} answer to a store`);
    this.onStoreResponse(batch, node, attempt, id, outcome.response);
    this.pump();
  }

  hasReady(): boolean {
    return this.outbox.hasReady();
  }

  /** Nothing in flight and no graylisting left to run out: ticks only count time. */
  quiescent(): boolean {
    if (this.batches.length > 0 || this.requests.size > 0) return false;
    for (const until of this.graylistUntil.values()) if (until > this.now) return false;
    return true;
  }

  ready(): CoreReady<SequencerEvent> {
    return this.outbox.ready();
  }

  advance(): void {
    this.outbox.advance();
  }

  /** Stored copies needed before a batch counts: r. (A seam for the simulator's broken variants.) */
  protected commitQuorum(): number {
    return this.params.replication;
  }

  private onStoreResponse(batch: Batch, node: NodeId, attempt: Attempt, id: RequestId, response: StoreResponse): void {
    this.requests.delete(id);
    attempt.id = null;
    switch (response.status) {
      case "stored":
        if (attempt.state !== "stored") {
          attempt.state = "stored";
          batch.stored++;
          this.graylistUntil.delete(node);
          this.commitReadyBatches();
        }
        return;
      case "sealed":
        attempt.state = "idle";
        this.nodeStatus.set(node, "sealed");
        break;
      case "fenced":
      case "disabled":
      case "malformed":
        attempt.state = "idle";
        if (this.nodeStatus.get(node) === "usable") {
          this.nodeStatus.set(node, response.status);
          this.outbox.emit({ kind: "server-refused", node, status: response.status });
        }
        break;
    }
    this.checkAvailability();
  }

  private failAttempt(node: NodeId, a: Attempt): void {
    a.state = "backoff";
    a.failures++;
    a.until = this.now + backoffTicks(a.failures, this.options.retryMinTicks, this.options.retryMaxTicks);
    this.graylistUntil.set(node, this.now + this.options.graylistTicks);
    // a.id stays mapped: a late "stored" for it still counts.
  }

  private commitReadyBatches(): void {
    if (this.state !== "open") return;
    const quorum = this.commitQuorum();
    while (this.batches.length > 0 && this.batches[0]!.stored >= quorum) {
      const batch = this.batches.shift()!;
      invariant(batch.first === this.committed, "commits must be reported in offset order");
      this.forget(batch);
      this.committed = logletOffset(batch.last + 1);
      this.outbox.emit({ kind: "committed", first: batch.first, last: batch.last });
    }
  }

  private checkAvailability(): void {
    if (this.state !== "open") return;
    let sealed = 0;
    let usable = 0;
    for (const s of this.nodeStatus.values()) {
      if (s === "sealed") sealed++;
      else if (s === "usable") usable++;
    }
    if (sealed >= fMajoritySize(this.params)) this.enter("sealed");
    else if (usable < this.params.replication) this.enter("write-unavailable");
  }

  private enter(state: "sealed" | "write-unavailable"): void {
    this.state = state;
    for (const batch of this.batches) {
      this.forget(batch);
      this.outbox.emit({ kind: "failed", first: batch.first, last: batch.last, reason: state });
    }
    this.batches.length = 0;
    this.inflightBytes = 0;
    this.outbox.emit(state === "sealed" ? { kind: "sealed", committedTail: this.committed } : { kind: "write-unavailable", committedTail: this.committed });
  }

  private forget(batch: Batch): void {
    this.inflightBytes -= batch.bytes;
    for (const a of batch.attempts.values()) if (a.id !== null) this.requests.delete(a.id);
  }

  /** Sends stores so that every uncommitted batch has enough servers working on it. */
  private pump(): void {
    if (this.state !== "open") return;
    const usable = this.params.nodeset.filter((n) => this.nodeStatus.get(n) === "usable");
    const spread = this.options.spreadWidth;
    const width = spread === "flood" ? usable.length : Math.min(spread === "r" ? this.params.replication : spread, usable.length);
    const own = this.params.sequencer.id;
    const hedge = this.options.hedgeTicks;
    const quorum = this.commitQuorum();
    for (const batch of this.batches) {
      if (batch.stored >= quorum) continue;
      const batchWidth = hedge > 0 && this.now - batch.born >= hedge ? usable.length : width;
      let active = 0;
      const fresh: NodeId[] = [];
      const graylisted: NodeId[] = [];
      for (const node of usable) {
        const a = batch.attempts.get(node)!;
        if (a.state === "stored" || a.state === "inflight") active++;
        else if (a.state === "idle" || (a.state === "backoff" && a.until <= this.now)) {
          ((this.graylistUntil.get(node) ?? 0) > this.now ? graylisted : fresh).push(node);
        }
      }
      let need = batchWidth - active;
      if (need <= 0) continue;
      // The sequencer's own log-server first: its store costs no network round trip.
      const chosen: NodeId[] = [];
      const i = fresh.indexOf(own);
      if (i >= 0) {
        chosen.push(own);
        fresh.splice(i, 1);
        need--;
      }
      chosen.push(...sample(this.random, fresh, need));
      need = batchWidth - active - chosen.length;
      if (need > 0) chosen.push(...sample(this.random, graylisted, need));
      for (const node of chosen) this.sendStore(batch, node);
    }
  }

  private sendStore(batch: Batch, node: NodeId): void {
    const a = batch.attempts.get(node)!;
    if (a.id !== null) this.requests.delete(a.id);
    const id = this.outbox.newId();
    a.state = "inflight";
    a.id = id;
    a.deadline = this.now + this.options.storeTimeoutTicks;
    this.requests.set(id, { batch, node });
    this.outbox.send({
      id,
      to: node,
      rpc: "store",
      timeoutTicks: this.options.storeTimeoutTicks,
      request: {
        loglet: this.params.loglet,
        sequencer: this.params.sequencer,
        firstOffset: batch.first,
        payloads: batch.payloads,
        knownGlobalTail: this.committed,
      },
    });
  }
}
