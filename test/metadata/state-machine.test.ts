import { describe, expect, test } from "bun:test";
import { asIndex, asRaftId, asTerm, type Entry } from "../../src/raft/index.ts";
import { NONE } from "../../src/metadata/kv.ts";
import { KEYS, type NodesConfiguration } from "../../src/metadata/nodes-config.ts";
import { Database } from "bun:sqlite";
import { SqliteKvStore } from "../../src/metadata/kv-store.ts";
import { DEDUP_WINDOW, MetadataStateMachine, encodeCommand, encodeMemberContext, type ApplyOutcome, type MetadataCommand } from "../../src/metadata/state-machine.ts";

/** A state machine over a fresh in-memory database; `apply` applies one entry in its own transaction. */
function newStateMachine(): MetadataStateMachine & { apply(e: Entry): ApplyOutcome; applyAll(es: Entry[]): ApplyOutcome[] } {
  const db = new Database(":memory:", { strict: true });
  const sm = new MetadataStateMachine(new SqliteKvStore(db), db) as MetadataStateMachine & { apply(e: Entry): ApplyOutcome; applyAll(es: Entry[]): ApplyOutcome[] };
  sm.applyAll = (es: Entry[]) => db.transaction(() => sm.applyWithin(es))();
  sm.apply = (e: Entry) => sm.applyAll([e])[0]!;
  return sm;
}

let index = 0;
function cmd(c: MetadataCommand): Entry {
  return { kind: "normal", index: asIndex(++index), term: asTerm(1), data: encodeCommand(c) };
}
function conf(type: "addVoter" | "addLearner" | "removeNode", node: number, storageId?: string): Entry {
  return {
    kind: "confChange",
    index: asIndex(++index),
    term: asTerm(1),
    change: { type, nodeId: asRaftId(node), context: storageId ? encodeMemberContext({ storageId }) : new Uint8Array(0) },
  };
}
function node(id: number, state: "auto-join" | "member" | "standby") {
  return { id, name: `n${id}`, generation: 1, incarnation: "i", roles: ["metadata-server" as const], fabricAddress: `a${id}`, adminAddress: `h${id}`, metadataServer: { state, storageId: state === "member" ? `s${id}` : null } };
}

function provisioned(): ReturnType<typeof newStateMachine> {
  const sm = newStateMachine();
  const nc: NodesConfiguration = { clusterName: "c", fingerprint: "f", nextNodeId: 3, nodes: [node(1, "member"), node(2, "auto-join")] };
  expect(sm.apply(conf("addVoter", 1))).toMatchObject({ kind: "membership" });
  expect(sm.apply(cmd({ t: "provision", id: "p", docs: [[KEYS.nodesConfig, nc], [KEYS.cluster, { name: "c" }]] }))).toEqual({ kind: "provision", id: "p", ok: true });
  return sm;
}

function stateOf(sm: MetadataStateMachine, id: number) {
  return sm.nodesConfig()!.config.nodes.find((n) => n.id === id)!.metadataServer;
}

describe("metadata state machine", () => {
  test("provisioning applies all documents once; a second provisioning changes nothing", () => {
    const sm = provisioned();
    expect(sm.apply(cmd({ t: "provision", id: "q", docs: [[KEYS.cluster, { name: "other" }]] }))).toEqual({ kind: "provision", id: "q", ok: false });
    expect(sm.kv.get(KEYS.cluster)?.value).toEqual({ name: "c" });
  });

  test("joining: the learner's storage id is recorded, promotion makes it a member, removal a standby", () => {
    const sm = provisioned();
    sm.apply(conf("addLearner", 2, "s2"));
    expect(stateOf(sm, 2)).toEqual({ state: "auto-join", storageId: "s2" });
    sm.apply(conf("addVoter", 2));
    expect(stateOf(sm, 2)).toEqual({ state: "member", storageId: "s2" });
    sm.apply(conf("removeNode", 2));
    expect(stateOf(sm, 2)).toEqual({ state: "standby", storageId: null });
    expect(sm.anomalies).toEqual([]);
  });

  test("a change that does not fit the recorded state leaves nodes_config alone and is noted", () => {
    const sm = provisioned();
    const before = sm.nodesConfig()!.version;
    sm.apply(conf("removeNode", 2)); // auto-join is never demoted to standby
    expect(stateOf(sm, 2).state).toBe("auto-join");
    expect(sm.nodesConfig()!.version).toBe(before);
    expect(sm.anomalies).toHaveLength(1);
  });

  test("a retried request (same id) is applied once and answered with its first result", () => {
    const sm = provisioned();
    const put = cmd({ t: "kv", id: "r1", cmd: { op: "put", key: "k", value: 1, precondition: NONE } });
    const first = sm.apply(put);
    const retry = sm.apply({ ...put, index: asIndex(++index) });
    expect(retry).toEqual(first);
    expect(sm.kv.get("k")?.version as number | undefined).toBe(first.kind === "kv" && first.result.ok ? first.result.version : -1);
    expect(sm.appliedIndex()).toBe(index);
  });

  test("request ids are remembered for DEDUP_WINDOW entries, on disk, then forgotten", () => {
    const sm = newStateMachine();
    const first = sm.applyAll([{ kind: "normal", index: asIndex(1), term: asTerm(1), data: encodeCommand({ t: "kv", id: "old", cmd: { op: "put", key: "k", value: 1, precondition: NONE } }) }]);
    const filler: Entry[] = Array.from({ length: DEDUP_WINDOW + 1 }, (_, k) => ({ kind: "normal", index: asIndex(k + 2), term: asTerm(1), data: new Uint8Array(0) }));
    sm.applyAll(filler);
    const again = sm.applyAll([{ kind: "normal", index: asIndex(DEDUP_WINDOW + 3), term: asTerm(1), data: encodeCommand({ t: "kv", id: "old", cmd: { op: "put", key: "k", value: 1, precondition: NONE } }) }]);
    // Outside the window the retry is a new write (version 2), not the first answer (version 1).
    expect(first[0]).toMatchObject({ result: { ok: true, version: 1 } });
    expect(again[0]).toMatchObject({ result: { ok: true, version: 2 } });
  });

  test("the applied index is written with the effects, in one transaction", () => {
    const sm = newStateMachine();
    const put = (i: number, id: string): Entry => ({ kind: "normal", index: asIndex(i), term: asTerm(1), data: encodeCommand({ t: "kv", id, cmd: { op: "put", key: id, value: i, precondition: NONE } }) });
    sm.applyAll([put(1, "a"), put(2, "b")]);
    expect(sm.appliedIndex()).toBe(2);
    // A failure in the middle of a batch rolls back the whole batch, index included.
    const broken: Entry = { kind: "normal", index: asIndex(4), term: asTerm(1), data: new TextEncoder().encode("{not json") };
    expect(() => sm.applyAll([put(3, "c"), broken])).toThrow();
    expect(sm.appliedIndex()).toBe(2);
    expect(sm.kv.get("c")).toBeUndefined();
  });
});
