// The growth story with real processes (DESIGN §1 step 3): one node provisioned with replication 1,
// records appended to log 0; two nodes join; the operator raises log 0 to replication 2; the segment
// written before the growth is re-replicated in the background; kill -9 of the first node; every
// acknowledged record is still read back, compared record by record.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { runCairn, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, json, servers, startCluster, type TestCluster } from "../helpers/cluster.ts";

interface Segment {
  index: number;
  sealedTail: number | null;
  nodeset: string[];
  replication: number;
}
interface LogInfo {
  id: number;
  segments: Segment[];
  underReplicatedRecords: number;
  rereplication: { state: string; copiedRecords: number; records: number } | null;
}
type Entry = { kind: "record"; lsn: number; data: string } | { kind: "trim-gap"; fromLsn: number; toLsn: number };

let cluster: TestCluster;
/** Every acknowledged record of log 0, in LSN order (the tests run in order and share it). */
const acked: Array<[number, string]> = [];

beforeAll(async () => {
  cluster = await startCluster(1, { replication: 1 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

async function append(node: NodeProcess, records: string[]): Promise<Array<[number, string]>> {
  const r = await json<{ firstLsn: number; lastLsn: number }>(`${node.addresses.admin}/v1/logs/0/records`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ records }),
  });
  expect(r.status).toBe(200);
  return records.map((d, i) => [r.body.firstLsn + i, d]);
}

async function readAll(node: NodeProcess): Promise<Array<[number, string]>> {
  const out: Array<[number, string]> = [];
  let from = 1;
  for (;;) {
    const r = await json<{ entries: Entry[]; nextLsn: number; tailLsn: number; code?: string }>(`${node.addresses.admin}/v1/logs/0/records?from=${from}&limit=500`);
    if (r.status !== 200) throw new Error(`read answered ${r.status} ${JSON.stringify(r.body)}`);
    for (const e of r.body.entries) if (e.kind === "record") out.push([e.lsn, e.data]);
    if (r.body.entries.length === 0 || r.body.nextLsn >= r.body.tailLsn) return out;
    from = r.body.nextLsn;
  }
}

async function log0(node: NodeProcess): Promise<LogInfo> {
  const r = await json<{ log: LogInfo }>(`${node.addresses.admin}/v1/logs/0`);
  if (r.status !== 200) throw new Error(`describe answered ${r.status}`);
  return r.body.log;
}

describe("growth from one node to three", () => {
  test("the segment written before the growth is re-replicated and survives kill -9 of the first node", async () => {
    const first = cluster.nodes[0]!;
    await eventually("log 0 has a segment", async () => ((await log0(first)).segments.length > 0 ? true : undefined));
    for (let i = 0; i < 20; i++) acked.push(...(await append(first, [`before-${i}-a`, `before-${i}-b`])));

    await cluster.start("n2");
    await cluster.start("n3");
    await eventually("3 metadata members", async () => {
      const s = await servers(first.addresses.admin);
      return s.filter((x) => x.state === "member" && x.status?.state === "member").length === 3 ? true : undefined;
    });
    const raised = await runCairn(["ctl", "--address", first.addresses.admin, "logs", "reconfigure", "0", "--kind", "replicated", "--replication", "2"]);
    expect(raised.stderr + raised.stdout).toContain("reconfigured");
    expect(raised.exitCode).toBe(0);
    acked.push(...(await append(cluster.nodes[1]!, ["after-growth"])));

    // The controller (on the metadata leader) copies segment 0 onto a second log-server.
    const done = await eventually(
      "segment 0 re-replicated",
      async () => {
        const l = await log0(first);
        const s0 = l.segments[0]!;
        return s0.replication === 2 && s0.nodeset.length >= 2 && l.underReplicatedRecords === 0 ? l : undefined;
      },
      60_000,
    );
    expect(done.segments[0]!.sealedTail).toBe(41);
    const described = await runCairn(["ctl", "--address", cluster.nodes[2]!.addresses.admin, "logs", "describe", "0"]);
    expect(described.exitCode).toBe(0);
    expect(described.stdout).toContain("Under-replicated records: 0");
    // The metadata leader's controller copied the segment and publishes the count each round.
    await eventually("the under-replicated gauge of log 0 at 0 on the node that copied", async () => {
      for (const n of cluster.nodes) {
        const metrics = await (await fetch(`${n.addresses.admin}/metrics`)).text();
        if (/cairn_bifrost_rereplicated_records_total\{log="0"\} 40\n/.test(metrics) && /cairn_bifrost_under_replicated_records\{log="0"\} 0\n/.test(metrics)) return true;
      }
      return undefined;
    }, 10_000);
    // An operator's trigger with nothing left to copy is a success.
    const again = await runCairn(["ctl", "--address", first.addresses.admin, "--json", "logs", "rereplicate", "0"]);
    expect(again.exitCode).toBe(0);
    expect(JSON.parse(again.stdout).log.underReplicatedRecords).toBe(0);

    await first.stop("SIGKILL");
    const survivor = cluster.nodes[1]!;
    const read = await eventually("every acknowledged record read back from a survivor", async () => readAll(survivor), 30_000);
    expect(read).toEqual(acked);
    const more = await eventually("appends after the kill", async () => append(survivor, ["after-kill"]).catch(() => undefined), 30_000);
    acked.push(...more);
    expect(await readAll(cluster.nodes[2]!)).toEqual(acked);
  }, 180_000);

  test("a log-server whose store is wiped comes back in data-loss mode, is moved off, and leaves it with every record still readable", async () => {
    // The first node back (same disk): three live log-servers again.
    const first = await cluster.start("n1");
    const third = cluster.nodes[2]!;
    // Every log at replication 2 (logs 1–3 still continue the local segments of the single node).
    // (A reconfiguration racing the controller's own — the first node just restarted — is retried.)
    for (const log of [1, 2, 3]) {
      await eventually(`log ${log} at replication 2`, async () => {
        const r = await json(`${first.addresses.admin}/v1/logs/${log}/reconfigure`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ kind: "replicated", replication: 2 }),
        });
        return r.status === 200 ? true : undefined;
      }, 30_000);
    }
    acked.push(...(await append(first, ["before-wipe"])));
    await third.stop("SIGTERM");
    for (const f of ["logserver.sqlite", "logserver.sqlite-wal", "logserver.sqlite-shm", "logserver.sqlite.created"]) rmSync(join(third.dataDir, f), { force: true });
    // Ready only once it left data-loss mode: every segment that named it was moved or re-replicated.
    const back = await cluster.start("n3");
    expect(back.log()).toContain("data-loss mode");
    expect(back.log()).toContain("leaves data-loss mode");
    const metrics = await (await fetch(`${back.addresses.admin}/metrics`)).text();
    expect(metrics).toContain("cairn_logserver_store_recovering 0");
    await eventually("log 0 fully replicated again", async () => ((await log0(first)).underReplicatedRecords === 0 ? true : undefined), 30_000);
    acked.push(...(await append(back, ["after-wipe"])));
    expect(await readAll(back)).toEqual(acked);
    expect(await readAll(first)).toEqual(acked);
  }, 180_000);

  test("a node whose whole data directory is wiped rejoins under its name in data-loss mode and leaves it with every record still readable", async () => {
    const third = cluster.nodes[2]!;
    await third.stop("SIGTERM");
    rmSync(third.dataDir, { recursive: true, force: true });
    // A new incarnation of n3: the cluster knows the name, so the new, empty store is no evidence.
    // It answers /ready while still joining, so wait for it to find out and then to recover.
    const back = await cluster.start("n3");
    // The log file keeps earlier incarnations' lines: look at this one's only.
    const latest = () => back.log().slice(back.log().lastIndexOf("starting node n3"));
    await eventually("n3 left data-loss mode", async () => (latest().includes("leaves data-loss mode") ? true : undefined), 60_000).catch((e: unknown) => {
      console.error(latest().split("\n").filter((l) => !l.includes('"debug"')).slice(0, 60).join("\n"));
      throw e;
    });
    expect(latest()).toContain("enters data-loss mode");
    const first = cluster.nodes[0]!;
    await eventually("every log fully replicated again", async () => ((await log0(first)).underReplicatedRecords === 0 ? true : undefined), 30_000);
    acked.push(...(await append(back, ["after-dir-wipe"])));
    expect(await readAll(back)).toEqual(acked);
    expect(await readAll(cluster.nodes[1]!)).toEqual(acked);
  }, 180_000);
});
