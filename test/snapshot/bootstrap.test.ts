// Bootstrap from snapshots on a real node (every role, 2 partitions, a file repository): after a
// snapshot, the logs are trimmed up to it; then a partition whose store is gone (no local state) and
// a partition whose store is older than the trim point (trimmed past its applied LSN) both come back
// by importing the snapshot and replaying the rest: every object written is read back. The same old
// store with no repository configured and no peer holding the partition leaves it stopped with
// CAIRN-SNAPSHOT-0010 naming both causes and the fix, and the node not ready.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ALL_ROLES, startNode, tempDir, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, FAST_RAFT, json } from "../helpers/cluster.ts";
import { evenPartitionTable, partitionOfObject } from "../../src/worker/index.ts";

const dir = tempDir("cairn-snap-boot-");
const dataDir = join(dir, "n1");
const repoDir = join(dir, "repo");
const aside = join(dir, "aside");
const table = evenPartitionTable(2);
const withRepo = ["--roles", ALL_ROLES, ...FAST_RAFT, "--set", "snapshots.repository=file", "--set", `snapshots.path=${repoDir}`];
let node: NodeProcess | undefined;

afterAll(async () => {
  await node?.stop();
}, 60_000);

async function restart(args: string[], readyPath = "/ready"): Promise<NodeProcess> {
  await node?.stop();
  node = await startNode({ name: "n1", dataDir, args, readyPath });
  return node;
}

async function led(): Promise<void> {
  let last: unknown;
  try {
    await eventually("both partitions led", async () => {
      const r = await json<{ partitions: Array<{ leaderApplied: boolean }> }>(`${node!.addresses.admin}/v1/partitions`);
      last = r.body;
      return r.status === 200 && r.body.partitions.length === 2 && r.body.partitions.every((p) => p.leaderApplied) ? true : undefined;
    }, 90_000);
  } catch (e) {
    // What the node said, so that a failure in CI can be understood from its output alone.
    console.error(`partitions: ${JSON.stringify(last)}\nnode log (last 200 lines):\n${node!.log().split("\n").slice(-200).join("\n")}`);
    throw e;
  }
}

async function put(key: string, value: string): Promise<void> {
  const r = await fetch(`${node!.addresses.ingress}/v1/objects/boot/${key}/state/v`, { method: "PUT", body: value, headers: { "content-type": "text/plain" } });
  expect(r.status).toBe(200);
}

async function get(key: string): Promise<string | number> {
  const r = await fetch(`${node!.addresses.ingress}/v1/objects/boot/${key}/state/v`);
  return r.status === 200 ? await r.text() : r.status;
}

const store = (p: number) => join(dataDir, "partitions", `p${p}.sqlite`);
function removeStore(p: number): void {
  for (const s of ["", "-wal", "-shm"]) rmSync(store(p) + s, { force: true });
}
function copyStore(from: string, to: string): void {
  for (const s of ["", "-wal", "-shm"]) if (existsSync(from + s)) copyFileSync(from + s, to + s);
}

beforeAll(async () => {
  await restart(withRepo, "/health");
  const p = await json(`${node!.addresses.admin}/v1/cluster/provision`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ numPartitions: 2, replication: 1 }) });
  expect(p.status).toBe(200);
  await led();
}, 120_000);

test("stores lost or older than a trimmed log are bootstrapped from the latest snapshot; without a repository the partition stops with a clear error", async () => {
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const parts = new Set(keys.map((k) => partitionOfObject(table, "boot", k)));
  expect(parts.size).toBe(2);
  for (const k of keys.slice(0, 20)) await put(k, `a-${k}`);

  // An old copy of partition 0's store (applied LSN before the second half of the writes).
  await node!.stop();
  rmSync(aside, { recursive: true, force: true });
  Bun.spawnSync(["mkdir", "-p", aside]);
  copyStore(store(0), join(aside, "p0.sqlite"));
  await restart(withRepo);
  await led();
  for (const k of keys.slice(20)) await put(k, `b-${k}`);

  // Snapshot both partitions, then trim both logs up to the snapshots.
  const started = await json<{ id: string }>(`${node!.addresses.admin}/v1/snapshots`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  expect(started.status).toBe(202);
  const job = await eventually("the snapshot job", async () => {
    const r = await json<{ state: string; partitions: Array<{ partition: number; lsn: number }> }>(`${node!.addresses.admin}/v1/snapshots/jobs/${started.body.id}`);
    return r.body.state === "running" ? undefined : r.body;
  });
  expect(job.state).toBe("succeeded");
  for (const t of job.partitions) {
    const trimmed = await json<{ trimPoint: number }>(`${node!.addresses.admin}/v1/logs/${t.partition}/trim`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ toLsn: t.lsn }),
    });
    expect(trimmed.status).toBe(200);
    expect(trimmed.body.trimPoint).toBe(t.lsn);
  }

  // Partition 0: its store is older than the trim point. Partition 1: no store at all.
  await node!.stop();
  removeStore(0);
  copyStore(join(aside, "p0.sqlite"), store(0));
  removeStore(1);
  await restart(withRepo, "/health");
  await led();
  for (const k of keys.slice(0, 20)) expect(await get(k)).toBe(`a-${k}`);
  for (const k of keys.slice(20)) expect(await get(k)).toBe(`b-${k}`);
  // Both came back through the snapshot: partition 0 after meeting the trim gap, 1 before starting.
  expect(node!.log()).toContain("partition 0 bootstrapped from the snapshot");
  expect(node!.log()).toContain("bootstrapping it from the snapshot");
  expect(node!.log()).toContain("partition 1 bootstrapped from the snapshot");
  // Writes go on after the bootstrap.
  await put("k0", "after");
  expect(await get("k0")).toBe("after");

  // The same old store on a node without a repository: stopped, saying why and what to do.
  await node!.stop();
  removeStore(0);
  copyStore(join(aside, "p0.sqlite"), store(0));
  await restart(["--roles", ALL_ROLES, ...FAST_RAFT], "/health");
  const stopped = await eventually("partition 0 stopped with its reason", async () => {
    const r = await json<{ partitions: Array<{ id: number; replicas: Array<{ stopped: string | null }> }> }>(`${node!.addresses.admin}/v1/partitions`);
    const reason = r.body.partitions?.find((p) => p.id === 0)?.replicas[0]?.stopped;
    return reason?.includes("CAIRN-SNAPSHOT-0010") ? reason : undefined;
  });
  expect(stopped).toContain("trimmed up to LSN");
  expect(stopped).toContain('snapshots.repository is "none"');
  // Both sources were tried: the repository (none) and the peers (a single node: none holds it).
  expect(stopped).toContain("no other node holds partition 0");
  const ready = await json<{ reasons: string[] }>(`${node!.addresses.admin}/ready`);
  expect(ready.status).toBe(503);
  expect(ready.body.reasons.join("\n")).toContain("CAIRN-SNAPSHOT-0010");
}, 300_000);
