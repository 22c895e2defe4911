import { describe, expect, test } from "bun:test";
import { planPartitionPlacement, planPartitionRound, type RebalanceInput } from "../../../src/admin/controller/partition-controller.ts";
import { nodeId, type NodeId } from "../../../src/ids/index.ts";
import type { PartitionPlacement } from "../../../src/worker/index.ts";

const N = (...ns: number[]): NodeId[] => ns.map((n) => nodeId(n));
const ids = [0, 1, 2, 3, 4, 5, 6, 7];
const leaders = (p: ReturnType<typeof planPartitionPlacement>) => p.partitions.map((x) => x.leader);
const leadCount = (p: ReturnType<typeof planPartitionPlacement>, n: string) => p.partitions.filter((x) => x.leader === n).length;

describe("partition placement", () => {
  test("a fresh cluster spreads leaders evenly and gives each partition distinct followers", () => {
    const p = planPartitionPlacement({ partitions: ids, current: undefined, alive: N(1, 2, 3), replication: 2 });
    for (const n of ["N1", "N2", "N3"]) expect(leadCount(p, n)).toBeGreaterThanOrEqual(2);
    for (const e of p.partitions) {
      expect(e.followers).toHaveLength(1);
      expect(e.followers).not.toContain(e.leader);
    }
  });

  test("a dead leader's partitions move to their live follower; live leaders stay", () => {
    const before = planPartitionPlacement({ partitions: ids, current: undefined, alive: N(1, 2, 3), replication: 2 });
    const after = planPartitionPlacement({ partitions: ids, current: before, alive: N(1, 3), replication: 2 });
    before.partitions.forEach((b, i) => {
      const a = after.partitions[i]!;
      if (b.leader !== "N2") expect(a.leader).toBe(b.leader);
      else if (b.followers[0] !== "N2") expect(a.leader).toBe(b.followers[0]!);
      expect(a.leader).not.toBe("N2");
      expect([a.leader, ...a.followers]).not.toContain("N2");
    });
  });

  test("a joining node takes over leaderships one per round until they are even", () => {
    let p = planPartitionPlacement({ partitions: ids, current: undefined, alive: N(1, 2), replication: 1 });
    expect(leadCount(p, "N3")).toBe(0);
    const rounds: number[] = [];
    for (let i = 0; i < 5; i++) {
      const next = planPartitionPlacement({ partitions: ids, current: p, alive: N(1, 2, 3), replication: 1 });
      rounds.push(leaders(next).filter((l, j) => l !== leaders(p)[j]).length);
      p = next;
    }
    expect(rounds.every((moves) => moves <= 1)).toBe(true);
    expect(leadCount(p, "N3")).toBeGreaterThanOrEqual(2);
    // Stable once even: another round changes nothing.
    expect(planPartitionPlacement({ partitions: ids, current: p, alive: N(1, 2, 3), replication: 1 })).toEqual(p);
  });

  test("evening out moves a leadership only to a follower that has caught up; a node that follows none first becomes a follower", () => {
    // N1 and N2 lead four partitions each and follow each other's; N3 joins and follows nothing yet.
    const current = { partitions: ids.map((id) => ({ id, leader: id < 4 ? "N1" : "N2", followers: [id < 4 ? "N2" : "N1"] })) };
    const lagging = () => false;
    const first = planPartitionPlacement({ partitions: ids, current, alive: N(1, 2, 3), replication: 2, caughtUp: lagging });
    // No leadership moves to N3 (it would replay the log before answering): it becomes a follower of one partition.
    expect(leadCount(first, "N3")).toBe(0);
    const prepared = first.partitions.filter((p) => p.followers.includes("N3"));
    expect(prepared).toHaveLength(1);
    // While it replays, nothing changes.
    expect(planPartitionPlacement({ partitions: ids, current: first, alive: N(1, 2, 3), replication: 2, caughtUp: lagging })).toEqual(first);
    // Caught up, it takes that partition's leadership over, and the old leader follows.
    const caughtUp = (partition: number, node: string) => node === "N3" && partition === prepared[0]!.id;
    const moved = planPartitionPlacement({ partitions: ids, current: first, alive: N(1, 2, 3), replication: 2, caughtUp });
    const entry = moved.partitions.find((p) => p.id === prepared[0]!.id)!;
    expect(entry.leader).toBe("N3");
    expect(entry.followers).toEqual([prepared[0]!.leader!]);
  });

  test("a follower still replaying is waited for, not replaced by a node that would replay from the start", () => {
    const current = { partitions: ids.map((id) => ({ id, leader: "N1", followers: ["N2"] })) };
    const p = planPartitionPlacement({ partitions: ids, current, alive: N(1, 2), replication: 2, caughtUp: () => false });
    expect(p).toEqual(current);
    const ready = planPartitionPlacement({ partitions: ids, current, alive: N(1, 2), replication: 2, caughtUp: () => true });
    expect(leadCount(ready, "N2")).toBe(1);
  });

  test("a dead leader's partition goes to its follower even when evening out waits for catch-up", () => {
    const current = { partitions: ids.map((id) => ({ id, leader: id < 4 ? "N1" : "N2", followers: [id < 4 ? "N2" : "N1"] })) };
    const p = planPartitionPlacement({ partitions: ids, current, alive: N(1, 3), replication: 2, caughtUp: () => false });
    for (const e of p.partitions) expect(e.leader).toBe("N1");
    // The new followers are on N3 (the only other live worker); none of them leads yet.
    for (const e of p.partitions) expect(e.followers).toEqual(["N3"]);
  });

  test("a leader whose processor stopped hands over to a running follower that applied past it, and stays on as a follower", () => {
    // Three nodes, replication 3: N1 leads partitions 0 and 3, N2 leads 1, N3 leads 2.
    const current: PartitionPlacement = {
      partitions: [
        { id: 0, leader: "N1", followers: ["N2", "N3"] },
        { id: 1, leader: "N2", followers: ["N3", "N1"] },
        { id: 2, leader: "N3", followers: ["N1", "N2"] },
        { id: 3, leader: "N1", followers: ["N3", "N2"] },
      ],
    };
    type Brief = { appliedLsn: number; leading: boolean; stoppedBy?: "store" | "record" };
    const report = (entries: Record<string, Record<number, Brief>>) => new Map(Object.entries(entries).map(([n, m]) => [n, new Map(Object.entries(m).map(([k, v]) => [Number(k), v]))]));
    const run = (appliedLsn: number, leading = false): Brief => ({ appliedLsn, leading });
    const stop = (appliedLsn: number, onRecord = true): Brief => ({ appliedLsn, leading: false, stoppedBy: onRecord ? "record" : "store" });
    const plan = (processors: ReturnType<typeof report>) => planPartitionPlacement({ partitions: [0, 1, 2, 3], current, alive: N(1, 2, 3), replication: 3, processors });

    // Partition 0's processor stopped at LSN 40 on N1; N2 and N3 applied past it and lead one
    // partition each: the tie goes to the first by name.
    const moved = plan(report({ N1: { 0: stop(40), 3: run(9, true) }, N2: { 0: run(41), 1: run(5, true) }, N3: { 0: run(42), 2: run(7, true) } }));
    expect(moved.partitions[0]).toEqual({ id: 0, leader: "N2", followers: ["N1", "N3"] });
    // Nothing else moves, and no evening-out move is made in the same round.
    expect(moved.partitions.slice(1)).toEqual(current.partitions.slice(1));

    // A follower that has not applied past a leader stopped by a record may stop on the same record: no move.
    expect(plan(report({ N1: { 0: stop(40) }, N2: { 0: run(40) }, N3: { 0: stop(40) } }))).toEqual(current);
    // A leader stopped by its store (or a trim gap) hands over to a follower that applied as much:
    // the write that failed there may never have reached the log.
    expect(plan(report({ N1: { 0: stop(40, false) }, N2: { 0: run(40) }, N3: { 0: run(39) } })).partitions[0]).toEqual({ id: 0, leader: "N2", followers: ["N1", "N3"] });
    expect(plan(report({ N1: { 0: stop(40, false) }, N2: { 0: run(39) }, N3: { 0: run(39) } }))).toEqual(current);
    // Stopped followers, or followers nobody reported, take nothing over.
    expect(plan(report({ N1: { 0: stop(40) }, N2: { 0: stop(50) } }))).toEqual(current);
    // A running leader stays, however far its followers are.
    expect(plan(report({ N1: { 0: run(40, true) }, N2: { 0: run(90) }, N3: { 0: run(90) } }))).toEqual(current);
    // Without reports nothing moves.
    expect(planPartitionPlacement({ partitions: [0, 1, 2, 3], current, alive: N(1, 2, 3), replication: 3 })).toEqual(current);
  });

  test("without live workers no partition has a leader", () => {
    expect(leaders(planPartitionPlacement({ partitions: ids, current: undefined, alive: [], replication: 2 }))).toEqual(ids.map(() => null));
  });
});

