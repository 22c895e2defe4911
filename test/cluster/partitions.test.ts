// Partitions and the data plane on real `cairn` processes: 3 nodes running every role (workers
// included), 4 partitions, replication 2. Writes, reads, conditional updates and idempotent retries
// through any node; a counter incremented by compare-and-set from many clients on every node ends
// exactly right; kill -9 of a partition leader's node: another worker takes over, writes to its
// partitions succeed again, and no acknowledged write is lost.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ALL_ROLES, runCairn } from "../helpers/cairn-process.ts";
import { eventually, json, leaderOf, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { evenPartitionTable, partitionOfObject } from "../../src/worker/index.ts";

let cluster: TestCluster;
const ingress = (i: number) => cluster.nodes[i]!.addresses.ingress!;
const obj = (i: number, service: string, key: string) => `${ingress(i)}/v1/objects/${service}/${encodeURIComponent(key)}/state`;

interface PartitionRow {
  id: number;
  leader: string | null;
  followers: string[];
  epoch: number;
}

beforeAll(async () => {
  cluster = await startCluster(3, { replication: 2, extraArgs: ["--roles", ALL_ROLES] });
  await settled(3);
}, 120_000);

/**
 * Every partition led (its leader applied its own announce) and leaders spread over `nodes` nodes
 * (the placement moves one leadership per round after a join or a resume): a fault injected while
 * leaderships still move would measure the moves, not the failover.
 */
async function settled(nodes: number): Promise<void> {
  await eventually("every partition led, leaders spread", async () => {
    const r = await json<{ partitions: Array<{ leader: string | null; leaderApplied: boolean }> }>(`${cluster.nodes[0]!.addresses.admin}/v1/partitions`);
    if (r.status !== 200 || r.body.partitions.length !== 4 || !r.body.partitions.every((p) => p.leader !== null && p.leaderApplied)) return undefined;
    return new Set(r.body.partitions.map((p) => p.leader)).size === nodes ? true : undefined;
  });
}
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

/**
 * Once leaderships have settled: a node that leads a partition and is not the metadata leader (a
 * fault on it tests partitions alone), with the partitions, the node ids and the metadata leader.
 */
async function partitionLeaderVictim() {
  await settled(3);
  const metaLeader = await leaderOf(cluster);
  const rows = (await json<{ partitions: PartitionRow[] }>(`${metaLeader.addresses.admin}/v1/partitions`)).body.partitions;
  const names = await Promise.all(cluster.nodes.map(async (n) => (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id));
  const victimIndex = cluster.nodes.findIndex((n, i) => n !== metaLeader && rows.some((r) => r.leader === names[i]));
  expect(victimIndex).toBeGreaterThanOrEqual(0);
  return { metaLeader, rows, names, victimIndex };
}

async function put(i: number, service: string, key: string, name: string, body: string, headers: Record<string, string> = {}) {
  const r = await fetch(`${obj(i, service, key)}/${name}`, { method: "PUT", body, headers: { "content-type": "text/plain", ...headers }, signal: AbortSignal.timeout(15_000) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as { version?: number; currentVersion?: number; code?: string }) : {}, headers: r.headers };
}

describe("data plane on 3 real nodes", () => {
  test("a write through one node is read through every other, with its version and content type", async () => {
    const w = await put(0, "cart", "alice", "items", "3 apples", { "content-type": "text/x-list" });
    expect(w.status).toBe(200);
    expect(w.body.version).toBe(1);
    for (const i of [1, 2]) {
      const r = await fetch(`${obj(i, "cart", "alice")}/items`);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/x-list");
      expect(r.headers.get("etag")).toBe('"1"');
      expect(await r.text()).toBe("3 apples");
    }
    const patched = await json<{ version: number }>(obj(1, "cart", "alice"), {
      method: "PATCH",
      headers: { "content-type": "application/json", "if-match": "1" },
      body: JSON.stringify({ set: { total: { data: "12" }, blob: { data: "AP8=", encoding: "base64" } }, delete: ["items"] }),
    });
    expect(patched).toEqual({ status: 200, body: { version: 2 } });
    const whole = await json<{ version: number; entries: Array<{ name: string; data: string; encoding: string }> }>(obj(2, "cart", "alice"));
    expect(whole.body.version).toBe(2);
    expect(whole.body.entries.map((e) => [e.name, e.data, e.encoding])).toEqual([["blob", "AP8=", "base64"], ["total", "12", "utf8"]]);
  });

  test("bad input: wrong version 412 with the current one, unknown 404, oversized 413, reused key 422, malformed 400", async () => {
    await put(0, "acct", "bob", "balance", "10");
    const stale = await put(1, "acct", "bob", "balance", "11", { "if-match": "7" });
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ code: "CAIRN-STATE-0002", currentVersion: 1 });
    expect((await fetch(`${obj(2, "acct", "nobody")}`)).status).toBe(404);
    expect((await fetch(`${obj(2, "acct", "bob")}/missing`)).status).toBe(404);
    const big = await put(0, "acct", "bob", "big", "x".repeat(1024 * 1024 + 1));
    expect(big.status).toBe(413);
    expect(big.body.code).toBe("CAIRN-STATE-0003");
    expect((await put(0, "acct", "bob", "n", "a", { "idempotency-key": "req-9" })).status).toBe(200);
    const reused = await put(1, "acct", "bob", "n", "b", { "idempotency-key": "req-9" });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe("CAIRN-STATE-0004");
    expect((await put(0, "bad/name", "k", "n", "v")).status).toBe(404); // the slash ends the service segment: no route
    expect((await put(0, "bad name", "k", "n", "v")).status).toBe(400);
    expect((await put(0, "svc", "k", "n", "v", { "if-match": "seven" })).status).toBe(400);
  });

  test("an idempotent retry through another node applies once and gets the first answer", async () => {
    const first = await put(0, "orders", "o-1", "state", "paid", { "idempotency-key": "pay-1" });
    const retry = await put(2, "orders", "o-1", "state", "paid", { "idempotency-key": "pay-1" });
    expect(first.status).toBe(200);
    expect(retry).toMatchObject({ status: 200, body: first.body });
    const r = await json<{ version: number }>(obj(1, "orders", "o-1"));
    expect(r.body.version).toBe(1);
  });

  test("a counter incremented by compare-and-set from 12 clients on every node ends exactly right", async () => {
    const perClient = 8;
    const clients = 12;
    await put(0, "counter", "c", "n", "0");
    let conflicts = 0;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let done = 0; done < perClient; ) {
          const read = await fetch(`${obj(c % 3, "counter", "c")}/n`);
          const version = read.headers.get("etag")!.replaceAll('"', "");
          const n = Number(await read.text());
          const w = await put(c % 3, "counter", "c", "n", String(n + 1), { "if-match": version });
          if (w.status === 200) done++;
          else if (w.status === 412) conflicts++;
          else throw new Error(`unexpected ${w.status} ${JSON.stringify(w.body)}`);
        }
      }),
    );
    const final = await fetch(`${obj(1, "counter", "c")}/n`);
    expect(Number(await final.text())).toBe(clients * perClient);
    expect(final.headers.get("etag")).toBe(`"${clients * perClient + 1}"`);
    expect(conflicts).toBeGreaterThan(0);
  }, 60_000);

  test("cairn ctl partitions list shows leaders, epochs and LSNs; ctl status shows the data-plane URL", async () => {
    const admin = cluster.nodes[1]!.addresses.admin;
    const list = await runCairn(["ctl", "--address", admin, "partitions", "list"]);
    expect(list.exitCode).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+LEADER\s+FOLLOWERS\s+EPOCH\s+LEADING\s+APPLIED\s+DURABLE\s+TAIL\s+LAG$/);
    expect(lines).toHaveLength(5);
    for (const line of lines.slice(1)) expect(line).toMatch(/^\d\s+N\d\s+N\d\s+\d+ \(N\d\)\s+yes\s+\d+\s+\d+\s+\d+\s+\d+$/);
    const asJson = await runCairn(["ctl", "--address", admin, "--json", "partitions", "list"]);
    const rows = (JSON.parse(asJson.stdout) as { partitions: Array<{ appliedLsn: number; tailLsn: number; replicas: unknown[] }> }).partitions;
    // Every partition has a leader and a follower replaying its log, both past the announce records.
    for (const r of rows) {
      expect(r.replicas).toHaveLength(2);
      expect(r.appliedLsn).toBeGreaterThanOrEqual(1);
      expect(r.tailLsn).toBeGreaterThan(r.appliedLsn);
    }
    const status = await runCairn(["ctl", "--address", admin, "status"]);
    expect(status.stdout).toContain(`Data plane ${cluster.nodes[1]!.addresses.ingress}`);
  });

  test("a partition log's sequencer moved away from its leader comes back to it, and writes go on", async () => {
    const admin = cluster.nodes[0]!.addresses.admin;
    type Row = { id: number; leader: string | null };
    const rows = (await json<{ partitions: Row[] }>(`${admin}/v1/partitions`)).body.partitions;
    const row = rows.find((r) => r.leader !== null)!;
    const ids = await Promise.all(cluster.nodes.map(async (n) => (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id));
    const other = ids.find((id) => id !== row.leader)!;
    // As the log controller does after a node joins or dies: a new segment sequenced elsewhere.
    const moved = await json(`${admin}/v1/logs/${row.id}/reconfigure`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sequencer: other }),
    });
    expect(moved.status).toBe(200);
    const sequencerOf = async () => {
      const logs = (await json<{ logs: Array<{ id: number; segments: Array<{ sequencer: string }> }> }>(`${admin}/v1/logs`)).body.logs;
      return logs.find((l) => l.id === row.id)!.segments.at(-1)!.sequencer.split(":")[0];
    };
    await eventually("the sequencer to return to the partition's leader", async () => ((await sequencerOf()) === row.leader ? true : undefined), 30_000);
    // Writes to keys of every partition (that one included) go on.
    for (let i = 0; i < 24; i++) expect((await put(i % 3, "seq", `k${i}`, "a", "after-move")).status).toBe(200);
  });

  test("a paused leader is superseded; resumed, it never answers a read with its old state", async () => {
    const { rows, names, victimIndex } = await partitionLeaderVictim();
    const victim = cluster.nodes[victimIndex]!;
    const led = rows.find((r) => r.leader === names[victimIndex])!.id;
    const table = evenPartitionTable(4);
    const key = Array.from({ length: 200 }, (_, i) => `p-${i}`).find((k) => partitionOfObject(table, "paused", k) === led)!;
    const survivor = cluster.nodes.findIndex((_, i) => i !== victimIndex);
    expect((await put(victimIndex, "paused", key, "v", "old")).status).toBe(200);
    victim.proc.kill("SIGSTOP");
    try {
      const started = performance.now();
      for (;;) {
        const w = await put(survivor, "paused", key, "v", "new", { "idempotency-key": `paused-${key}` }).catch(() => undefined);
        if (w?.status === 200) break;
        expect(performance.now() - started).toBeLessThan(30_000);
        await Bun.sleep(50);
      }
    } finally {
      victim.proc.kill("SIGCONT");
    }
    // At once after the resume, through the old leader's own ingress: the new value or an error, never "old".
    const r = await fetch(`${obj(victimIndex, "paused", key)}/v`, { signal: AbortSignal.timeout(15_000) });
    if (r.status === 200) expect(await r.text()).toBe("new");
    else expect(r.status).toBe(503);
    const later = await eventually("the resumed node forwards to the new leader", async () => {
      const x = await fetch(`${obj(victimIndex, "paused", key)}/v`);
      return x.status === 200 ? await x.text() : undefined;
    });
    expect(later).toBe("new");
  }, 60_000);

  test("kill -9 of a partition leader's node: another worker takes over and no acknowledged write is lost", async () => {
    const { metaLeader, names, victimIndex } = await partitionLeaderVictim();
    const victim = cluster.nodes[victimIndex]!;
    const survivor = cluster.nodes.findIndex((n, i) => i !== victimIndex);
    const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`);
    const acked = new Map<string, string>();
    for (const k of keys) {
      const w = await put(survivor, "fo", k, "v", `${k}-before`);
      expect(w.status).toBe(200);
      acked.set(k, `${k}-before`);
    }
    victim.proc.kill("SIGKILL");
    await victim.proc.exited;
    const killedMs = performance.now();
    // Every key written again through a survivor, retried with an idempotency key until acknowledged.
    const recoveryMs = await Promise.all(
      keys.map(async (k) => {
        for (;;) {
          const w = await put(survivor, "fo", k, "v", `${k}-after`, { "idempotency-key": `after-${k}` }).catch(() => undefined);
          if (w?.status === 200) {
            acked.set(k, `${k}-after`);
            return performance.now() - killedMs;
          }
          expect([undefined, 503, 504]).toContain(w?.status);
          await Bun.sleep(25);
        }
      }),
    );
    console.log(`writes to every partition succeeded again ${Math.round(Math.max(...recoveryMs))} ms after kill -9 of a partition leader's node`);
    expect(Math.max(...recoveryMs)).toBeLessThan(10_000);
    for (const k of keys) {
      const r = await fetch(`${obj(survivor, "fo", k)}/v`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(acked.get(k)!);
    }
    // The writes of the earlier tests survived too.
    expect(Number(await (await fetch(`${obj(survivor, "counter", "c")}/n`)).text())).toBe(96);
    const after = (await json<{ partitions: PartitionRow[] }>(`${metaLeader.addresses.admin}/v1/partitions`)).body.partitions;
    expect(after.every((r) => r.leader !== null && r.leader !== names[victimIndex])).toBe(true);
  }, 90_000);
});
