// Appends: bounds a batch, sends it to the tail segment's sequencer (this node's, or forwarded over the
// fabric) and waits through reconfigurations; as the sequencer, appends through its slot.
// Invariants: acknowledged only with LSNs durable on r log-servers (every earlier LSN too); a batch is
// re-sent on a newer segment only when none of its records can be in the log (never sent, or all its
// offsets at or above the sealed tail in the chain), else its outcome is indeterminate: exactly once.
import { CairnError, isCairnError } from "../observability/errors.ts";
import { segmentSequencer, tailSegment, type Segment } from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import type { Reconfigurer } from "./reconfigure.ts";
import { assignedOffsets } from "./replicated/driver.ts";
import { neverSent, type AppendRequest, type AppendResponse } from "./rpc.ts";
import type { Sequencers } from "./sequencers.ts";
import { logId as toLogId, lsn, offsetToLsn, type LogId, type LogletOffset, type Lsn } from "../ids/index.ts";

/** How long an append waits for a sealed tail segment to be followed by a new one. */
const SEALED_WAIT_MS = 3_000;
/** Least time between two attempts of one node to move a log off a write-unavailable segment. */
const STUCK_RETRY_MS = 1_000;
/**
 * How long a sequencer whose log-servers refuse a batch as sealed waits for the sealer to record the
 * sealed tail in the chain before finishing the seal itself (a seal and its chain write normally
 * take tens of milliseconds; the sealer may have died between them).
 */
const UNFINISHED_SEAL_MS = 1_500;
const RETRY_MIN_MS = 20;
const RETRY_MAX_MS = 250;

export class Appender {
  private readonly stuckMoves = new Map<LogId, number>();
  /** Loglets whose log-servers refused this sequencer as sealed while the chain showed them open: since when. */
  private readonly sealedRefusals = new Map<string, number>();

  constructor(
    private readonly ctx: BifrostContext,
    private readonly view: ChainView,
    private readonly sequencers: Sequencers,
    /** Moves a log off a segment its sequencer here can no longer write. */
    private readonly reconfigurer: Reconfigurer,
  ) {}