describe("partition placement hysteresis", () => {
  // N1 leads 0-3 and N2 leads 4-7; N3 (re)joined and follows partitions 0 and 4, caught up.
  const current: PartitionPlacement = {
    partitions: ids.map((id) => ({ id, leader: id < 4 ? "N1" : "N2", followers: [id === 0 || id === 4 ? "N3" : id < 4 ? "N2" : "N1"] })),
  };
  const gate = (over: Partial<RebalanceInput> = {}): RebalanceInput => ({
    nowMs: 100_000,
    aliveSinceMs: new Map([["N1", 0], ["N2", 0], ["N3", 99_000]]),
    lastMoveMs: undefined,
    leadersSettled: true,
    delayMs: 5_000,
    intervalMs: 1_000,
    ...over,
  });
  const plan = (rebalance: RebalanceInput, alive = N(1, 2, 3), cur = current) =>
    planPartitionRound({ partitions: ids, current: cur, alive, replication: 2, caughtUp: () => true, rebalance });

  test("a node that rejoined a moment ago gets no leadership until it has been alive for the delay", () => {
    const early = plan(gate());
    expect(early.moved).toBeUndefined();
    expect(early.placement).toEqual(current);
    const later = plan(gate({ nowMs: 103_999 }));
    expect(later.moved).toBeUndefined();
    const due = plan(gate({ nowMs: 104_000 }));
    expect(due.moved).toBe(0);
    expect(leadCount(due.placement, "N3")).toBe(1);
    expect(due.placement.partitions[0]).toEqual({ id: 0, leader: "N3", followers: ["N1"] });
  });

  test("no move for the delay after a failover: the partitions just taken over are not moved again at once", () => {
    const aliveLongAgo = new Map([["N1", 0], ["N2", 0], ["N3", 0]]);
    expect(plan(gate({ aliveSinceMs: aliveLongAgo, lastMoveMs: 98_000, lastFailoverMs: 98_000 })).moved).toBeUndefined();
    expect(plan(gate({ aliveSinceMs: aliveLongAgo, lastMoveMs: 95_000, lastFailoverMs: 95_000 })).moved).toBeDefined();
  });

  test("a node the controller has not seen alive yet (no since) gets no leadership", () => {
    expect(plan(gate({ aliveSinceMs: new Map([["N1", 0], ["N2", 0]]) })).moved).toBeUndefined();
  });

  test("moves are spaced by the interval and wait until every placed leader leads", () => {
    const aliveLongAgo = new Map([["N1", 0], ["N2", 0], ["N3", 0]]);
    const first = plan(gate({ aliveSinceMs: aliveLongAgo }));
    expect(first.moved).toBeDefined();
    // The previous move's new leader has not taken over yet: nothing moves, however long ago.
    const unsettled = plan(gate({ aliveSinceMs: aliveLongAgo, lastMoveMs: 0, leadersSettled: false }), N(1, 2, 3), first.placement);
    expect(unsettled.moved).toBeUndefined();
    expect(unsettled.placement).toEqual(first.placement);
    // Settled, but the interval has not passed since the last move.
    expect(plan(gate({ aliveSinceMs: aliveLongAgo, lastMoveMs: 99_500 }), N(1, 2, 3), first.placement).moved).toBeUndefined();
    const second = plan(gate({ aliveSinceMs: aliveLongAgo, lastMoveMs: 99_000 }), N(1, 2, 3), first.placement);
    expect(second.moved).toBeDefined();
    // One move per round: exactly one leadership differs from the round before.
    expect(leaders(second.placement).filter((l, i) => l !== leaders(first.placement)[i]).length).toBe(1);
  });

  test("a round that fails over a dead leader's partitions moves no live leadership, whatever the gate says", () => {
    // N2 died: its partitions 4-7 go to their followers; N3 must not also take one of N1's.
    const r = plan(gate({ aliveSinceMs: new Map([["N1", 0], ["N3", 0]]) }), N(1, 3));
    expect(r.moved).toBeUndefined();
    for (const e of r.placement.partitions) if (e.id < 4) expect(e.leader).toBe("N1");
    for (const e of r.placement.partitions) expect(e.leader).not.toBe("N2");
  });

  test("while its delay runs, a rejoined node that follows nothing is made a follower (it catches up meanwhile)", () => {
    const bare = { partitions: ids.map((id) => ({ id, leader: id < 4 ? "N1" : "N2", followers: [id < 4 ? "N2" : "N1"] })) };
    const r = planPartitionRound({ partitions: ids, current: bare, alive: N(1, 2, 3), replication: 2, caughtUp: () => false, rebalance: gate() });
    expect(r.moved).toBeUndefined();
    expect(leadCount(r.placement, "N3")).toBe(0);
    expect(r.placement.partitions.filter((p) => p.followers.includes("N3"))).toHaveLength(1);
  });

  test("with replication 1 (no followers) the delay holds too, then one leadership moves", () => {
    const single = { partitions: ids.map((id) => ({ id, leader: id < 4 ? "N1" : "N2", followers: [] })) };
    const run = (rebalance: RebalanceInput) => planPartitionRound({ partitions: ids, current: single, alive: N(1, 2, 3), replication: 1, rebalance });
    expect(run(gate()).moved).toBeUndefined();
    const due = run(gate({ nowMs: 200_000 }));
    expect(due.moved).toBeDefined();
    expect(leadCount(due.placement, "N3")).toBe(1);
  });
});
