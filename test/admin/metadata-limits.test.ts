// The replicated metadata store at its limits, through the typed client: keys and values at their
// size limits and one past, unicode keys, paginated listing of many keys (never more than a page per
// answer), bad listing parameters, and state that survives a restart without being replayed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import createClient from "openapi-fetch";
import { join } from "node:path";
import type { paths } from "../../openapi/cairn.d.ts";
import type { Node } from "../../src/node/index.ts";
import { tempDir } from "../helpers/cairn-process.ts";
import { inProcessNode } from "../helpers/in-process-node.ts";

let node: Node;
let client: ReturnType<typeof createClient<paths>>;
let base: string;
const dataDir = join(tempDir(), "limits");
const MAX_VALUE_BYTES = 4096;

function newNode(): Node {
  return inProcessNode("limits", dataDir, [["metadata-server.max-value-bytes", String(MAX_VALUE_BYTES)]]);
}

beforeAll(async () => {
  node = newNode();
  await node.start();
  base = node.addresses.admin;
  client = createClient<paths>({ baseUrl: base });
  const p = await client.POST("/v1/cluster/provision", { body: { numPartitions: 1, replication: 1 } });
  expect(p.response.status).toBe(200);
});
afterAll(async () => {
  await node.stop();
});

async function putRaw(key: string, body: string): Promise<{ status: number; code?: string; version?: number }> {
  const res = await fetch(`${base}/v1/metadata/${encodeURIComponent(key)}`, { method: "PUT", headers: { "content-type": "application/json" }, body });
  const json = (await res.json()) as { code?: string; version?: number };
  return { status: res.status, ...json };
}

describe("metadata limits on the replicated store", () => {
  test("a key of 256 characters and a value of exactly the limit are stored; one more of either is refused", async () => {
    const longKey = "k".repeat(256);
    expect((await putRaw(longKey, "1")).status).toBe(200);
    expect(await putRaw(`${longKey}x`, "1")).toMatchObject({ status: 400, code: "CAIRN-METADATA-0005" });
    const atLimit = JSON.stringify("x".repeat(MAX_VALUE_BYTES - 2)); // quotes included: exactly the limit
    expect(atLimit.length).toBe(MAX_VALUE_BYTES);
    expect((await putRaw("limits/at", atLimit)).status).toBe(200);
    const over = await putRaw("limits/over", JSON.stringify("x".repeat(MAX_VALUE_BYTES - 1)));
    expect(over.status).toBe(413);
    const got = await client.GET("/v1/metadata/{key}", { params: { path: { key: "limits/at" } } });
    expect((got.data?.value as string).length).toBe(MAX_VALUE_BYTES - 2);
    expect((await client.GET("/v1/metadata/{key}", { params: { path: { key: "limits/over" } } })).response.status).toBe(404);
  });

  test("unicode keys are refused with a code; unicode values are stored as sent", async () => {
    for (const key of ["ключ", "clé", "🔑", "a\u0000b", "a b"]) {
      expect(await putRaw(key, "1")).toMatchObject({ status: 400, code: "CAIRN-METADATA-0005" });
    }
    const value = { text: "ключ · clé · 🔑 · 漢字" };
    expect((await putRaw("limits/unicode", JSON.stringify(value))).status).toBe(200);
    const got = await client.GET("/v1/metadata/{key}", { params: { path: { key: "limits/unicode" } } });
    expect(got.data?.value).toEqual(value);
  });

  test("listing 2 500 keys comes in pages of at most `limit`, in order, each key once", async () => {
    const N = 2_500;
    for (let i = 0; i < N; i += 100) {
      const batch = Array.from({ length: Math.min(100, N - i) }, (_, k) => putRaw(`many/${String(i + k).padStart(5, "0")}`, String(i + k)));
      expect(new Set((await Promise.all(batch)).map((r) => r.status))).toEqual(new Set([200]));
    }
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await client.GET("/v1/metadata", { params: { query: { prefix: "many/", limit: 1000, ...(after !== undefined ? { after } : {}) } } });
      expect(r.response.status).toBe(200);
      expect(r.data!.keys.length).toBeLessThanOrEqual(1000);
      seen.push(...r.data!.keys.map((k) => k.key));
      pages++;
      if (r.data!.next === null) break;
      after = r.data!.next;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(N);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(N);
    // Without a limit a page holds the default 1 000 keys and says where to go on.
    const first = await client.GET("/v1/metadata", { params: { query: { prefix: "many/" } } });
    expect(first.data!.keys).toHaveLength(1000);
    expect(first.data!.next).toBe("many/00999");
  });

  test("bad listing parameters are 4xx problems with a code", async () => {
    for (const q of ["limit=0", "limit=10001", "limit=abc", "limit=2.5"]) {
      const res = await fetch(`${base}/v1/metadata?${q}`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(((await res.json()) as { code?: string }).code).toMatch(/^CAIRN-[A-Z]+-[0-9]{4}$/);
    }
  });

  test("after a restart every key and version is there, read from the store (applied index kept, nothing replayed)", async () => {
    const before = await client.GET("/v1/metadata/{key}", { params: { path: { key: "many/01234" } } });
    const status = await (await fetch(`${base}/v1/metadata-server/status`)).json() as { raft: { appliedIndex: number; snapshotIndex: number } };
    await node.stop();
    node = newNode();
    await node.start();
    base = node.addresses.admin;
    client = createClient<paths>({ baseUrl: base });
    const after = await client.GET("/v1/metadata/{key}", { params: { path: { key: "many/01234" } } });
    expect(after.data).toEqual(before.data);
    const again = await (await fetch(`${base}/v1/metadata-server/status`)).json() as { raft: { appliedIndex: number; snapshotIndex: number } };
    // The log was compacted behind snapshots while the keys were written; the store picks up there.
    expect(status.raft.snapshotIndex).toBeGreaterThan(0);
    expect(again.raft.appliedIndex).toBeGreaterThanOrEqual(status.raft.appliedIndex);
  });

  test("the metadata server's metrics are on /metrics", async () => {
    await client.GET("/v1/metadata/{key}", { params: { path: { key: "many/00001" } } });
    const text = await (await fetch(`${base}/metrics`)).text();
    const value = (name: string) => Number(text.split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"))?.split(" ").pop());
    expect(text).toContain('cairn_metadata_raft_role{role="leader"} 1');
    expect(value("cairn_metadata_raft_term")).toBeGreaterThanOrEqual(1);
    expect(value("cairn_metadata_raft_leader")).toBe(1);
    expect(value("cairn_metadata_applied_index")).toBeGreaterThan(0);
    expect(value("cairn_metadata_raft_commit_index")).toBeGreaterThanOrEqual(value("cairn_metadata_applied_index"));
    expect(value("cairn_metadata_store_bytes")).toBeGreaterThan(0);
    expect(text).toContain('cairn_metadata_reads_total{consistency="linearizable"}');
    expect(text).toContain("cairn_metadata_proposal_seconds_count");
    expect(text).toContain("cairn_metadata_snapshots_total");
  });
});
