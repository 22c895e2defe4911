// Reading a committed range of a replicated loglet, as a pure core: asks one log-server at a time
// (a single copy is enough below the committed tail), moves to another server when the one it asks
// lacks the next offset (a hole), and reports trim gaps explicitly.
//
// Invariants: records are reported in offset order, each offset exactly once, and only offsets in
// [from, toExclusive); an offset is skipped only inside a reported trim gap; when no server has
// the next offset after `maxRounds` passes over the nodeset, the read fails naming that offset.
import type { GetRecordsResponse } from "../../logserver/protocol.ts";
import { invariant } from "../../observability/errors.ts";
import { logletOffset, type LogletOffset, type NodeId } from "../../ids/index.ts";
import { checkParams, type ReplicatedLogletParams } from "./params.ts";
import { shuffled, type Random } from "./random.ts";
import { Outbox, backoffTicks, type CoreReady, type ProtocolCore, type RequestId, type RpcOutcome } from "./requests.ts";
import { PendingRequests, RETRY_DEFAULTS, type RetryOptions } from "./tracking.ts";

export interface ReaderOptions extends RetryOptions {
  /** Payload bytes asked for per request (at least one record comes back regardless). */
  readonly byteBudget: number;
  /** Passes over the whole nodeset without progress before the read fails. */
  readonly maxRounds: number;
  /** Server to ask first (the local one, when this node is in the nodeset). */
  readonly preferred?: NodeId;
}

export const READER_DEFAULTS: ReaderOptions = { ...RETRY_DEFAULTS, byteBudget: 32 * 1024, maxRounds: 5 };

export type ReaderEvent =
  | { readonly kind: "record"; readonly offset: LogletOffset; readonly payload: Uint8Array }
  | { readonly kind: "trim-gap"; readonly from: LogletOffset; readonly to: LogletOffset }
  | { readonly kind: "done"; readonly next: LogletOffset }
  | { readonly kind: "failed"; readonly at: LogletOffset; readonly reason: string };

export class ReaderCore implements ProtocolCore<ReaderEvent> {
  private readonly options: ReaderOptions;
  private readonly outbox = new Outbox<ReaderEvent>();
  private readonly pending = new PendingRequests<NodeId>();
  private readonly order: NodeId[];
  private readonly tried = new Set<NodeId>();
  private readonly backoff = new Map<NodeId, { failures: number; until: number }>();
  private now = 0;
  private pointer: number;
  private current: NodeId | undefined;
  private rounds = 0;
  private waitUntil = 0;
  private finished = false;

  constructor(
    readonly params: ReplicatedLogletParams,
    from: LogletOffset,
    private readonly toExclusive: LogletOffset,
    random: Random,
    options: Partial<ReaderOptions> = {},
  ) {
    checkParams(params);
    invariant(from >= 1 && toExclusive >= from, () => `read range [${from}, ${toExclusive}) is invalid`);
    this.options = { ...READER_DEFAULTS, ...options };
    this.pointer = from;
    const rest = shuffled(random, params.nodeset.filter((n) => n !== this.options.preferred));
    this.order = this.options.preferred && params.nodeset.includes(this.options.preferred) ? [this.options.preferred, ...rest] : rest;
    this.pump();
  }

  readPointer(): LogletOffset {
    return logletOffset(this.pointer);
  }

  tick(): void {
    this.now++;
    for (const node of this.pending.expire(this.now)) this.onFailure(node);
    this.pump();
  }

  receive(id: RequestId, outcome: RpcOutcome): void {
    const node = this.pending.take(id);
    if (node === undefined || this.finished) return;
    if (!outcome.ok) this.onFailure(node);
    else {
      invariant(outcome.rpc === "getRecords", () => `reader got a ${outcome.rpc} answer`);
      this.onRecords(node, outcome.response);
    }
    this.pump();
  }

  hasReady(): boolean {
    return this.outbox.hasReady();
  }

  ready(): CoreReady<ReaderEvent> {
    return this.outbox.ready();
  }

  advance(): void {
    this.outbox.advance();
  }

  private onRecords(node: NodeId, r: GetRecordsResponse): void {
    const before = this.pointer;
    for (const e of r.entries) {
      if (this.pointer >= this.toExclusive) break;
      if (e.kind === "trim-gap") {
        if (e.from > this.pointer) break; // a hole before the gap
        if (e.to < this.pointer) continue;
        const to = Math.min(e.to, this.toExclusive - 1);
        this.outbox.emit({ kind: "trim-gap", from: logletOffset(this.pointer), to: logletOffset(to) });
        this.pointer = to + 1;
      } else {
        if (e.offset < this.pointer) continue;
        if (e.offset > this.pointer) break; // a hole: this server lacks the next offset
        this.outbox.emit({ kind: "record", offset: e.offset, payload: e.payload });
        this.pointer++;
      }
    }
    this.backoff.delete(node);
    if (this.pointer > before) {
      this.tried.clear();
      this.rounds = 0;
    } else {
      this.tried.add(node);
      this.current = undefined;
    }
  }

  private onFailure(node: NodeId): void {
    const b = this.backoff.get(node) ?? { failures: 0, until: 0 };
    b.failures++;
    b.until = this.now + backoffTicks(b.failures, this.options.retryMinTicks, this.options.retryMaxTicks);
    this.backoff.set(node, b);
    this.tried.add(node);
    this.current = undefined;
  }

  private pump(): void {
    if (this.finished || this.pending.size > 0) return;
    if (this.pointer >= this.toExclusive) {
      this.finished = true;
      this.outbox.emit({ kind: "done", next: logletOffset(this.pointer) });
      return;
    }
    if (this.now < this.waitUntil) return;
    if (this.current === undefined || this.tried.has(this.current)) {
      this.current = this.order.find((n) => !this.tried.has(n) && (this.backoff.get(n)?.until ?? 0) <= this.now);
    }
    if (this.current === undefined) {
      if (this.order.some((n) => !this.tried.has(n))) return; // the untried ones are backing off
      this.rounds++;
      if (this.rounds >= this.options.maxRounds) {
        this.finished = true;
        this.outbox.emit({
          kind: "failed",
          at: logletOffset(this.pointer),
          reason: `no log-server of ${this.params.nodeset.join(",")} has offset ${this.pointer} after ${this.rounds} rounds`,
        });
        return;
      }
      this.tried.clear();
      this.waitUntil = this.now + this.options.retryMaxTicks;
      return;
    }
    const id = this.outbox.newId();
    this.pending.add(id, this.current, this.now + this.options.requestTimeoutTicks);
    this.outbox.send({
      id,
      to: this.current,
      rpc: "getRecords",
      timeoutTicks: this.options.requestTimeoutTicks,
      request: {
        loglet: this.params.loglet,
        from: logletOffset(this.pointer),
        to: logletOffset(this.toExclusive - 1),
        byteBudget: this.options.byteBudget,
      },
    });
  }
}
