// Operators' tools with real processes: one node provisioned with replication 1 writes records; a
// replication of 2 is refused while it is alone; two nodes join; `ctl config set --replication 2`
// makes the log controller move every log to replication 2 and re-replicate the segments written
// before, with no further command; the old records are read back after kill -9 of the first node.
// Then `nodes list` shows every node, `nodes remove` of a metadata member is refused with its code,
// the removal of a paused node holding nothing succeeds, its peers then refuse its requests, and
// restarted it is refused registration.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runCairn, startNode, type NodeProcess } from "../helpers/cairn-process.ts";
import { FAST_RAFT, eventually, json, servers, startCluster, type TestCluster } from "../helpers/cluster.ts";

type Entry = { kind: "record"; lsn: number; data: string } | { kind: "trim-gap"; fromLsn: number; toLsn: number };
interface Segment {
  index: number;
  kind: string;
  sealedTail: number | null;
  nodeset: string[];
  replication: number;
}
interface Progress {
  target: number;
  logs: number;
  logsAtTarget: number;
}

const LOGS = [0, 1, 2, 3];
let cluster: TestCluster;
/** Acknowledged records per log, in LSN order. */
const acked = new Map<number, Array<[number, string]>>(LOGS.map((l) => [l, []]));

beforeAll(async () => {
  cluster = await startCluster(1, { replication: 1 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

async function append(node: NodeProcess, log: number, records: string[]): Promise<void> {
  const r = await json<{ firstLsn: number }>(`${node.addresses.admin}/v1/logs/${log}/records`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ records }),
  });
  if (r.status !== 200) throw new Error(`append to log ${log} answered ${r.status} ${JSON.stringify(r.body)}`);
  acked.get(log)!.push(...records.map((d, i): [number, string] => [r.body.firstLsn + i, d]));
}

async function readAll(node: NodeProcess, log: number): Promise<Array<[number, string]>> {
  const out: Array<[number, string]> = [];
  let from = 1;
  for (;;) {
    const r = await json<{ entries: Entry[]; nextLsn: number; tailLsn: number }>(`${node.addresses.admin}/v1/logs/${log}/records?from=${from}&limit=500`);
    if (r.status !== 200) throw new Error(`read answered ${r.status} ${JSON.stringify(r.body)}`);
    for (const e of r.body.entries) if (e.kind === "record") out.push([e.lsn, e.data]);
    if (r.body.entries.length === 0 || r.body.nextLsn >= r.body.tailLsn) return out;
    from = r.body.nextLsn;
  }
}

async function segments(node: NodeProcess, log: number): Promise<Segment[]> {
  const r = await json<{ log: { segments: Segment[] } }>(`${node.addresses.admin}/v1/logs/${log}`);
  if (r.status !== 200) throw new Error(`describe answered ${r.status}`);
  return r.body.log.segments;
}

const ctl = (node: NodeProcess, ...args: string[]) => runCairn(["ctl", "--address", node.addresses.admin, ...args]);

/** No stack trace in what ctl prints. */
function noStack(text: string): void {
  expect(text).not.toMatch(/\n\s+at /);
}

describe("cluster settings: raising the replication after growth", () => {
  test("every log ends at replication 2 by itself, and the old records survive kill -9 of the first node", async () => {
    const first = cluster.nodes[0]!;
    await eventually("every log has a segment", async () => {
      for (const l of LOGS) if ((await segments(first, l)).length === 0) return undefined;
      return true;
    });
    for (const l of LOGS) for (let i = 0; i < 5; i++) await append(first, l, [`log${l}-before-${i}`]);

    // Alone, the node cannot keep two copies: refused by the API and by ctl, with the code.
    const alone = await json<{ code: string }>(`${first.addresses.admin}/v1/cluster/config`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ replication: 2 }),
    });
    expect(alone.status).toBe(409);
    expect(alone.body.code).toBe("CAIRN-CLUSTER-0017");
    const refused = await ctl(first, "config", "set", "--replication", "2");
    expect(refused.exitCode).toBe(5);
    expect(refused.stderr).toContain("CAIRN-CLUSTER-0017");
    noStack(refused.stderr);

    await cluster.start("n2");
    await cluster.start("n3");
    await eventually("3 metadata members", async () => {
      const s = await servers(first.addresses.admin);
      return s.filter((x) => x.state === "member" && x.status?.state === "member").length === 3 ? true : undefined;
    });
    // Bad settings are refused before anything is written.
    const bad = await json<{ code: string }>(`${first.addresses.admin}/v1/cluster/config`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ replication: 2, nodesetSize: 1 }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("CAIRN-CLUSTER-0016");
    const before = await json<{ replication: number; progress: Progress }>(`${first.addresses.admin}/v1/cluster/config`);
    expect(before.body.replication).toBe(1);

    const set = await ctl(cluster.nodes[1]!, "config", "set", "--replication", "2");
    expect(set.exitCode).toBe(0);
    expect(set.stdout).toContain("replication   2");

    // No further command: the controller moves every log, and re-replicates the old segments.
    const done = await eventually(
      "every log at replication 2",
      async () => {
        const r = await json<{ replication: number; nodesetSize: number; version: number; progress: Progress }>(`${first.addresses.admin}/v1/cluster/config`);
        return r.body.progress.logsAtTarget === LOGS.length ? r.body : undefined;
      },
      120_000,
    );
    expect(done).toEqual({ replication: 2, nodesetSize: 0, version: expect.any(Number), progress: { target: 2, logs: LOGS.length, logsAtTarget: LOGS.length } });
    for (const l of LOGS) {
      const segs = await segments(first, l);
      expect(segs.at(-1)!.kind).toBe("replicated");
      for (const s of segs) if (s.sealedTail === null || s.sealedTail > 1) expect(s.replication).toBeGreaterThanOrEqual(2);
    }
    // Another node's status shows it from its own copy of the metadata (it may lag a moment).
    const status = await eventually("the status of n3 shows the progress", async () => {
      const r = await json<{ replication: Progress; cluster: { replication: number } }>(`${cluster.nodes[2]!.addresses.admin}/v1/cluster/status?tails=false`);
      return r.body.replication?.logsAtTarget === LOGS.length ? r.body : undefined;
    });
    expect(status.replication).toEqual({ target: 2, logs: LOGS.length, logsAtTarget: LOGS.length });
    expect(status.cluster.replication).toBe(2);
    const shown = await ctl(cluster.nodes[2]!, "status");
    expect(shown.stdout).toContain(`${LOGS.length}/${LOGS.length} logs at replication 2`);

    for (const l of LOGS) await append(cluster.nodes[1]!, l, [`log${l}-after-growth`]);
    await first.stop("SIGKILL");
    const survivor = cluster.nodes[1]!;
    for (const l of LOGS) {
      const read = await eventually(`log ${l} read back from a survivor`, async () => readAll(survivor, l), 30_000);
      expect(read).toEqual(acked.get(l)!);
    }
  }, 300_000);

  test("nodes list shows every node; remove refuses a metadata member, retires a paused node that holds nothing, and its peers refuse it", async () => {
    const survivor = cluster.nodes[1]!;
    // A node holding nothing: no log-server, no metadata server, no worker.
    const spare = await cluster.start("n4", ["--roles", "admin"]);
    const listed = await ctl(survivor, "--json", "nodes", "list");
    expect(listed.exitCode).toBe(0);
    const nodes = (JSON.parse(listed.stdout) as { nodes: Array<{ id: string; name: string; state: string; alive: boolean | null }> }).nodes;
    expect(nodes.map((n) => n.name)).toEqual(["n1", "n2", "n3", "n4"]);
    expect(nodes.map((n) => n.state)).toEqual(["active", "active", "active", "active"]);
    expect(nodes.find((n) => n.name === "n1")!.alive).toBe(false);
    const human = await ctl(survivor, "nodes", "list");
    expect(human.stdout).toContain("n4");

    // n1 was killed but is still a metadata member.
    const member = await ctl(survivor, "nodes", "remove", "n1");
    expect(member.exitCode).toBe(5);
    expect(member.stderr).toContain("CAIRN-CLUSTER-0011");
    noStack(member.stderr);
    // A live node: refused until it is stopped.
    const live = await ctl(survivor, "nodes", "remove", "n4");
    expect(live.exitCode).toBe(5);
    expect(live.stderr).toContain("CAIRN-CLUSTER-0014");
    const unknown = await ctl(survivor, "nodes", "remove", "N77");
    expect(unknown.exitCode).toBe(5);
    expect(unknown.stderr).toContain("CAIRN-CLUSTER-0015");

    // Paused, it no longer answers: it can be removed. Resumed, its peers refuse its requests.
    process.kill(spare.pid, "SIGSTOP");
    let removed: Awaited<ReturnType<typeof ctl>>;
    try {
      removed = await eventually("n4 removed once it stopped answering", async () => {
        const r = await ctl(survivor, "--json", "nodes", "remove", "n4");
        return r.exitCode === 0 ? r : undefined;
      }, 30_000);
    } finally {
      process.kill(spare.pid, "SIGCONT");
    }
    await eventually("the peers refuse the removed node's requests", async () => {
      for (const n of [survivor, cluster.nodes[2]!]) {
        const metrics = await (await fetch(`${n.addresses.admin}/metrics`)).text();
        if (/cairn_fabric_server_requests_total\{[^}]*outcome="CAIRN-NODE-0008"\} [1-9]/.test(metrics)) return true;
      }
      return undefined;
    }, 30_000);
    await spare.stop("SIGKILL");
    const after = (JSON.parse(removed.stdout) as { nodes: Array<{ name: string; state: string }> }).nodes;
    expect(after.find((n) => n.name === "n4")!.state).toBe("removed");
    const again = await ctl(survivor, "nodes", "remove", "n4");
    expect(again.exitCode).toBe(5);
    expect(again.stderr).toContain("was already removed");

    // It comes back under its name: the cluster refuses it with a clear error, and keeps it removed.
    const back = await startNode({
      name: "n4",
      dataDir: spare.dataDir,
      readyPath: "/health",
      args: [...FAST_RAFT, "--roles", "admin", "--set", `metadata-client.addresses=${survivor.addresses.fabric},${cluster.nodes[2]!.addresses.fabric}`],
    });
    try {
      await eventually("the returning node reports its removal", async () => (back.log().includes("CAIRN-NODE-0008") ? true : undefined), 60_000);
    } finally {
      await back.stop("SIGKILL");
    }
    const final = (await json<{ nodes: Array<{ name: string; state: string; id: string }> }>(`${survivor.addresses.admin}/v1/nodes`)).body.nodes;
    expect(final.filter((n) => n.name === "n4").map((n) => [n.id, n.state])).toEqual([["N4", "removed"]]);
  }, 180_000);
});
