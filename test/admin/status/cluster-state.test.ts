import { describe, expect, test } from "bun:test";
import { ClusterStateTracker, decideClusterStatus, START_GRACE_MS, type ClusterSignals, type LogSignal, type NodeSignal, type PartitionSignal } from "../../../src/admin/status/cluster-state.ts";
import { ERRORS } from "../../../src/observability/errors.ts";

function node(id: string, over: Partial<NodeSignal> = {}): NodeSignal {
  return {
    id,
    name: `node-${id}`,
    generation: 1,
    roles: ["metadata-server", "log-server", "worker"],
    metadataServerState: "member",
    alive: true,
    answeredGeneration: 1,
    storeWritable: true,
    ...over,
  };
}

function log(id: number, over: Partial<LogSignal> = {}): LogSignal {
  return { id, sequencer: { node: "N1", generation: 1 }, sealed: false, nodeset: ["N1", "N2", "N3"], replication: 2, ...over };
}

function healthy(over: Partial<ClusterSignals> = {}): ClusterSignals {
  return {
    nodeLifecycle: "running",
    nodeUptimeMs: 60_000,
    provisioned: true,
    defaultReplication: 2,
    metadata: { leader: "N1", members: ["N1", "N2", "N3"] },
    nodes: [node("N1"), node("N2"), node("N3")],
    logs: [log(0), log(1)],
    ...over,
  };
}

function partition(id: number, over: Partial<PartitionSignal> = {}): PartitionSignal {
  return { id, leader: "N1", leading: true, epoch: 1, stopped: [], ...over };
}

const codes = (items: readonly { code: string }[]) => items.map((i) => i.code);

