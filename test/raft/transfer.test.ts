import { describe, expect, test } from "bun:test";
import { Cluster, bytes, id } from "./harness.ts";

describe("leader transfer", () => {
  test("an up-to-date voter is told to campaign at once (TimeoutNow) and wins without waiting", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const term = c.get(1).node.inspect.term();
    c.delivered = [];
    expect(c.get(1).node.transferLeader(id(3)).ok).toBe(true);
    c.stabilize();
    expect(c.delivered.some((m) => m.type === "timeoutNow" && m.to === 3)).toBe(true);
    expect(c.leaders()).toEqual([id(3)]);
    expect(c.get(3).node.inspect.term() as number).toBe(term + 1);
  });

  test("the transfer waits until the target has caught up", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.get(1).node.propose(bytes("x"));
    c.stabilize();
    expect(c.get(1).node.transferLeader(id(3)).ok).toBe(true);
    c.stabilize();
    expect(c.leaders()).toEqual([id(1)]);
    expect(c.get(1).node.status().leadTransferee).toBe(id(3));
    c.heal();
    c.tickAll(10);
    expect(c.leaders()).toEqual([id(3)]);
    expect(c.appliedData(3)).toEqual(["x"]);
  });

  test("proposals are refused while a transfer is in progress, and accepted again if it times out", () => {
    const c = new Cluster([1, 2, 3], { electionTimeoutTicks: 10 });
    c.elect(1);
    c.isolate(3);
    c.get(1).node.propose(bytes("x"));
    c.stabilize();
    c.get(1).node.transferLeader(id(3));
    const r = c.get(1).node.propose(bytes("y"));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe("transferInProgress");
    for (let k = 0; k < 10; k++) {
      c.tick(1);
      c.tick(2);
      c.stabilize();
    }
    expect(c.get(1).node.status().leadTransferee).toBe(0 as never);
    expect(c.get(1).node.propose(bytes("z")).ok).toBe(true);
  });

  test("a transfer to a learner or to an unknown node is refused", () => {
    const c = new Cluster([1, 2, 3]);
    c.addJoiningNode(4);
    c.elect(1);
    c.get(1).node.propose(bytes("x"));
    c.stabilize();
    expect(c.get(1).node.proposeConfChange({ type: "addLearner", nodeId: id(4), context: new Uint8Array(0) }).ok).toBe(true);
    c.stabilize();
    expect(c.get(1).node.transferLeader(id(4))).toEqual({ ok: false, reason: "notVoter" });
    expect(c.get(1).node.transferLeader(id(9))).toEqual({ ok: false, reason: "notVoter" });
    expect(c.get(2).node.transferLeader(id(4))).toEqual({ ok: false, reason: "notVoter" });
    expect(c.leaders()).toEqual([id(1)]);
  });

  test("a transfer requested on a follower is forwarded to the leader", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    expect(c.get(2).node.transferLeader(id(2)).ok).toBe(true);
    c.stabilize();
    expect(c.leaders()).toEqual([id(2)]);
  });

  test("a transfer campaign overrides the voters' leader lease", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    // Nodes 2 and 3 just heard from the leader, so they would ignore an ordinary campaign.
    c.tickAll(1);
    c.get(1).node.transferLeader(id(2));
    c.stabilize();
    expect(c.leaders()).toEqual([id(2)]);
  });
});
