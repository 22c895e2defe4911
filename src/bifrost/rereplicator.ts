// Re-replication driver: carries out a `SegmentCopyPlan` (rereplication-plan.ts). It seals the
// segment's loglet on every target (so they take repair stores only), reads the records window by
// window from the surviving members (the next member fills the holes of the previous one), stores
// each window on every target as a repair store under the segment's sequencer, paced to a byte rate,
// and only when every target answered `stored` for every record (durable: stores are fsynced before
// they are answered) changes the segment's nodeset and replication by compare-and-set.
//
// Invariants: the chain changes only after all copies are durable, and only if the segment still has
// the nodeset the plan was made on; a record found on no source fails the copy (CAIRN-LOG-0022),
// never skips it; a target that does not store fails it (CAIRN-LOG-0023). A failed copy leaves the
// chain as it was; the stray copies on targets are never read (not in the nodeset).
import { CairnError, invariant } from "../observability/errors.ts";
import { segmentParams, withSegmentNodeset, type Segment } from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import type { SegmentCopyPlan } from "./rereplication-plan.ts";
import { logletOffset, type LogletId } from "../ids/index.ts";

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
    const transport = this.ctx.deps.transport;
    const opts = this.ctx.deps.options;
    const knownGlobalTail = logletOffset(end);
    // Sealed first: a target must never take a normal store for a sealed segment.
    await Promise.all(plan.targets.map((t) => transport.seal(t, { loglet: params.loglet }, AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)]))));
    const pacingStarted = performance.now();
    let bytesMoved = 0;
    for (let o = from; o < end; ) {
      signal.throwIfAborted();
      const windowEnd = Math.min(end, o + opts.rereplicationBatchRecords);
      const window = await this.readWindow(plan, params.loglet, o, windowEnd, signal);
      // Store in contiguous runs of found records (trimmed offsets need no copy).
      let batchBytes = 0;
      for (const run of runs(window.records, o, window.end)) {
        await Promise.all(
          plan.targets.map(async (t) => {
            const r = await transport.store(
              t,
              { loglet: params.loglet, sequencer: params.sequencer, firstOffset: logletOffset(run.first), payloads: run.payloads, knownGlobalTail, repair: true },
              AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)]),
              CALL_TIMEOUT_MS,
            );
            if (r.status !== "stored") {
              throw new CairnError("LOG_REREPLICATION_TARGET_FAILED", `log-server ${t} answered '${r.status}' to re-replicated records ${run.first}..${run.first + run.payloads.length - 1} of loglet ${params.loglet}`, {
                node: t,
                loglet: params.loglet,
              });
            }
          }),
        );
        for (const p of run.payloads) batchBytes += p.byteLength;
        progress.copiedRecords += run.payloads.length;
        this.ctx.metrics?.rereplicatedRecords.inc({ log: String(plan.log) }, run.payloads.length);
      }
      o = window.end;
      bytesMoved += batchBytes;
      // Pace to the byte rate: wait until the bytes moved so far fit the elapsed time.
      const aheadMs = (bytesMoved / opts.rereplicationBytesPerSecond) * 1000 - (performance.now() - pacingStarted);
      if (aheadMs > 1) await sleep(aheadMs, signal);
    }
  }

  /**
   * Records `[from, end')` with `end' ≤ end` (a byte budget may stop a window early): asked from the
   * first source, holes filled from the next ones. Fails if a record of the window is on none.
   */
  private async readWindow(plan: SegmentCopyPlan, loglet: LogletId, from: number, end: number, signal: AbortSignal): Promise<{ records: Map<number, Uint8Array | null>; end: number }> {
    const transport = this.ctx.deps.transport;
    const budget = this.ctx.deps.options.rereplicationBatchBytes;
    const found = new Map<number, Uint8Array | null>(); // null: trimmed
    let windowEnd = end;
    const failures: string[] = [];
    for (const source of plan.sources) {
      let missing = firstMissing(found, from, windowEnd);
      if (missing === undefined) break;
      try {
        while (missing !== undefined) {
          const r = await transport.getRecords(
            source,
            { loglet, from: logletOffset(missing), to: logletOffset(windowEnd - 1), byteBudget: budget },
            AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)]),
            CALL_TIMEOUT_MS,
          );
          for (const e of r.entries) {
            if (e.kind === "data") {
              if (e.offset >= from && e.offset < windowEnd && !found.has(e.offset)) found.set(e.offset, e.payload);
            } else {
              for (let x = Math.max(from, e.from); x <= Math.min(windowEnd - 1, e.to); x++) if (!found.has(x)) found.set(x, null);
            }
          }
          if (r.nextOffset <= missing) break; // this source has nothing more here
          // The first source's byte budget bounds the window: later sources fill holes below it.
          if (source === plan.sources[0] && r.nextOffset < windowEnd && found.size > 0) windowEnd = Math.max(from + 1, r.nextOffset);
          if (r.nextOffset >= windowEnd) break;
          missing = firstMissing(found, r.nextOffset, windowEnd);
        }
      } catch (e) {
        if (signal.aborted) throw e;
        failures.push(`${source}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const missing = firstMissing(found, from, windowEnd);
    if (missing !== undefined) {
      throw new CairnError(
        "LOG_REREPLICATION_SOURCE_MISSING",
        `offset ${missing} of loglet ${loglet} is on none of ${plan.sources.join(",")}${failures.length > 0 ? ` (${failures.join("; ")})` : ""}`,
        { loglet, offset: missing },
      );
    }
    invariant(windowEnd > from, "a window makes progress");
    return { records: found, end: windowEnd };
  }
}

function firstMissing(found: ReadonlyMap<number, unknown>, from: number, end: number): number | undefined {
  for (let o = from; o < end; o++) if (!found.has(o)) return o;
  return undefined;
}

/** Contiguous runs of present records in `[from, end)` (trimmed offsets split runs). */
function* runs(found: ReadonlyMap<number, Uint8Array | null>, from: number, end: number): Generator<{ first: number; payloads: Uint8Array[] }> {
  let run: { first: number; payloads: Uint8Array[] } | undefined;
  for (let o = from; o < end; o++) {
    const p = found.get(o);
    if (p === undefined || p === null) {
      if (run) yield run;
      run = undefined;
      continue;
    }
    if (run === undefined) run = { first: o, payloads: [] };
    run.payloads.push(p);
  }
  if (run) yield run;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
