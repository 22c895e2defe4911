// Operators' changes as pure decisions: the log controller's moves up to the cluster's replication
// setting (bounded per round, only when the live log-servers can keep it, never for manual
// placements), the progress shown for them, which nodes may be removed and why not, the settings
// checks, and a removed node's name refused at registration.
import { describe, expect, test } from "bun:test";
import { planLogActions, type PlanInput } from "../../src/admin/controller/index.ts";
import { checkSettingsChange, removalRefusal } from "../../src/admin/api/cluster-operations.ts";
import { replicationProgress } from "../../src/admin/status/progress.ts";
import type { LogsDocument, Segment } from "../../src/bifrost/index.ts";
import { logId, type NodeId } from "../../src/ids/index.ts";
import { clusterSettings, registerNode, removeNode, withClusterSettings, type ClusterInfo, type NodeEntry, type NodesConfiguration } from "../../src/metadata/nodes-config.ts";
import { isCairnError } from "../../src/observability/errors.ts";

function seg(index: number, sequencer: string, nodeset: string[], replication: number, extra: Partial<Segment> = {}): Segment {
  return { index, baseLsn: 1, kind: "replicated", params: { loglet: `1_${index}`, sequencer, nodeset, replication }, placement: "auto", createdAtMs: 0, ...extra };
}

function plan(logs: LogsDocument["logs"], extra: Partial<PlanInput> = {}) {
  return planLogActions({
    doc: { defaultReplication: 1, logs },
    nodes: ["N1", "N2", "N3"].map((id) => ({ id: id as NodeId, generation: 1, logServer: true })),
    liveness: () => "alive",
    liveGeneration: () => undefined,
    inflight: new Set(),
    lastImprovedMs: new Map(),
    nowMs: 100_000,
    autoImprove: true,
    improveIntervalMs: 10_000,
    nodesetSize: 0,
    defaultProvider: "replicated",
    ...extra,
  });
}

const local = (id: number): LogsDocument["logs"][number] => ({
  id,
  trimPoint: 0,
  segments: [{ index: 0, baseLsn: 1, kind: "local", params: { loglet: `${id}_0`, sequencer: "N1:1", nodeset: ["N1"], replication: 1 }, placement: "auto", createdAtMs: 0 }],
});

describe("the replication setting in the log controller's plan", () => {
  test("logs below the setting move to it, at most maxReplicationChanges per round; a local segment becomes replicated", () => {
    const logs = [local(0), local(1), local(2), { id: 3, trimPoint: 0, segments: [seg(0, "N1:1", ["N1"], 1)] }];
    const actions = plan(logs, { targetReplication: 2, maxReplicationChanges: 2 });
    expect(actions).toEqual([
      { log: logId(0), reason: "replication-setting", expectTailIndex: 0, request: { replication: 2, kind: "replicated" } },
      { log: logId(1), reason: "replication-setting", expectTailIndex: 0, request: { replication: 2, kind: "replicated" } },
    ]);
    // The next round (the first two in flight) takes the next two.
    expect(plan(logs, { targetReplication: 2, maxReplicationChanges: 2, inflight: new Set([0, 1]) }).map((a) => [a.log, a.request])).toEqual([
      [logId(2), { replication: 2, kind: "replicated" }],
      [logId(3), { replication: 2 }],
    ]);
  });
  test("nothing moves while fewer live log-servers than the setting answer, for a manual placement, or at the setting", () => {
    const logs = [local(0)];
    expect(plan(logs, { targetReplication: 2, liveness: (id) => (id === "N1" ? "alive" : "dead") })).toEqual([]);
    expect(plan([{ id: 0, trimPoint: 0, segments: [seg(0, "N1:1", ["N1", "N2"], 2, { placement: "manual" })] }], { targetReplication: 3 })).toEqual([]);
    expect(plan([{ id: 0, trimPoint: 0, segments: [seg(0, "N1:1", ["N1", "N2", "N3"], 2)] }], { targetReplication: 2 })).toEqual([]);
    // Above the setting (an operator raised one log on purpose): it stays.
    expect(plan([{ id: 0, trimPoint: 0, segments: [seg(0, "N1:1", ["N1", "N2", "N3"], 2)] }], { targetReplication: 1 })).toEqual([]);
  });
  test("an empty chain's first segment waits for as many live log-servers as the setting asks", () => {
    const empty = [{ id: 0, trimPoint: 0, segments: [] }];
    expect(plan(empty, { targetReplication: 3, liveness: (id) => (id === "N3" ? "dead" : "alive") })).toEqual([]);
    expect(plan(empty, { targetReplication: 3 })).toEqual([{ log: logId(0), reason: "no-segment", expectTailIndex: -1 }]);
  });
});

describe("progress towards the setting", () => {
  test("a log counts once its tail has the setting and its sealed segments with records have as many copies", () => {
    const sealedLocal: Segment = { ...local(0).segments[0]!, sealedTail: 11 };
    const doc: LogsDocument = {
      defaultReplication: 2,
      logs: [
        { id: 0, trimPoint: 0, segments: [sealedLocal, seg(1, "N1:1", ["N1", "N2", "N3"], 2, { baseLsn: 11 })] },
        { id: 1, trimPoint: 0, segments: [{ ...sealedLocal, params: { ...sealedLocal.params, nodeset: ["N1", "N2"], replication: 2 } }, seg(1, "N1:1", ["N1", "N2"], 2, { baseLsn: 11 })] },
        // Trimmed past the old segment: its single copy no longer matters.
        { id: 2, trimPoint: 10, segments: [sealedLocal, seg(1, "N1:1", ["N1", "N2"], 2, { baseLsn: 11 })] },
        local(3),
      ],
    };
    const known = (n: NodeId) => n !== "N9";
    expect(replicationProgress(doc, 2, known)).toEqual({ target: 2, logs: 4, logsAtTarget: 2 });
    expect(replicationProgress(doc, 1, known)).toEqual({ target: 1, logs: 4, logsAtTarget: 4 });
  });
});

