// Peer transfer of a partition store on 3 real nodes without a snapshot repository (every role,
// 2 partitions, replication 3): a follower whose store of partition 0 is gone comes back after the
// log was force-trimmed past everything it could replay; it copies the store from a peer over the fabric
// (worker/fetch-store, chunked: a tiny chunk size makes it many requests), replays the rest, and its
// store's digest equals the leader's, including writes made after the transfer. The case where no
// peer holds the partition is test/snapshot/bootstrap.test.ts's (a single node: the clear error).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { ALL_ROLES } from "../helpers/cairn-process.ts";
import { eventually, json, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { evenPartitionTable, partitionOfObject } from "../../src/worker/index.ts";
import { storeDigest } from "../snapshot/support.ts";

const NUM_PARTITIONS = 2;
const P = 0;
const table = evenPartitionTable(NUM_PARTITIONS);
let cluster: TestCluster;

interface Replica {
  node: string;
  role: string;
  appliedLsn: number;
  durableLsn: number;
  stopped: string | null;
}
interface PartitionView {
  id: number;
  leader: string | null;
  leaderApplied: boolean;
  replicas: Replica[];
}

const alive = () => cluster.nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);

async function partitions(): Promise<PartitionView[]> {
  const r = await json<{ partitions: PartitionView[] }>(`${alive()[0]!.addresses.admin}/v1/partitions`);
  if (r.status !== 200) throw new Error(`GET /v1/partitions answered ${r.status}`);
  return r.body.partitions;
}

async function put(key: string, value: string): Promise<void> {
  await eventually(`write ${key}`, async () => {
    const n = alive()[0]!;
    const r = await fetch(`${n.addresses.ingress}/v1/objects/peer/${key}/state/v`, {
      method: "PUT",
      body: value,
      headers: { "content-type": "text/plain", "idempotency-key": `${key}-${value.length}` },
      signal: AbortSignal.timeout(15_000),
    });
    if (r.status !== 200) throw new Error(`PUT answered ${r.status}: ${await r.text()}`);
    return true;
  });
}

/** Keys of partition P (the partition the test takes away from n3). */
function keysOfP(count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) if (partitionOfObject(table, "peer", `${prefix}${i}`) === P) out.push(`${prefix}${i}`);
  return out;
}

beforeAll(async () => {
  cluster = await startCluster(3, {
    replication: 3,
    numPartitions: NUM_PARTITIONS,
    // 4 KiB chunks: the copy takes many requests, each one bounded.
    extraArgs: ["--roles", ALL_ROLES, "--set", "snapshots.peer-transfer-chunk-bytes=4096"],
  });
  await eventually(
    "every partition led, with 3 replicas",
    async () => {
      const ps = await partitions();
      return ps.length === NUM_PARTITIONS && ps.every((p) => p.leaderApplied && p.replicas.length === 3) ? true : undefined;
    },
    120_000,
  );
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

test("a node whose store is gone and whose log is trimmed past it copies the store from a peer; its digest equals the leader's, writes after the transfer included", async () => {
  const before = keysOfP(40, "a");
  for (const k of before) await put(k, `v-${k}-${"x".repeat(512)}`);

  // Trim P's log past everything a fresh store could replay: up to what every replica made durable.
  const durable = await eventually("every replica durable past the writes", async () => {
    const p = (await partitions()).find((x) => x.id === P)!;
    const min = Math.min(...p.replicas.map((r) => r.durableLsn));
    return p.replicas.length === 3 && min >= before.length ? min : undefined;
  });
  const trimmed = await json<{ trimPoint: number }>(`${alive()[0]!.addresses.admin}/v1/logs/${P}/trim?force=true`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ toLsn: durable }),
  });
  expect(trimmed.status).toBe(200);
  expect(trimmed.body.trimPoint).toBe(durable);

  // A node that follows P loses its store of P while it is down (the log has nothing to rebuild it from).
  const ids = await Promise.all(cluster.nodes.map(async (n) => ({ n, id: (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id })));
  const leaderId = (await partitions()).find((x) => x.id === P)!.leader;
  const victim = ids.find((x) => x.id !== leaderId && x.n !== cluster.nodes[0])!;
  await victim.n.stop();
  for (const s of ["", "-wal", "-shm"]) rmSync(join(victim.n.dataDir, "partitions", `p${P}.sqlite${s}`), { force: true });
  const back = await cluster.start(basename(victim.n.dataDir));
  await eventually("the node copied partition P's store from a peer", async () => (back.log().includes(`partition ${P} bootstrapped from node`) ? true : undefined), 120_000);
  expect(back.log()).toContain("copying its store from node");

  // Writes after the transfer reach the node through the log.
  const after = keysOfP(15, "c");
  for (const k of after) await put(k, `z-${k}`);
  const view = await eventually(
    "the node caught up with the leader on partition P",
    async () => {
      const p = (await partitions()).find((x) => x.id === P)!;
      const leader = p.replicas.find((r) => r.node === p.leader);
      const mine = p.replicas.find((r) => r.node === victim.id);
      return leader !== undefined && mine !== undefined && mine.stopped === null && mine.appliedLsn === leader.appliedLsn && leader.appliedLsn >= durable + after.length ? p : undefined;
    },
    120_000,
  );

  const leaderNode = cluster.nodes.find((n) => n.dataDir === ids.find((x) => x.id === view.leader)!.n.dataDir)!;
  expect(leaderNode.dataDir).not.toBe(back.dataDir);
  const theirs = storeDigest(join(leaderNode.dataDir, "partitions", `p${P}.sqlite`));
  const mine = storeDigest(join(back.dataDir, "partitions", `p${P}.sqlite`));
  expect(mine.lsn).toBe(theirs.lsn);
  expect(mine.rows).toBe(theirs.rows);
  expect(mine.digest).toBe(theirs.digest);
  expect(mine.rows).toBeGreaterThanOrEqual(2 * (before.length + after.length));

  // Every object is readable (through the node's ingress).
  for (const k of [...before, ...after]) {
    const r = await fetch(`${back.addresses.ingress}/v1/objects/peer/${k}/state/v`, { signal: AbortSignal.timeout(15_000) });
    expect(r.status).toBe(200);
  }
  // The exports served to the node are gone from the peers' disks (the last chunk removes them).
  for (const n of cluster.nodes) {
    const scratch = join(n.dataDir, "snapshot-scratch");
    const left = existsSync(scratch) ? readdirSync(scratch).filter((f) => f.startsWith("peer-")) : [];
    expect(left).toEqual([]);
  }
}, 300_000);
