// Trims a log: records the trim point in the chain, then asks the log-servers of every affected
// segment to delete the records at or below it.
// Invariants: the trim point only moves forward and stays below the tail; it is in the chain before
// any log-server deletes (reads honour it at once), so a failed deletion leaves copies nobody reads.
import { segmentParams, withTrimPoint } from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import type { TailFinder } from "./tail.ts";
import { lsn, lsnToOffset, type LogId, type Lsn } from "../ids/index.ts";

export class Trimmer {
  constructor(
    private readonly ctx: BifrostContext,
    private readonly view: ChainView,
    private readonly tails: TailFinder,
  ) {}

  /**
   * Trims the log up to `upTo` (inclusive, clipped below the tail): the chain records the trim point
   * first (reads honour it at once), then the log-servers delete the records in the background.
   */
  async trim(log: LogId, upTo: Lsn, signal?: AbortSignal): Promise<{ trimPoint: Lsn }> {
    const { chain: before, tail } = await this.tails.chainTail(await this.view.chain(log, true), signal);
    const target = Math.min(upTo, tail.tailLsn - 1);
    if (target <= before.trimPoint) return { trimPoint: lsn(before.trimPoint) };
    const after = await this.view.update(log, (l) => withTrimPoint(l, lsn(target)));
    this.ctx.metrics?.trimPoint.set({ log: String(log) }, after.trimPoint);
    // Physical deletion, best effort: the chain already hides the records.
    const jobs: Promise<unknown>[] = [];
    for (const seg of before.segments) {
      if (seg.baseLsn > target) continue;
      const segEnd = seg.sealedTail ?? tail.tailLsn;
      const last = Math.min(target, segEnd - 1);
      if (last < seg.baseLsn) continue;
      const params = segmentParams(seg);
      const upToOffset = lsnToOffset(lsn(seg.baseLsn), lsn(last));
      for (const n of params.nodeset) {
        jobs.push(
          this.ctx.deps.transport.trim(n, { loglet: params.loglet, upTo: upToOffset }, AbortSignal.timeout(5000)).catch((e: unknown) =>
            this.ctx.deps.logger.warn({ err: e, log, loglet: params.loglet, node: n }, "log-server did not trim; its copies stay until a later trim"),
          ),
        );
      }
    }
    await Promise.all(jobs);
    return { trimPoint: lsn(after.trimPoint) };
  }
}
