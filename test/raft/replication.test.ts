import { describe, expect, test } from "bun:test";
import type { Message } from "../../src/raft/index.ts";
import { MemoryStorage, RaftNode, Xoshiro128 } from "../../src/raft/index.ts";
import { Cluster, bytes, id, storageWithLog } from "./harness.ts";

function nodeOn(storage: MemoryStorage, n: number, extra: Record<string, unknown> = {}): RaftNode {
  return new RaftNode({ config: { id: id(n), ...extra }, storage, random: new Xoshiro128(n) });
}

/** Drives a lone node to leadership by answering its vote requests by hand. */
function makeLeader(node: RaftNode, storage: MemoryStorage): void {
  for (let k = 0; k < 100 && node.inspect.role() === "follower"; k++) node.tick();
  for (let round = 0; round < 2 && node.inspect.role() !== "leader"; round++) {
    for (const m of drain(node, storage)) {
      if (m.type === "preVote" || m.type === "vote") {
        node.step({ type: m.type === "vote" ? "voteResponse" : "preVoteResponse", from: m.to, to: m.from, term: m.term, reject: false });
      }
    }
  }
  expect(node.inspect.role()).toBe("leader");
}

function drain(node: RaftNode, storage: MemoryStorage): Message[] {
  const out: Message[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    storage.append(rd.entries);
    if (rd.hardState !== null) storage.setHardState(rd.hardState);
    out.push(...rd.messages);
    node.advance();
  }
  return out;
}

