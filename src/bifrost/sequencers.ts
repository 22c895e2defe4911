// The sequencers this node runs: one appender per loglet whose segment names this node and generation,
// created on its first append here and retired once the chain no longer shows it as the unsealed tail.
// Invariant: a retired loglet is never sequenced again by this process (stopping retires every slot).
import { segmentParams, tailSegment, type LogsDocument, type Segment } from "./chain.ts";
import type { BifrostContext } from "./context.ts";
import { ReplicatedLogletAppender } from "./replicated/driver.ts";
import type { LogServerTransport } from "./replicated/transport.ts";
import { logletOffset, type LogId, type LogletOffset } from "../ids/index.ts";

export interface SequencerSlot {
  readonly log: LogId;
  readonly segment: Segment;
  readonly appender: ReplicatedLogletAppender;
}

export class Sequencers {
  private readonly slots = new Map<string, SequencerSlot>();
  /**
   * Loglets whose sequencer this process retired. Never sequenced again: a second appender would
   * restart at offset 1 under the same identity, and log-servers take a same-sequencer store at a
   * held offset as a duplicate, so its offsets would name other records.
   */
  private readonly retired = new Set<string>();
  /** Long polls of a loglet's tail, woken when its sequencer commits, closes or is retired. */
  private readonly tailWatchers = new Map<string, Set<() => void>>();

  constructor(private readonly ctx: BifrostContext) {}

  /** Resolves when `loglet`'s committed tail may have moved, after `ms`, or when `signal` aborts. */
  tailChange(loglet: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.tailWatchers.get(loglet);
      if (set === undefined) {
        set = new Set();
        this.tailWatchers.set(loglet, set);
      }
      const watchers = set;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        watchers.delete(done);
        if (watchers.size === 0 && this.tailWatchers.get(loglet) === watchers) this.tailWatchers.delete(loglet);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      watchers.add(done);
      if (signal?.aborted || this.ctx.stopped) done();
    });
  }

  private wakeTailWatchers(loglet: string): void {
    const set = this.tailWatchers.get(loglet);
    if (set !== undefined) for (const w of [...set]) w();
  }

  isRetired(loglet: string): boolean {
    return this.retired.has(loglet);
  }

  /** Retires sequencers of segments that `doc` no longer shows as the open tail. */
  retireSuperseded(doc: LogsDocument): void {
    for (const [loglet, slot] of this.slots) {
      const log = doc.logs.find((l) => l.id === slot.log);
      const current = log?.segments.find((s) => s.index === slot.segment.index);
      const tail = log ? tailSegment(log) : undefined;
      if (current?.sealedTail !== undefined || tail?.index !== slot.segment.index) {
        // The chain has its tail: pending appends learn their fate from it (resolveAfterSeal).
        slot.appender.markSealed();
        slot.appender.stop();
        this.slots.delete(loglet);
        this.retired.add(loglet);
        this.wakeTailWatchers(loglet);
      }
    }
  }

  stop(): void {
    for (const [loglet, slot] of this.slots) {
      slot.appender.stop();
      this.retired.add(loglet);
    }
    this.slots.clear();
    for (const loglet of [...this.tailWatchers.keys()]) this.wakeTailWatchers(loglet);
  }

  /** The slot sequencing `seg` (started on first use); undefined once retired or stopped. */
  slotFor(log: LogId, seg: Segment): SequencerSlot | undefined {
    const existing = this.slots.get(seg.params.loglet);
    if (existing) return existing;
    if (this.retired.has(seg.params.loglet) || this.ctx.stopped) return undefined;
    const params = segmentParams(seg);
    const o = this.ctx.deps.options;
    const tickMs = o.tickMs;
    let appender: ReplicatedLogletAppender | undefined;
    const labels = String(log);
    const metrics = this.ctx.metrics;
    const transport: LogServerTransport = metrics
      ? {
          ...this.ctx.deps.transport,
          store: async (to, request, sig, timeoutMs) => {
            const r = await this.ctx.deps.transport.store(to, request, sig, timeoutMs);
            if (appender && !request.repair) {
              metrics.replicationLag.set({ log: labels, node: to }, Math.max(0, appender.core.committedTail() - r.localTail));
            }
            return r;
          },
        }
      : this.ctx.deps.transport;
    appender = new ReplicatedLogletAppender(params, transport, {
      tickMs,
      maxQueuedAppends: o.maxQueuedAppends,
      random: this.ctx.random,
      logger: this.ctx.deps.logger,
      onTailChange: () => this.wakeTailWatchers(seg.params.loglet),
      sequencer: {
        maxInflightBatches: o.maxInflightBatches,
        maxInflightBytes: o.maxInflightBytes,
        storeTimeoutTicks: Math.max(1, Math.ceil(o.storeTimeoutMs / tickMs)),
      },
    });
    appender.start();
    const slot = { log, segment: seg, appender };
    this.slots.set(seg.params.loglet, slot);
    this.ctx.deps.logger.info({ log, segment: seg.index, loglet: seg.params.loglet, nodeset: seg.params.nodeset }, "sequencing a new segment");
    return slot;
  }

  /**
   * This node's sequencer's committed tail of `seg`. `sealed`: the segment is sealed or being sealed
   * (its sequencer retired or closed), so the committed tail is only a lower bound of the tail the
   * seal records: the caller must read the chain again. Found by the chaos log checker (seed 4103):
   * a sequencer whose slot was retired answered offset 1, as if nothing had been appended.
   */
  ownCommittedTail(seg: Segment): { committedTail: LogletOffset; sealed: boolean } {
    const slot = this.slots.get(seg.params.loglet);
    return {
      // No appender in this generation yet: nothing was appended (the sequencer starts at offset 1).
      committedTail: slot ? slot.appender.core.committedTail() : logletOffset(1),
      sealed: seg.sealedTail !== undefined || this.retired.has(seg.params.loglet) || slot?.appender.closed === true,
    };
  }
}
