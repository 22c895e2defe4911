// A partition store that fails (here a real SQLITE_FULL: the file may not grow) stops its processor
// loudly, and the worker opens the store again by itself once the wait is over: the partition is led
// and serving again without a restart, with everything written before the fault still there, and the
// write that hit the fault (indeterminate to its client) applied from the log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import type { Node } from "../../src/node/index.ts";
import type { PartitionProcessor } from "../../src/worker/processor.ts";
import { storeReopenDelayMs, type WorkerRole } from "../../src/worker/role.ts";
import { tempDir } from "../helpers/cairn-process.ts";
import { inProcessNode } from "../helpers/in-process-node.ts";

let node: Node;
let admin: string;
let ingress: string;

beforeAll(async () => {
  node = inProcessNode("store-failure", join(tempDir(), "store-failure"), [
    ["roles", "metadata-server,log-server,admin,ingress,worker"],
    ["worker.store-failure-retry-ms", "1500"],
  ]);
  await node.start();
  admin = node.addresses.admin;
  ingress = node.addresses.ingress!;
});

afterAll(async () => {
  await node.stop();
});

const entry = (name: string) => `${ingress}/v1/objects/acct/alice/state/${name}`;
const put = (name: string, body: string) => fetch(entry(name), { method: "PUT", body, headers: { "content-type": "text/plain" }, signal: AbortSignal.timeout(20_000) });

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function invokers(): Map<number, unknown> {
  const role = (node as unknown as { workerRole: WorkerRole | undefined }).workerRole;
  return (role as unknown as { invokers: Map<number, unknown> }).invokers;
}

function processor(): PartitionProcessor | undefined {
  const role = (node as unknown as { workerRole: WorkerRole | undefined }).workerRole;
  return (role as unknown as { processors: Map<number, PartitionProcessor> } | undefined)?.processors.get(0);
}

describe("partition store failure", () => {
  test("the wait before opening a failed store again doubles per failure in a row, up to its maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => storeReopenDelayMs(n, 1_000, 30_000))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(storeReopenDelayMs(10_000, 1_000, 30_000)).toBe(30_000);
  });

  test("a processor stopped by a failed store write comes back by itself, with its data, and serves writes", async () => {
    const p = await fetch(`${admin}/v1/cluster/provision`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ numPartitions: 1, replication: 1 }) });
    expect(p.status).toBe(200);
    await until("a first write", async () => ((await put("before", "kept")).status === 200 ? true : undefined));

    // A real SQLite failure on the processor's own connection: the store file may not grow any more.
    const failing = processor()!;
    expect(invokers().has(0)).toBe(true);
    const db = (failing.store as unknown as { db: Database }).db;
    const pages = db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    db.exec(`PRAGMA max_page_count = ${pages}`);
    const refused = await put("big", "x".repeat(400_000));
    // Its record is in the log: the answer says the write may or may not have been applied.
    expect(refused.status).toBe(504);
    expect(((await refused.json()) as { code: string }).code).toBe("CAIRN-PARTITION-0004");
    expect(failing.status().stopped).toContain("the partition store failed");
    expect(failing.status().stoppedBy).toBe("store");
    expect(failing.storeFailedAtMs).toBeDefined();
    // The leader's invoker stopped with it (it would retry its attempts against the failed store).
    expect(invokers().has(0)).toBe(false);

    // The worker takes the stopped processor down after the wait and opens the store again (a new
    // connection: the limit is gone, as a freed disk would be); the partition is led again.
    const back = await until("partition 0 served by a new processor", async () => {
      const q = processor();
      return q !== undefined && q !== failing && q.status().stopped === null && q.role.kind === "leader" ? q : undefined;
    });
    expect(back.storeFailedAtMs).toBeUndefined();
    await until("a write after the heal", async () => ((await put("after", "written")).status === 200 ? true : undefined));
    const r = await fetch(`${ingress}/v1/objects/acct/alice/state`);
    expect(r.status).toBe(200);
    const names = ((await r.json()) as { entries: Array<{ name: string }> }).entries.map((e) => e.name).sort();
    // "big" too: its record was in the log, and the reopened store applied it (the write was indeterminate, not lost).
    expect(names).toEqual(["after", "before", "big"]);
  });
});
