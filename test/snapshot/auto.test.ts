// Automatic snapshots on a real single node (every role, 2 partitions): with
// snapshots.auto-every-records set, writing enough records to a partition makes the controller
// snapshot it by itself; snapshots/<p> appears in metadata and the repository holds it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ALL_ROLES, tempDir } from "../helpers/cairn-process.ts";
import { eventually, json, startCluster, type TestCluster } from "../helpers/cluster.ts";

let cluster: TestCluster;
const repoDir = join(tempDir("cairn-snap-auto-"), "repo");

beforeAll(async () => {
  cluster = await startCluster(1, {
    numPartitions: 2,
    extraArgs: ["--roles", ALL_ROLES, "--set", "snapshots.repository=file", "--set", `snapshots.path=${repoDir}`, "--set", "snapshots.auto-every-records=10"],
  });
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

test("a partition that applied auto-every-records records since its last snapshot is snapshotted without being asked", async () => {
  const node = cluster.nodes[0]!;
  await eventually("partitions led", async () => {
    const r = await json<{ partitions: Array<{ leaderApplied: boolean }> }>(`${node.addresses.admin}/v1/partitions`);
    return r.status === 200 && r.body.partitions.length === 2 && r.body.partitions.every((p) => p.leaderApplied) ? true : undefined;
  });
  expect((await json(`${node.addresses.admin}/v1/metadata/${encodeURIComponent("snapshots/0")}`)).status).toBe(404);
  for (let i = 0; i < 60; i++) {
    const r = await fetch(`${node.addresses.ingress}/v1/objects/auto/k${i}/state/v`, { method: "PUT", body: String(i), headers: { "content-type": "text/plain" } });
    expect(r.status).toBe(200);
  }
  for (const p of [0, 1]) {
    const idx = await eventually(
      `snapshots/${p} written by an automatic snapshot`,
      async () => {
        const r = await json<{ value: { latestLsn: number } }>(`${node.addresses.admin}/v1/metadata/${encodeURIComponent(`snapshots/${p}`)}`);
        return r.status === 200 ? r.body.value : undefined;
      },
      60_000,
    );
    expect(idx.latestLsn).toBeGreaterThanOrEqual(10);
    expect(existsSync(join(repoDir, String(p), "latest.json"))).toBe(true);
  }
}, 120_000);
