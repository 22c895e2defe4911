// Find-tail: the first LSN not yet written, from the chain (a sealed tail segment) or from the open
// segment's sequencer (this node's slot, or asked with the `tail` RPC), which this node also answers.
// Invariant: a tail is reported only when every acknowledged LSN lies below it; a lower bound (the
// sequencer did not answer, or its segment is being sealed) is never presented as the tail.
import { raceAbort } from "../net/abort.ts";
import { CairnError } from "../observability/errors.ts";
import { segmentParams, segmentSequencer, tailSegment, type LogChain, type Segment } from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import { MAX_TAIL_WAIT_MS, type TailRequest, type TailResponse } from "./rpc.ts";
import type { Sequencers } from "./sequencers.ts";
import { LSN_OLDEST, logId as toLogId, logletOffset, lsn, lsnToOffset, offsetToLsn, type LogId, type LogletOffset, type Lsn } from "../ids/index.ts";

export interface LogTail {
  /** First LSN not written yet (every LSN below it is durable). */
  readonly tailLsn: Lsn;
  /** The tail segment is sealed and no newer segment exists: appends wait for a reconfiguration. */
  readonly sealed: boolean;
  readonly segment: number | null;
  readonly trimPoint: Lsn;
}

export class TailFinder {
  constructor(
    private readonly ctx: BifrostContext,
    private readonly view: ChainView,
    private readonly sequencers: Sequencers,
  ) {}

  private maxWaitMs(): number {
    return this.ctx.deps.options.maxTailWaitMs ?? MAX_TAIL_WAIT_MS;
  }

  /** The sequencer's committed tail of a segment (answers the `tail` RPC). */
  async sequencerTail(request: TailRequest): Promise<TailResponse> {
    let chain = await this.view.chain(toLogId(request.log));
    let seg = chain.segments.find((s) => s.index === request.segment);
    if (seg === undefined || !this.ctx.isSelf(segmentSequencer(seg))) {
      // The asker may know a newer chain (a segment just created with this node as sequencer).
      chain = await this.view.chain(toLogId(request.log), true);
      seg = chain.segments.find((s) => s.index === request.segment);
    }
    if (seg === undefined || !this.ctx.isSelf(segmentSequencer(seg))) return { status: "not-sequencer", committedTail: 0, sealed: false };
    const now = this.sequencers.ownCommittedTail(seg);
    if (request.waitAbove === undefined || now.sealed || now.committedTail > request.waitAbove) return { status: "ok", ...now };
    // A long poll: one wake-up per commit (or seal) is enough, the asker reads and asks again.
    await this.sequencers.tailChange(seg.params.loglet, Math.min(request.waitMs ?? 0, this.maxWaitMs()));
    return { status: "ok", ...this.sequencers.ownCommittedTail(seg) };
  }

  /**
   * Waits until `from` may be committed in `log` (an idle follower's long poll at the tail
   * segment's sequencer on another node), at most `maxWaitMs`: "records" when there may be
   * something new to read (a commit past `from`, or the segment sealed), "idle" when the wait ran
   * out with nothing new, "unavailable" when no such wait is possible (no open replicated tail
   * segment sequenced elsewhere, the sequencer did not answer): the caller polls instead.
   */
  async waitForRecords(log: LogId, from: Lsn, maxWaitMs: number, signal: AbortSignal): Promise<"records" | "idle" | "unavailable"> {
    const chain = await this.view.chain(log);
    const seg = tailSegment(chain);
    if (seg === undefined || seg.kind !== "replicated" || seg.sealedTail !== undefined || from < seg.baseLsn) return "unavailable";
    const sequencer = segmentSequencer(seg);
    if (this.ctx.isSelf(sequencer)) return "unavailable";
    const waitMs = Math.min(maxWaitMs, this.maxWaitMs());
    const offset = lsnToOffset(lsn(seg.baseLsn), from);
    try {
      const budget = AbortSignal.any([AbortSignal.timeout(waitMs + 1_000), signal]);
      // The answer is raced with the signal: a transport that cannot cancel the wait must not hold the caller.
      const r = await raceAbort(this.ctx.deps.peers.tail(sequencer.id, { log, segment: seg.index, waitAbove: offset, waitMs }, budget), budget);
      if (r.status !== "ok") return "unavailable";
      return r.sealed || r.committedTail > offset ? "records" : "idle";
    } catch {
      return "unavailable";
    }
  }

