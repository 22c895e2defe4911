import { describe, expect, test } from "bun:test";
import { MemoryStorage, RaftInvariantError, RaftNode, Xoshiro128, bootstrapPersistedState, resolveConfig } from "../../src/raft/index.ts";
import { Cluster, bytes, id } from "./harness.ts";

describe("the Ready contract", () => {
  test("new entries and a new term/vote come with mustSync; a commit-only change does not", () => {
    const c = new Cluster([1, 2, 3]);
    const h1 = c.get(1);
    for (let k = 0; k < 100 && h1.node.inspect.role() === "follower"; k++) h1.node.tick();
    // Pre-vote round: no term change yet, nothing to sync.
    const pre = h1.node.ready();
    expect(pre.mustSync).toBe(false);
    expect(pre.messages.every((m) => m.type === "preVote")).toBe(true);
    h1.node.advance();
    for (const m of pre.messages) c.deliver(m);
    c.stabilize();
    expect(h1.node.inspect.role()).toBe("leader");
    const campaign = h1.readies.find((rd) => rd.messages.some((m) => m.type === "vote"));
    expect(campaign?.mustSync).toBe(true);
    expect(campaign?.hardState?.vote).toBe(id(1));
    const proposal = h1.node.propose(bytes("x"));
    expect(proposal.ok).toBe(true);
    const rd = h1.node.ready();
    expect(rd.entries.map((e): number => e.index)).toEqual([proposal.ok ? proposal.firstIndex : -1]);
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.filter((m) => m.type === "append").length).toBe(2);
    h1.storage.append(rd.entries);
    h1.node.advance();
    // Followers answer; the leader's next Ready only moves the commit index.
    for (const m of rd.messages) c.deliver(m);
    for (const n of [2, 3]) for (const m of c.processReady(c.get(n))) c.deliver(m);
    const commitOnly = h1.node.ready();
    expect(commitOnly.entries.length).toBe(0);
    expect(commitOnly.hardState?.commit as number | undefined).toBe(proposal.ok ? proposal.firstIndex : -1);
    expect(commitOnly.mustSync).toBe(false);
    expect(commitOnly.committedEntries.map((e): number => e.index)).toEqual([proposal.ok ? proposal.firstIndex : -1]);
    h1.node.advance();
  });

  test("ready() again before advance() is a driver bug", () => {
    const c = new Cluster([1]);
    const h = c.get(1);
    h.node.tick();
    for (let k = 0; k < 100 && !h.node.hasReady(); k++) h.node.tick();
    h.node.ready();
    expect(() => h.node.ready()).toThrow(RaftInvariantError);
    expect(hasReadyWhileOutstanding(h.node)).toBe(false);
  });

  test("steps between ready() and advance() are kept for the next Ready", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const h1 = c.get(1);
    h1.node.propose(bytes("a"));
    const first = h1.node.ready();
    h1.node.propose(bytes("b"));
    h1.storage.append(first.entries);
    h1.node.advance();
    const second = h1.node.ready();
    expect(second.entries.map((e) => (e.kind === "normal" ? new TextDecoder().decode(e.data) : ""))).toEqual(["b"]);
    h1.storage.append(second.entries);
    h1.node.advance();
  });

  test("a crash loses what was not persisted; the restarted node rebuilds term, vote, log and commit from storage", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(1).node.propose(bytes("durable"));
    c.stabilize();
    const h1 = c.get(1);
    const durableLast = h1.storage.lastIndex();
    h1.node.propose(bytes("volatile")); // never handed to storage
    const restarted = c.restart(1);
    const st = restarted.node.status();
    expect(st.lastIndex).toBe(durableLast);
    expect(st.term).toBe(h1.storage.hardState().term);
    expect(st.vote).toBe(id(1));
    expect(st.role).toBe("follower");
    expect(st.commit).toBe(h1.storage.hardState().commit);
    // Committed entries since the last snapshot are handed out again to rebuild the state machine.
    c.stabilize();
    expect(c.appliedData(1)).toEqual(["durable"]);
  });

  test("a restart with appliedIndex does not re-deliver what the state machine already applied", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.get(1).node.propose(bytes("a"));
    c.get(1).node.propose(bytes("b"));
    c.stabilize();
    const applied = c.get(2).node.inspect.applied();
    const h = c.restart(2, { appliedIndex: applied });
    expect(h.node.hasReady()).toBe(false);
  });

  test("the configuration is validated", () => {
    expect(() => resolveConfig({ id: id(0) })).toThrow(RaftInvariantError);
    expect(() => resolveConfig({ id: id(1), electionTimeoutTicks: 2, heartbeatIntervalTicks: 2 })).toThrow(RaftInvariantError);
    expect(() => resolveConfig({ id: id(1), maxInflightMsgs: 0 })).toThrow(RaftInvariantError);
    const cfg = resolveConfig({ id: id(1) });
    expect(cfg.preVote).toBe(true);
    expect(cfg.checkQuorum).toBe(true);
  });

  test("a node whose persisted commit is beyond its log refuses to start", () => {
    const storage = MemoryStorage.fromPersistedState(bootstrapPersistedState([id(1)]));
    storage.setHardState({ term: 1 as never, vote: id(0), commit: 99 as never });
    expect(() => new RaftNode({ config: { id: id(1) }, storage, random: new Xoshiro128(1) })).toThrow(RaftInvariantError);
  });
});

function hasReadyWhileOutstanding(node: RaftNode): boolean {
  return node.hasReady();
}

describe("creating a node from persisted state", () => {
  test("the optional conf state must agree with the one derived from the log", () => {
    const state = bootstrapPersistedState([id(1), id(2), id(3)]);
    const { node, storage } = RaftNode.fromPersistedState({
      config: { id: id(2) },
      state: { ...state, confState: { voters: [id(1), id(2), id(3)], learners: [] } },
      random: new Xoshiro128(1),
    });
    expect(node.status().confState.voters).toEqual([id(1), id(2), id(3)]);
    expect(storage.lastIndex()).toBe(3 as never);
    expect(() =>
      RaftNode.fromPersistedState({ config: { id: id(2) }, state: { ...state, confState: { voters: [id(1)], learners: [] } }, random: new Xoshiro128(1) }),
    ).toThrow(RaftInvariantError);
  });
});
