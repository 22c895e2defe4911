// Logs with real processes: a 3-node cluster with replication 2. Appends and reads over the admin
// API of any node, local → replicated reconfiguration, trim gaps, `cairn ctl logs`, and kill -9 of
// a sequencer's node while appending: the log is reconfigured and every acknowledged append is read
// back exactly once, in LSN order.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runCairn, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, json, startCluster, type TestCluster } from "../helpers/cluster.ts";

interface Segment {
  index: number;
  baseLsn: number;
  sealedTail: number | null;
  kind: string;
  sequencer: string;
  nodeset: string[];
  replication: number;
}
interface LogInfo {
  id: number;
  trimPoint: number;
  sealed: boolean;
  segments: Segment[];
}
type Entry = { kind: "record"; lsn: number; data: string; encoding: string } | { kind: "trim-gap"; fromLsn: number; toLsn: number };

let cluster: TestCluster;
const idOf = new Map<NodeProcess, string>();

beforeAll(async () => {
  cluster = await startCluster(3, { replication: 2 });
  for (const n of cluster.nodes) idOf.set(n, (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id);
  // The controller gives every log a segment on a nodeset of 2r − 1 = 3 once all three log-servers answer.
  await eventually("every log on a nodeset of 3", async () => {
    const r = await json<{ logs: LogInfo[] }>(`${cluster.nodes[0]!.addresses.admin}/v1/logs`);
    return r.body.logs.every((l) => l.segments.at(-1)?.nodeset.length === 3 && l.segments.at(-1)?.sealedTail === null) ? true : undefined;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

function alive(): NodeProcess[] {
  return cluster.nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
}

async function append(node: NodeProcess, log: number, records: string[]) {
  return json<{ firstLsn: number; lastLsn: number; code?: string }>(`${node.addresses.admin}/v1/logs/${log}/records`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ records }),
  });
}

async function readAll(node: NodeProcess, log: number, from = 1): Promise<Entry[]> {
  const out: Entry[] = [];
  for (;;) {
    const r = await json<{ entries: Entry[]; nextLsn: number; tailLsn: number }>(`${node.addresses.admin}/v1/logs/${log}/records?from=${from}&limit=500`);
    expect(r.status).toBe(200);
    out.push(...r.body.entries);
    if (r.body.entries.length === 0 || r.body.nextLsn >= r.body.tailLsn) return out;
    from = r.body.nextLsn;
  }
}

async function describeLog(node: NodeProcess, log: number): Promise<{ log: LogInfo; tail: { tailLsn: number; sealed: boolean } }> {
  const r = await json<{ log: LogInfo; tail: { tailLsn: number; sealed: boolean } }>(`${node.addresses.admin}/v1/logs/${log}`);
  expect(r.status).toBe(200);
  return r.body;
}

describe("logs on a 3-node cluster", () => {
  test("records appended through one node are durable and read back through another, in order", async () => {
    const [a, b, c] = cluster.nodes;
    const first = await append(a!, 0, ["alpha", "beta"]);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ firstLsn: 1, lastLsn: 2 });
    const second = await append(b!, 0, ["gamma"]);
    expect(second.body).toMatchObject({ firstLsn: 3, lastLsn: 3 });
    // Binary records travel as base64 and come back as base64.
    const bin = await json<{ firstLsn: number }>(`${c!.addresses.admin}/v1/logs/0/records`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ records: [Buffer.from([0xff, 0x00, 0xfe]).toString("base64")], encoding: "base64" }),
    });
    expect(bin.body.firstLsn).toBe(4);
    const entries = await readAll(c!, 0);
    expect(entries).toEqual([
      { kind: "record", lsn: 1, data: "alpha", encoding: "utf8" },
      { kind: "record", lsn: 2, data: "beta", encoding: "utf8" },
      { kind: "record", lsn: 3, data: "gamma", encoding: "utf8" },
      { kind: "record", lsn: 4, data: "/wD+", encoding: "base64" },
    ]);
    const tail = await json<{ tailLsn: number; sealed: boolean }>(`${b!.addresses.admin}/v1/logs/0/tail`);
    expect(tail.body).toMatchObject({ tailLsn: 5, sealed: false });
    const bad = await json<{ code: string }>(`${a!.addresses.admin}/v1/logs/99/records?from=1`);
    expect([bad.status, bad.body.code]).toEqual([404, "CAIRN-LOG-0013"]);
  }, 60_000);

  test("reconfiguring local → replicated keeps the local segment readable; trim turns the start into a trim gap", async () => {
    const [a, b] = cluster.nodes;
    const toLocal = await json<{ log: LogInfo }>(`${a!.addresses.admin}/v1/logs/1/reconfigure`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "local", nodeset: [idOf.get(b!)] }),
    });
    expect(toLocal.status).toBe(200);
    expect(toLocal.body.log.segments.at(-1)).toMatchObject({ kind: "local", nodeset: [idOf.get(b!)], replication: 1 });
    for (let i = 0; i < 5; i++) expect((await append(a!, 1, [`local-${i}`])).status).toBe(200);
    const toReplicated = await json<{ log: LogInfo }>(`${b!.addresses.admin}/v1/logs/1/reconfigure`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "replicated", replication: 2 }),
    });
    expect(toReplicated.status).toBe(200);
    const segs = toReplicated.body.log.segments;
    expect(segs.at(-1)).toMatchObject({ kind: "replicated", replication: 2 });
    expect(segs.at(-2)).toMatchObject({ kind: "local" });
    for (let i = 0; i < 3; i++) expect((await append(b!, 1, [`replicated-${i}`])).status).toBe(200);
    const texts = (await readAll(a!, 1)).map((e) => (e.kind === "record" ? e.data : "gap"));
    expect(texts).toEqual(["local-0", "local-1", "local-2", "local-3", "local-4", "replicated-0", "replicated-1", "replicated-2"]);

    const trim = await json<{ trimPoint: number }>(`${a!.addresses.admin}/v1/logs/1/trim?force=true`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ toLsn: 3 }),
    });
    expect(trim.body.trimPoint).toBe(3);
    const after = await readAll(b!, 1);
    expect(after[0]).toEqual({ kind: "trim-gap", fromLsn: 1, toLsn: 3 });
    expect(after.slice(1).map((e) => (e.kind === "record" ? e.data : "gap"))).toEqual(["local-3", "local-4", "replicated-0", "replicated-1", "replicated-2"]);
    const from2 = await readAll(b!, 1, 2);
    expect(from2[0]).toEqual({ kind: "trim-gap", fromLsn: 2, toLsn: 3 });
  }, 60_000);

  test("cairn ctl logs: list, describe, find-tail, append, dump; unknown logs are refused with exit code 5", async () => {
    const address = cluster.nodes[0]!.addresses.admin;
    const list = await runCairn(["ctl", "--address", address, "logs", "list"]);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toContain("LOG");
    const appended = await runCairn(["ctl", "--address", address, "--json", "logs", "append", "2", "one", "two"]);
    expect(appended.exitCode).toBe(0);
    const lsns = JSON.parse(appended.stdout) as { firstLsn: number; lastLsn: number };
    expect(lsns.lastLsn - lsns.firstLsn).toBe(1);
    const dump = await runCairn(["ctl", "--address", address, "logs", "dump", "2"]);
    expect(dump.exitCode).toBe(0);
    expect(dump.stdout).toContain(`${lsns.firstLsn}\tone`);
    const described = await runCairn(["ctl", "--address", address, "--json", "logs", "describe", "2"]);
    expect(JSON.parse(described.stdout).tail.tailLsn).toBe(lsns.lastLsn + 1);
    const tail = await runCairn(["ctl", "--address", address, "logs", "find-tail", "2"]);
    expect(tail.stdout).toContain(`tail LSN ${lsns.lastLsn + 1}`);
    const unknown = await runCairn(["ctl", "--address", address, "logs", "describe", "99"]);
    expect(unknown.exitCode).toBe(5);
    expect(unknown.stderr).toContain("CAIRN-LOG-0013");
    const usage = await runCairn(["ctl", "--address", address, "logs", "trim", "2", "--to", "x"]);
    expect(usage.exitCode).toBe(2);
  }, 60_000);

  test("kill -9 of a sequencer's node while appending: the log moves to a new sequencer and every acknowledged append is read back exactly once, in LSN order", async () => {
    const log = 3;
    const seg = (await describeLog(cluster.nodes[0]!, log)).log.segments.at(-1)!;
    const victim = cluster.nodes.find((n) => seg.sequencer.startsWith(`${idOf.get(n)}:`))!;
    expect(victim).toBeDefined();
    const writers = cluster.nodes.filter((n) => n !== victim);
    const acked = new Map<string, number>();
    const outcomes = new Map<string, number>();
    let stop = false;
    let seq = 0;
    const loops = writers.flatMap((node) =>
      [0, 1].map(async () => {
        while (!stop) {
          const text = `w${seq++}`;
          const r = await append(node, log, [text]).catch(() => undefined);
          const key = r === undefined ? "fetch-failed" : r.status === 200 ? "ok" : String(r.body.code);
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          if (r?.status === 200) acked.set(text, r.body.firstLsn);
        }
      }),
    );
    await eventually("appends before the kill", async () => (acked.size >= 30 ? true : undefined), 20_000);
    victim.proc.kill("SIGKILL");
    await victim.proc.exited;
    const killedAt = acked.size;
    const moved = await eventually(
      "a new segment with another sequencer",
      async () => {
        const d = await describeLog(writers[0]!, log);
        const s = d.log.segments.at(-1)!;
        return s.sequencer.startsWith(`${idOf.get(victim)}:`) || s.sealedTail !== null ? undefined : d;
      },
      30_000,
    );
    expect(moved.log.segments.length).toBeGreaterThanOrEqual(2);
    await eventually("appends after the reconfiguration", async () => (acked.size >= killedAt + 30 ? true : undefined), 30_000);
    stop = true;
    await Promise.all(loops);
    const records = (await readAll(writers[1]!, log)).filter((e): e is Extract<Entry, { kind: "record" }> => e.kind === "record");
    expect(records.map((r) => r.lsn)).toEqual(records.map((_, i) => i + 1));
    const seen = new Map<string, number>();
    for (const r of records) {
      expect(seen.has(r.data)).toBe(false); // no record twice, acknowledged or not
      seen.set(r.data, r.lsn);
    }
    for (const [text, at] of acked) expect({ text, at: seen.get(text) }).toEqual({ text, at });
    // Only the appends in flight at the kill (one per writer loop) may have an unknown outcome; the
    // others wait for the new segment.
    const unknown = (outcomes.get("CAIRN-LOG-0014") ?? 0) + (outcomes.get("fetch-failed") ?? 0);
    expect(unknown).toBeLessThanOrEqual(loops.length);
    expect(outcomes.get("ok")).toBe(acked.size);
    expect(alive().length).toBe(2);
  }, 120_000);
});
