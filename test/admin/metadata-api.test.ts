// Metadata and cluster routes on a node with the local metadata store, through the typed client.
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
const dataDir = join(tempDir(), "meta");

function newNode(): Node {
  return inProcessNode("meta", dataDir, [
    ["metadata-server.type", "local"],
    ["metadata-server.max-value-bytes", "2048"],
  ]);
}

beforeAll(async () => {
  node = newNode();
  await node.start();
  base = node.addresses.admin;
  client = createClient<paths>({ baseUrl: base });
});
afterAll(async () => {
  await node.stop();
});

async function problem(res: Response): Promise<{ code: string; currentVersion?: number }> {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  return (await res.json()) as { code: string; currentVersion?: number };
}

describe("before provisioning", () => {
  test("cluster and metadata routes answer 503 not-provisioned with a hint", async () => {
    const c = await client.GET("/v1/cluster");
    expect(c.response.status).toBe(503);
    expect((c.error as { code: string }).code).toBe("CAIRN-CLUSTER-0001");
    const m = await client.GET("/v1/metadata");
    expect(m.response.status).toBe(503);
    expect((m.error as { hint: string }).hint).toContain("cairn ctl provision");
  });
});

describe("provisioning", () => {
  test("writes nodes configuration, logs and partition table, and registers this node as N1", async () => {
    const p = await client.POST("/v1/cluster/provision", { body: { numPartitions: 4, replication: 1 } });
    expect(p.error).toBeUndefined();
    expect(p.data!.numPartitions).toBe(4);
    expect(p.data!.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const keys = (await client.GET("/v1/metadata")).data!.keys.map((k) => k.key);
    expect(keys).toEqual(["cluster", "logs", "nodes_config", "partition_table"]);
    const nodes = (await client.GET("/v1/metadata/{key}", { params: { path: { key: "nodes_config" } } })).data!.value as {
      nodes: Array<{ id: number; name: string; metadataServer: { state: string } }>;
    };
    expect(nodes.nodes).toEqual([expect.objectContaining({ id: 1, name: "meta", metadataServer: { state: "member", storageId: null } })]);
    const table = (await client.GET("/v1/metadata/{key}", { params: { path: { key: "partition_table" } } })).data!.value as {
      partitions: Array<{ keyRange: { start: string; end: string } }>;
    };
    expect(table.partitions[0]!.keyRange.start).toBe("0");
    expect(table.partitions[3]!.keyRange.end).toBe(String(2n ** 64n - 1n));
    expect((await client.GET("/v1/node")).data!.id).toBe("N1");
  });

  test("a second provisioning is refused with 409", async () => {
    const p = await client.POST("/v1/cluster/provision", { body: {} });
    expect(p.response.status).toBe(409);
    expect((p.error as { code: string }).code).toBe("CAIRN-CLUSTER-0002");
  });

  test("bad parameters are refused with 422 before anything is written", async () => {
    const p = await fetch(`${base}/v1/cluster/provision`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ numPartitions: 0 }),
    });
    expect(p.status).toBe(422);
    expect((await problem(p)).code).toBe("CAIRN-API-0001");
  });
});

describe("metadata reads and conditional writes", () => {
  test("create, update at version, stale version refused with the current one", async () => {
    const path = { key: "ops/flag" };
    const created = await client.PUT("/v1/metadata/{key}", { params: { path, header: { "if-none-match": "*" } }, body: { on: true } });
    expect(created.data).toEqual({ key: "ops/flag", version: 1 });
    const again = await client.PUT("/v1/metadata/{key}", { params: { path, header: { "if-none-match": "*" } }, body: { on: false } });
    expect(again.response.status).toBe(412);
    expect(again.error).toMatchObject({ code: "CAIRN-METADATA-0003", currentVersion: 1 });
    const updated = await client.PUT("/v1/metadata/{key}", { params: { path, header: { "if-match": "1" } }, body: { on: false } });
    expect(updated.data!.version).toBe(2);
    expect(updated.response.headers.get("etag")).toBe('"2"');
    const stale = await client.PUT("/v1/metadata/{key}", { params: { path, header: { "if-match": '"1"' } }, body: 0 });
    expect(stale.response.status).toBe(412);
    expect(stale.error).toMatchObject({ code: "CAIRN-METADATA-0002", currentVersion: 2 });
    const read = await client.GET("/v1/metadata/{key}", { params: { path } });
    expect(read.data).toEqual({ key: "ops/flag", version: 2, value: { on: false } });
  });

  test("delete at a wrong version is refused; at the right one it removes the key", async () => {
    const path = { key: "tmp" };
    await client.PUT("/v1/metadata/{key}", { params: { path }, body: "x" });
    expect((await client.DELETE("/v1/metadata/{key}", { params: { path, header: { "if-match": "7" } } })).response.status).toBe(412);
    expect((await client.DELETE("/v1/metadata/{key}", { params: { path, header: { "if-match": "1" } } })).data).toEqual({ key: "tmp", version: 1 });
    const gone = await client.GET("/v1/metadata/{key}", { params: { path } });
    expect(gone.response.status).toBe(404);
    expect((await client.DELETE("/v1/metadata/{key}", { params: { path } })).response.status).toBe(404);
    // Re-created keys continue the version sequence.
    expect((await client.PUT("/v1/metadata/{key}", { params: { path }, body: "y" })).data!.version).toBe(2);
  });

  test("bad keys, bad preconditions, malformed and oversized bodies get 4xx and change nothing", async () => {
    const before = (await client.GET("/v1/metadata")).data!.keys;
    const bad = await fetch(`${base}/v1/metadata/${encodeURIComponent("a b")}`, { method: "PUT", headers: { "content-type": "application/json" }, body: "1" });
    expect(bad.status).toBe(400);
    expect((await problem(bad)).code).toBe("CAIRN-METADATA-0005");
    const both = await fetch(`${base}/v1/metadata/k`, {
      method: "PUT",
      headers: { "content-type": "application/json", "if-match": "1", "if-none-match": "*" },
      body: "1",
    });
    expect((await problem(both)).code).toBe("CAIRN-METADATA-0006");
    const malformed = await fetch(`${base}/v1/metadata/k`, { method: "PUT", headers: { "content-type": "application/json" }, body: "{nope" });
    expect(malformed.status).toBe(400);
    const big = await fetch(`${base}/v1/metadata/k`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify("x".repeat(4000)),
    });
    expect(big.status).toBe(413);
    expect((await problem(big)).code).toBe("CAIRN-METADATA-0004");
    expect((await client.GET("/v1/metadata")).data!.keys).toEqual(before);
  });

  test("prefix listing", async () => {
    const r = await client.GET("/v1/metadata", { params: { query: { prefix: "ops/" } } });
    expect(r.data!.keys).toEqual([{ key: "ops/flag", version: 2 }]);
  });
});

describe("restart", () => {
  test("keys, versions and the node's id survive; the generation grows and is recorded", async () => {
    await node.stop();
    node = newNode();
    await node.start();
    client = createClient<paths>({ baseUrl: node.addresses.admin });
    base = node.addresses.admin;
    expect((await client.GET("/v1/metadata/{key}", { params: { path: { key: "ops/flag" } } })).data!.version).toBe(2);
    const info = (await client.GET("/v1/node")).data!;
    expect(info.id).toBe("N1");
    expect(info.generation).toBe(2);
    const nodes = (await client.GET("/v1/metadata/{key}", { params: { path: { key: "nodes_config" } } })).data!;
    expect(nodes.version).toBe(2);
    expect((nodes.value as { nodes: Array<{ generation: number }> }).nodes[0]!.generation).toBe(2);
  });
});
