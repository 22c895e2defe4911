// Re-replication driver: carries out a `SegmentCopyPlan` (rereplication-plan.ts). The copy itself is
// the pure `CopyTask` core (replicated/copy.ts, run by `copyLoglet`): it seals the segment's loglet
// on every target (so they take repair stores only), reads the records window by window from the
// surviving members (the next member fills the holes of the previous one), stores each window on
// every target as a repair store under the segment's sequencer, paced to a byte rate. Only when it
// reports every record stored (durable: stores are fsynced before they are answered) does this
// driver change the segment's nodeset and replication by compare-and-set.
//
// Invariants: the chain changes only after all copies are durable, and only if the segment still has
// the nodeset the plan was made on; a record found on no source fails the copy (CAIRN-LOG-0022),
// never skips it; a target that does not store fails it (CAIRN-LOG-0023). A failed copy leaves the
// chain as it was; the stray copies on targets are never read (not in the nodeset).
import { CairnError } from "../observability/errors.ts";
import { sameNodeset, segmentParams, withSegmentNodeset, type Segment } from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import type { SegmentCopyPlan } from "./rereplication-plan.ts";
import { copyLoglet } from "./replicated/driver.ts";

/** Progress of one log's re-replication on this node. */
export interface RereplicationProgress {
  readonly log: number;
  readonly segment: number;
  readonly targets: readonly string[];
  readonly records: number;
  copiedRecords: number;
  state: "copying" | "done" | "failed";
  error?: string;
  readonly startedAtMs: number;
  finishedAtMs?: number;
}

/** Per-call budget of a read or store (the fabric keeps its own deadline too). */
const CALL_TIMEOUT_MS = 10_000;

export class Rereplicator {
  /** The latest job per log (running or finished). */
  private readonly jobs = new Map<number, RereplicationProgress>();

  constructor(
    private readonly ctx: BifrostContext,
    private readonly view: ChainView,
  ) {}

  progress(log: number): RereplicationProgress | undefined {
    return this.jobs.get(log);
  }

  running(log: number): boolean {
    return this.jobs.get(log)?.state === "copying";
  }

  async copy(plan: SegmentCopyPlan, signal?: AbortSignal): Promise<void> {
    // A plan made on an older chain (the segment already has its copies) is nothing to do: checked
    // on a fresh read before any work, and before this log's last report is replaced.
    const current = (await this.view.chain(plan.log, true)).segments.find((s) => s.index === plan.segment);
    if (current !== undefined && !sameNodeset(current.params.nodeset, plan.expectNodeset)) return;
    const progress: RereplicationProgress = {
      log: plan.log,
      segment: plan.segment,
      targets: [...plan.targets],
      records: plan.records,
      copiedRecords: 0,
      state: "copying",
      startedAtMs: this.ctx.nowMs(),
    };
    this.jobs.set(plan.log, progress);
    const stop = signal === undefined ? this.ctx.stopSignal : AbortSignal.any([signal, this.ctx.stopSignal]);
    const logger = this.ctx.deps.logger.child({ log: plan.log, segment: plan.segment });
    const started = performance.now();
    try {
      const chain = await this.view.chain(plan.log, true);
      const segment = chain.segments.find((s) => s.index === plan.segment);
      if (segment === undefined || segment.sealedTail === undefined) {
        throw new CairnError("LOG_CHAIN_CONFLICT", `segment ${plan.segment} of log ${plan.log} is gone or not sealed`, { log: plan.log });
      }
      const from = Math.max(segment.baseLsn, chain.trimPoint + 1) - segment.baseLsn + 1;
      const end = segment.sealedTail - segment.baseLsn + 1;
      await this.copyRecords(plan, segment, from, end, progress, stop);
      await this.view.update(plan.log, (l) => withSegmentNodeset(l, plan.segment, plan.expectNodeset, plan.nodeset, plan.replication));
      progress.state = "done";
      this.ctx.metrics?.rereplicatedSegments.inc({ log: String(plan.log) });
      logger.info(
        { targets: plan.targets, nodeset: plan.nodeset, replication: plan.replication, records: progress.copiedRecords, ms: Math.round(performance.now() - started) },
        "re-replicated sealed segment",
      );
    } catch (e) {
      progress.state = "failed";
      progress.error = e instanceof Error ? e.message : String(e);
      throw e;
    } finally {
      progress.finishedAtMs = this.ctx.nowMs();
    }
  }

  private async copyRecords(plan: SegmentCopyPlan, segment: Segment, from: number, end: number, progress: RereplicationProgress, signal: AbortSignal): Promise<void> {
    const params = segmentParams(segment);
    const opts = this.ctx.deps.options;
    const tickMs = opts.tickMs;
    let reported = 0;
    await copyLoglet(
      { loglet: params.loglet, sequencer: params.sequencer, sources: plan.sources, targets: plan.targets, from, end },
      this.ctx.deps.transport,
      {
        tickMs,
        batchRecords: opts.rereplicationBatchRecords,
        batchBytes: opts.rereplicationBatchBytes,
        storeBytes: opts.rereplicationStoreBytes,
        maxStoringWindows: opts.rereplicationStoringWindows,
        ...(opts.rereplicationMaxLoopLagMs > 0 ? { maxLoopLagMs: opts.rereplicationMaxLoopLagMs } : {}),
        bytesPerTick: Math.max(1, Math.floor((opts.rereplicationBytesPerSecond * tickMs) / 1000)),
        requestTimeoutTicks: Math.max(1, Math.ceil(CALL_TIMEOUT_MS / tickMs)),
        onProgress: (copied) => {
          progress.copiedRecords = copied;
          this.ctx.metrics?.rereplicatedRecords.inc({ log: String(plan.log) }, copied - reported);
          reported = copied;
        },
      },
      signal,
    );
  }
}
