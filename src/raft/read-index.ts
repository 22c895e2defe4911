// Leader-side bookkeeping of ReadIndex requests. Each request records the commit index at arrival and
// is confirmed once a quorum of voters answers a heartbeat round started after it (proving the node
// was still leader then). Confirming one request confirms every older one too. Bounded by the caller.

import type { Index, RaftId } from "./types.ts";

export interface PendingRead {
  readonly ctx: string;
  readonly index: Index;
  /** The node that asked (the leader itself for local reads). */
  readonly from: RaftId;
  readonly acks: Set<RaftId>;
}

export class ReadIndexQueue {
  private readonly byCtx = new Map<string, PendingRead>();
  private queue: PendingRead[] = [];
  private head = 0;

  get size(): number {
    return this.byCtx.size;
  }

  has(ctx: string): boolean {
    return this.byCtx.has(ctx);
  }

  add(ctx: string, index: Index, from: RaftId): PendingRead {
    const read: PendingRead = { ctx, index, from, acks: new Set() };
    this.byCtx.set(ctx, read);
    this.queue.push(read);
    return read;
  }

  /** Records that `id` answered the heartbeat round of `ctx`; returns the request, if still pending. */
  ack(id: RaftId, ctx: string): PendingRead | undefined {
    const read = this.byCtx.get(ctx);
    read?.acks.add(id);
    return read;
  }

  /** Removes and returns every request up to and including `ctx`, oldest first. */
  releaseThrough(ctx: string): PendingRead[] {
    const out: PendingRead[] = [];
    if (!this.byCtx.has(ctx)) return out;
    while (this.head < this.queue.length) {
      const read = this.queue[this.head++]!;
      this.byCtx.delete(read.ctx);
      out.push(read);
      if (read.ctx === ctx) break;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** The newest pending request's ctx (heartbeats carry it so a lost round is retried). */
  lastCtx(): string | null {
    return this.head < this.queue.length ? this.queue[this.queue.length - 1]!.ctx : null;
  }

  clear(): void {
    this.byCtx.clear();
    this.queue = [];
    this.head = 0;
  }
}
