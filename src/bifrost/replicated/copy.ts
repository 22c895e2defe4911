// CopyTask: re-replication's copy of a sealed loglet onto more log-servers, as a pure core (no I/O,
// no clock: ticks; same shape as the other cores, so the loglet simulator runs it too). It seals
// every target (they then take repair stores only), then window by window reads the records from
// the sources (the first source, holes filled from the next ones) and stores each window on every
// target as repair stores (each at most `storeBytes` of payload, so a target's group commit never
// holds its appends behind a whole window) under the loglet's sequencer, paced to a byte budget per
// tick (no credit for a tick the driver reports late: the node's event loop lagging). Pipelined:
// the next window is read while earlier ones' stores are in flight; at most `maxStoringWindows`
// windows are storing at once, plus the one being read.
//
// Invariants: `done` is emitted only once every target answered `stored` for every record of every
// window (a stored answer means durable); a record found on no source, a target that answers
// anything but `stored`, or one that does not answer fails the task; it never skips a record.
import type { GenerationalNodeId, LogletId, NodeId } from "../../ids/index.ts";
import { logletOffset } from "../../ids/index.ts";
import type { GetRecordsResponse } from "../../logserver/protocol.ts";
import { invariant } from "../../observability/errors.ts";
import { Outbox, type CoreReady, type ProtocolCore, type RequestId, type RpcOutcome } from "./requests.ts";

export interface CopyPlanParams {
  readonly loglet: LogletId;
  readonly sequencer: GenerationalNodeId;
  /** Where the records are read from, in order of preference. */
  readonly sources: readonly NodeId[];
  /** Log-servers receiving a full copy. */
  readonly targets: readonly NodeId[];
  /** Offsets `[from, end)` to copy. */
  readonly from: number;
  readonly end: number;
}

export interface CopyOptions {
  /** Most records per read and per store. */
  readonly batchRecords: number;
  /** Byte budget of one read (at least one record comes back). */
  readonly batchBytes: number;
  /**
   * Payload bytes the task may move per tick (pacing); credit accrues up to one window's worth plus
   * one tick's, so what a tick adds beyond a window is kept for the next one (capped at exactly one
   * window, a window just under the cap took ⌈window / tick⌉ ticks: 1 MiB at 32 MiB/s in 4 ticks of
   * 10 ms, 26 MB/s instead of 33.5).
   */
  readonly bytesPerTick: number;
  readonly requestTimeoutTicks: number;
  /** Most payload bytes in one store request (a window's records go out as several; at least one record each). */
  readonly storeBytes: number;
  /** Windows whose stores may be in flight at once (1: each waits for the previous one's answers). */
  readonly maxStoringWindows: number;
}

export const COPY_DEFAULTS: CopyOptions = {
  batchRecords: 1024,
  batchBytes: 1 << 20,
  bytesPerTick: 1 << 20,
  requestTimeoutTicks: 500,
  storeBytes: 256 * 1024,
  maxStoringWindows: 2,
};

export type CopyEvent =
  | { readonly kind: "progress"; readonly copiedRecords: number }
  | { readonly kind: "done"; readonly copiedRecords: number }
  | { readonly kind: "failed"; readonly reason: "source-missing" | "target-failed"; readonly detail: string; readonly node?: NodeId; readonly offset?: number };

/** "pace": a read window waits for byte credit or for the previous window's stores; "drain": every
 * window is read, the last stores are in flight. */
type Phase = "seal" | "read" | "pace" | "drain" | "finished";

type Rpc = "seal" | "getRecords" | "store";

/** A window whose stores are in flight: its store requests still unanswered, its records. */
interface StoringWindow {
  readonly pending: Set<RequestId>;
  records: number;
}

export class CopyTask implements ProtocolCore<CopyEvent> {
  private readonly out = new Outbox<CopyEvent>();
  private readonly options: CopyOptions;
  private phase: Phase = "seal";
  private readonly pending = new Map<RequestId, { node: NodeId; rpc: Rpc; ticksLeft: number; first?: number; count?: number; window?: StoringWindow }>();
  private cursor: number;
  private windowEnd = 0;
  private sourceIndex = 0;
  private found = new Map<number, Uint8Array | null>(); // null: trimmed on the source
  private failures: string[] = [];
  private credit: number;
  private skipCredit = false;
  private windowBytes = 0;
  private copied = 0;
  /** Windows whose stores are in flight (at most maxStoringWindows). */
  private readonly storing = new Set<StoringWindow>();

