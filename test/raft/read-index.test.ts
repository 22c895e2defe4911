import { describe, expect, test } from "bun:test";
import { Cluster, bytes, id } from "./harness.ts";

describe("ReadIndex", () => {
  test("a leader answers a read only after a heartbeat round acknowledged by a quorum", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(1).node.propose(bytes("w"));
    c.stabilize();
    const commit = c.get(1).node.inspect.commit();
    c.isolate(2);
    c.isolate(3);
    expect(c.get(1).node.readIndex("r1").ok).toBe(true);
    c.stabilize();
    expect(c.get(1).readStates).toEqual([]);
    c.heal();
    c.tickAll(1); // the next heartbeat carries the pending read's ctx
    expect(c.get(1).readStates).toEqual([{ index: commit, ctx: "r1" }]);
  });

  test("one heartbeat round confirms every read queued before it", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.delivered = [];
    for (const ctx of ["a", "b", "c"]) expect(c.get(1).node.readIndex(ctx).ok).toBe(true);
    c.stabilize();
    expect(c.get(1).readStates.map((r) => r.ctx)).toEqual(["a", "b", "c"]);
    const rounds = c.delivered.filter((m) => m.type === "heartbeat" && m.ctx !== null);
    expect(rounds.length).toBe(2); // one heartbeat per follower, not one per read
  });

  test("a new leader defers reads until an entry of its own term is committed", () => {
    const c = new Cluster([1, 2, 3]);
    // Votes flow, appends are held back: node 1 wins but cannot commit its no-op yet.
    c.hold = (m) => m.type === "append";
    const h1 = c.get(1);
    for (let k = 0; k < 100 && h1.node.inspect.role() === "follower"; k++) h1.node.tick();
    c.stabilize();
    expect(h1.node.inspect.role()).toBe("leader");
    expect(h1.node.readIndex("early").ok).toBe(true);
    c.stabilize();
    expect(h1.readStates).toEqual([]);
    // Release the appends: the no-op commits, then the read completes at (at least) its index.
    c.hold = () => false;
    for (const m of c.held.splice(0)) c.deliver(m);
    c.stabilize();
    c.tickAll(1);
    expect(h1.readStates.map((r) => r.ctx)).toEqual(["early"]);
    expect(h1.readStates[0]!.index).toBe(h1.node.inspect.commit());
  });

  test("a follower's read is answered with the leader's commit index and served once applied", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(1).node.propose(bytes("w1"));
    c.stabilize();
    expect(c.get(3).node.readIndex("f1").ok).toBe(true);
    c.stabilize();
    const rs = c.get(3).readStates;
    expect(rs.map((r) => r.ctx)).toEqual(["f1"]);
    expect(rs[0]!.index).toBe(c.get(1).node.inspect.commit());
    expect(c.get(3).node.inspect.applied()).toBeGreaterThanOrEqual(rs[0]!.index);
  });

  test("a follower without a known leader refuses reads", () => {
    const c = new Cluster([1, 2, 3]);
    const r = c.get(2).node.readIndex("x");
    expect(r).toEqual({ ok: false, reason: "noLeader" });
  });

  test("a leader cut off from the quorum never confirms a read, and drops it when it steps down", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    expect(c.get(1).node.readIndex("lost").ok).toBe(true);
    for (let k = 0; k < 25; k++) {
      c.tick(1);
      c.stabilize();
    }
    expect(c.get(1).node.inspect.role()).toBe("follower");
    c.heal();
    c.tickAll(20);
    expect(c.get(1).readStates).toEqual([]);
  });

  test("duplicate pending ctx and too many pending reads are refused", () => {
    const c = new Cluster([1, 2, 3], { maxPendingReadIndexRequests: 2 });
    c.elect(1);
    c.isolate(1);
    expect(c.get(1).node.readIndex("a").ok).toBe(true);
    expect(c.get(1).node.readIndex("a")).toEqual({ ok: false, reason: "duplicateCtx" });
    expect(c.get(1).node.readIndex("b").ok).toBe(true);
    expect(c.get(1).node.readIndex("c")).toEqual({ ok: false, reason: "tooManyPendingReads" });
  });

  test("a single-voter leader answers reads at once", () => {
    const c = new Cluster([1]);
    c.elect(1);
    expect(c.get(1).node.readIndex("solo").ok).toBe(true);
    c.stabilize();
    expect(c.get(1).readStates.map((r) => r.ctx)).toEqual(["solo"]);
    void id;
  });
});
