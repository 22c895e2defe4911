// How the pure cores talk to log-servers without doing I/O: they emit `CoreRequest`s (an id, a
// destination, an RPC name and its request) and are fed `RpcOutcome`s for those ids. Time is a tick
// count the driver advances; each request carries the ticks after which the core stops waiting.
import type { LogServerRpcName, LogServerRpcs } from "../../logserver/protocol.ts";
import type { NodeId } from "../../ids/index.ts";

export type RequestId = number;

export type CoreRequest = {
  [K in LogServerRpcName]: {
    readonly id: RequestId;
    readonly to: NodeId;
    readonly rpc: K;
    readonly request: LogServerRpcs[K]["request"];
    /** The core treats the request as failed after this many ticks; the driver's deadline should match. */
    readonly timeoutTicks: number;
  };
}[LogServerRpcName];

export type RpcOutcome =
  | { [K in LogServerRpcName]: { readonly ok: true; readonly rpc: K; readonly response: LogServerRpcs[K]["response"] } }[LogServerRpcName]
  | { readonly ok: false; readonly error: string };

/** Output of a core since the last `advance()`: requests to send and events for the caller. */
export interface CoreReady<Event> {
  readonly requests: readonly CoreRequest[];
  readonly events: readonly Event[];
}

/** The shape every core has, so one driver (and one simulator harness) runs them all. */
export interface ProtocolCore<Event> {
  /** One unit of time passed (the driver decides how long a tick is). */
  tick(): void;
  /** The outcome of a request this core emitted. Unknown or stale ids are ignored. */
  receive(id: RequestId, outcome: RpcOutcome): void;
  /** Whether ready() has anything. */
  hasReady(): boolean;
  ready(): CoreReady<Event>;
  /** The caller handled everything ready() returned. */
  advance(): void;
  /**
   * True when ticks would change nothing until new input (an append, an answer) arrives: the driver
   * then stops its timer, so an idle core costs no wake-ups. A core without it is ticked always.
   */
  quiescent?(): boolean;
}

/** Exponential backoff in ticks: min · 2^(failures−1), capped. */
export function backoffTicks(failures: number, minTicks: number, maxTicks: number): number {
  if (failures <= 0) return 0;
  return Math.min(maxTicks, minTicks * 2 ** Math.min(failures - 1, 30));
}

/** Where a core (or a part of one) puts requests. */
export interface RequestSink {
  newId(): RequestId;
  send(request: CoreRequest): void;
}

/**
 * Accumulates requests and events between advance() calls; hands out request ids. advance() drops
 * only what the last ready() returned, so output produced while the caller handles a ready (an event
 * callback that appends again) is kept for the next round.
 */
export class Outbox<Event> implements RequestSink {
  private requests: CoreRequest[] = [];
  private events: Event[] = [];
  private handedRequests = 0;
  private handedEvents = 0;
  private nextId: RequestId = 1;

  newId(): RequestId {
    return this.nextId++;
  }

  send(request: CoreRequest): void {
    this.requests.push(request);
  }

  emit(event: Event): void {
    this.events.push(event);
  }

  hasReady(): boolean {
    return this.requests.length > 0 || this.events.length > 0;
  }

  ready(): CoreReady<Event> {
    this.handedRequests = this.requests.length;
    this.handedEvents = this.events.length;
    return { requests: this.requests.slice(), events: this.events.slice() };
  }

  advance(): void {
    this.requests.splice(0, this.handedRequests);
    this.events.splice(0, this.handedEvents);
    this.handedRequests = 0;
    this.handedEvents = 0;
  }
}
