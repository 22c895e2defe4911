// archived-lsn on a real node (in this process, so its configuration can name a snapshot repository
// before the `[snapshots]` section exists): nothing is trimmed while no snapshot index exists; an
// index (`snapshots/<p>`, as the snapshotter writes it) moves the trim point to its oldest retained
// LSN and never past the tail; a manual trim up to the archived LSN needs no force, one past it does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig, type Config } from "../../../src/config/index.ts";
import { Node } from "../../../src/node/index.ts";
import { silentLogger } from "../../../src/observability/log.ts";
import { tempDir } from "../../helpers/cairn-process.ts";
import { eventually } from "../../helpers/cluster.ts";

let node: Node;
let admin: string;
let ingress: string;

beforeAll(async () => {
  const base = join(tempDir(), "archived");
  const { config } = loadConfig({
    overrides: [
      ["node-name", "archived"],
      ["base-dir", base],
      ["admin.bind-address", "127.0.0.1:0"],
      ["net.bind-address", "127.0.0.1:0"],
      ["ingress.bind-address", "127.0.0.1:0"],
      ["roles", "metadata-server,log-server,worker,admin,ingress"],
      ["trim.min-age-ms", "0"],
      ["trim.min-records", "1"],
      ["trim.delay-ms", "0"],
      ["trim.interval-ms", "100"],
      ["snapshots.repository", "file"],
    ],
  });
  node = new Node({ config, logger: silentLogger() });
  await node.start();
  admin = node.addresses.admin;
  ingress = node.addresses.ingress!;
  const p = await fetch(`${admin}/v1/cluster/provision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ numPartitions: 1, replication: 1 }),
  });
  expect(p.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

async function trimPoint(): Promise<number> {
  const r = (await (await fetch(`${admin}/v1/logs/0`)).json()) as { log: { trimPoint: number }; tail: { tailLsn: number } };
  return r.log.trimPoint;
}

async function tailLsn(): Promise<number> {
  return ((await (await fetch(`${admin}/v1/logs/0/tail`)).json()) as { tailLsn: number }).tailLsn;
}

async function rounds(): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("cairn_trim_rounds_total "));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

async function roundsPass(more: number): Promise<void> {
  const from = await rounds();
  await eventually(`${more} trim rounds`, async () => ((await rounds()) >= from + more ? true : undefined));
}

async function putIndex(oldestRetainedLsn: number, latestLsn: number): Promise<void> {
  const r = await fetch(`${admin}/v1/metadata/${encodeURIComponent("snapshots/0")}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ partition: 0, latestLsn, latestId: `snap-${latestLsn}`, oldestRetainedLsn, updatedAtMs: Date.now() }),
  });
  expect(r.status).toBe(200);
}

describe("archived-lsn on a real node", () => {
  test("no index, no trim; an index moves the trim point to its oldest retained LSN, clipped below the tail", async () => {
    for (let i = 0; i < 12; i++) {
      await eventually(`write ${i}`, async () => {
        const r = await fetch(`${ingress}/v1/objects/arch/k${i}/state/v`, { method: "PUT", body: `v${i}`, headers: { "content-type": "text/plain" } });
        await r.text();
        return r.status === 200 ? true : undefined;
      });
    }
    expect(await eventually("archived-lsn in force", async () => ((await (await fetch(`${admin}/metrics`)).text()).includes('cairn_trim_policy{policy="archived-lsn"} 1') ? true : undefined))).toBe(true);
    await roundsPass(3);
    expect(await trimPoint()).toBe(0);

    await putIndex(4, 6);
    expect(await eventually("trim point at the oldest retained snapshot", async () => ((await trimPoint()) === 4 ? 4 : undefined))).toBe(4);
    await roundsPass(3);
    expect(await trimPoint()).toBe(4);

    const tail = await tailLsn();
    await putIndex(tail + 100, tail + 100);
    expect(await eventually("trim point below the tail", async () => ((await trimPoint()) === tail - 1 ? true : undefined))).toBe(true);
    // The state is still there: the store holds it, the log is no longer needed.
    for (let i = 0; i < 12; i++) expect(await (await fetch(`${ingress}/v1/objects/arch/k${i}/state/v`)).text()).toBe(`v${i}`);
  }, 60_000);

  test("a manual trim up to the archived LSN needs no force; past it, it is refused", async () => {
    // The archived LSN back at the trim point, so the records written next stay unarchived.
    const from = await trimPoint();
    await putIndex(from, from);
    await roundsPass(2);
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${ingress}/v1/objects/arch/m${i}/state/v`, { method: "PUT", body: `m${i}`, headers: { "content-type": "text/plain" } });
      expect(r.status).toBe(200);
    }
    expect(await trimPoint()).toBe(from);
    const tail = await tailLsn();
    expect(tail - 1).toBeGreaterThan(from + 2);
    await putIndex(from + 1, from + 1);
    // The policy itself may trim to from + 1 meanwhile; a manual trim to it is fine either way.
    const within = await fetch(`${admin}/v1/logs/0/trim`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ toLsn: from + 1 }) });
    expect(within.status).toBe(200);
    expect(((await within.json()) as { discarded: unknown }).discarded).toBeNull();
    const past = await fetch(`${admin}/v1/logs/0/trim`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ toLsn: from + 2 }) });
    expect(past.status).toBe(409);
    const problem = (await past.json()) as { code: string; detail: string; archivedLsn: number };
    expect(problem.code).toBe("CAIRN-TRIM-0004");
    expect(problem.archivedLsn).toBe(from + 1);
    expect(problem.detail).toContain(`would discard LSNs ${from + 2}..${from + 2}`);
    expect(await trimPoint()).toBe(from + 1);
  }, 60_000);
});
