// Snapshot transfer of the metadata store between real processes: a node joining a cluster whose log
// was compacted pulls the leader's store page by page. Cut halfway by kill -9 of the joiner, then of
// the serving leader, it never starts from a partial snapshot, ends with exactly the cluster's keys,
// and the cluster keeps taking writes throughout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, json, leaderOf, servers, startCluster, type TestCluster } from "../helpers/cluster.ts";

let cluster: TestCluster;
const KEYS = 12_000;
const VALUE = "v".repeat(4000);

beforeAll(async () => {
  cluster = await startCluster(3, { extraArgs: ["--set", "metadata-server.snapshot-interval-entries=200"] });
});
afterAll(async () => {
  await cluster?.stop();
});

async function put(admin: string, key: string, value: unknown): Promise<number> {
  const r = await json<{ version?: number }>(`${admin}/v1/metadata/${encodeURIComponent(key)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  });
  return r.status;
}

async function metric(n: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${n.addresses.admin}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

function alive(n: NodeProcess): boolean {
  return n.proc.exitCode === null && n.proc.signalCode === null;
}

/** Every key (stale reads of the node's own copy), page by page. */
async function allKeys(n: NodeProcess): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let after: string | null = null;
  for (;;) {
    const q: string = `limit=5000&consistency=stale${after !== null ? `&after=${encodeURIComponent(after)}` : ""}`;
    const r = await json<{ keys: Array<{ key: string; version: number }>; next: string | null }>(`${n.addresses.admin}/v1/metadata?${q}`);
    if (r.status !== 200) throw new Error(`list answered ${r.status}`);
    for (const k of r.body.keys) out.set(k.key, k.version);
    if (r.body.next === null) return out;
    after = r.body.next;
  }
}

/** Kill `victim` with SIGKILL once `server` has served at least `pages` snapshot pages since `base`. */
async function killMidTransfer(server: NodeProcess, victim: NodeProcess, base: number, pages = 2): Promise<number> {
  const served = await eventually(
    "snapshot pages to be served",
    async () => {
      const n = await metric(server, "cairn_metadata_snapshot_pages_served_total");
      return n >= base + pages ? n : undefined;
    },
    60_000,
  );
  victim.proc.kill("SIGKILL");
  await victim.proc.exited;
  return served - base;
}

describe("metadata snapshot transfer between processes", () => {
  test("a joiner cut off mid-transfer (its own kill -9, then its source's) ends with exactly the cluster's keys", async () => {
    const n1 = cluster.nodes[0]!;
    // ~48 MB of state: far more than the compacted log holds, and many 1 MiB pages to cut through.
    for (let i = 0; i < KEYS; i += 64) {
      const batch = Array.from({ length: Math.min(64, KEYS - i) }, (_, k) => put(n1.addresses.admin, `bulk/${String(i + k).padStart(6, "0")}`, { i: i + k, VALUE }));
      expect(new Set(await Promise.all(batch))).toEqual(new Set([200]));
    }
    const leader = await leaderOf(cluster);
    const before = await metric(leader, "cairn_metadata_snapshot_pages_served_total");

    // 1. The joiner dies halfway through its first pull.
    const joiner = await cluster.start("n4");
    const cut = await killMidTransfer(leader, joiner, before);
    expect(cut).toBeLessThan(40); // really halfway: the whole store is ~48 pages
    // The cluster kept taking writes during the transfer.
    expect(await put(leader.addresses.admin, "during/1", 1)).toBe(200);

    // 2. Restarted on the same disk, it starts over (the staging tables of the cut pull are dropped,
    //    never adopted) — and this time its source, the leader, dies halfway.
    const base2 = await metric(leader, "cairn_metadata_snapshot_pages_served_total");
    const again = await cluster.start("n4", [], joiner.dataDir);
    await killMidTransfer(leader, leader, base2);
    const survivors = cluster.nodes.filter((n) => alive(n) && n !== again);
    const newLeader = await leaderOf(cluster);
    expect(newLeader).not.toBe(leader);
    expect(await put(newLeader.addresses.admin, "during/2", 2)).toBe(200);

    // 3. It pulls from the new leader and becomes a member with exactly the cluster's keys.
    await eventually(
      "n4 to become a member",
      async () => {
        const list = await servers(survivors[0]!.addresses.admin);
        const me = list.find((x) => x.name === "n4");
        return me?.state === "member" && me.status?.state === "member" ? true : undefined;
      },
      90_000,
    );
    expect(await put(newLeader.addresses.admin, "after", 3)).toBe(200);
    const expected = await eventually("the leader's key set", async () => {
      const keys = await allKeys(newLeader);
      return keys.has("after") ? keys : undefined;
    });
    const got = await eventually("n4 to hold every key", async () => {
      const keys = await allKeys(again);
      return keys.size === expected.size && keys.has("after") ? keys : undefined;
    });
    expect([...got.entries()].sort()).toEqual([...expected.entries()].sort());
    expect(got.size).toBeGreaterThanOrEqual(KEYS + 3);
    const sample = await json<{ value: { i: number } }>(`${again.addresses.admin}/v1/metadata/bulk%2F004321?consistency=stale`);
    expect(sample.body.value.i).toBe(4321);
    expect(await metric(again, "cairn_metadata_snapshot_installs_total")).toBeGreaterThanOrEqual(1);
    expect(again.log()).toContain("metadata snapshot transfer failed; starting again");
  });
});
