// A grow-only set checker (Jepsen's set-full in linearizable mode): every element a read returns was
// attempted (an add invoked before the read returned, not certainly failed); every acknowledged add
// is in every read that began after the add completed; an element, once read, is in every read that
// began after that read completed; no element appears twice in one read. Reads after the final heal
// are ordinary reads here, so a lost element shows up as missing from them.
import type { Operation } from "../history.ts";
import { partitionPoint } from "./search.ts";

export type SetAnomalyKind = "phantom" | "failed-add-visible" | "lost" | "stale" | "disappeared" | "duplicate";

export interface SetAnomaly {
  readonly kind: SetAnomalyKind;
  readonly element: number;
  /** The read that shows it. */
  readonly readId: number;
  /** The add (or earlier read) it contradicts, when there is one. */
  readonly otherId?: number;
  readonly detail: string;
}

export interface SetResult {
  readonly valid: boolean;
  readonly anomalies: readonly SetAnomaly[];
  readonly attempted: number;
  readonly acknowledged: number;
  readonly reads: number;
  /** Acknowledged adds present in the last read (sanity: a run that read nothing proves nothing). */
  readonly presentAtEnd: number;
  /** Indeterminate adds never seen in any read (allowed). */
  readonly neverRead: number;
}

const MAX_ANOMALIES = 200;

export function checkSet(ops: readonly Operation[]): SetResult {
  const adds = ops.filter((o) => o.f === "add");
  const reads = ops.filter((o) => o.f === "read" && o.status === "ok").sort((a, b) => a.call - b.call || a.id - b.id);
  const anomalies: SetAnomaly[] = [];
  const report = (a: SetAnomaly): void => {
    if (anomalies.length < MAX_ANOMALIES) anomalies.push(a);
  };

  const addsOf = new Map<number, Operation[]>();
  for (const a of adds) {
    const e = a.input as number;
    let list = addsOf.get(e);
    if (list === undefined) addsOf.set(e, (list = []));
    list.push(a);
  }
  // Since when each element must be visible: the earliest acknowledgement of an add, or the earliest
  // completed read that returned it. `because` is the operation that makes it so.
  const knownSince = new Map<number, { time: number; because: Operation; byRead: boolean }>();
  const know = (e: number, time: number, because: Operation, byRead: boolean): void => {
    const k = knownSince.get(e);
    if (k === undefined || time < k.time) knownSince.set(e, { time, because, byRead });
  };
  for (const a of adds) if (a.status === "ok") know(a.input as number, a.ret, a, false);

  // What each read returned, as a sorted array (8 bytes an element: a long run holds tens of millions
  // of them, and a Set per read cost several times that in the checker's memory budget).
  const contents = new Map<number, SortedElements>();
  for (const r of reads) {
    const elements = r.output as number[];
    const seen = SortedElements.of(elements);
    for (const e of seen.duplicates) report({ kind: "duplicate", element: e, readId: r.id, detail: `read #${r.id} returned ${e} more than once` });
    for (const e of seen.values) {
      // The adds of `e` invoked before the read returned (no array per element and read).
      let first: Operation | undefined;
      let allFailed = true;
      for (const a of addsOf.get(e) ?? []) {
        if (a.call > r.ret) continue;
        first ??= a;
        if (a.status !== "fail") allFailed = false;
      }
      if (first === undefined) {
        report({ kind: "phantom", element: e, readId: r.id, detail: `read #${r.id} returned ${e}, which no add invoked before the read returned` });
      } else if (allFailed) {
        report({
          kind: "failed-add-visible",
          element: e,
          readId: r.id,
          otherId: first.id,
          detail: `read #${r.id} returned ${e}, whose add #${first.id} failed definitely (${first.error ?? "fail"})`,
        });
      }
      if (r.ret !== Infinity) know(e, r.ret, r, true);
    }
    contents.set(r.id, seen);
  }

  const calls = reads.map((r) => r.call);
  for (const [e, since] of knownSince) {
    // Reads are sorted by invocation: the ones invoked after `since` are a suffix.
    for (let i = partitionPoint(calls.length, (j) => calls[j]! <= since.time); i < reads.length; i++) {
      const r = reads[i]!;
      if (contents.get(r.id)!.has(e)) continue;
      let reappears = false;
      for (let j = i + 1; j < reads.length && !reappears; j++) reappears = contents.get(reads[j]!.id)!.has(e);
      const kind: SetAnomalyKind = since.byRead ? "disappeared" : reappears ? "stale" : "lost";
      const why = since.byRead ? `read #${since.because.id} had returned it` : `add #${since.because.id} was acknowledged at ${since.time}`;
      report({ kind, element: e, readId: r.id, otherId: since.because.id, detail: `read #${r.id} (invoked at ${r.call}) lacks ${e}, but ${why}` });
      if (kind === "lost") break; // one report per lost element is enough
    }
  }

  const last = reads.at(-1);
  const lastContents = last ? contents.get(last.id)! : SortedElements.of([]);
  const everRead = new Set<number>();
  for (const c of contents.values()) for (const e of c.values) everRead.add(e);
  let neverRead = 0;
  for (const a of adds) {
    if (a.status === "info" && !everRead.has(a.input as number)) neverRead++;
  }
  return {
    valid: anomalies.length === 0,
    anomalies,
    attempted: adds.length,
    acknowledged: adds.filter((a) => a.status === "ok").length,
    reads: reads.length,
    presentAtEnd: adds.filter((a) => a.status === "ok" && lastContents.has(a.input as number)).length,
    neverRead,
  };
}

/** The distinct elements of one read, sorted, with the ones it returned more than once. */
class SortedElements {
  private constructor(
    readonly values: Float64Array,
    readonly duplicates: readonly number[],
  ) {}

  static of(elements: readonly number[]): SortedElements {
    const sorted = Float64Array.from(elements).sort();
    const duplicates: number[] = [];
    let n = 0;
    for (let i = 0; i < sorted.length; i++) {
      if (n > 0 && sorted[i] === sorted[n - 1]) {
        if (duplicates.at(-1) !== sorted[i]) duplicates.push(sorted[i]!);
        continue;
      }
      sorted[n++] = sorted[i]!;
    }
    return new SortedElements(sorted.slice(0, n), duplicates);
  }

  /** Inline binary search: called millions of times in a long run, where a closure per call (partitionPoint) cost ~180 MiB of peak RSS. */
  has(e: number): boolean {
    const v = this.values;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid]! < e) lo = mid + 1;
      else hi = mid;
    }
    return lo < v.length && v[lo] === e;
  }
}
