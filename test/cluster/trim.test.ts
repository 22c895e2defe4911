// Trim policies on real `cairn` processes (no snapshot repository anywhere):
// - one node, persisted-lsn with an open window: the logs are trimmed up to at most the processors'
//   durable LSNs, the state stays readable (also after a restart), and a second worker's join is
//   refused with CAIRN-TRIM-0003 (it never enters the nodes configuration) until snapshots cover the
//   trimmed logs;
// - one node with persisted-lsn whose window is still closed: a second node joins, the policy turns
//   itself off (CAIRN-TRIM-0001 in every node's status and in `ctl status`), and no trim follows;
// - three workers: CAIRN-TRIM-0002 on every node, no trim; `ctl logs trim` refuses to cut records no
//   snapshot covers (CAIRN-TRIM-0004) unless --force, and then says what it cut.
import { afterEach, describe, expect, test } from "bun:test";
import { ALL_ROLES, runCairn, startNode, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, FAST_RAFT, json, leaderOf, startCluster, type TestCluster } from "../helpers/cluster.ts";
import type { ClusterStatus } from "../../src/admin/status/schema.ts";

const clusters: TestCluster[] = [];
const extraNodes: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(extraNodes.splice(0).map((n) => n.stop()));
  await Promise.all(clusters.splice(0).map((c) => c.stop()));
}, 60_000);

/** A trim window that opens at once, evaluated often. */
const OPEN_WINDOW = ["--set", "trim.min-age-ms=0", "--set", "trim.min-records=1", "--set", "trim.delay-ms=300", "--set", "trim.interval-ms=200"];

interface LogRow {
  id: number;
  trimPoint: number;
}
interface PartitionRow {
  id: number;
  durableLsn: number | null;
  tailLsn: number | null;
  replicas: Array<{ node: string; durableLsn: number }>;
}

async function start(size: number, args: string[]): Promise<TestCluster> {
  const c = await startCluster(size, { replication: 1, extraArgs: ["--roles", ALL_ROLES, ...args] });
  clusters.push(c);
  return c;
}

async function logs(n: NodeProcess): Promise<LogRow[]> {
  const r = await json<{ logs: LogRow[] }>(`${n.addresses.admin}/v1/logs`);
  expect(r.status).toBe(200);
  return r.body.logs;
}

async function partitions(n: NodeProcess): Promise<PartitionRow[]> {
  const r = await json<{ partitions: PartitionRow[] }>(`${n.addresses.admin}/v1/partitions`);
  expect(r.status).toBe(200);
  return r.body.partitions;
}

async function status(n: NodeProcess): Promise<ClusterStatus> {
  const r = await json<ClusterStatus>(`${n.addresses.admin}/v1/cluster/status?tails=false`);
  expect(r.status).toBe(200);
  return r.body;
}

/** Writes `count` objects through the node's data plane (retrying while partitions get leaders). */
async function writeObjects(n: NodeProcess, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await eventually(`write ${prefix}-${i}`, async () => {
      const r = await fetch(`${n.addresses.ingress}/v1/objects/trimtest/${prefix}-${i}/state/value`, {
        method: "PUT",
        body: `v-${i}`,
        headers: { "content-type": "text/plain" },
        signal: AbortSignal.timeout(10_000),
      });
      await r.text();
      return r.status === 200 ? true : undefined;
    });
  }
}