describe("cluster lifecycle state", () => {
  test("a cluster whose nodes all answer and whose logs all take appends is running, with no reasons", () => {
    const d = decideClusterStatus(healthy());
    expect(d.state).toBe("running");
    expect(d.reasons).toEqual([]);
    expect(d.warnings).toEqual([]);
  });

  test("a partition whose placed leader does not lead it, or whose processor stopped, degrades the cluster and says which", () => {
    expect(decideClusterStatus(healthy({ partitions: [partition(0), partition(1)] })).state).toBe("running");
    const leaderless = decideClusterStatus(healthy({ partitions: [partition(0), partition(1, { leading: false, leader: "N2", epoch: 3 })] }));
    expect(leaderless.state).toBe("degraded");
    expect(codes(leaderless.reasons)).toEqual([ERRORS.CLUSTER_PARTITION_LEADERLESS.code]);
    expect(leaderless.reasons[0]!.message).toContain("partition 1: its placed leader N2 does not lead it");
    const stopped = decideClusterStatus(healthy({ partitions: [partition(0, { stopped: ["N3: unknown record kind"] })] }));
    expect(stopped.state).toBe("degraded");
    expect(stopped.reasons[0]!.message).toContain("unknown record kind");
  });

  test("a cluster without workers serves no partitions and is not degraded by them", () => {
    const nodes = ["N1", "N2", "N3"].map((id) => node(id, { roles: ["metadata-server", "log-server"] }));
    expect(decideClusterStatus(healthy({ nodes, partitions: [partition(0, { leading: false, leader: null, epoch: 0 })] })).state).toBe("running");
  });

  test("partitions never led yet, right after provisioning, are the cluster starting, not degraded", () => {
    const fresh = [partition(0, { leading: false, epoch: 0 }), partition(1, { leading: false, epoch: 0, leader: null })];
    expect(decideClusterStatus(healthy({ partitions: fresh })).state).toBe("starting");
    // Once any was led, a partition without a leader is a failure.
    expect(decideClusterStatus(healthy({ partitions: [fresh[0]!, partition(1, { leading: false, epoch: 2 })] })).state).toBe("degraded");
  });

  test("a node still starting, or stopping, says so whatever the cluster looks like", () => {
    expect(decideClusterStatus(healthy({ nodeLifecycle: "starting" })).state).toBe("starting");
    for (const s of ["stopping", "stopped", "failed"] as const) {
      const d = decideClusterStatus(healthy({ nodeLifecycle: s }));
      expect(d.state).toBe("stopping");
      expect(codes(d.reasons)).toEqual([ERRORS.NODE_SHUTTING_DOWN.code]);
    }
  });

  test("an unprovisioned cluster awaits provisioning and names the code that says what to run", () => {
    const d = decideClusterStatus({ nodeLifecycle: "running", nodeUptimeMs: 0, provisioned: false, defaultReplication: null, metadata: null, nodes: null, logs: null });
    expect(d.state).toBe("awaiting-provisioning");
    expect(codes(d.reasons)).toEqual([ERRORS.CLUSTER_NOT_PROVISIONED.code]);
    expect(d.reasons[0]!.message).toContain("cairn ctl provision");
  });

  test("no metadata leader known, or no majority of members answering, is unavailable", () => {
    expect(decideClusterStatus(healthy({ metadata: null })).state).toBe("unavailable");
    expect(decideClusterStatus(healthy({ metadata: { leader: null, members: ["N1", "N2", "N3"] } })).state).toBe("unavailable");
    const twoDown = decideClusterStatus(healthy({ nodes: [node("N1"), node("N2", { alive: false }), node("N3", { alive: false })] }));
    expect(twoDown.state).toBe("unavailable");
    expect(codes(twoDown.reasons)).toEqual([ERRORS.CLUSTER_METADATA_UNAVAILABLE.code]);
    expect(twoDown.reasons[0]!.message).toContain("only 1 of 3");
    const leaderDown = decideClusterStatus(healthy({ nodes: [node("N1", { alive: false }), node("N2"), node("N3")] }));
    expect(leaderDown.state).toBe("unavailable");
    expect(leaderDown.reasons[0]!.message).toContain("election");
  });

  test("a node just started that knows no metadata leader yet is starting, not unavailable, for a grace period", () => {
    const noLeader = { metadata: { leader: null, members: ["N1"] } };
    expect(decideClusterStatus(healthy({ ...noLeader, nodeUptimeMs: START_GRACE_MS - 1 })).state).toBe("starting");
    expect(decideClusterStatus(healthy({ ...noLeader, nodeUptimeMs: START_GRACE_MS })).state).toBe("unavailable");
  });

  test("one of three members down keeps the quorum: degraded, naming the member", () => {
    const d = decideClusterStatus(healthy({ nodes: [node("N1"), node("N2"), node("N3", { alive: false })] }));
    expect(d.state).toBe("degraded");
    expect(d.reasons.map((r) => [r.code, r.subject])).toEqual([[ERRORS.CLUSTER_METADATA_MEMBER_DOWN.code, "N3"]]);
  });

  test("a dead node that is not a metadata member is a node-dead reason", () => {
    const d = decideClusterStatus(healthy({ nodes: [node("N1"), node("N2"), node("N3"), node("N4", { alive: false, metadataServerState: "standby" })] }));
    expect(d.state).toBe("degraded");
    expect(codes(d.reasons)).toEqual([ERRORS.CLUSTER_NODE_DEAD.code]);
  });

  test("a node not asked (alive unknown) counts neither way", () => {
    expect(decideClusterStatus(healthy({ nodes: [node("N1"), node("N2", { alive: null }), node("N3")] })).state).toBe("running");
  });

  test("a log-server store that refuses writes degrades the cluster", () => {
    const d = decideClusterStatus(healthy({ nodes: [node("N1"), node("N2", { storeWritable: false }), node("N3")] }));
    expect(d.state).toBe("degraded");
    expect(codes(d.reasons)).toEqual([ERRORS.CLUSTER_LOG_STORE_DISABLED.code]);
  });

  test("logs without a writable tail are one reason naming them: sealed, dead or restarted sequencer, too few storing nodes", () => {
    const cases: Array<[Partial<ClusterSignals>, string]> = [
      [{ logs: [log(0), log(1, { sealed: true })] }, "sealed"],
      [{ logs: [log(0, { sequencer: { node: "N1", generation: 1 } })], nodes: [node("N1", { answeredGeneration: 2 }), node("N2"), node("N3")] }, "restarted"],
      [{ logs: [log(0, { nodeset: ["N2", "N3"], replication: 2 })], nodes: [node("N1"), node("N2"), node("N3", { storeWritable: false })] }, "only 1 of its nodeset"],
    ];
    for (const [signals, why] of cases) {
      const d = decideClusterStatus(healthy(signals));
      expect(d.state).toBe("degraded");
      const r = d.reasons.find((x) => x.code === ERRORS.CLUSTER_LOG_NOT_WRITABLE.code);
      expect(r?.message).toContain(why);
    }
    const seqDown = decideClusterStatus(
      healthy({ logs: [log(0, { sequencer: { node: "N3", generation: 1 } })], nodes: [node("N1"), node("N2"), node("N3", { alive: false })] }),
    );
    expect(codes(seqDown.reasons)).toEqual([ERRORS.CLUSTER_METADATA_MEMBER_DOWN.code, ERRORS.CLUSTER_LOG_NOT_WRITABLE.code]);
    expect(seqDown.reasons[1]!.message).toContain("sequencer N3 does not answer");
  });

  test("right after provisioning, logs without any segment are the cluster being set up, not a failure", () => {
    const d = decideClusterStatus(healthy({ logs: [log(0, { sequencer: null, nodeset: [], replication: null }), log(1, { sequencer: null, nodeset: [], replication: null })] }));
    expect(d.state).toBe("starting");
    expect(codes(d.reasons)).toEqual([ERRORS.CLUSTER_LOG_NOT_WRITABLE.code]);
  });

  test("a single-replica setup warns, in every state past provisioning, and so does a single metadata member", () => {
    const single = healthy({
      defaultReplication: 1,
      metadata: { leader: "N1", members: ["N1"] },
      nodes: [node("N1")],
      logs: [log(0, { nodeset: ["N1"], replication: 1 })],
    });
    const d = decideClusterStatus(single);
    expect(d.state).toBe("running");
    expect(codes(d.warnings)).toEqual([ERRORS.CLUSTER_SINGLE_REPLICA.code, ERRORS.CLUSTER_SINGLE_METADATA_MEMBER.code]);
    expect(d.warnings[0]!.message).toContain("1 log(s) keep one copy");
    // Logs moved to replication 2 but the default is still 1: still warned.
    expect(codes(decideClusterStatus(healthy({ defaultReplication: 1 })).warnings)).toEqual([ERRORS.CLUSTER_SINGLE_REPLICA.code]);
    expect(codes(decideClusterStatus({ ...single, metadata: null }).warnings)).toEqual([ERRORS.CLUSTER_SINGLE_REPLICA.code]);
  });

  test("every reason and warning carries a catalogue code", () => {
    const known = new Set(Object.values(ERRORS).map((e) => e.code));
    const d = decideClusterStatus(
      healthy({ defaultReplication: 1, nodes: [node("N1"), node("N2", { storeWritable: false }), node("N3", { alive: false })], logs: [log(0, { sealed: true })] }),
    );
    for (const i of [...d.reasons, ...d.warnings]) expect(known.has(i.code)).toBe(true);
  });
});

describe("cluster state tracker", () => {
  test("reports a transition once, when the state changes, with the time it changed", () => {
    const t = new ClusterStateTracker();
    expect(t.observe("starting", 10)).toEqual({ from: undefined, to: "starting" });
    expect(t.observe("starting", 20)).toBeUndefined();
    expect(t.observe("running", 30)).toEqual({ from: "starting", to: "running" });
    for (let i = 0; i < 5; i++) expect(t.observe("running", 40 + i)).toBeUndefined();
    expect(t.sinceMs).toBe(30);
    expect(t.observe("degraded", 50)).toEqual({ from: "running", to: "degraded" });
    expect(t.state).toBe("degraded");
  });
});
