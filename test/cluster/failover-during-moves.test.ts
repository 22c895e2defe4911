// kill -9 of a node while partition leaderships are still moving back to a node that just rejoined
// (issue 17's slow failover trials): 3 real nodes with workers, 6 partitions, replication 2. Every
// partition must be led and serving again (a write to a key of each partition), with no
// acknowledged write lost; per-partition recovery times and the takeover phases are printed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ALL_ROLES, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, json, leaderOf, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { evenPartitionTable, partitionOfObject } from "../../src/worker/index.ts";

const PARTITIONS = 6;
let cluster: TestCluster;

interface PartitionRow {
  id: number;
  leader: string | null;
  followers: string[];
  leaderApplied: boolean;
  epoch: number;
}

beforeAll(async () => {
  cluster = await startCluster(3, { replication: 2, numPartitions: PARTITIONS, extraArgs: ["--roles", ALL_ROLES] });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

const alive = (n: NodeProcess) => n.proc.exitCode === null && n.proc.signalCode === null;

async function partitions(via: NodeProcess): Promise<PartitionRow[]> {
  const r = await json<{ partitions: PartitionRow[] }>(`${via.addresses.admin}/v1/partitions`);
  if (r.status !== 200) throw new Error(`GET /v1/partitions: ${r.status}`);
  return r.body.partitions;
}

async function ledBy(via: NodeProcess, nodes: number): Promise<PartitionRow[]> {
  return eventually(`every partition led, leaders on ${nodes} nodes`, async () => {
    const rows = await partitions(via);
    if (rows.length !== PARTITIONS || !rows.every((p) => p.leader !== null && p.leaderApplied)) return undefined;
    return new Set(rows.map((p) => p.leader)).size === nodes ? rows : undefined;
  }, 120_000);
}

/** One key of each partition, for the service `svc`. */
function keyPerPartition(svc: string): string[] {
  const table = evenPartitionTable(PARTITIONS);
  const keys: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) keys.push(Array.from({ length: 1000 }, (_, i) => `k-${i}`).find((k) => partitionOfObject(table, svc, k) === p)!);
  return keys;
}

async function put(via: NodeProcess, svc: string, key: string, body: string, idempotencyKey: string) {
  const r = await fetch(`${via.addresses.ingress}/v1/objects/${svc}/${encodeURIComponent(key)}/state/v`, {
    method: "PUT",
    body,
    headers: { "content-type": "text/plain", "idempotency-key": idempotencyKey },
    signal: AbortSignal.timeout(15_000),
  });
  await r.text();
  return r.status;
}

describe("failover while leaderships move back to a rejoined node", () => {
  test("kill -9 right after a node rejoined: every partition is led and serving again, no acknowledged write lost", async () => {
    await ledBy(cluster.nodes[0]!, 3);
    const meta = await leaderOf(cluster);
    const ids = await Promise.all(cluster.nodes.map(async (n) => (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id));
    const others = cluster.nodes.map((_, i) => i).filter((i) => cluster.nodes[i] !== meta);
    const [rejoinIndex, victimIndex] = [others[0]!, others[1]!];
    const keys = keyPerPartition("moves");
    for (const k of keys) expect(await put(meta, "moves", k, `${k}-before`, `before-${k}`)).toBe(200);

    // The first node goes down hard and comes back: leaderships move to the survivors, then back.
    const rejoining = cluster.nodes[rejoinIndex]!;
    rejoining.proc.kill("SIGKILL");
    await rejoining.proc.exited;
    await ledBy(meta, 2);
    console.log(`killed ${ids[rejoinIndex]} at ${new Date().toISOString()}; restarting it`);
    await cluster.start(rejoining.dataDir.split("/").at(-1)!, ["--roles", ALL_ROLES], rejoining.dataDir);
    console.log(`restarted ${ids[rejoinIndex]} at ${new Date().toISOString()}`);
    // Kill the second node the moment the placement moves a leadership back to the rejoined node
    // (its new leader may not have taken over yet): the worst time for a failover.
    await eventually("a leadership moving back to the rejoined node", async () => {
      const rows = await partitions(meta);
      return rows.some((p) => p.leader === ids[rejoinIndex]) ? true : undefined;
    }, 120_000);
    const victim = cluster.nodes[victimIndex]!;
    const before = await partitions(meta);
    victim.proc.kill("SIGKILL");
    await victim.proc.exited;
    const killedMs = performance.now();
    const killedAt = new Date().toISOString();
    const recoveryMs = await Promise.all(
      keys.map(async (k) => {
        const deadline = killedMs + 90_000;
        while (performance.now() < deadline) {
          const status = await put(meta, "moves", k, `${k}-after`, `after-${k}`).catch(() => undefined);
          if (status === 200) return Math.round(performance.now() - killedMs);
          expect([undefined, 503, 504]).toContain(status);
          await Bun.sleep(25);
        }
        throw new Error(`a write to key ${k} did not succeed within 90 s of the kill`);
      }),
    );
    console.log(`placement at the kill: ${before.map((p) => `${p.id}:${p.leader}[${p.followers.join(",")}]${p.leaderApplied ? "" : "*"}`).join(" ")}`);
    console.log(`per-partition recovery after kill -9 of ${ids[victimIndex]} at ${killedAt} (rejoined: ${ids[rejoinIndex]}): ${recoveryMs.map((ms, p) => `p${p}=${ms}ms`).join(" ")}`);
    for (const n of cluster.nodes.filter(alive)) {
      for (const line of n.log().split("\n")) {
        if (/taken over|sealed segment|claiming partition leadership failed|partition placement changed/.test(line)) console.log(`  ${n.dataDir.split("/").at(-1)}: ${line.slice(0, 400)}`);
      }
    }

    // Every partition is led by a live node and serves its acknowledged state.
    const rows = await ledBy(meta, 2);
    expect(rows.every((r) => r.leader !== ids[victimIndex])).toBe(true);
    for (const k of keys) {
      const r = await fetch(`${meta.addresses.ingress}/v1/objects/moves/${encodeURIComponent(k)}/state/v`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(`${k}-after`);
    }
  }, 400_000);
});
