// Readiness tells an operator about a log-server store that a failed write disabled: the node keeps
// running (reads still work) but /ready answers 503 with the reason, and a gauge drops to 0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import type { Node } from "../../src/node/index.ts";
import type { LogStore } from "../../src/logserver/store.ts";
import { tempDir } from "../helpers/cairn-process.ts";
import { inProcessNode } from "../helpers/in-process-node.ts";

let node: Node;
let base: string;

beforeAll(async () => {
  node = inProcessNode("ready-test", join(tempDir(), "ready-test"), [
    ["bifrost.append-timeout-ms", "2000"],
    // The fault below lasts only for this connection: no recovery probe before the assertions.
    ["log-server.recovery-probe-initial-delay-ms", "600000"],
    ["log-server.recovery-probe-max-delay-ms", "600000"],
  ]);
  await node.start();
  base = node.addresses.admin;
});

afterAll(async () => {
  await node.stop();
});

async function append(record: string): Promise<Response> {
  return await fetch(`${base}/v1/logs/0/records`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ records: [record] }),
  });
}

describe("readiness", () => {
  test("a log-server store disabled by a failed write makes the node not ready, with the reason and a metric", async () => {
    const p = await fetch(`${base}/v1/cluster/provision`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ numPartitions: 1, replication: 1 }),
    });
    expect(p.status).toBe(200);
    let ok = false;
    for (let i = 0; i < 200 && !ok; i++) {
      ok = (await append("first")).status === 200;
      if (!ok) await Bun.sleep(50);
    }
    expect(ok).toBe(true);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("cairn_logserver_store_writable 1");

    // A real SQLite failure: the file may not grow any more, so the next transaction fails (SQLITE_FULL).
    const store = (node as unknown as { logServer: { openStore(): LogStore | undefined } }).logServer.openStore()!;
    const db = (store as unknown as { db: Database }).db;
    const pages = db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    db.exec(`PRAGMA max_page_count = ${pages}`);
    const failed = await append("x".repeat(200_000));
    expect(failed.status).toBeGreaterThanOrEqual(500);

    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { code: string; reasons: string[] };
    expect(body.code).toBe("CAIRN-NODE-0004");
    expect(body.reasons.join("\n")).toContain("takes no writes since a write failed");
    expect(body.reasons.join("\n")).toContain(store.path);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("cairn_logserver_store_writable 0");
    // The node itself keeps running: liveness is unaffected.
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});
