// How long each partition went without a successful object write during a chaos run: not a safety
// check (a fault may take a partition away for a while, and the checkers judge what was acknowledged)
// but the figure that shows a partition stuck far longer than any fault lasted. A 30-minute run
// found one that way: a log sealed by a reconfiguration that never added the next segment took no
// write for 41 s after its fault had healed.
import type { Operation } from "../history.ts";
import { CHAOS_PARTITIONS } from "../cluster.ts";
import { SERVICE as STATE_SERVICE } from "../workloads/state.ts";
import { partitionOfObject } from "../../../src/worker/key-hash.ts";
import { evenPartitionTable } from "../../../src/worker/partition-table.ts";

export interface PartitionWriteGap {
  readonly partition: number;
  /** Successful writes (ok writes and compare-and-sets, refused ones included: the partition answered). */
  readonly writes: number;
  /**
   * The longest stretch in which writes to the partition were attempted and none succeeded: from the
   * first attempt that failed (or whose outcome is unknown) after a success to the next success, or
   * to the last attempt when none followed. Time when no client wrote to it does not count.
   */
  readonly longestGapMs: number;
  /** When that stretch began and ended (ms on the history's clock). */
  readonly fromMs: number;
  readonly toMs: number;
}

/** Per partition (`partitionOf` maps an operation's key to it): the longest stretch of writes that all failed. */
export function partitionWriteGaps(ops: readonly Operation[], partitionOf: (key: string) => number): PartitionWriteGap[] {
  const byPartition = new Map<number, Array<{ t: number; ok: boolean }>>();
  const answered = (op: Operation) => op.status === "ok" || (op.status === "fail" && typeof (op.output as { currentVersion?: unknown } | null)?.currentVersion === "number");
  for (const op of ops) {
    if (op.f === "read") continue;
    const p = partitionOf(op.key);
    let list = byPartition.get(p);
    if (list === undefined) byPartition.set(p, (list = []));
    // A success counts when it returned; a failure from when it was attempted.
    list.push(answered(op) ? { t: op.ret, ok: true } : { t: op.call, ok: false });
  }
  const out: PartitionWriteGap[] = [];
  for (const [partition, list] of [...byPartition].sort(([a], [b]) => a - b)) {
    list.sort((a, b) => a.t - b.t);
    let best = { gap: 0, from: 0, to: 0 };
    let start: number | undefined;
    const close = (end: number) => {
      if (start !== undefined && end - start > best.gap) best = { gap: end - start, from: start, to: end };
      start = undefined;
    };
    for (const e of list) {
      if (e.ok) close(e.t);
      else start ??= e.t;
    }
    close(list[list.length - 1]!.t);
    out.push({ partition, writes: list.filter((e) => e.ok).length, longestGapMs: best.gap, fromMs: best.from, toMs: best.to });
  }
  return out;
}

/** The state workload's gaps, its objects placed as the chaos cluster's partition table places them. */
export function stateWriteGaps(ops: readonly Operation[]): PartitionWriteGap[] {
  const table = evenPartitionTable(CHAOS_PARTITIONS);
  return partitionWriteGaps(
    ops.filter((o) => o.workload === "state"),
    (key) => partitionOfObject(table, STATE_SERVICE, key),
  );
}

/** One line for the run's summary. */
export function describeWriteGaps(gaps: readonly PartitionWriteGap[]): string {
  return gaps.map((g) => `p${g.partition} ${(g.longestGapMs / 1000).toFixed(1)} s (${(g.fromMs / 1000).toFixed(0)}–${(g.toMs / 1000).toFixed(0)} s)`).join(", ");
}
