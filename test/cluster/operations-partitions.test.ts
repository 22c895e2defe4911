// The replication setting reaches the partitions too: a 3-node cluster of workers provisioned with
// replication 1 runs each partition's processor on one node; `PATCH /v1/cluster/config` to 2 gives
// every partition a follower on another node, and the logs follow, with no further command.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ALL_ROLES } from "../helpers/cairn-process.ts";
import { eventually, json, startCluster, type TestCluster } from "../helpers/cluster.ts";

interface Row {
  id: number;
  leader: string | null;
  followers: string[];
  leaderApplied: boolean;
}

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startCluster(3, { replication: 1, extraArgs: ["--roles", ALL_ROLES] });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

async function partitions(admin: string): Promise<Row[]> {
  const r = await json<{ partitions: Row[] }>(`${admin}/v1/partitions`);
  if (r.status !== 200) throw new Error(`partitions answered ${r.status}`);
  return r.body.partitions;
}

describe("the replication setting and the partitions", () => {
  test("raising it to 2 gives every partition a follower on another node", async () => {
    const admin = cluster.nodes[0]!.addresses.admin;
    const before = await eventually("every partition led", async () => {
      const rows = await partitions(admin);
      return rows.length > 0 && rows.every((p) => p.leader !== null && p.leaderApplied) ? rows : undefined;
    });
    expect(before.every((p) => p.followers.length === 0)).toBe(true);

    const r = await json<{ replication: number }>(`${cluster.nodes[2]!.addresses.admin}/v1/cluster/config`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ replication: 2 }),
    });
    expect(r.status).toBe(200);
    expect(r.body.replication).toBe(2);

    const after = await eventually("every partition with one follower on another node", async () => {
      const rows = await partitions(admin);
      return rows.every((p) => p.leader !== null && p.followers.length === 1 && p.followers[0] !== p.leader) ? rows : undefined;
    }, 60_000);
    expect(after).toHaveLength(before.length);
    await eventually("every log at replication 2", async () => {
      const c = await json<{ progress: { logs: number; logsAtTarget: number } }>(`${admin}/v1/cluster/config`);
      return c.body.progress.logsAtTarget === c.body.progress.logs ? true : undefined;
    }, 60_000);
  }, 180_000);
});