  /**
   * Appends a batch; resolves with its LSNs once every record is durable on r log-servers (and every
   * earlier LSN too). Waits (up to bifrost.append-timeout-ms) through reconfigurations.
   */
  async append(log: LogId, payloads: readonly Uint8Array[], signal?: AbortSignal): Promise<{ first: Lsn; last: Lsn }> {
    this.checkBatch(log, payloads);
    const started = performance.now();
    const deadlineAtMs = started + this.ctx.deps.options.appendTimeoutMs;
    const stopSignal = this.ctx.stopSignal;
    // The signal (a timer and listeners) is made only when something waits on it: the common
    // append to this node's own sequencer never does.
    let deadlineSignal: AbortSignal | undefined;
    const deadline = (): AbortSignal =>
      (deadlineSignal ??= AbortSignal.any([
        AbortSignal.timeout(Math.max(1, Math.ceil(deadlineAtMs - performance.now()))),
        stopSignal,
        ...(signal ? [signal] : []),
      ]));
    const expired = () => performance.now() >= deadlineAtMs || stopSignal.aborted || signal?.aborted === true || deadlineSignal?.aborted === true;
    let fresh = false;
    let attempt = 0;
    let waitingFor = "a writable segment";
    let sealedSinceMs: number | undefined;
    try {
      for (;;) {
        if (sealedSinceMs !== undefined && performance.now() - sealedSinceMs > SEALED_WAIT_MS) {
          // A reconfiguration adds the next segment right after sealing; a log that stays sealed was
          // sealed by an operator and waits for `reconfigure`.
          throw new CairnError("LOG_SEALED", `log ${log} is sealed and was not reconfigured within ${SEALED_WAIT_MS} ms`, { log });
        }
        if (expired()) {
          throw new CairnError(
            waitingFor.startsWith("reconfiguration of sealed") ? "LOG_SEALED" : "LOG_WRITE_UNAVAILABLE",
            `log ${log}: no append within ${this.ctx.deps.options.appendTimeoutMs} ms, waiting for ${waitingFor}`,
            { log },
          );
        }
        const chain = (fresh ? undefined : this.view.cachedChain(log)) ?? (await this.view.chain(log, fresh));
        const seg = tailSegment(chain);
        let res: AppendResponse;
        if (seg === undefined) {
          res = { status: "retry", first: 0, last: 0, reason: "the log has no segment yet (the log controller adds the first one)" };
        } else if (seg.sealedTail !== undefined) {
          sealedSinceMs ??= performance.now();
          res = { status: "retry", first: 0, last: 0, reason: `reconfiguration of sealed segment ${seg.index}` };
        } else {
          sealedSinceMs = undefined;
          res = await this.sendAppend(log, seg, payloads, deadline);
        }
        switch (res.status) {
          case "ok": {
            const labels = { log: String(log) };
            this.ctx.metrics?.appends.inc(labels);
            this.ctx.metrics?.records.inc(labels, payloads.length);
            this.ctx.metrics?.appendSeconds.observe(labels, (performance.now() - started) / 1000);
            return { first: lsn(res.first), last: lsn(res.last) };
          }
          case "indeterminate":
            throw new CairnError("LOG_APPEND_INDETERMINATE", `log ${log}: ${res.reason}`, { log });
          case "retry":
            waitingFor = res.reason;
            fresh = true;
            attempt++;
            await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 8)) * (0.5 + this.ctx.random.float() / 2), deadline());
        }
      }
    } catch (e) {
      this.ctx.metrics?.appendFailures.inc({ log: String(log), code: e instanceof CairnError ? e.code : "other" });
      throw e;
    }
  }

  private checkBatch(log: LogId, payloads: readonly Uint8Array[]): void {
    const o = this.ctx.deps.options;
    let bytes = 0;
    for (const p of payloads) bytes += p.byteLength;
    if (payloads.length === 0) throw new CairnError("LOG_INVALID_RECORD", "an append needs at least one record", { log });
    if (payloads.length > o.maxAppendRecords || bytes > o.maxAppendBytes) {
      throw new CairnError(
        "LOG_BATCH_TOO_LARGE",
        `the batch has ${payloads.length} records and ${bytes} bytes; the bounds are ${o.maxAppendRecords} records and ${o.maxAppendBytes} bytes`,
        { log, records: payloads.length, bytes },
      );
    }
  }

  private async sendAppend(log: LogId, seg: Segment, payloads: readonly Uint8Array[], deadline: () => AbortSignal): Promise<AppendResponse> {
    const sequencer = segmentSequencer(seg);
    const request: AppendRequest = { log, segment: seg.index, payloads: [...payloads] };
    if (this.ctx.isSelf(sequencer)) return this.appendAsSequencer(request, deadline);
    const signal = deadline();
    if (!this.ctx.deps.peers.mayReach(sequencer.id)) {
      return { status: "retry", first: 0, last: 0, reason: `the sequencer ${sequencer.id} is unreachable (the log is reconfigured when it stays so)` };
    }
    try {
      return await this.ctx.deps.peers.append(sequencer.id, request, signal);
    } catch (e) {
      // Refused by the sequencer's bifrost before appending (its own error codes), or never sent.
      if (e instanceof CairnError && (e.code.startsWith("CAIRN-LOG-") || isCairnError(e, "CLUSTER_NOT_PROVISIONED"))) throw e;
      if (isCairnError(e, "NET_OVERLOADED") || isCairnError(e, "NET_REQUEST_TOO_LARGE")) throw e;
      if (neverSent(e)) return { status: "retry", first: 0, last: 0, reason: `the sequencer ${sequencer.id} is unreachable: ${(e as Error).message}` };
      return { status: "indeterminate", first: 0, last: 0, reason: `forwarding to the sequencer ${sequencer.id} failed: ${(e as Error).message}` };
    }
  }

  /**
   * Appends as the sequencer of `request.segment` (this node's own appends and forwarded ones).
   * `signal` bounds the wait for a sealed segment's tail (a function: made only if needed).
   */
  async appendAsSequencer(request: AppendRequest, signal: AbortSignal | (() => AbortSignal)): Promise<AppendResponse> {
    const log = toLogId(request.log);
    const retry = (reason: string): AppendResponse => ({ status: "retry", first: 0, last: 0, reason });
    let chain = this.view.cachedChain(log) ?? (await this.view.chain(log));
    let seg = chain.segments.find((s) => s.index === request.segment);
    if (seg === undefined || tailSegment(chain) !== seg) {
      chain = await this.view.chain(log, true); // the sender may know a newer chain than this node's cache
      seg = chain.segments.find((s) => s.index === request.segment);
    }
    if (seg === undefined) return retry(`segment ${request.segment} of log ${log} is not in the chain`);
    if (seg.sealedTail !== undefined || tailSegment(chain) !== seg) return retry(`segment ${seg.index} of log ${log} is sealed`);
    if (!this.ctx.isSelf(segmentSequencer(seg))) {
      const self = this.ctx.deps.self();
      return retry(`${self.id ?? "this node"}:${self.generation} is not the sequencer ${seg.params.sequencer} of segment ${seg.index}`);
    }
    this.checkBatch(log, request.payloads);
    const slot = this.sequencers.slotFor(log, seg);
    if (slot === undefined) return retry(`the sequencer of segment ${seg.index} of log ${log} was retired`);
    let range: { first: LogletOffset; last: LogletOffset };
    try {
      range = await slot.appender.append(request.payloads);
    } catch (e) {
      if (isCairnError(e, "LOG_WRITE_UNAVAILABLE") && !this.sequencers.isRetired(seg.params.loglet)) this.moveOffStuckSegment(log, seg);
      const assigned = assignedOffsets(e);
      if (assigned === undefined) {
        // Never sent to a log-server: safe to send again on the segment that follows.
        if (isCairnError(e, "LOG_SEALED") || isCairnError(e, "LOG_WRITE_UNAVAILABLE") || isCairnError(e, "LOG_LOGLET_FULL") || isCairnError(e, "NODE_SHUTTING_DOWN")) {
          // Refused as sealed by a sequencer that learnt it earlier, while the chain still shows the
          // segment open: the same unfinished seal as an in-flight batch meets.
          if (isCairnError(e, "LOG_SEALED")) this.sealedWhileOpen(log, seg);
          return retry((e as Error).message);
        }
        throw e;
      }
      if (isCairnError(e, "NODE_SHUTTING_DOWN")) {
        return { status: "indeterminate", first: 0, last: 0, reason: "the sequencer stopped with the batch in flight" };
      }
      return this.resolveAfterSeal(log, seg, assigned, typeof signal === "function" ? signal() : signal);
    }
    return { status: "ok", first: offsetToLsn(lsn(seg.baseLsn), range.first), last: offsetToLsn(lsn(seg.baseLsn), range.last), reason: "" };
  }

  /**
   * This node's sequencer of `seg` went write-unavailable: fewer than r nodeset members take its
   * stores (their stores refused writes, or fenced it) although they may all be alive, so the log
   * controller, which watches liveness, would never move the log. Seal the segment and continue in
   * a new one (log-servers whose store refuses writes are not chosen), at most every
   * STUCK_RETRY_MS per log while appends keep arriving. Found by the chaos fsync-error nemesis
   * (seeds 101, 112): two of three log-servers disabled their stores after a failed fsync, and the
   * log took no appends for the rest of the run although every node was up again.
   */
  private moveOffStuckSegment(log: LogId, seg: Segment): void {
    const now = performance.now();
    const last = this.stuckMoves.get(log);
    if (last !== undefined && now - last < STUCK_RETRY_MS) return;
    this.stuckMoves.set(log, now);
    this.ctx.deps.logger.warn(
      { log, segment: seg.index, loglet: seg.params.loglet },
      "the sequencer cannot store to enough log-servers of its nodeset: sealing the segment and continuing the log in a new one",
    );
    void this.reconfigurer
      .reconfigure(log, {}, { reason: "sequencer-write-unavailable", expectTailIndex: seg.index, acceptConcurrent: true, signal: this.ctx.stopSignal })
      .catch((e: unknown) => this.ctx.deps.logger.warn({ err: e, log, segment: seg.index }, "moving the log off a write-unavailable segment failed; the next append tries again"));
  }

  /**
   * The loglet of `seg` refused this sequencer's batch as sealed while the chain shows `seg` open.
   * Once that has lasted UNFINISHED_SEAL_MS, whoever sealed it (a new partition leader moving the sequencer, the log controller)
   * stopped between sealing the log-servers and recording the tail, say because it was killed. Nobody
   * else would finish it (this sequencer lives, so the controller sees nothing wrong), and every
   * append would wait out its timeout. The seal is finished here (sealing again is idempotent and a
   * concurrent finish keeps one tail) and the log continues in a new segment. Found by the chaos test
   * (seed 20240601): n3 was killed while moving log 1's sequencer; partition 1 took no write again.
   */
  private sealedWhileOpen(log: LogId, seg: Segment): void {
    const loglet = seg.params.loglet;
    const now = performance.now();
    const since = this.sealedRefusals.get(loglet);
    if (since === undefined) {
      // Bounded: an entry of a seal recorded by its sealer (the usual end) is never looked at again.
      if (this.sealedRefusals.size >= 256) this.sealedRefusals.clear();
      this.sealedRefusals.set(loglet, now);
      return;
    }
    if (now - since < UNFINISHED_SEAL_MS) return;
    // At most one finish per loglet every UNFINISHED_SEAL_MS while refusals keep coming.
    this.sealedRefusals.set(loglet, now);
    this.ctx.deps.logger.warn(
      { log, segment: seg.index, loglet },
      "the segment's log-servers are sealed but the chain does not record its tail (the sealer stopped half way): finishing the seal and continuing the log in a new segment",
    );
    void this.reconfigurer
      .reconfigure(log, {}, { reason: "unfinished-seal", expectTailIndex: seg.index, acceptConcurrent: true, signal: this.ctx.stopSignal })
      .then(() => this.sealedRefusals.delete(loglet))
      .catch((e: unknown) => this.ctx.deps.logger.warn({ err: e, log, segment: seg.index }, "finishing the seal of the segment failed; the next append tries again"));
  }

  /**
   * A batch with offsets failed because its loglet was sealed (or could not be written): the sealed
   * tail in the chain says whether its records are part of the log. Waits for it.
   */
  private async resolveAfterSeal(
    log: LogId,
    seg: Segment,
    assigned: { first: LogletOffset; last: LogletOffset },
    signal: AbortSignal,
  ): Promise<AppendResponse> {
    const base = lsn(seg.baseLsn);
    const first = offsetToLsn(base, assigned.first);
    const last = offsetToLsn(base, assigned.last);
    for (let attempt = 0; !signal.aborted; attempt++) {
      const chain = await this.view.chain(log, attempt > 0);
      const now = chain.segments.find((s) => s.index === seg.index);
      const sealedTail = now?.sealedTail;
      if (now !== undefined && sealedTail === undefined) this.sealedWhileOpen(log, seg);
      if (now === undefined && chain.segments.length > 0 && chain.segments[0]!.index > seg.index) {
        // Trimmed away meanwhile: only possible if the trim point passed it, so it was committed.
        return { status: "ok", first, last, reason: "" };
      }
      if (sealedTail !== undefined) {
        if (last < sealedTail) return { status: "ok", first, last, reason: "" };
        if (first >= sealedTail) return { status: "retry", first: 0, last: 0, reason: `segment ${seg.index} was sealed at LSN ${sealedTail}, before the batch` };
        return {
          status: "indeterminate",
          first: 0,
          last: 0,
          reason: `segment ${seg.index} was sealed at LSN ${sealedTail}, inside the batch [${first}, ${last}]: LSNs ${first}..${sealedTail - 1} are in the log, the rest is not`,
        };
      }
      await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 8)), signal);
    }
    return { status: "indeterminate", first: 0, last: 0, reason: `segment ${seg.index} was sealed with the batch in flight and its tail was not recorded in time` };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
