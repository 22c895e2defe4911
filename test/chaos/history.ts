// The history of a chaos run, in Jepsen's shape: every operation is an `invoke` event followed by one
// completion from the same process: `ok` (it happened), `fail` (it certainly did not happen) or `info`
// (indeterminate: it may or may not have happened, now or later). Times are milliseconds on a
// monotonic clock since the run began. A process that saw `info` is retired and the client goes on
// under a new process id, because its indeterminate operation may still be in flight.
// Invariant: each process has at most one operation open at a time.

export type Completion = "ok" | "fail" | "info";

export interface InvokeEvent {
  readonly type: "invoke";
  /** Operation id, unique in the history; the completion carries the same id. */
  readonly id: number;
  readonly process: number;
  readonly workload: string;
  readonly f: string;
  readonly key: string;
  readonly value: unknown;
  readonly time: number;
  /** The node whose API the client called. */
  readonly node: string;
}

export interface CompleteEvent {
  readonly type: Completion;
  readonly id: number;
  readonly process: number;
  readonly workload: string;
  readonly f: string;
  readonly key: string;
  readonly value: unknown;
  readonly time: number;
  readonly node: string;
  /** Why it failed or is indeterminate: an error code (CAIRN-…) or a client-side reason. */
  readonly error?: string;
}

export type HistoryEvent = InvokeEvent | CompleteEvent;

/** An invocation paired with its completion, the shape checkers consume. */
export interface Operation<I = unknown, O = unknown> {
  readonly id: number;
  readonly process: number;
  readonly workload: string;
  readonly f: string;
  readonly key: string;
  readonly input: I;
  /** The completion's value (null for an `info` or unfinished operation). */
  readonly output: O;
  readonly status: Completion;
  /** Invocation time. */
  readonly call: number;
  /** Completion time; Infinity when `info` or never completed (the effect may come at any later time). */
  readonly ret: number;
  readonly node: string;
  readonly error?: string;
}

export interface OpenOperation {
  readonly id: number;
  readonly process: number;
  ok(value?: unknown): CompleteEvent;
  fail(error: string, value?: unknown): CompleteEvent;
  info(error: string, value?: unknown): CompleteEvent;
}

export class History {
  readonly events: HistoryEvent[] = [];
  private nextId = 0;
  private nextProcess = 0;
  private readonly open = new Map<number, InvokeEvent>();
  private readonly openByProcess = new Set<number>();

  constructor(private readonly clock: () => number = monotonicClock()) {}

  now(): number {
    return this.clock();
  }

  newProcess(): number {
    return this.nextProcess++;
  }

  invoke(process: number, workload: string, f: string, key: string, value: unknown, node: string): OpenOperation {
    if (this.openByProcess.has(process)) throw new Error(`process ${process} already has an operation open`);
    const inv: InvokeEvent = { type: "invoke", id: this.nextId++, process, workload, f, key, value, time: this.clock(), node };
    this.events.push(inv);
    this.open.set(inv.id, inv);
    this.openByProcess.add(process);
    const complete = (type: Completion, value: unknown, error?: string): CompleteEvent => {
      if (!this.open.delete(inv.id)) throw new Error(`operation ${inv.id} completed twice`);
      this.openByProcess.delete(process);
      const ev: CompleteEvent = {
        type,
        id: inv.id,
        process,
        workload,
        f,
        key,
        value,
        time: this.clock(),
        node,
        ...(error !== undefined ? { error } : {}),
      };
      this.events.push(ev);
      return ev;
    };
    return {
      id: inv.id,
      process,
      ok: (v = null) => complete("ok", v),
      fail: (error, v = null) => complete("fail", v, error),
      info: (error, v = null) => complete("info", v, error),
    };
  }

  /** Operations still open (a run cut short); pairing treats them as `info`. */
  openOperations(): InvokeEvent[] {
    return [...this.open.values()];
  }

  toJsonl(): string {
    return this.events.map((e) => JSON.stringify(e)).join("\n") + "\n";
  }
}

/** Milliseconds since the clock was made, monotonic. */
export function monotonicClock(): () => number {
  const t0 = performance.now();
  return () => Math.round((performance.now() - t0) * 1000) / 1000;
}

/** Pairs invocations with completions. Unfinished invocations become `info` with ret = Infinity. */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const invokes = new Map<number, InvokeEvent>();
  const ops: Operation[] = [];
  for (const e of events) {
    if (e.type === "invoke") {
      if (invokes.has(e.id)) throw new Error(`history: operation ${e.id} invoked twice`);
      invokes.set(e.id, e);
      continue;
    }
    const inv = invokes.get(e.id);
    if (inv === undefined) throw new Error(`history: completion of operation ${e.id} without an invocation`);
    invokes.delete(e.id);
    if (e.time < inv.time) throw new Error(`history: operation ${e.id} completes before it is invoked`);
    ops.push({
      id: inv.id,
      process: inv.process,
      workload: inv.workload,
      f: inv.f,
      key: inv.key,
      input: inv.value,
      output: e.type === "info" ? null : e.value,
      status: e.type,
      call: inv.time,
      ret: e.type === "info" ? Infinity : e.time,
      node: inv.node,
      ...(e.error !== undefined ? { error: e.error } : {}),
    });
  }
  for (const inv of invokes.values()) {
    ops.push({
      id: inv.id,
      process: inv.process,
      workload: inv.workload,
      f: inv.f,
      key: inv.key,
      input: inv.value,
      output: null,
      status: "info",
      call: inv.time,
      ret: Infinity,
      node: inv.node,
      error: "never completed",
    });
  }
  return ops.sort((a, b) => a.call - b.call || a.id - b.id);
}

/** Parses a history written by History.toJsonl. */
export function parseJsonl(text: string): HistoryEvent[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as HistoryEvent);
}

/**
 * Builds a history by hand for checker tests: `[process, f, key, input, call, ret, status, output]`.
 * ret = null means the operation never completed.
 */
export function handMade(
  rows: ReadonlyArray<readonly [number, string, string, unknown, number, number | null, Completion, unknown]>,
  workload = "test",
): Operation[] {
  return rows
    .map(([process, f, key, input, call, ret, status, output], id) => ({
      id,
      process,
      workload,
      f,
      key,
      input,
      output: status === "info" ? null : output,
      status,
      call,
      ret: status === "info" || ret === null ? Infinity : ret,
      node: "n?",
    }))
    .sort((a, b) => a.call - b.call || a.id - b.id);
}
