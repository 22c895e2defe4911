// Bookkeeping shared by the seal, find-tail/repair and read cores: requests awaiting an answer
// with their deadline tick, and per-server retry state with exponential backoff and a bounded
// number of consecutive failures. Pure data structures; time is the caller's tick count.
import { invariant } from "../../observability/errors.ts";
import type { NodeId } from "../../ids/index.ts";
import { backoffTicks, type RequestId } from "./requests.ts";

export interface RetryOptions {
  readonly requestTimeoutTicks: number;
  readonly retryMinTicks: number;
  readonly retryMaxTicks: number;
  /** Consecutive failures after which a server is given up on (for this task). */
  readonly maxAttemptsPerNode: number;
}

export const RETRY_DEFAULTS: RetryOptions = {
  requestTimeoutTicks: 20,
  retryMinTicks: 1,
  retryMaxTicks: 50,
  maxAttemptsPerNode: 30,
};

/** Requests in flight: their context and the tick at which the core stops waiting. */
export class PendingRequests<Ctx> {
  private readonly byId = new Map<RequestId, { ctx: Ctx; deadline: number }>();

  add(id: RequestId, ctx: Ctx, deadline: number): void {
    invariant(!this.byId.has(id), () => `request id ${id} reused`);
    this.byId.set(id, { ctx, deadline });
  }

  has(id: RequestId): boolean {
    return this.byId.has(id);
  }

  /** The context of an answered request (and forgets it); undefined if unknown or expired. */
  take(id: RequestId): Ctx | undefined {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    this.byId.delete(id);
    return entry.ctx;
  }

  /** Removes and returns requests whose deadline passed. */
  expire(now: number): Ctx[] {
    const out: Ctx[] = [];
    for (const [id, entry] of this.byId) {
      if (entry.deadline <= now) {
        this.byId.delete(id);
        out.push(entry.ctx);
      }
    }
    return out;
  }

  get size(): number {
    return this.byId.size;
  }

  clear(): void {
    this.byId.clear();
  }
}

/** Per-server state of one repeated request (seal this server, fetch its digest, ...). */
export class NodeRetries {
  private readonly nodes = new Map<
    NodeId,
    { status: "idle" | "inflight" | "done" | "backoff" | "gave-up"; until: number; failures: number }
  >();

  constructor(
    nodeset: readonly NodeId[],
    private readonly options: RetryOptions,
  ) {
    for (const n of nodeset) this.nodes.set(n, { status: "idle", until: 0, failures: 0 });
  }

  /** Servers to (re)send to now: never asked, or their backoff is over. */
  due(now: number): NodeId[] {
    const out: NodeId[] = [];
    for (const [n, s] of this.nodes) {
      if (s.status === "idle" || (s.status === "backoff" && s.until <= now)) out.push(n);
    }
    return out;
  }

  sent(node: NodeId): void {
    this.get(node).status = "inflight";
  }

  /** The server answered usefully; more requests to it may follow (paging) via sent(). */
  succeeded(node: NodeId, done = true): void {
    const s = this.get(node);
    s.failures = 0;
    s.status = done ? "done" : "idle";
  }

  failed(node: NodeId, now: number): void {
    const s = this.get(node);
    s.failures++;
    if (s.failures >= this.options.maxAttemptsPerNode) {
      s.status = "gave-up";
      return;
    }
    s.status = "backoff";
    s.until = now + backoffTicks(s.failures, this.options.retryMinTicks, this.options.retryMaxTicks);
  }

  status(node: NodeId): "idle" | "inflight" | "done" | "backoff" | "gave-up" {
    return this.get(node).status;
  }

  /** Servers not given up on (they may still answer). */
  alive(): NodeId[] {
    return [...this.nodes].filter(([, s]) => s.status !== "gave-up").map(([n]) => n);
  }

  private get(node: NodeId) {
    const s = this.nodes.get(node);
    invariant(s !== undefined, () => `node ${node} is not in the nodeset`);
    return s;
  }
}
