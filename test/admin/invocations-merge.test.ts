// The pure merge of the workers' invocation lists behind GET /v1/invocations: one row per id, newest
// first, the limit applied after merging, counts summed, and the partition's epoch holder winning
// when two workers answered for the same partition (a leadership moving while the list was asked).
import { describe, expect, test } from "bun:test";
import { contestedPartitions, mergeInvocationLists, type WorkerListAnswer } from "../../src/admin/api/invocation-operations.ts";
import type { InvocationSummary } from "../../src/worker/index.ts";

function row(id: string, partition: number, createdAtMs: number, status = "completed", modifiedAtMs = createdAtMs): InvocationSummary {
  return {
    id,
    partition,
    service: "Greeter",
    handler: "greet",
    key: null,
    status,
    idempotencyKey: null,
    createdAtMs,
    modifiedAtMs,
    attempts: 1,
    retryCount: 0,
    journalLength: 2,
    lastError: null,
    nextRetryAtMs: null,
    completedAtMs: status === "completed" ? modifiedAtMs : null,
    result: null,
  };
}

function answer(node: string, partitions: number[], rows: InvocationSummary[], counts: Record<string, number>): WorkerListAnswer {
  return { node, answer: { partitions, invocations: rows, counts } };
}

describe("merging the workers' invocation lists", () => {
  test("rows of every worker, newest first, ties by id, the limit applied after merging; counts summed", () => {
    const merged = mergeInvocationLists(
      [answer("N1", [0, 1], [row("inv_b", 0, 30), row("inv_d", 1, 10)], { completed: 2 }), answer("N2", [2], [row("inv_c", 2, 30), row("inv_a", 2, 20, "suspended")], { completed: 1, suspended: 1 })],
      3,
      new Map(),
    );
    expect(merged.invocations.map((r) => r.id)).toEqual(["inv_b", "inv_c", "inv_a"]);
    expect(merged.counts).toEqual({ completed: 3, suspended: 1 });
    expect([...merged.covered].sort()).toEqual([0, 1, 2]);
  });

  test("a partition two workers answered for: the epoch holder's row wins, whatever the order", () => {
    const old = answer("N1", [0], [row("inv_x", 0, 10, "suspended", 50)], { suspended: 1 });
    const fresh = answer("N2", [0], [row("inv_x", 0, 10, "ready", 40)], { ready: 1 });
    expect([...contestedPartitions([old, fresh])]).toEqual([0]);
    for (const order of [[old, fresh], [fresh, old]]) {
      const merged = mergeInvocationLists(order, 10, new Map([[0, "N2"]]));
      expect(merged.invocations.map((r) => [r.id, r.status])).toEqual([["inv_x", "ready"]]);
    }
  });

  test("without a known epoch holder the most recently modified copy wins", () => {
    const a = answer("N1", [3], [row("inv_y", 3, 10, "suspended", 20)], {});
    const b = answer("N2", [3], [row("inv_y", 3, 10, "completed", 25)], {});
    for (const order of [[a, b], [b, a]]) expect(mergeInvocationLists(order, 10, new Map()).invocations.map((r) => r.status)).toEqual(["completed"]);
    expect(contestedPartitions([answer("N1", [0, 1], [], {}), answer("N2", [2], [], {})]).size).toBe(0);
  });
});
