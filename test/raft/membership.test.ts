import { describe, expect, test } from "bun:test";
import type { ConfChange, RaftId } from "../../src/raft/index.ts";
import { Cluster, bytes, id } from "./harness.ts";

const change = (type: ConfChange["type"], n: number): ConfChange => ({ type, nodeId: id(n), context: new Uint8Array(0) });

function voters(c: Cluster, n: number): RaftId[] {
  return [...c.get(n).node.status().confState.voters];
}

describe("membership changes", () => {
  test("a new node joins as a learner: it receives the log but neither votes nor counts for commit", () => {
    const c = new Cluster([1, 2, 3]);
    c.addJoiningNode(4);
    c.elect(1);
    c.get(1).node.propose(bytes("before"));
    c.stabilize();
    expect(c.get(1).node.proposeConfChange(change("addLearner", 4)).ok).toBe(true);
    c.stabilize();
    c.get(1).node.propose(bytes("after"));
    c.stabilize();
    expect(c.appliedData(4)).toEqual(["before", "after"]);
    // The learner rebuilt the configuration from the log it received.
    expect(c.get(4).node.status().confState).toEqual({ voters: [id(1), id(2), id(3)], learners: [id(4)] });
    // With two voters down the learner cannot help commit.
    c.cutLink(1, 2);
    c.cutLink(1, 3);
    const r = c.get(1).node.propose(bytes("stuck"));
    expect(r.ok).toBe(true);
    c.stabilize();
    expect(c.get(1).node.inspect.commit()).toBeLessThan(r.ok ? r.lastIndex : 0);
    // And it never campaigns.
    c.tick(4, 100);
    c.stabilize();
    expect(c.get(4).node.inspect.role()).toBe("follower");
  });

  test("promoting a caught-up learner makes it a voter", () => {
    const c = new Cluster([1, 2, 3]);
    c.addJoiningNode(4);
    c.elect(1);
    c.stabilize();
    c.get(1).node.proposeConfChange(change("addLearner", 4));
    c.stabilize();
    expect(c.get(1).node.proposeConfChange(change("addVoter", 4)).ok).toBe(true);
    c.stabilize();
    for (const n of [1, 2, 3, 4]) expect(voters(c, n)).toEqual([id(1), id(2), id(3), id(4)]);
  });

  test("a learner too far behind cannot be promoted", () => {
    const c = new Cluster([1, 2, 3], { learnerPromotionMaxLagEntries: 5 });
    c.addJoiningNode(4);
    c.elect(1);
    c.get(1).node.proposeConfChange(change("addLearner", 4));
    c.stabilize();
    c.isolate(4);
    for (let k = 0; k < 20; k++) c.get(1).node.propose(bytes(`x${k}`));
    c.stabilize();
    const r = c.get(1).node.proposeConfChange(change("addVoter", 4));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe("learnerBehind");
    c.heal();
    c.tickAll(10);
    expect(c.get(1).node.proposeConfChange(change("addVoter", 4)).ok).toBe(true);
  });

  test("a change is refused until the leader has committed an entry of its own term", () => {
    const c = new Cluster([1, 2, 3]);
    c.hold = (m) => m.type === "append";
    const h1 = c.get(1);
    for (let k = 0; k < 100 && h1.node.inspect.role() === "follower"; k++) h1.node.tick();
    c.stabilize();
    expect(h1.node.inspect.role()).toBe("leader");
    const r = h1.node.proposeConfChange(change("addLearner", 4));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe("leaderNotReady");
    c.hold = () => false;
    for (const m of c.held.splice(0)) c.deliver(m);
    c.stabilize();
    expect(h1.node.proposeConfChange(change("addLearner", 4)).ok).toBe(true);
  });

  test("a second change is refused while the first is uncommitted", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    expect(c.get(1).node.proposeConfChange(change("addLearner", 4)).ok).toBe(true);
    const r = c.get(1).node.proposeConfChange(change("addLearner", 5));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe("confChangePending");
    c.heal();
    c.tickAll(3);
    expect(c.get(1).node.proposeConfChange(change("addLearner", 5)).ok).toBe(true);
  });

  test("invalid changes are refused: duplicate member, unknown node, last voter", () => {
    const c = new Cluster([1]);
    c.elect(1);
    const refuse = (ch: ConfChange): string => {
      const r = c.get(1).node.proposeConfChange(ch);
      return r.ok ? "ok" : r.reason;
    };
    expect(refuse(change("addVoter", 1))).toBe("alreadyVoter");
    expect(refuse(change("removeNode", 7))).toBe("notMember");
    expect(refuse(change("removeNode", 1))).toBe("lastVoter");
    expect(refuse({ type: "addLearner", nodeId: 0 as RaftId, context: new Uint8Array(0) })).toBe("invalidNodeId");
    expect(c.get(1).node.proposeConfChange(change("addLearner", 2)).ok).toBe(true);
    c.stabilize();
    expect(refuse(change("addLearner", 2))).toBe("alreadyMember");
  });

  test("a removed leader keeps leading until its removal commits, then steps down and hands over", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    expect(c.get(1).node.proposeConfChange(change("removeNode", 1)).ok).toBe(true);
    c.stabilize();
    expect(c.get(1).node.inspect.role()).toBe("follower");
    // Leadership was handed over without waiting for an election timeout.
    expect(c.leaders().length).toBe(1);
    const next = c.leaders()[0]!;
    expect([id(2), id(3)]).toContain(next);
    for (const n of [2, 3]) expect(voters(c, n)).toEqual([id(2), id(3)]);
    c.get(next).node.propose(bytes("after"));
    c.stabilize();
    expect(c.appliedData(2)).toEqual(["after"]);
    // The removed node never campaigns again.
    c.isolate(1);
    c.tick(1, 200);
    c.stabilize();
    expect(c.get(1).node.inspect.role()).toBe("follower");
  });

  test("removing a follower shrinks the quorum so the remaining voters commit alone", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    c.get(1).node.proposeConfChange(change("removeNode", 3));
    c.stabilize();
    c.remove(3);
    c.get(1).node.propose(bytes("two-voters"));
    c.stabilize();
    expect(c.appliedData(2)).toEqual(["two-voters"]);
  });

  test("a configuration change is undone when its uncommitted entry is overwritten", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    c.isolate(1);
    expect(c.get(1).node.proposeConfChange(change("removeNode", 3)).ok).toBe(true);
    expect(voters(c, 1)).toEqual([id(1), id(2)]);
    c.heal();
    c.isolate(1);
    while (!c.leaders().some((n) => n !== 1)) {
      c.tick(2);
      c.tick(3);
      c.stabilize();
    }
    c.heal();
    c.tickAll(5);
    expect(voters(c, 1)).toEqual([id(1), id(2), id(3)]);
  });

  test("a restarted node rebuilds its configuration from the snapshot and the log", () => {
    const c = new Cluster([1, 2, 3]);
    c.addJoiningNode(4);
    c.elect(1);
    c.stabilize();
    c.get(1).node.proposeConfChange(change("addLearner", 4));
    c.stabilize();
    const h2 = c.get(2);
    const applied = h2.node.inspect.applied();
    h2.storage.createSnapshot(applied, h2.node.appliedConfState(), new Uint8Array(0));
    h2.storage.compact(applied);
    c.get(1).node.proposeConfChange(change("addVoter", 4));
    c.stabilize();
    const restarted = c.restart(2);
    expect(restarted.node.status().confState).toEqual({ voters: [id(1), id(2), id(3), id(4)], learners: [] });
  });
});
