// The replicated metadata store with real processes on 127.0.0.1: provisioning, leader failover
// under load (no acknowledged write lost, reads never older than an acknowledged write), auto-join
// of a new node, removal and re-adding, auto-join off, a wiped member, and the last member.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type { NodeProcess } from "../helpers/cairn-process.ts";
import { GetRpc, WriteBatchRpc } from "../../src/metadata/rpc.ts";
import { FabricClient } from "../../src/net/index.ts";
import { CairnError } from "../../src/observability/errors.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { eventually, json, leaderOf, servers, startCluster, type TestCluster } from "../helpers/cluster.ts";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startCluster(3, { replication: 2 });
});
afterAll(async () => {
  await cluster?.stop();
});

function alive(): NodeProcess[] {
  return cluster.nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
}

function pick<T>(xs: T[]): T {
  return xs[Math.floor(Math.random() * xs.length)]!;
}

async function put(admin: string, key: string, value: unknown, headers: Record<string, string> = {}) {
  return json<{ version?: number; code?: string; currentVersion?: number }>(`${admin}/v1/metadata/${encodeURIComponent(key)}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(value),
  });
}

async function get(admin: string, key: string, consistency = "linearizable") {
  return json<{ version: number; value: unknown; code?: string }>(`${admin}/v1/metadata/${encodeURIComponent(key)}?consistency=${consistency}`);
}

describe("a 3-node metadata cluster", () => {
  test("provisioning made every node a member with one leader and recorded it in nodes_config", async () => {
    const s = await servers(cluster.nodes[0]!.addresses.admin);
    expect(s.map((x) => x.state)).toEqual(["member", "member", "member"]);
    const leaders = new Set(s.map((x) => x.status?.raft?.leader));
    expect(leaders.size).toBe(1);
    const nc = await get(cluster.nodes[2]!.addresses.admin, "nodes_config");
    expect((nc.body.value as { nodes: unknown[] }).nodes).toHaveLength(3);
  });

  test("reads on followers see a write acknowledged by another node", async () => {
    const w = await put(cluster.nodes[1]!.addresses.admin, "follower-read", { n: 1 });
    expect(w.status).toBe(200);
    for (const n of cluster.nodes) {
      const r = await get(n.addresses.admin, "follower-read");
      expect(r.body.value).toEqual({ n: 1 });
      expect(r.body.version).toBe(w.body.version!);
    }
  });

  test("writes a follower forwards together travel in one call and keep their own outcomes", async () => {
    const leader = await leaderOf(cluster);
    const follower = alive().find((n) => n !== leader)!;
    expect((await put(leader.addresses.admin, "batch-existing", 1)).status).toBe(200);
    const results = await Promise.all([
      ...Array.from({ length: 24 }, (_, i) => put(follower.addresses.admin, `batch-${i}`, { i })),
      put(follower.addresses.admin, "batch-existing", 2, { "if-none-match": "*" }),
    ]);
    expect(results.slice(0, 24).map((r) => r.status)).toEqual(Array.from({ length: 24 }, () => 200));
    expect(results[24]!.status).toBe(412);
    expect(results[24]!.body.code).toBe("CAIRN-METADATA-0003");
    expect(results[24]!.body.currentVersion).toBe(1);
    for (let i = 0; i < 24; i++) expect((await get(leader.addresses.admin, `batch-${i}`)).body.value).toEqual({ i });
    const metrics = await (await fetch(`${follower.addresses.admin}/metrics`)).text();
    expect(metrics).toMatch(/cairn_fabric_client_calls_total\{service="metadata-server",method="write-batch",outcome="ok"\} [1-9]/);

    // The call itself, straight to the leader: one outcome per write, in order, refusals among successes.
    const fabric = new FabricClient({ identity: () => ({ clusterName: "localcluster", fingerprint: null, nodeId: null, generation: 1 }), registry: createRegistry({ defaultMetrics: false }) });
    try {
      const id = `batch-test-${Date.now()}`;
      const r = await fabric.call(leader.addresses.fabric, WriteBatchRpc, {
        writes: [
          { requestId: `${id}-a`, op: "put", key: "batch-direct-a", value: "a", precondition: { kind: "none" } },
          { requestId: `${id}-b`, op: "put", key: "batch-existing", value: 3, precondition: { kind: "does-not-exist" } },
          { requestId: `${id}-c`, op: "delete", key: "batch-never-written", value: null, precondition: { kind: "none" } },
          { requestId: `${id}-d`, op: "put", key: "batch-direct-b", value: "b", precondition: { kind: "matches-version", version: 7 } },
          { requestId: `${id}-e`, op: "put", key: "batch-direct-c", value: "c", precondition: { kind: "none" } },
        ],
      });
      expect(r.results.map((x) => x.ok)).toEqual([true, false, false, false, true]);
      const codes = r.results.map((x) => (x.ok ? null : (x.problem as { code: string }).code));
      expect(codes).toEqual([null, "CAIRN-METADATA-0003", "CAIRN-METADATA-0001", "CAIRN-METADATA-0002", null]);
      expect((await get(leader.addresses.admin, "batch-direct-c")).body.value).toBe("c");
      // A follower refuses every write of a batch with a hint to the leader.
      const refused = await fabric.call(follower.addresses.fabric, WriteBatchRpc, {
        writes: [{ requestId: `${id}-f`, op: "put", key: "batch-direct-d", value: "d", precondition: { kind: "none" } }],
      });
      expect(refused.results[0]!.ok).toBe(false);
      const problem = (refused.results[0] as { problem: { code: string; leaderHint: { address: string } } }).problem;
      expect(problem.code).toBe("CAIRN-METADATA-0007");
      expect(problem.leaderHint.address).toBe(leader.addresses.fabric);
    } finally {
      await fabric.close();
    }
  });

  test("kill -9 of the leader under load: no acknowledged write lost, no read older than an acknowledged write", async () => {
    const acked: number[] = [];
    let ackedMax = 0;
    let stop = false;
    const violations: string[] = [];
    let killedAt = 0;
    let ackedAfterKill = 0;

    const writer = (async () => {
      let i = 0;
      while (!stop) {
        i++;
        const target = pick(alive());
        try {
          const r = await put(target.addresses.admin, `load/${i}`, { i });
          if (r.status !== 200) continue; // 503/504: not acknowledged (may or may not be applied)
          const c = await put(target.addresses.admin, "counter", { i });
          if (c.status !== 200) continue;
          acked.push(i);
          ackedMax = i;
          if (killedAt > 0) ackedAfterKill++;
        } catch {
          // Connection to a dying node: not acknowledged.
        }
      }
    })();
    const reader = (async () => {
      while (!stop) {
        const floor = ackedMax;
        const target = pick(alive());
        try {
          const r = await get(target.addresses.admin, "counter");
          if (r.status !== 200) continue;
          const seen = (r.body.value as { i: number }).i;
          if (seen < floor) violations.push(`read ${seen} from ${target.addresses.admin} after ${floor} was acknowledged`);
        } catch {
          // Node went away mid-read.
        }
      }
    })();

    await eventually("writes before the kill", async () => (acked.length >= 20 ? true : undefined));
    const leader = await leaderOf(cluster);
    killedAt = Date.now();
    leader.proc.kill("SIGKILL");
    await leader.proc.exited;
    await eventually("writes after the kill", async () => (ackedAfterKill >= 20 ? true : undefined), 90_000);
    stop = true;
    await Promise.all([writer, reader]);

    expect(violations).toEqual([]);
    const survivor = alive()[0]!;
    const keys = await json<{ keys: Array<{ key: string }> }>(`${survivor.addresses.admin}/v1/metadata?prefix=load/`);
    const present = new Set(keys.body.keys.map((k) => Number(k.key.slice("load/".length))));
    const lost = acked.filter((i) => !present.has(i));
    expect(lost).toEqual([]);

    // The killed node comes back (new generation) and catches up.
    const back = await cluster.start(leader.dataDir.split("/").pop()!, [], leader.dataDir);
    await eventually("the restarted node to serve the latest counter", async () => {
      const r = await get(back.addresses.admin, "counter");
      return r.status === 200 && (r.body.value as { i: number }).i >= ackedMax ? true : undefined;
    });
  });

  test("a fourth node auto-joins: registered as auto-join, then a member", async () => {
    const n4 = await cluster.start("n4");
    const admin = cluster.nodes[0]!.addresses.admin;
    const s = await eventually("n4 to become a member", async () => {
      const list = await servers(admin);
      const me = list.find((x) => x.name === "n4");
      return me?.state === "member" && me.status?.state === "member" ? list : undefined;
    });
    expect(s.filter((x) => x.state === "member")).toHaveLength(4);
    const info = await json<{ id: string }>(`${n4.addresses.admin}/v1/node`);
    expect(info.body.id).toBe("N4");
  });

  test("a removed member becomes standby and stops serving; added again, it becomes a member", async () => {
    const admin = cluster.nodes[0]!.addresses.admin;
    const n4 = cluster.nodes.find((n) => n.dataDir.endsWith("/n4"))!;
    const removed = await json<{ servers: Array<{ name: string; state: string }> }>(`${admin}/v1/metadata-servers/n4/remove`, { method: "POST" });
    expect(removed.status).toBe(200);
    expect(removed.body.servers.find((x) => x.name === "n4")!.state).toBe("standby");
    await eventually("n4 to stop serving as a member", async () => {
      const st = await json<{ state: string }>(`${n4.addresses.admin}/v1/metadata-server/status`);
      return st.body.state === "standby" ? true : undefined;
    });
    // Any node still answers metadata requests (through the members).
    expect((await get(n4.addresses.admin, "counter")).status).toBe(200);
    // Removing it again, or adding a member, is refused with a clear code.
    const again = await json<{ code: string }>(`${admin}/v1/metadata-servers/n4/remove`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("CAIRN-METADATA-0010");
    const added = await json(`${admin}/v1/metadata-servers/N4/add`, { method: "POST" });
    expect(added.status).toBe(200);
    await eventually("n4 to be a member again", async () => {
      const me = (await servers(admin)).find((x) => x.name === "n4");
      return me?.state === "member" && me.status?.state === "member" ? true : undefined;
    });
  });

  test("with auto-join off a new node registers as standby until an operator adds it", async () => {
    const n5 = await cluster.start("n5", ["--set", "metadata-server.auto-join=false"]);
    const admin = cluster.nodes[0]!.addresses.admin;
    const standby = await eventually("n5 registered", async () => (await servers(admin)).find((x) => x.name === "n5"));
    expect(standby.state).toBe("standby");
    await Bun.sleep(1000);
    expect((await servers(admin)).find((x) => x.name === "n5")!.state).toBe("standby");
    // Asked over the fabric to act as a member, the standby node refuses with a hint of where to go.
    const fabric = new FabricClient({ identity: () => ({ clusterName: "localcluster", fingerprint: null, nodeId: null, generation: 1 }), registry: createRegistry({ defaultMetrics: false }) });
    try {
      const err = await fabric.call(n5.addresses.fabric, GetRpc, { key: "counter", consistency: "linearizable" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CairnError);
      expect((err as CairnError).code).toBe("CAIRN-METADATA-0008");
      const hint = (err as CairnError).details.leaderHint as { address: string } | null;
      expect(cluster.nodes.map((n) => n.addresses.fabric)).toContain(hint?.address ?? "no hint");
    } finally {
      await fabric.close();
    }
    expect((await json(`${n5.addresses.admin}/v1/metadata-servers/n5/add`, { method: "POST" })).status).toBe(200);
    await eventually("n5 to become a member", async () => {
      const me = (await servers(admin)).find((x) => x.name === "n5");
      return me?.state === "member" && me.status?.state === "member" ? true : undefined;
    });
  });

  test("a member that comes back with a wiped disk is detected and does not vote; remove + add heals it", async () => {
    const admin = cluster.nodes[0]!.addresses.admin;
    const n5 = cluster.nodes.find((n) => n.dataDir.endsWith("/n5"))!;
    await n5.stop();
    rmSync(n5.dataDir, { recursive: true, force: true });
    const wiped = await cluster.start("n5", [], n5.dataDir);
    const st = await eventually("n5 to detect the mismatch", async () => {
      const r = await json<{ state: string; raft: unknown }>(`${wiped.addresses.admin}/v1/metadata-server/status`);
      return r.body.state === "storage-mismatch" ? r.body : undefined;
    });
    expect(st.raft).toBeNull();
    // Its registration moved to a newer generation than the wiped one.
    const info = await json<{ generation: number }>(`${wiped.addresses.admin}/v1/node`);
    expect(info.body.generation).toBeGreaterThan(1);
    // The cluster still takes writes.
    expect((await put(admin, "after-wipe", 1)).status).toBe(200);
    expect((await json(`${admin}/v1/metadata-servers/n5/remove`, { method: "POST" })).status).toBe(200);
    expect((await json(`${admin}/v1/metadata-servers/n5/add`, { method: "POST" })).status).toBe(200);
    await eventually("the wiped node to rejoin with new storage", async () => {
      const me = (await servers(admin)).find((x) => x.name === "n5");
      return me?.state === "member" && me.status?.state === "member" ? true : undefined;
    }, 90_000);
  });

  test("a node without the metadata-server role serves metadata reads and writes through the members", async () => {
    const n6 = await cluster.start("n6", ["--roles", "admin,worker,log-server"]);
    await eventually("n6 to be registered", async () => {
      const info = await json<{ id: string | null }>(`${n6.addresses.admin}/v1/node`);
      return info.body.id ? true : undefined;
    });
    expect((await put(n6.addresses.admin, "from-n6", { ok: true })).status).toBe(200);
    expect((await get(cluster.nodes[0]!.addresses.admin, "from-n6")).body.value).toEqual({ ok: true });
    expect((await get(n6.addresses.admin, "counter")).status).toBe(200);
    const st = await json<{ code: string }>(`${n6.addresses.admin}/v1/metadata-server/status`);
    expect(st.status).toBe(503);
    expect(st.body.code).toBe("CAIRN-METADATA-0008");
    // It is not listed among the metadata servers.
    expect((await servers(n6.addresses.admin)).map((x) => x.name)).not.toContain("n6");
  });
});