  /**
   * The committed tail of an open segment. `exact` only when the sequencer (this node, or asked over
   * the fabric) answered; otherwise the highest known global tail of the log-servers: every offset
   * below it is committed, but records above it may be too, so it is only a lower bound.
   */
  private async committedTail(log: LogId, seg: Segment, signal?: AbortSignal): Promise<{ offset: LogletOffset; exact: boolean; sealed: boolean }> {
    const sequencer = segmentSequencer(seg);
    if (this.ctx.isSelf(sequencer)) {
      const own = this.sequencers.ownCommittedTail(seg);
      return { offset: own.committedTail, exact: !own.sealed, sealed: own.sealed };
    }
    const budget = AbortSignal.any([AbortSignal.timeout(1000), ...(signal ? [signal] : [])]);
    try {
      const r = await this.ctx.deps.peers.tail(sequencer.id, { log, segment: seg.index }, budget);
      if (r.status === "ok") return { offset: logletOffset(r.committedTail), exact: !r.sealed, sealed: r.sealed };
    } catch {
      // Fall back on the log-servers below.
    }
    const params = segmentParams(seg);
    const answers = await Promise.allSettled(
      params.nodeset.map((n) => this.ctx.deps.transport.getLogletInfo(n, { loglet: params.loglet }, AbortSignal.any([AbortSignal.timeout(1000), ...(signal ? [signal] : [])]))),
    );
    let best = 1;
    for (const a of answers) if (a.status === "fulfilled") best = Math.max(best, a.value.knownGlobalTail);
    return { offset: logletOffset(best), exact: false, sealed: false };
  }

  async findTail(log: LogId, signal?: AbortSignal): Promise<LogTail> {
    const chain = await this.view.chain(log, true);
    return this.tailOf(chain, signal);
  }

  private async tailOf(chain: LogChain, signal?: AbortSignal): Promise<LogTail> {
    return (await this.chainTail(chain, signal)).tail;
  }

  /** The tail, and the chain it belongs to (re-read once when a seal was under way). */
  async chainTail(given: LogChain, signal?: AbortSignal): Promise<{ tail: LogTail; chain: LogChain }> {
    let chain = given;
    let tail = await this.tailOfChain(chain, signal);
    if (tail === "being-sealed") {
      chain = await this.view.chain(toLogId(chain.id), true);
      tail = await this.tailOfChain(chain, signal);
    }
    if (tail !== "being-sealed") return { tail, chain };
    throw new CairnError("LOG_TAIL_UNKNOWN", `the tail of log ${chain.id} cannot be determined right now: its tail segment is being sealed`, { log: chain.id });
  }

  private async tailOfChain(chain: LogChain, signal?: AbortSignal): Promise<LogTail | "being-sealed"> {
    const seg = tailSegment(chain);
    const trimPoint = lsn(chain.trimPoint);
    if (seg === undefined) return { tailLsn: lsn(Math.max(LSN_OLDEST, chain.trimPoint + 1)), sealed: false, segment: null, trimPoint };
    if (seg.sealedTail !== undefined) return { tailLsn: lsn(seg.sealedTail), sealed: true, segment: seg.index, trimPoint };
    const committed = await this.committedTail(toLogId(chain.id), seg, signal);
    // The segment is being sealed: its tail is in (or about to be in) the chain.
    if (committed.sealed) return "being-sealed";
    if (!committed.exact) {
      // A lower bound presented as the tail would hide acknowledged records: say so instead.
      throw new CairnError(
        "LOG_TAIL_UNKNOWN",
        `the tail of log ${chain.id} cannot be determined right now: its sequencer ${segmentSequencer(seg).id} did not answer (at least LSN ${offsetToLsn(lsn(seg.baseLsn), committed.offset)})`,
        { log: chain.id, tailAtLeast: offsetToLsn(lsn(seg.baseLsn), committed.offset) },
      );
    }
    return { tailLsn: offsetToLsn(lsn(seg.baseLsn), committed.offset), sealed: false, segment: seg.index, trimPoint };
  }
}