  constructor(
    private readonly params: CopyPlanParams,
    options: Partial<CopyOptions> = {},
  ) {
    this.options = { ...COPY_DEFAULTS, ...options };
    invariant(params.targets.length > 0 && params.sources.length > 0, "a copy needs sources and targets");
    invariant(params.from >= 1 && params.end >= params.from, "a copy range [from, end)");
    invariant(this.options.maxStoringWindows >= 1 && this.options.storeBytes >= 1, "a copy stores at least one window of at least one record");
    this.cursor = params.from;
    this.credit = this.options.bytesPerTick;
    for (const t of params.targets) this.send(t, "seal", { loglet: params.loglet });
  }

  get copiedRecords(): number {
    return this.copied;
  }

  /**
   * The node's event loop ran late before this tick (the driver measures, the core only hears it):
   * the credit saved so far is dropped and the next tick adds none, so no window is stored until a
   * punctual tick: the copy yields to the node's other work (its appends) while the loop is busy.
   */
  lagged(): void {
    this.skipCredit = true;
    this.credit = Math.min(this.credit, 0);
  }

  tick(): void {
    if (this.phase === "finished") return;
    if (this.skipCredit) this.skipCredit = false;
    else this.credit = Math.min(this.credit + this.options.bytesPerTick, Math.max(this.options.bytesPerTick, this.options.batchBytes) + this.options.bytesPerTick);
    for (const [id, p] of this.pending) {
      if (--p.ticksLeft <= 0) this.receive(id, { ok: false, error: `no answer from ${p.node} in ${this.options.requestTimeoutTicks} ticks` });
    }
    if (this.phase === "pace") this.storeIfPaid();
  }

  receive(id: RequestId, outcome: RpcOutcome): void {
    const p = this.pending.get(id);
    if (p === undefined || this.phase === "finished") return;
    this.pending.delete(id);
    // Reads of the next window and stores of the previous one are in flight together: the request's
    // own kind says what an answer is about.
    switch (p.rpc) {
      case "seal":
        invariant(this.phase === "seal", "seals are answered before the first window");
        if (!outcome.ok) return this.fail("target-failed", `sealing loglet ${this.params.loglet} on ${p.node} failed: ${outcome.error}`, p.node);
        if (this.pending.size === 0) this.nextWindow();
        return;
      case "getRecords":
        invariant(this.phase === "read", "one read in flight, in the read phase");
        if (outcome.ok && outcome.rpc === "getRecords") this.onRecords(outcome.response);
        else {
          this.failures.push(`${p.node}: ${outcome.ok ? "unexpected answer" : outcome.error}`);
          this.sourceIndex++;
        }
        return this.read();
      case "store": {
        if (!outcome.ok || outcome.rpc !== "store" || !this.storeCounts(outcome.response.status)) {
          const why = !outcome.ok ? outcome.error : outcome.rpc === "store" ? `answered '${outcome.response.status}'` : "unexpected answer";
          return this.fail("target-failed", `log-server ${p.node} did not store re-replicated records ${p.first}..${(p.first ?? 0) + (p.count ?? 1) - 1} of loglet ${this.params.loglet}: ${why}`, p.node);
        }
        const w = p.window;
        invariant(w !== undefined && this.storing.has(w) && w.pending.delete(id), "a store answer belongs to a storing window");
        if (w.pending.size === 0) this.windowStored(w);
        return;
      }
    }
  }

  hasReady(): boolean {
    return this.out.hasReady();
  }

