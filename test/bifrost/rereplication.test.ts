// Re-replication over an in-process cluster (real SQLite record stores, in-memory metadata): a sealed
// segment with fewer copies than its log's current replication is copied onto more log-servers, its
// nodeset changes only once the copies are durable, and the records stay readable after the only
// original holder is gone.
import { afterEach, describe, expect, test } from "bun:test";
import { LOGS_KEY, findLog, parseLogsDocument, type LogsDocument } from "../../src/bifrost/chain.ts";
import type { LogReadEntry } from "../../src/bifrost/bifrost.ts";
import { logId, lsn, nodeId } from "../../src/ids/index.ts";
import { isCairnError } from "../../src/observability/errors.ts";
import { useTempDirs } from "../logserver/helpers.ts";
import { TestCluster } from "./harness.ts";

const tempDir = useTempDirs();
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const L1 = logId(1);

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function doc(c: TestCluster): Promise<LogsDocument> {
  return parseLogsDocument((await c.metadata.get(LOGS_KEY))!.value);
}

async function readAll(c: TestCluster, via: number): Promise<string[]> {
  const out: LogReadEntry[] = [];
  let cursor = lsn(1);
  for (;;) {
    const r = await c.node(via).bifrost.read(L1, cursor);
    out.push(...r.entries);
    if (r.nextLsn >= r.tailLsn) break;
    cursor = r.nextLsn;
  }
  return out.map((e) => (e.kind === "record" ? `${e.lsn}:${dec(e.payload)}` : `gap ${e.from}-${e.to}`));
}

/** Log 1 on N1 alone (r = 1) with `n` records, then moved to replication 2 on N2,N3. */
async function grown(n: number, options = {}): Promise<{ c: TestCluster; expected: string[] }> {
  const c = (cluster = new TestCluster(tempDir(), 3, 1, [1], options));
  await c.node(1).bifrost.reconfigure(L1, { nodeset: [nodeId(1)], replication: 1, sequencer: nodeId(1) }, { reason: "test" });
  const expected: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) => `r${i + k}`);
    const r = await c.node(1).bifrost.append(L1, batch.map(enc));
    batch.forEach((b, k) => expected.push(`${r.first + k}:${b}`));
  }
  await c.node(1).bifrost.reconfigure(L1, { nodeset: [nodeId(2), nodeId(3)], replication: 2, sequencer: nodeId(2) }, { reason: "test" });
  return { c, expected };
}

describe("re-replication of sealed segments", () => {
  test("a sealed segment on one log-server is copied to a second and stays readable once the first is gone", async () => {
    const { c, expected } = await grown(300, { rereplicationBatchRecords: 64, rereplicationBatchBytes: 700 });
    const plan = await c.node(2).bifrost.rereplicateLog(L1);
    expect(plan?.targets.length).toBe(1);
    expect(plan?.sources).toEqual([nodeId(1)]);
    const seg0 = findLog(await doc(c), L1)!.segments[0]!;
    expect(seg0.params.replication).toBe(2);
    expect(seg0.params.nodeset).toEqual(["N1", plan!.targets[0]!]);
    expect(c.node(2).bifrost.rereplicationProgress(L1)).toMatchObject({ state: "done", copiedRecords: 300, records: 300 });
    // A second trigger finds nothing to do.
    expect(await c.node(2).bifrost.rereplicateLog(L1)).toBeUndefined();
    c.kill(1);
    expect(await readAll(c, 2)).toEqual(expected);
  });

  test("a plan made on a chain read before the copy finished starts no second copy and keeps the finished copy's report", async () => {
    const { c } = await grown(100);
    const plan = await c.node(2).bifrost.rereplicateLog(L1);
    expect(plan).toBeDefined();
    const done = c.node(2).bifrost.rereplicationProgress(L1);
    expect(done).toMatchObject({ state: "done", copiedRecords: 100 });
    // The same plan again (its expected nodeset is the one before the copy): nothing is read or stored.
    const realStore = c.transport.store;
    let stores = 0;
    (c.transport as { store: typeof realStore }).store = async (to, r, s, t) => {
      stores++;
      return realStore(to, r, s, t);
    };
    await c.node(2).bifrost.rereplicate(plan!);
    expect(stores).toBe(0);
    expect(c.node(2).bifrost.rereplicationProgress(L1)).toBe(done);
  });

  test("the copy is paced to bifrost.rereplication-bytes-per-second", async () => {
    // 300 records of 4–5 bytes (~1.3 KB) at 2 KB/s take over half a second; unpaced, a few ms.
    const { c } = await grown(300, { rereplicationBytesPerSecond: 2000 });
    const started = performance.now();
    await c.node(2).bifrost.rereplicateLog(L1);
    expect(performance.now() - started).toBeGreaterThan(400);
    await c.close();
    const fast = await grown(300);
    const t0 = performance.now();
    await fast.c.node(2).bifrost.rereplicateLog(L1);
    expect(performance.now() - t0).toBeLessThan(400);
  });

  test("the nodeset does not change when a target fails before its copy is durable", async () => {
    const { c } = await grown(200, { rereplicationBatchRecords: 32 });
    const before = findLog(await doc(c), L1)!.segments[0]!;
    // The target dies after the first stores: the copy fails and the chain keeps the old nodeset.
    const realStore = c.transport.store;
    let stores = 0;
    (c.transport as { store: typeof realStore }).store = async (to, r, s, t) => {
      if (r.repair === true && ++stores === 3) c.down.add(to);
      return realStore(to, r, s, t);
    };
    const err = await c.node(2).bifrost.rereplicateLog(L1).catch((e: unknown) => e);
    expect(isCairnError(err)).toBe(true);
    expect(c.node(2).bifrost.rereplicationProgress(L1)?.state).toBe("failed");
    expect(findLog(await doc(c), L1)!.segments[0]).toEqual(before);
  });

  test("a record found on no source fails the copy with CAIRN-LOG-0022 and leaves the chain alone", async () => {
    const { c } = await grown(20);
    const before = findLog(await doc(c), L1)!.segments[0]!;
    c.down.add(nodeId(1));
    const err = await c.node(2).bifrost.rereplicateLog(L1).catch((e: unknown) => e);
    expect(isCairnError(err) && err.code).toBe("CAIRN-LOG-0022");
    expect(findLog(await doc(c), L1)!.segments[0]).toEqual(before);
  });

  test("with no log-server outside the nodeset the trigger fails with CAIRN-LOG-0024", async () => {
    const { c } = await grown(10);
    c.down.add(nodeId(2));
    c.down.add(nodeId(3));
    const err = await c.node(1).bifrost.rereplicateLog(L1).catch((e: unknown) => e);
    expect(isCairnError(err) && err.code).toBe("CAIRN-LOG-0024");
  });
});
