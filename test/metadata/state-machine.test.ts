import { describe, expect, test } from "bun:test";
import { asIndex, asRaftId, asTerm, type Entry } from "../../src/raft/index.ts";
import { NONE } from "../../src/metadata/kv.ts";
import { KEYS, type NodesConfiguration } from "../../src/metadata/nodes-config.ts";
import { MetadataStateMachine, encodeCommand, encodeMemberContext, type MetadataCommand } from "../../src/metadata/state-machine.ts";

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

function provisioned(): MetadataStateMachine {
  const sm = new MetadataStateMachine();
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
    // The dedup window survives a snapshot.
    const copy = new MetadataStateMachine();
    copy.restore(sm.snapshot());
    expect(copy.apply({ ...put, index: asIndex(++index) })).toEqual(first);
    expect(copy.kv.get("k")?.version ?? -1).toBe(sm.kv.get("k")!.version);
  });
});