describe("replication", () => {
  test("an entry of an earlier term is not committed by counting replicas (Raft Figure 8)", () => {
    // Node 1 holds an uncommitted entry of term 2 at index 5; it becomes leader of term 4.
    const storage = storageWithLog([1, 2, 3], [2, 2], { term: 3, commit: 4 });
    const leader = nodeOn(storage, 1);
    makeLeader(leader, storage);
    const term = leader.inspect.term();
    expect(leader.inspect.lastIndex()).toBe(6 as never); // its no-op of the new term
    drain(leader, storage);
    // Node 2 acknowledges index 5 (the old-term entry) but not yet the no-op.
    leader.step({ type: "appendResponse", from: id(2), to: id(1), term, index: 5 as never, reject: false, rejectHint: 0 as never, rejectHintTerm: 0 as never });
    drain(leader, storage);
    expect(leader.inspect.commit()).toBe(4 as never);
    leader.step({ type: "appendResponse", from: id(2), to: id(1), term, index: 6 as never, reject: false, rejectHint: 0 as never, rejectHintTerm: 0 as never });
    drain(leader, storage);
    expect(leader.inspect.commit()).toBe(6 as never);
  });

  test("a stale append does not truncate entries the follower already matches", () => {
    const storage = storageWithLog([1, 2, 3], [2, 2, 2], { term: 2, commit: 4 });
    const follower = nodeOn(storage, 2);
    follower.step({
      type: "append",
      from: id(1),
      to: id(2),
      term: 2 as never,
      prevIndex: 4 as never,
      prevTerm: 2 as never,
      entries: [{ kind: "normal", term: 2 as never, index: 5 as never, data: new Uint8Array(0) }],
      commit: 4 as never,
    });
    expect(follower.inspect.lastIndex()).toBe(6 as never);
    const rd = follower.ready();
    const resp = rd.messages.find((m) => m.type === "appendResponse");
    expect(resp?.type === "appendResponse" && !resp.reject && resp.index === 5).toBe(true);
    expect(rd.entries.length).toBe(0);
    follower.advance();
  });

  test("a conflicting suffix from an older term is replaced by the leader's entries", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    c.get(1).node.propose(bytes("lost"));
    c.stabilize();
    c.heal();
    c.isolate(1);
    while (!c.leaders().some((n) => n !== 1)) {
      c.tick(2);
      c.tick(3);
      c.stabilize();
    }
    const winner = c.leaders().find((n) => n !== 1)!;
    c.get(winner).node.propose(bytes("kept"));
    c.stabilize();
    c.heal();
    c.tickAll(5);
    for (const n of [1, 2, 3]) expect(c.appliedData(n)).toEqual(["kept"]);
  });

  test("flow control: at most maxInflightMsgs appends are outstanding to a silent follower", () => {
    const c = new Cluster([1, 2, 3], { maxInflightMsgs: 2, maxSizePerMsgBytes: 30 });
    c.elect(1);
    c.get(1).node.propose(bytes("warm-up"));
    c.stabilize();
    expect(c.get(1).node.status().progress.get(id(2))?.state).toBe("replicate");
    // Node 2 stops answering; each proposal goes in its own Ready and message.
    c.cutLink(2, 1);
    c.delivered = [];
    for (let k = 0; k < 10; k++) {
      c.get(1).node.propose(bytes(`p${k}`));
      c.stabilize();
    }
    const appendsTo2 = c.delivered.filter((m) => m.type === "append" && m.to === 2 && m.entries.length > 0);
    expect(appendsTo2.length).toBe(2);
    const appendsTo3 = c.delivered.filter((m) => m.type === "append" && m.to === 3 && m.entries.length > 0);
    expect(appendsTo3.length).toBe(10);
    // Once node 2 answers again it catches up.
    c.heal();
    c.tickAll(15);
    expect(c.appliedData(2)).toEqual(c.appliedData(1));
  });

  test("proposals made between two Readies reach each follower in one append (batching)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.delivered = [];
    for (let k = 0; k < 50; k++) expect(c.get(1).node.propose(bytes(`b${k}`)).ok).toBe(true);
    c.stabilize();
    const appends = c.delivered.filter((m) => m.type === "append" && m.entries.length > 0);
    expect(appends.length).toBe(2);
    expect(appends.every((m) => m.type === "append" && m.entries.length === 50)).toBe(true);
    expect(c.appliedData(3).length).toBe(50);
  });

  test("proposeBatch appends a whole batch at consecutive indexes", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const r = c.get(1).node.proposeBatch([bytes("x"), bytes("y"), bytes("z")]);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.lastIndex - r.firstIndex).toBe(2);
    c.stabilize();
    expect(c.appliedData(2)).toEqual(["x", "y", "z"]);
    expect(c.get(1).node.proposeBatch([]).ok).toBe(false);
  });

  test("a leader refuses proposals beyond maxUncommittedEntriesBytes until they commit", () => {
    const c = new Cluster([1, 2, 3], { maxUncommittedEntriesBytes: 200 });
    c.elect(1);
    c.isolate(1);
    let accepted = 0;
    let refusal = "";
    for (let k = 0; k < 20; k++) {
      const r = c.get(1).node.propose(new Uint8Array(40));
      if (r.ok) accepted++;
      else refusal = r.reason;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(20);
    expect(refusal).toBe("uncommittedBytesExceeded");
    c.heal();
    c.tickAll(3);
    expect(c.get(1).node.propose(new Uint8Array(40)).ok).toBe(true);
  });

  test("a follower refuses to be a proposal target: only the leader accepts", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const r = c.get(2).node.propose(bytes("x"));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe("notLeader");
      expect(r.leader).toBe(id(1));
    }
  });

  test("a follower far behind is probed back to the point of agreement in few round trips", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let k = 0; k < 200; k++) c.get(1).node.propose(bytes(`e${k}`));
    c.stabilize();
    c.heal();
    c.delivered = [];
    // The append in flight when node 3 was cut off was lost: the leader notices the stall and probes.
    c.tickAll(10);
    const rejects = c.delivered.filter((m) => m.type === "appendResponse" && m.from === 3 && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(c.appliedData(3).length).toBe(200);
  });

  test("a lagging follower whose entries were compacted away is sent a snapshot and catches up", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let k = 0; k < 30; k++) c.get(1).node.propose(bytes(`s${k}`));
    c.stabilize();
    for (const n of [1, 2]) {
      const h = c.get(n);
      const applied = h.node.inspect.applied();
      h.storage.createSnapshot(applied, h.node.appliedConfState(), bytes(`image@${applied}`));
      h.storage.compact(applied);
    }
    c.heal();
    c.delivered = [];
    c.tickAll(10);
    expect(c.delivered.some((m) => m.type === "snapshot" && m.to === 3)).toBe(true);
    const h3 = c.get(3);
    expect(h3.storage.snapshot().metadata.index).toBe(c.get(1).storage.snapshot().metadata.index);
    expect(h3.node.inspect.commit()).toBe(c.get(1).node.inspect.commit());
    expect(h3.node.status().confState.voters).toEqual([id(1), id(2), id(3)]);
    // New entries flow normally after the snapshot.
    c.get(1).node.propose(bytes("after"));
    c.stabilize();
    expect(c.appliedData(3)).toEqual(["after"]);
  });

  test("committed entries are handed out in order, bounded by maxCommittedSizePerReadyBytes", () => {
    const c = new Cluster([1], { maxCommittedSizePerReadyBytes: 100 });
    c.elect(1);
    const h = c.get(1);
    h.readies = [];
    for (let k = 0; k < 10; k++) h.node.propose(new Uint8Array(40));
    c.stabilize();
    const batches = h.readies.map((rd) => rd.committedEntries.length).filter((n) => n > 0);
    expect(batches.length).toBeGreaterThan(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(2);
    const indexes = h.applied.map((e) => e.index);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
  });

  test("acknowledgements of entries overwritten before they were persisted are never sent", () => {
    const storage = storageWithLog([1, 2, 3], [2], { term: 2, commit: 4 });
    const follower = nodeOn(storage, 3);
    const entry = (index: number, term: number) => ({ kind: "normal" as const, term: term as never, index: index as never, data: new Uint8Array([index]) });
    // The leader of term 2 sends entries 5 and 6; before they are persisted, the leader of term 3
    // (which never had them) overwrites index 5.
    follower.step({ type: "append", from: id(1), to: id(3), term: 2 as never, prevIndex: 4 as never, prevTerm: 2 as never, entries: [entry(5, 2), entry(6, 2)], commit: 4 as never });
    follower.step({ type: "append", from: id(2), to: id(3), term: 3 as never, prevIndex: 4 as never, prevTerm: 2 as never, entries: [entry(5, 3)], commit: 4 as never });
    const rd = follower.ready();
    expect(rd.entries.map((e): number[] => [e.index, e.term])).toEqual([[5, 3]]);
    const acksToOldLeader = rd.messages.filter((m) => m.type === "appendResponse" && m.to === 1 && !m.reject && m.index >= 5);
    expect(acksToOldLeader).toEqual([]);
    const ackToNewLeader = rd.messages.find((m) => m.type === "appendResponse" && m.to === 2);
    expect(ackToNewLeader?.type === "appendResponse" && ackToNewLeader.index).toBe(5 as never);
    follower.advance();
  });
});
