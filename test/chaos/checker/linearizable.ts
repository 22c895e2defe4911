// A linearizability checker in the style of Wing & Gong / Lowe with porcupine's memoisation: walk the
// call/return events in time order, tentatively linearize any operation whose call has been reached
// (if the model accepts it from the current state), backtrack when a return is reached whose operation
// is not linearized yet, and cache (linearized set, state) pairs already explored so each is expanded
// once. Histories are split into independent parts (per key) first. Indeterminate operations return
// at +Infinity: they may be linearized anywhere after their call, which includes "after everything
// else" where they change nothing observable, i.e. "never happened"; models must accept them in any
// state. The search is bounded (steps, cache size, wall clock): past a bound the answer is `unknown`,
// never a hang and never a pass.

export interface Model<S, O> {
  readonly name: string;
  init(): S;
  /** The state after `op` from `state`, or undefined when `op` cannot happen from `state`. */
  step(state: S, op: O): S | undefined;
  /** Equal states must give equal strings. */
  hash(state: S): string;
  describeState?(state: S): string;
  describeOp?(op: O): string;
}

export interface TimedOp {
  readonly id: number;
  readonly call: number;
  /** Infinity for an operation that may take effect at any time after its call (or never). */
  readonly ret: number;
}

export interface CheckBounds {
  /** Search steps per part before giving up with `unknown`. */
  readonly maxSteps?: number;
  /** Distinct (set, state) pairs cached per part before giving up with `unknown`. */
  readonly maxCacheEntries?: number;
  /** Wall-clock budget for the whole check. */
  readonly timeoutMs?: number;
}

export type Verdict = "ok" | "illegal" | "unknown";

export interface PartResult<O> {
  readonly part: string;
  readonly verdict: Verdict;
  readonly ops: number;
  readonly steps: number;
  /** Why the answer is unknown (which bound was hit). */
  readonly reason?: string;
  /** The longest sequence of operations that could be linearized (ids, in order), for the report. */
  readonly longestPrefix?: readonly number[];
  /** The state after the longest prefix. */
  readonly stateAfterPrefix?: string;
  /** Operations that were pending (called, not linearized) where the search got stuck. */
  readonly stuckOn?: ReadonlyArray<{ id: number; op: string }>;
  /** The operations of this part, for reports (only when the verdict is not ok). */
  readonly history?: readonly O[];
}

export interface LinearizabilityResult<O> {
  readonly verdict: Verdict;
  readonly parts: ReadonlyArray<PartResult<O>>;
  readonly elapsedMs: number;
}

const DEFAULT_BOUNDS: Required<CheckBounds> = { maxSteps: 2_000_000, maxCacheEntries: 1_000_000, timeoutMs: 60_000 };

interface Event {
  readonly kind: 0 | 1; // 0 = call, 1 = return
  readonly op: number; // index into the part's op list
  readonly time: number;
  match: Event | null; // call → its return
  prev: Event | null;
  next: Event | null;
}

