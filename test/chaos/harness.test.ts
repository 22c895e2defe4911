// The harness must be able to hurt the cluster, or a green chaos run proves nothing: every node is
// known to the others by its proxy listener only, every peer connection through the proxy is
// attributed to its source node, an isolated node can neither write nor serve a linearizable read
// until healed, a one-way cut of the leader's inbound links costs it its leadership, and a paused node
// stops answering until resumed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChaosCluster } from "./cluster.ts";
import { request, keyPath } from "./client.ts";
import { DROP, PASS } from "./net/fault-proxy.ts";
import { stopAll } from "./node-process.ts";
import { Rng } from "./rng.ts";

let cluster: ChaosCluster;

beforeAll(async () => {
  cluster = await ChaosCluster.start({ size: 3, dir: mkdtempSync(join(tmpdir(), "cairn-harness-")), rng: new Rng(3) });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await stopAll();
});

const url = (name: string) => cluster.adminUrl(cluster.node(name));

async function writes(via: string, key: string, timeoutMs = 4000): Promise<boolean> {
  const r = await request(url(via), "PUT", keyPath(key), { body: Date.now(), timeoutMs });
  return r.kind === "ok";
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe("the chaos harness", () => {
  test("nodes know each other only by their proxy listeners, and the proxy knows who dialed", async () => {
    const r = await request(url("n1"), "GET", `${keyPath("nodes_config")}?consistency=linearizable`, { timeoutMs: 4000 });
    expect(r.kind).toBe("ok");
    const nodes = ((r as { body: { value: { nodes: Array<{ name: string; fabricAddress: string }> } } }).body.value.nodes);
    for (const n of cluster.nodes) expect(nodes.find((x) => x.name === n.name)?.fabricAddress).toBe(n.advertised);
    for (const n of cluster.nodes) expect(await writes(n.name, `harness/${n.name}`)).toBe(true);
    const open = cluster.proxy.openConnections();
    expect(open.length).toBeGreaterThan(0);
    expect(open.filter((c) => !cluster.nodes.some((n) => n.name === c.source))).toEqual([]);
    expect(cluster.proxy.stats.unidentified).toBe(0);
  }, 30_000);

  test("an isolated node can neither write nor read linearizably until healed", async () => {
    const leader = await cluster.leader();
    const victim = cluster.nodes.find((n) => n.name !== leader?.name)!.name;
    const others = cluster.nodes.filter((n) => n.name !== victim).map((n) => n.name);
    for (const o of others) {
      cluster.proxy.setLink(victim, o, DROP);
      cluster.proxy.setLink(o, victim, DROP);
    }
    try {
      await Bun.sleep(500);
      expect(await writes(victim, "harness/isolated", 3000)).toBe(false);
      const read = await request(url(victim), "GET", `${keyPath("harness/n1")}?consistency=linearizable`, { timeoutMs: 3000 });
      expect(read.kind).not.toBe("ok");
      expect(await writes(others[0]!, "harness/majority")).toBe(true);
    } finally {
      cluster.proxy.heal();
    }
    await until("the healed node writes again", () => writes(victim, "harness/healed"));
  }, 60_000);

  test("cutting the leader's inbound links (it still sends) moves leadership elsewhere", async () => {
    const leader = await cluster.leader();
    expect(leader).toBeDefined();
    const others = cluster.nodes.filter((n) => n.name !== leader!.name);
    for (const o of others) cluster.proxy.setLink(o.name, leader!.name, DROP);
    try {
      await until("a new leader among the others", async () => {
        for (const o of others) {
          const r = await request(url(o.name), "GET", "/v1/metadata-server/status", { timeoutMs: 1000 });
          if (r.kind === "ok" && (r.body as { raft: { role: string } | null }).raft?.role === "leader") return true;
        }
        return false;
      });
    } finally {
      for (const o of others) cluster.proxy.setLink(o.name, leader!.name, PASS);
    }
    await until("every node writes again", async () => (await Promise.all(cluster.nodes.map((n) => writes(n.name, "harness/after-asym")))).every(Boolean));
  }, 60_000);

  test("a paused node does not answer until resumed", async () => {
    cluster.pause("n2");
    try {
      const r = await request(url("n2"), "GET", "/health", { timeoutMs: 1000 });
      expect(r.kind).toBe("info");
    } finally {
      cluster.resume("n2");
    }
    await until("n2 answers again", async () => (await request(url("n2"), "GET", "/health", { timeoutMs: 1000 })).kind === "ok");
  }, 30_000);
});