async function readObject(n: NodeProcess, key: string): Promise<string | undefined> {
  const r = await fetch(`${n.addresses.ingress}/v1/objects/trimtest/${key}/state/value`, { signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  return r.status === 200 ? text : undefined;
}

async function metric(n: NodeProcess, line: string): Promise<number | undefined> {
  const text = await (await fetch(`${n.addresses.admin}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

/** Waits until the metadata leader has completed `more` further trim policy rounds. */
async function roundsPass(c: TestCluster, more: number): Promise<void> {
  const leader = await leaderOf(c);
  const from = (await metric(leader, "cairn_trim_rounds_total")) ?? 0;
  await eventually(`${more} trim rounds`, async () => (((await metric(leader, "cairn_trim_rounds_total")) ?? 0) >= from + more ? true : undefined));
}

describe("trim policies on real nodes", () => {
  test("one node, persisted-lsn: logs trimmed up to the durable LSN, state readable, a second worker's join refused until snapshots cover the trims", async () => {
    const c = await start(1, OPEN_WINDOW);
    const n1 = c.nodes[0]!;
    await writeObjects(n1, "a", 24);
    const trimmed = await eventually(
      "a log trimmed by persisted-lsn",
      async () => {
        const l = await logs(n1);
        return l.some((x) => x.trimPoint > 0) ? l : undefined;
      },
      90_000,
    );
    // Durable LSNs only grow: a trim point seen before is still at or below them.
    const parts = await partitions(n1);
    for (const log of trimmed) {
      const p = parts.find((x) => x.id === log.id)!;
      const lowest = Math.min(...p.replicas.map((r) => r.durableLsn));
      expect(log.trimPoint).toBeLessThanOrEqual(lowest);
    }
    expect(await metric(n1, 'cairn_trim_policy{policy="persisted-lsn"}')).toBe(1);
    expect((await metric(n1, 'cairn_trim_applied_total{policy="persisted-lsn"}')) ?? 0).toBeGreaterThan(0);
    for (let i = 0; i < 24; i++) expect(await readObject(n1, `a-${i}`)).toBe(`v-${i}`);

    // The restarted node's processors resume from their stores: the trimmed records are not needed.
    await n1.stop();
    const again = await startNode({ name: "n1", dataDir: n1.dataDir, args: [...FAST_RAFT, "--roles", ALL_ROLES, ...OPEN_WINDOW] });
    c.nodes[0] = again;
    for (let i = 0; i < 24; i++) expect(await eventually(`read a-${i} after the restart`, () => readObject(again, `a-${i}`))).toBe(`v-${i}`);

    // A second worker may not join: its log says why and what to do, and it is not in the cluster.
    const joiner = await startNode({
      name: "n2",
      dataDir: `${c.dir}/n2`,
      args: [...FAST_RAFT, "--roles", ALL_ROLES, "--set", `metadata-client.addresses=${again.addresses.fabric}`],
      readyPath: "/health",
    });
    extraNodes.push(joiner);
    await eventually("the join refused in n2's log", async () => (joiner.log().includes("CAIRN-TRIM-0003") ? true : undefined), 30_000);
    expect(joiner.log()).toContain("configure a snapshot repository");
    expect(joiner.log()).toContain("take a snapshot");
    const s = await status(again);
    expect(s.nodes.map((n) => n.name)).toEqual(["n1"]);
    // Still refused a while later (it retries, and keeps being refused).
    await roundsPass(c, 3);
    expect((await status(again)).nodes.map((n) => n.name)).toEqual(["n1"]);
    const node = await json<{ id: string | null }>(`${joiner.addresses.admin}/v1/node`);
    expect(node.body.id ?? null).toBeNull();
    const ready = await json<{ reasons: string[] }>(`${joiner.addresses.admin}/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.reasons.join("\n")).toContain("CAIRN-TRIM-0003");

    // Snapshots covering every trimmed log (the snapshotter's index, at each log's last record: no
    // record is written meanwhile, so no later trim passes it) lift the refusal: n2 joins by itself,
    // and persisted-lsn turns itself off with the warning shown.
    for (const p of await partitions(again)) {
      const at = p.tailLsn! - 1;
      const put = await fetch(`${again.addresses.admin}/v1/metadata/${encodeURIComponent(`snapshots/${p.id}`)}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ partition: p.id, latestLsn: at, latestId: `test-${at}`, oldestRetainedLsn: at, updatedAtMs: Date.now() }),
      });
      expect(put.status).toBe(200);
    }
    await eventually("n2 registered", async () => ((await status(again)).nodes.length === 2 ? true : undefined), 60_000);
    await eventually("CAIRN-TRIM-0001 shown", async () => ((await status(again)).warnings.some((w) => w.code === "CAIRN-TRIM-0001") ? true : undefined));
  }, 240_000);

  test("one node, persisted-lsn, window still closed: a second node joins, the policy turns itself off with a warning everywhere, no trim follows", async () => {
    // The window stays closed until a log holds 20 records: none are written before the join.
    const c = await start(1, [...OPEN_WINDOW, "--set", "trim.min-records=20", "--set", "trim.policy=persisted-lsn"]);
    const n1 = c.nodes[0]!;
    expect(await eventually("persisted-lsn in force", async () => ((await metric(n1, 'cairn_trim_policy{policy="persisted-lsn"}')) === 1 ? true : undefined))).toBe(true);
    const n2 = await c.start("n2");
    for (const n of [n1, n2]) {
      await eventually(`CAIRN-TRIM-0001 in ${n.addresses.admin}'s status`, async () => ((await status(n)).warnings.some((w) => w.code === "CAIRN-TRIM-0001") ? true : undefined));
    }
    const ctl = await runCairn(["ctl", "--address", n2.addresses.admin, "status"]);
    expect(ctl.exitCode).toBe(0);
    expect(ctl.stdout).toContain("warning CAIRN-TRIM-0001");
    await eventually("n1 logged the switch-off", async () => (n1.log().includes("persisted-lsn trim policy turns itself off") ? true : undefined));
    // Enough records to open the window, then several rounds: nothing is trimmed any more.
    await writeObjects(n1, "b", 120);
    // Some log would now be trimmed if the policy were on: 20 records held, durable on every replica.
    await eventually("a log whose window is open", async () =>
      (await partitions(n1)).find((p) => p.tailLsn !== null && p.tailLsn - 1 >= 20 && p.replicas.length > 0 && p.replicas.every((r) => r.durableLsn > 0)),
    );
    await roundsPass(c, 5);
    expect((await logs(n1)).every((l) => l.trimPoint === 0)).toBe(true);
    expect((await status(n1)).nodes).toHaveLength(2);
  }, 240_000);

  test("three workers without a repository: a warning on every node and no trim; ctl logs trim refuses to cut unarchived records unless forced", async () => {
    const c = await start(3, OPEN_WINDOW);
    const [n1] = c.nodes;
    await writeObjects(n1!, "c", 30);
    for (const n of c.nodes) {
      await eventually(`CAIRN-TRIM-0002 in ${n.addresses.admin}'s status`, async () => ((await status(n)).warnings.some((w) => w.code === "CAIRN-TRIM-0002") ? true : undefined));
    }
    await roundsPass(c, 5);
    expect((await logs(n1!)).every((l) => l.trimPoint === 0)).toBe(true);
    // Every node logs the warning (its status monitor saw it appear).
    for (const n of c.nodes) await eventually("the warning in the node's log", async () => (n.log().includes("CAIRN-TRIM-0002") ? true : undefined));

    // A partition whose every processor made its first records durable: trimming one is safe.
    const p = await eventually("a partition durable at 2 or more everywhere", async () =>
      (await partitions(n1!)).find((x) => x.replicas.length > 0 && x.replicas.every((r) => r.durableLsn >= 2)),
    );
    const refused = await runCairn(["ctl", "--address", n1!.addresses.admin, "logs", "trim", String(p.id), "--to", "1"]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain("CAIRN-TRIM-0004");
    expect(refused.stderr).toContain("would discard LSNs 1..1");
    const api = await json<{ code: string }>(`${n1!.addresses.admin}/v1/logs/${p.id}/trim`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ toLsn: 1 }),
    });
    expect(api.status).toBe(409);
    expect(api.body.code).toBe("CAIRN-TRIM-0004");
    expect((await logs(n1!)).find((l) => l.id === p.id)!.trimPoint).toBe(0);
    const forced = await runCairn(["ctl", "--address", n1!.addresses.admin, "logs", "trim", String(p.id), "--to", "1", "--force"]);
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toContain("trim point 1");
    expect(forced.stdout).toContain("discarded LSNs 1..1");
    expect((await logs(n1!)).find((l) => l.id === p.id)!.trimPoint).toBe(1);
  }, 240_000);
});
