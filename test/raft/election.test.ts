import { describe, expect, test } from "bun:test";
import type { Message } from "../../src/raft/index.ts";
import { Cluster, bytes, id } from "./harness.ts";

describe("elections", () => {
  test("a single voter elects itself and commits alone", () => {
    const c = new Cluster([1]);
    c.elect(1);
    const r = c.get(1).node.propose(bytes("x"));
    expect(r.ok).toBe(true);
    c.stabilize();
    expect(c.appliedData(1)).toEqual(["x"]);
  });

  test("three voters elect exactly one leader and every node applies the same entries", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(2);
    expect(c.leaders()).toEqual([id(2)]);
    for (const s of ["a", "b", "c"]) expect(c.get(2).node.propose(bytes(s)).ok).toBe(true);
    c.stabilize();
    for (const n of [1, 2, 3]) expect(c.appliedData(n)).toEqual(["a", "b", "c"]);
    expect(c.get(1).node.status().leader).toBe(id(2));
  });

  test("election timeouts are randomised between one and two election timeouts", () => {
    const timeouts = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Cluster([1, 2, 3], { electionTimeoutTicks: 10 }, seed);
      const h = c.get(1);
      let ticks = 0;
      while (h.node.inspect.role() === "follower") {
        h.node.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      timeouts.add(ticks);
    }
    expect(timeouts.size).toBeGreaterThan(3);
  });

  test("a candidate whose log is behind cannot win the election", () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.elect(1);
    c.isolate(3);
    c.get(1).node.propose(bytes("x"));
    c.stabilize();
    expect(c.appliedData(2)).toEqual(["x"]);
    // The leader disappears; node 3 (missing "x") campaigns first.
    c.isolate(1);
    c.heal();
    c.isolate(1);
    c.tick(3, 40);
    c.stabilize();
    expect(c.get(3).node.inspect.role()).not.toBe("leader");
    const voteReplies = c.delivered.filter((m: Message) => m.type === "voteResponse" && m.from === 2 && m.to === 3);
    expect(voteReplies.length).toBeGreaterThan(0);
    expect(voteReplies.every((m) => m.type === "voteResponse" && m.reject)).toBe(true);
    // Node 2 (up to date) wins and keeps "x".
    c.elect(2);
    c.stabilize();
    expect(c.appliedData(3)).toEqual(["x"]);
  });

  test("a restarted node remembers its vote and does not vote twice in one term", () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.isolate(3);
    c.elect(1); // node 2 voted for 1 in term 2
    const term = c.get(2).node.inspect.term();
    expect(c.get(2).storage.hardState().vote).toBe(id(1));
    c.restart(2, { preVote: false, checkQuorum: false });
    expect(c.get(2).node.status().vote).toBe(id(1));
    // Node 3 campaigns in the same term: node 2 must refuse.
    c.get(2).node.step({ type: "vote", from: id(3), to: id(2), term: term as never, lastIndex: 100 as never, lastTerm: term as never, transfer: false });
    const rd = c.get(2).node.ready();
    const resp = rd.messages.find((m) => m.type === "voteResponse");
    expect(resp?.type === "voteResponse" && resp.reject).toBe(true);
    c.get(2).node.advance();
  });

  test("pre-vote: a partitioned node does not raise its term and does not disrupt the leader when it returns", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const term = c.get(1).node.inspect.term();
    c.isolate(3);
    c.tick(3, 100);
    c.stabilize();
    expect(c.get(3).node.inspect.term()).toBe(term);
    c.heal();
    c.tickAll(30);
    expect(c.leaders()).toEqual([id(1)]);
    expect(c.get(1).node.inspect.term()).toBe(term);
  });

  test("check-quorum: a leader cut off from the majority steps down within an election timeout", () => {
    const c = new Cluster([1, 2, 3], { electionTimeoutTicks: 10 });
    c.elect(1);
    c.isolate(1);
    for (let k = 0; k < 20; k++) {
      c.tick(1);
      c.stabilize();
    }
    expect(c.get(1).node.inspect.role()).toBe("follower");
  });

  test("a follower that hears from its leader ignores vote requests from others (leader lease)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const h2 = c.get(2);
    const term = h2.node.inspect.term();
    h2.node.step({ type: "vote", from: id(3), to: id(2), term: (term + 1) as never, lastIndex: 1000 as never, lastTerm: (term + 1) as never, transfer: false });
    expect(h2.node.inspect.term()).toBe(term);
    const rd = h2.node.ready();
    expect(rd.messages.length).toBe(0);
    h2.node.advance();
  });

  test("a stale leader learns of a newer term from a follower's answer and steps down", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    // Only nodes 2 and 3 keep time, so node 1 stays leader (check-quorum never runs on it).
    while (!c.leaders().some((n) => n !== 1)) {
      c.tick(2);
      c.tick(3);
      c.stabilize();
    }
    const winner = c.leaders().find((n) => n !== 1)!;
    const newTerm = c.get(winner).node.inspect.term();
    expect(c.get(1).node.inspect.role()).toBe("leader");
    c.heal();
    c.tick(1);
    c.stabilize();
    expect(c.get(1).node.inspect.role()).toBe("follower");
    expect(c.get(1).node.inspect.term()).toBe(newTerm);
    expect(c.leaders()).toEqual([winner]);
  });
});