const node = (id: number, state: NodeEntry["metadataServer"]["state"]): NodeEntry => ({
  id,
  name: `n${id}`,
  generation: 1,
  incarnation: "x",
  roles: ["log-server", "worker", "metadata-server"],
  fabricAddress: `127.0.0.1:${5000 + id}`,
  adminAddress: `127.0.0.1:${9000 + id}`,
  metadataServer: { state, storageId: null },
});

describe("removing a node", () => {
  const config: NodesConfiguration = { clusterName: "c", fingerprint: "f", nextNodeId: 5, nodes: [node(1, "member"), node(2, "member"), node(3, "member"), node(4, "standby")] };
  const logs = (segments: Segment[], trimPoint = 0): LogsDocument => ({ defaultReplication: 2, logs: [{ id: 0, trimPoint, segments }] });
  const refusal = (n: NodeEntry, l: LogsDocument | undefined, extra: { alive?: boolean | null; leader?: string } = {}) =>
    removalRefusal({
      config,
      node: n,
      logs: l,
      placement: extra.leader === undefined ? undefined : { partitions: [{ id: 3, leader: extra.leader, followers: [] }] },
      alive: extra.alive ?? false,
    })?.code;

  test("refused while it answers, is a metadata member, leads a partition, sequences a log or holds a log's only copy", () => {
    expect(refusal(node(4, "standby"), undefined, { alive: true })).toBe("CAIRN-CLUSTER-0014");
    expect(refusal(node(1, "member"), undefined)).toBe("CAIRN-CLUSTER-0011");
    expect(refusal(node(4, "standby"), undefined, { leader: "N4" })).toBe("CAIRN-CLUSTER-0013");
    expect(refusal(node(4, "standby"), logs([seg(0, "N4:1", ["N1", "N4"], 2)]))).toBe("CAIRN-CLUSTER-0012");
    // The only copy of a sealed segment's records.
    const single = { ...local(0).segments[0]!, params: { loglet: "0_0", sequencer: "N4:1", nodeset: ["N4"], replication: 1 }, sealedTail: 6 };
    expect(refusal(node(4, "standby"), logs([single, seg(1, "N1:1", ["N1", "N2"], 2, { baseLsn: 6 })]))).toBe("CAIRN-CLUSTER-0012");
  });
  test("allowed for a dead node whose copies exist elsewhere, or whose records were trimmed", () => {
    expect(refusal(node(4, "standby"), logs([seg(0, "N1:1", ["N1", "N2", "N4"], 2)]))).toBeUndefined();
    const single = { ...local(0).segments[0]!, params: { loglet: "0_0", sequencer: "N4:1", nodeset: ["N4"], replication: 1 }, sealedTail: 6 };
    expect(refusal(node(4, "standby"), logs([single, seg(1, "N1:1", ["N1", "N2"], 2, { baseLsn: 6 })], 5))).toBeUndefined();
    expect(refusal(node(4, "standby"), undefined, { alive: null })).toBeUndefined();
  });
  test("a removed node keeps its id retired and its name may not register again", () => {
    const after = removeNode(config, 4, 1234);
    expect(after.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    expect(after.removed).toEqual([{ id: 4, name: "n4", removedAtMs: 1234 }]);
    expect(after.nextNodeId).toBe(5);
    let err: unknown;
    try {
      registerNode(after, { name: "n4", generation: 2, incarnation: "y", roles: ["log-server"], fabricAddress: "a", adminAddress: "b", autoJoin: true });
    } catch (e) {
      err = e;
    }
    expect(isCairnError(err, "NODE_REMOVED")).toBe(true);
    // A new node takes a new id, never 4.
    const next = registerNode(after, { name: "n5", generation: 1, incarnation: "z", roles: ["log-server"], fabricAddress: "a", adminAddress: "b", autoJoin: true });
    expect(next.node.id).toBe(5);
  });
});

describe("cluster settings", () => {
  const cluster: ClusterInfo = { name: "c", fingerprint: "f", provisionedAtMs: 0, numPartitions: 8, replication: 1 };
  test("a change within the live log-servers is taken; the top-level replication follows", () => {
    expect(clusterSettings(cluster)).toEqual({ replication: 1, nodesetSize: 0 });
    const next = checkSettingsChange(cluster, { replication: 2 }, 3);
    expect(next).toEqual({ replication: 2, nodesetSize: 0 });
    expect(withClusterSettings(cluster, next)).toEqual({ ...cluster, replication: 2, settings: { replication: 2, nodesetSize: 0 } });
    expect(checkSettingsChange(withClusterSettings(cluster, next), { nodesetSize: 3 }, 1)).toEqual({ replication: 2, nodesetSize: 3 });
  });
  test("refused: more copies than live log-servers, a nodeset smaller than the replication, nothing to change", () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return undefined;
    };
    expect(code(() => checkSettingsChange(cluster, { replication: 3 }, 2))).toBe("CAIRN-CLUSTER-0017");
    expect(code(() => checkSettingsChange(cluster, { replication: 3, nodesetSize: 2 }, 5))).toBe("CAIRN-CLUSTER-0016");
    expect(code(() => checkSettingsChange(cluster, {}, 5))).toBe("CAIRN-CLUSTER-0016");
  });
});