  ready(): CoreReady<CopyEvent> {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  /** Whether a store answer makes the records count as copied (only `stored`: durable). */
  protected storeCounts(status: string): boolean {
    return status === "stored";
  }

  /** Whether a window waits for every target's answer before the next one (the copy is durable). */
  protected awaitStores(): boolean {
    return true;
  }

  private nextWindow(): void {
    if (this.cursor >= this.params.end) {
      if (this.storing.size > 0) {
        this.phase = "drain";
        return;
      }
      this.phase = "finished";
      this.out.emit({ kind: "done", copiedRecords: this.copied });
      return;
    }
    this.phase = "read";
    this.windowEnd = Math.min(this.params.end, this.cursor + this.options.batchRecords);
    this.sourceIndex = 0;
    this.found = new Map();
    this.failures = [];
    this.read();
  }

  private firstMissing(from: number): number | undefined {
    for (let o = from; o < this.windowEnd; o++) if (!this.found.has(o)) return o;
    return undefined;
  }

  /** Asks the current source for the first missing offset of the window, or moves on. */
  private read(): void {
    const missing = this.firstMissing(this.cursor);
    if (missing === undefined) return this.pace();
    const source = this.params.sources[this.sourceIndex];
    if (source === undefined) {
      const extra = this.failures.length > 0 ? ` (${this.failures.join("; ")})` : "";
      return this.fail("source-missing", `offset ${missing} of loglet ${this.params.loglet} is on none of ${this.params.sources.join(",")}${extra}`, undefined, missing);
    }
    this.send(source, "getRecords", { loglet: this.params.loglet, from: logletOffset(missing), to: logletOffset(this.windowEnd - 1), byteBudget: this.options.batchBytes });
  }

  private onRecords(r: GetRecordsResponse): void {
    const before = this.found.size;
    const asked = this.firstMissing(this.cursor)!;
    for (const e of r.entries) {
      if (e.kind === "data") {
        if (e.offset >= this.cursor && e.offset < this.windowEnd && !this.found.has(e.offset)) this.found.set(e.offset, e.payload);
      } else {
        for (let x = Math.max(this.cursor, e.from); x <= Math.min(this.windowEnd - 1, e.to); x++) if (!this.found.has(x)) this.found.set(x, null);
      }
    }
    // The first source's byte budget bounds the window: later sources fill holes below it.
    if (this.sourceIndex === 0 && r.nextOffset < this.windowEnd && this.found.size > 0) this.windowEnd = Math.max(this.cursor + 1, r.nextOffset);
    // Nothing more here (or this answer covered the rest of what it could): next source.
    if (r.nextOffset <= asked || r.nextOffset >= this.windowEnd || this.found.size === before) this.sourceIndex++;
  }

  private pace(): void {
    this.phase = "pace";
    this.windowBytes = 0;
    for (let o = this.cursor; o < this.windowEnd; o++) this.windowBytes += this.found.get(o)?.byteLength ?? 0;
    this.storeIfPaid();
  }

  private storeIfPaid(): void {
    if (this.storing.size >= this.options.maxStoringWindows) return; // windowStored() comes back here
    if (this.credit < Math.min(this.windowBytes, Math.max(this.options.bytesPerTick, this.options.batchBytes))) return;
    this.credit -= this.windowBytes;
    const window: StoringWindow = { pending: new Set(), records: 0 };
    let run: { first: number; payloads: Uint8Array[]; bytes: number } | undefined;
    const flush = () => {
      if (run === undefined) return;
      for (const t of this.params.targets) {
        const id = this.send(t, "store", {
          loglet: this.params.loglet,
          sequencer: this.params.sequencer,
          firstOffset: logletOffset(run.first),
          payloads: run.payloads,
          knownGlobalTail: logletOffset(this.params.end),
          repair: true,
        });
        const p = this.pending.get(id)!;
        p.first = run.first;
        p.count = run.payloads.length;
        p.window = window;
        window.pending.add(id);
      }
      window.records += run.payloads.length;
      run = undefined;
    };
    for (let o = this.cursor; o < this.windowEnd; o++) {
      const payload = this.found.get(o);
      invariant(payload !== undefined, "every offset of a stored window was found");
      if (payload === null) {
        flush();
        continue;
      }
      if (run !== undefined && run.bytes + payload.byteLength > this.options.storeBytes) flush();
      if (run === undefined) run = { first: o, payloads: [], bytes: 0 };
      run.payloads.push(payload);
      run.bytes += payload.byteLength;
    }
    flush();
    this.cursor = this.windowEnd;
    if (window.pending.size === 0 || !this.awaitStores()) {
      for (const id of window.pending) this.pending.delete(id);
      this.count(window);
    } else {
      this.storing.add(window);
    }
    // The next window is read while these stores are in flight.
    this.nextWindow();
  }

  /** Every store of a storing window answered `stored`: its records count; another may go. */
  private windowStored(w: StoringWindow): void {
    this.storing.delete(w);
    this.count(w);
    if (this.phase === "pace") this.storeIfPaid();
    else if (this.phase === "drain") {
      if (this.storing.size === 0) this.nextWindow();
    } else invariant(this.phase === "read", `a window stored in phase ${this.phase}`);
  }

  private count(w: StoringWindow): void {
    this.copied += w.records;
    this.out.emit({ kind: "progress", copiedRecords: this.copied });
  }

  private send<K extends Rpc>(to: NodeId, rpc: K, request: unknown): RequestId {
    const id = this.out.newId();
    this.pending.set(id, { node: to, rpc, ticksLeft: this.options.requestTimeoutTicks });
    this.out.send({ id, to, rpc, request, timeoutTicks: this.options.requestTimeoutTicks } as never);
    return id;
  }

  private fail(reason: "source-missing" | "target-failed", detail: string, node?: NodeId, offset?: number): void {
    this.phase = "finished";
    this.pending.clear();
    this.out.emit({ kind: "failed", reason, detail, ...(node !== undefined ? { node } : {}), ...(offset !== undefined ? { offset } : {}) });
  }
}