/** Checks each part (by `partition`) independently; the verdict is the worst of the parts. */
export function checkLinearizable<S, O extends TimedOp>(
  model: Model<S, O>,
  ops: readonly O[],
  options: CheckBounds & { partition?: (op: O) => string } = {},
): LinearizabilityResult<O> {
  const started = performance.now();
  const bounds = { ...DEFAULT_BOUNDS, ...options };
  const deadline = started + bounds.timeoutMs;
  const parts = new Map<string, O[]>();
  for (const op of ops) {
    const p = options.partition ? options.partition(op) : "";
    let list = parts.get(p);
    if (list === undefined) parts.set(p, (list = []));
    list.push(op);
  }
  const results: PartResult<O>[] = [];
  for (const [part, list] of [...parts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // Indeterminate operations first go last: a linearization of the others, followed by them (the
    // model accepts them in any state, and nothing comes after them to observe their effect), is one
    // of the whole part. Most never took effect, and searching where each might have is what makes
    // a key with many of them expensive (2^k subsets). Only when that fails is the whole part searched.
    const definite = list.filter((op) => op.ret !== Infinity);
    if (definite.length < list.length && definite.length > 0) {
      const quick = checkPart(model, part, definite, bounds, deadline);
      if (quick.verdict === "ok") {
        results.push({ ...quick, ops: list.length });
        continue;
      }
    }
    results.push(checkPart(model, part, list, bounds, deadline));
  }
  const verdict: Verdict = results.some((r) => r.verdict === "illegal") ? "illegal" : results.some((r) => r.verdict === "unknown") ? "unknown" : "ok";
  return { verdict, parts: results, elapsedMs: performance.now() - started };
}

function checkPart<S, O extends TimedOp>(model: Model<S, O>, part: string, ops: readonly O[], bounds: Required<CheckBounds>, deadline: number): PartResult<O> {
  const n = ops.length;
  // Events sorted by time; at equal times calls come first (the operations count as concurrent,
  // which only ever allows more orders, so a tie never produces a false alarm).
  const events: Event[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i] as O;
    if (!(op.ret >= op.call)) throw new Error(`operation ${op.id} returns (${op.ret}) before its call (${op.call})`);
    const call: Event = { kind: 0, op: i, time: op.call, match: null, prev: null, next: null };
    const ret: Event = { kind: 1, op: i, time: op.ret, match: null, prev: null, next: null };
    call.match = ret;
    events.push(call, ret);
  }
  events.sort((a, b) => a.time - b.time || a.kind - b.kind || a.op - b.op);
  const head: Event = { kind: 0, op: -1, time: -Infinity, match: null, prev: null, next: null };
  let tail = head;
  for (const e of events) {
    e.prev = tail;
    tail.next = e;
    tail = e;
  }

  const lift = (e: Event): void => {
    (e.prev as Event).next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match as Event;
    (m.prev as Event).next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (e: Event): void => {
    const m = e.match as Event;
    (m.prev as Event).next = m;
    if (m.next) m.next.prev = m;
    (e.prev as Event).next = e;
    if (e.next) e.next.prev = e;
  };

  // Zobrist hashing of the linearized set, exact comparison inside a bucket.
  const zobrist = new Uint32Array(n * 2);
  let z = 0x9e3779b9 ^ n;
  for (let i = 0; i < zobrist.length; i++) {
    z = (z + 0x6d2b79f5) >>> 0;
    let t = Math.imul(z ^ (z >>> 15), z | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    zobrist[i] = (t ^ (t >>> 14)) >>> 0;
  }
  const words = Math.ceil(n / 32) || 1;
  const bits = new Uint32Array(words);
  let h1 = 0;
  let h2 = 0;
  const flip = (i: number): void => {
    const w = i >>> 5;
    bits[w] = (bits[w] ?? 0) ^ (1 << (i & 31));
    h1 = (h1 ^ (zobrist[2 * i] as number)) >>> 0;
    h2 = (h2 ^ (zobrist[2 * i + 1] as number)) >>> 0;
  };
  const cache = new Map<string, Uint32Array[]>();
  let cacheEntries = 0;
  const remember = (stateHash: string): boolean => {
    const key = `${h1.toString(36)}.${h2.toString(36)}|${stateHash}`;
    let bucket = cache.get(key);
    if (bucket === undefined) cache.set(key, (bucket = []));
    for (const b of bucket) if (sameBits(b, bits)) return false;
    bucket.push(bits.slice());
    cacheEntries++;
    return true;
  };

  let state = model.init();
  const stack: Array<{ event: Event; state: S }> = [];
  let steps = 0;
  let longest: number[] = [];
  let longestState = model.hash(state);
  let stuckOn: Array<{ id: number; op: string }> = [];
  const describe = (op: O): string => (model.describeOp ? model.describeOp(op) : JSON.stringify(op));

  let entry: Event | null = head.next;
  while (head.next !== null) {
    if (++steps > bounds.maxSteps) return unknown(`more than ${bounds.maxSteps} search steps`);
    if ((steps & 0x3ff) === 0 && performance.now() > deadline) return unknown("the check's time budget ran out");
    // A hard part makes garbage (a state hash per step) faster than the collector reclaims it on its
    // own: collect every 2^20 steps, so memory follows what the search keeps, not what it made.
    if ((steps & 0xfffff) === 0) Bun.gc(true);
    if (cacheEntries > bounds.maxCacheEntries) return unknown(`more than ${bounds.maxCacheEntries} cached configurations`);
    if (entry === null) throw new Error("linearizability search walked off the event list");
    if (entry.kind === 0) {
      const op = ops[entry.op] as O;
      const next = model.step(state, op);
      if (next !== undefined) {
        flip(entry.op);
        if (remember(model.hash(next))) {
          stack.push({ event: entry, state });
          state = next;
          lift(entry);
          if (stack.length > longest.length) {
            longest = stack.map((s) => (ops[s.event.op] as O).id);
            longestState = model.describeState ? model.describeState(state) : model.hash(state);
          }
          entry = head.next;
          continue;
        }
        flip(entry.op);
      }
      entry = entry.next;
      continue;
    }
    // A return whose operation is not linearized: undo the last choice.
    if (stack.length === longest.length || stuckOn.length === 0) {
      stuckOn = pendingAt(entry).map((i) => ({ id: (ops[i] as O).id, op: describe(ops[i] as O) }));
    }
    const top = stack.pop();
    if (top === undefined) {
      return {
        part,
        verdict: "illegal",
        ops: n,
        steps,
        longestPrefix: longest,
        stateAfterPrefix: longestState,
        stuckOn,
        history: ops,
      };
    }
    state = top.state;
    flip(top.event.op);
    unlift(top.event);
    entry = top.event.next;
  }
  return { part, verdict: "ok", ops: n, steps };

  /** Operations called but not linearized up to (and including) return event `at`. */
  function pendingAt(at: Event): number[] {
    const out: number[] = [];
    for (let e = head.next; e !== null; e = e.next) {
      if (e.kind === 0) out.push(e.op);
      if (e === at) break;
    }
    return out.slice(0, 8);
  }

  function unknown(reason: string): PartResult<O> {
    return { part, verdict: "unknown", ops: n, steps, reason, longestPrefix: longest, stateAfterPrefix: longestState, history: ops };
  }
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
