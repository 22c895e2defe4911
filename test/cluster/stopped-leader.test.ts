// A partition leader whose processor stopped (here a real SQLITE_FULL on its store, on a node that
// will not reopen the store for 10 minutes) while its node stays alive: the controller hands the
// leadership to a running follower, which serves the partition again with every write made before,
// including the one that hit the fault (its record is in the log). Three nodes: the first runs in
// this process (so its store can be made to fail), the other two are real processes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import type { Node } from "../../src/node/index.ts";
import type { PartitionProcessor } from "../../src/worker/processor.ts";
import type { WorkerRole } from "../../src/worker/role.ts";
import { evenPartitionTable, partitionOfObject } from "../../src/worker/index.ts";
import { ALL_ROLES, startNode, tempDir, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, FAST_RAFT, json } from "../helpers/cluster.ts";
import { inProcessNode } from "../helpers/in-process-node.ts";

const PARTITIONS = 2;
const dir = tempDir("cairn-stopped-leader-");
let first: Node;
const others: NodeProcess[] = [];

interface PartitionRow {
  id: number;
  leader: string | null;
  followers: string[];
  leaderApplied: boolean;
  replicas: Array<{ node: string; role: string; appliedLsn: number; stopped: string | null }>;
}

beforeAll(async () => {
  first = inProcessNode("n1", join(dir, "n1"), [
    ["roles", ALL_ROLES],
    ["metadata-server.tick-interval-ms", "50"],
    // The failed store stays failed for the whole test: only a move of the leadership heals it.
    ["worker.store-failure-retry-ms", "600000"],
    ["worker.store-failure-retry-max-ms", "600000"],
  ]);
  await first.start();
  const p = await json(`${first.addresses.admin}/v1/cluster/provision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ numPartitions: PARTITIONS, replication: 2 }),
  });
  expect(p.status).toBe(200);
  for (const name of ["n2", "n3"]) {
    others.push(await startNode({ name, dataDir: join(dir, name), args: [...FAST_RAFT, "--roles", ALL_ROLES, "--set", `metadata-client.addresses=${first.addresses.fabric}`] }));
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(others.map((n) => n.stop()));
  await first?.stop();
}, 60_000);

async function partitions(): Promise<PartitionRow[]> {
  const r = await json<{ partitions: PartitionRow[] }>(`${first.addresses.admin}/v1/partitions`);
  if (r.status !== 200) throw new Error(`GET /v1/partitions: ${r.status}`);
  return r.body.partitions;
}

function processorOn(node: Node, partition: number): PartitionProcessor | undefined {
  const role = (node as unknown as { workerRole: WorkerRole | undefined }).workerRole;
  return (role as unknown as { processors: Map<number, PartitionProcessor> } | undefined)?.processors.get(partition);
}

const url = (via: string, key: string) => `${via}/v1/objects/acct/${key}/state/v`;
const put = (via: string, key: string, body: string) =>
  fetch(url(via, key), { method: "PUT", body, headers: { "content-type": "text/plain" }, signal: AbortSignal.timeout(20_000) });

describe("a leader whose processor stopped", () => {
  test("hands its partition to a running follower, which serves every write made before, the faulted one included", async () => {
    const self = (await json<{ id: string }>(`${first.addresses.admin}/v1/node`)).body.id;
    // Every partition led with a follower, and one of them led by the in-process node.
    const rows = await eventually("every partition led with a follower, one by the first node", async () => {
      const r = await partitions();
      const ok = r.length === PARTITIONS && r.every((p) => p.leaderApplied && p.followers.length === 1) && r.some((p) => p.leader === self);
      return ok ? r : undefined;
    }, 90_000);
    const victim = rows.find((p) => p.leader === self)!;
    const table = evenPartitionTable(PARTITIONS);
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`).filter((k) => partitionOfObject(table, "acct", k) === victim.id).slice(0, 5);
    for (const k of keys) await eventually(`a write to ${k}`, async () => ((await put(first.addresses.ingress!, k, `before-${k}`)).status === 200 ? true : undefined));
    const follower = victim.followers[0]!;
    await eventually("the follower applied the writes", async () => {
      const r = (await partitions()).find((p) => p.id === victim.id)!;
      const leader = r.replicas.find((x) => x.node === self);
      const theirs = r.replicas.find((x) => x.node === follower);
      return leader !== undefined && theirs !== undefined && theirs.appliedLsn >= leader.appliedLsn ? true : undefined;
    });

    // A real SQLite failure on the leader's store connection: the file may not grow any more.
    const failing = processorOn(first, victim.id)!;
    const db = (failing.store as unknown as { db: Database }).db;
    db.exec(`PRAGMA max_page_count = ${db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count}`);
    const faulted = await put(first.addresses.ingress!, keys[0]!, "x".repeat(400_000));
    expect(faulted.status).toBe(504);
    expect(failing.status().stopped).toContain("the partition store failed");

    // The controller moves the leadership to the follower; the stopped node stays on as a follower.
    const moved = await eventually("the leadership moved to the follower", async () => {
      const r = (await partitions()).find((p) => p.id === victim.id)!;
      return r.leader === follower && r.leaderApplied ? r : undefined;
    }, 60_000);
    expect(moved.followers).toEqual([self]);
    // The first node's processor is still the stopped one: nothing but the move served the partition again.
    expect(processorOn(first, victim.id)).toBe(failing);

    // Served again, through any node: the write that hit the fault was applied from the log.
    const via = others[0]!.addresses.ingress!;
    expect(await (await fetch(url(via, keys[0]!))).text()).toBe("x".repeat(400_000));
    for (const k of keys.slice(1)) expect(await (await fetch(url(via, k))).text()).toBe(`before-${k}`);
    for (const k of keys) expect((await put(via, k, `after-${k}`)).status).toBe(200);
    for (const k of keys) expect(await (await fetch(url(first.addresses.ingress!, k))).text()).toBe(`after-${k}`);
  }, 240_000);
});
