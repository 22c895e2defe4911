// Bifrost over an in-process cluster (real SQLite record stores, in-memory metadata): chains of
// segments by compare-and-set, appends through any node, reads across segments with explicit trim
// gaps, seal, trim, reconfiguration (local → replicated included) and sequencer loss.
import { afterEach, describe, expect, test } from "bun:test";
import { findLog, LOGS_KEY, parseLogsDocument, segmentParams, tailSegment, type LogsDocument } from "../../src/bifrost/chain.ts";
import { recoverLoglet } from "../../src/bifrost/replicated/driver.ts";
import { SeededRandom } from "../../src/bifrost/replicated/random.ts";
import type { LogReadEntry } from "../../src/bifrost/bifrost.ts";
import { logId, logletOffset, lsn, nodeId } from "../../src/ids/index.ts";
import { LogStore } from "../../src/logserver/index.ts";
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

function start(count: number, replication: number, options = {}): TestCluster {
  cluster = new TestCluster(tempDir(), count, replication, [1, 2], options);
  return cluster;
}

async function doc(c: TestCluster): Promise<LogsDocument> {
  return parseLogsDocument((await c.metadata.get(LOGS_KEY))!.value);
}

function texts(entries: LogReadEntry[]): string[] {
  return entries.map((e) => (e.kind === "record" ? `${e.lsn}:${dec(e.payload)}` : `gap ${e.from}-${e.to}`));
}

async function readAll(c: TestCluster, via: number, from = 1): Promise<LogReadEntry[]> {
  const out: LogReadEntry[] = [];
  let cursor = lsn(from);
  for (;;) {
    const r = await c.node(via).bifrost.read(L1, cursor, { limit: 50 });
    out.push(...r.entries);
    if (r.nextLsn >= r.tailLsn || r.entries.length === 0) return out;
    cursor = r.nextLsn;
  }
}

describe("bifrost chains", () => {
  test("the first segment is added by compare-and-set and appends through any node get dense LSNs from 1", async () => {
    const c = start(3, 2);
    const chain = await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(2) }, { reason: "test" });
    const seg = tailSegment(chain)!;
    expect(seg).toMatchObject({ index: 0, baseLsn: 1, kind: "replicated", placement: "auto", params: { loglet: "1_0", sequencer: "N2:1", replication: 2 } });
    expect(seg.params.nodeset).toHaveLength(3); // 2r − 1
    // Node 1 and 3 forward to the sequencer on node 2; node 2 appends itself.
    const a = await c.node(1).bifrost.append(L1, [enc("a"), enc("b")]);
    const b = await c.node(2).bifrost.append(L1, [enc("c")]);
    const d = await c.node(3).bifrost.append(L1, [enc("d")]);
    expect([a, b, d]).toEqual([{ first: lsn(1), last: lsn(2) }, { first: lsn(3), last: lsn(3) }, { first: lsn(4), last: lsn(4) }]);
    expect(texts(await readAll(c, 3))).toEqual(["1:a", "2:b", "3:c", "4:d"]);
    expect(await c.node(1).bifrost.findTail(L1)).toMatchObject({ tailLsn: 5, sealed: false, segment: 0 });
  });

  test("reconfiguration while appending: the old segment stays readable, LSNs continue, nothing acknowledged is lost or doubled", async () => {
    const c = start(3, 2);
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(1) }, { reason: "test" });
    const acked: Array<{ text: string; lsn: number }> = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const text = `w${i}`;
        const r = await c.node(3).bifrost.append(L1, [enc(text)]);
        acked.push({ text, lsn: r.first });
      }
    })();
    await Bun.sleep(100);
    const after = await c.node(2).bifrost.reconfigure(L1, { sequencer: nodeId(3), replication: 3 }, { reason: "test" });
    expect(after.segments).toHaveLength(2);
    expect(after.segments[0]!.sealedTail).toBe(after.segments[1]!.baseLsn);
    await Bun.sleep(100);
    stop = true;
    await writer;
    const all = await readAll(c, 2);
    const records = all.filter((e) => e.kind === "record");
    expect(records.map((e) => e.lsn)).toEqual(records.map((_, i) => lsn(i + 1)));
    const byText = new Map(records.map((e) => [dec(e.payload), e.lsn]));
    expect(byText.size).toBe(records.length);
    for (const a of acked) expect(byText.get(a.text)).toBe(lsn(a.lsn));
    expect(acked.some((a) => a.lsn >= after.segments[1]!.baseLsn)).toBe(true);
  });

  test("an idle reader's long poll at the sequencer ends with the next commit (or a seal), not at its deadline", async () => {
    // A wait of ten minutes: were the commit not to wake it, the test would time out.
    const c = start(3, 2, { maxTailWaitMs: 600_000 });
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(2) }, { reason: "test" });
    await c.node(2).bifrost.append(L1, [enc("a"), enc("b")]);
    const none = new AbortController();
    // Records at or past LSN 3 are asked for: none yet, so a short wait ends idle.
    expect(await c.node(1).bifrost.waitForRecords(L1, lsn(3), 50, none.signal)).toBe("idle");
    // Already there: answered at once.
    expect(await c.node(1).bifrost.waitForRecords(L1, lsn(2), 600_000, none.signal)).toBe("records");
    const waiting = c.node(1).bifrost.waitForRecords(L1, lsn(3), 600_000, none.signal);
    await Bun.sleep(20);
    await c.node(3).bifrost.append(L1, [enc("c")]);
    expect(await waiting).toBe("records");
    // A seal (a new segment elsewhere) ends a wait too; the sequencer's own node never long-polls.
    const waiting2 = c.node(1).bifrost.waitForRecords(L1, lsn(4), 600_000, none.signal);
    await Bun.sleep(20);
    await c.node(3).bifrost.reconfigure(L1, { sequencer: nodeId(3) }, { reason: "test" });
    await c.node(2).bifrost.chain(L1, true); // node 2 learns the seal and retires its appender
    expect(await waiting2).toBe("records");
    expect(await c.node(3).bifrost.waitForRecords(L1, lsn(4), 600_000, none.signal)).toBe("unavailable");
    // An aborted wait ends at once (node 1 now waits at the new sequencer, node 3).
    await c.node(1).bifrost.chain(L1, true);
    const ac = new AbortController();
    const aborted = c.node(1).bifrost.waitForRecords(L1, lsn(4), 600_000, ac.signal);
    ac.abort();
    expect(await aborted).toBe("unavailable");
  });

  test("a sequencer asked for the tail of a segment it no longer sequences (sealed, slot retired) says sealed, never offset 1", async () => {
    // Regression (chaos log checker, seed 4103): a reader whose chain still showed the segment open
    // asked its sequencer, which had retired the segment's appender after the seal, and got
    // committed tail 1: the read reported the segment's base LSN as the log's tail, below LSNs
    // acknowledged before the read began.
    const c = start(3, 2);
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(2) }, { reason: "test" });
    for (let i = 0; i < 4; i++) await c.node(2).bifrost.append(L1, [enc(`s${i}`)]);
    const open = await c.node(2).bifrost.sequencerTail({ log: L1, segment: 0 });
    expect(open).toEqual({ status: "ok", committedTail: 5, sealed: false });
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(3) }, { reason: "test" });
    await c.node(2).bifrost.chain(L1, true); // node 2 learns the seal and retires its appender
    const sealed = await c.node(2).bifrost.sequencerTail({ log: L1, segment: 0 });
    expect(sealed.sealed).toBe(true);
    await c.node(3).bifrost.append(L1, [enc("after")]);
    expect(await c.node(1).bifrost.findTail(L1)).toMatchObject({ tailLsn: 6, segment: 1 });
    expect(texts(await readAll(c, 1))).toEqual(["1:s0", "2:s1", "3:s2", "4:s3", "5:after"]);
  });

  test("a sequencer whose nodeset stores refuse writes moves the log to a new segment once they take writes again", async () => {
    // Regression (chaos fsync-error nemesis, seeds 101 and 112): two of three log-servers disabled
    // their stores after a failed fsync; the sequencer went write-unavailable, every node stayed
    // alive, so nothing moved the log and it took no appends even after the stores came back.
    const c = start(3, 2, { appendTimeoutMs: 3_000 });
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(1) }, { reason: "test" });
    await c.node(1).bifrost.append(L1, [enc("before")]);
    // The disk fault: a write failed, so these stores refuse writes until they are opened again.
    for (const i of [2, 3]) (c.node(i).store as unknown as { writeFailure: Error }).writeFailure = new Error("EIO (injected)");
    const stuck = await c.node(1).bifrost.append(L1, [enc("during")]).catch((e: unknown) => e);
    expect(isCairnError(stuck, "LOG_WRITE_UNAVAILABLE") || isCairnError(stuck, "LOG_APPEND_INDETERMINATE") || isCairnError(stuck, "LOG_SEALED")).toBe(true);
    // The log-servers restart their stores (same files).
    for (const i of [2, 3]) {
      const n = c.node(i);
      const path = n.store.path;
      await n.store.close();
      n.store = LogStore.open({ path, sync: false });
    }
    const after = await c.node(1).bifrost.append(L1, [enc("after")]);
    const chain = await c.node(1).bifrost.chain(L1, true);
    expect(chain.segments.length).toBeGreaterThan(1);
    const all = texts(await readAll(c, 2));
    expect(all).toContain("1:before");
    expect(all).toContain(`${after.first}:after`);
  });

  test("a segment whose log-servers were sealed by a sealer that stopped before recording the tail is finished by its sequencer", async () => {
    // Regression (chaos test, seed 20240601): a new partition leader sealed the log-servers of the
    // log's open segment to move its sequencer, and was killed before writing the sealed tail to the
    // chain. The old sequencer lived, so the log controller saw nothing wrong; every append waited
    // out its timeout, for good.
    const c = start(3, 2, { appendTimeoutMs: 8_000 });
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(1) }, { reason: "test" });
    await c.node(1).bifrost.append(L1, [enc("before")]);
    const open = tailSegment(await c.node(1).bifrost.chain(L1, true))!;
    // The sealer's first half only: the log-servers are sealed; the chain is not touched.
    const sealed = await recoverLoglet(segmentParams(open), c.transport, { random: new SeededRandom(7) });
    expect(sealed.tail).toBe(logletOffset(2));
    expect(tailSegment(await c.node(1).bifrost.chain(L1, true))!.sealedTail).toBeUndefined();
    // Through the sequencer itself and forwarded from another node, in flight together.
    const [a, b] = await Promise.all([c.node(1).bifrost.append(L1, [enc("after-1")]), c.node(3).bifrost.append(L1, [enc("after-3")])]);
    const chain = await c.node(2).bifrost.chain(L1, true);
    expect(chain.segments.find((s) => s.index === open.index)!.sealedTail).toBe(2);
    expect(chain.segments.length).toBe(2);
    expect([a.first, b.first].sort()).toEqual([lsn(2), lsn(3)]);
    expect(texts(await readAll(c, 2)).sort()).toEqual(["1:before", `${a.first}:after-1`, `${b.first}:after-3`].sort());
    // A second append goes straight to the new segment.
    expect(await c.node(1).bifrost.append(L1, [enc("next")])).toEqual({ first: lsn(4), last: lsn(4) });
  });

  test("local → replicated is a reconfiguration: the local segment stays readable", async () => {
    const c = start(3, 2);
    const local = await c.node(1).bifrost.reconfigure(L1, { kind: "local", nodeset: [nodeId(2)] }, { reason: "test" });
    expect(tailSegment(local)).toMatchObject({ kind: "local", placement: "manual", params: { sequencer: "N2:1", nodeset: ["N2"], replication: 1 } });
    for (let i = 0; i < 5; i++) await c.node(1).bifrost.append(L1, [enc(`l${i}`)]);
    const replicated = await c.node(3).bifrost.reconfigure(L1, { kind: "replicated", replication: 2 }, { reason: "test" });
    expect(tailSegment(replicated)).toMatchObject({ kind: "replicated", baseLsn: 6, placement: "auto", params: { replication: 2 } });
    for (let i = 0; i < 3; i++) await c.node(1).bifrost.append(L1, [enc(`r${i}`)]);
    expect(texts(await readAll(c, 3))).toEqual(["1:l0", "2:l1", "3:l2", "4:l3", "5:l4", "6:r0", "7:r1", "8:r2"]);
  });

  test("trim: reads below the trim point report one trim gap, fully trimmed segments leave the chain", async () => {
    const c = start(3, 2);
    await c.node(1).bifrost.reconfigure(L1, {}, { reason: "test" });
    for (let i = 1; i <= 4; i++) await c.node(1).bifrost.append(L1, [enc(`a${i}`)]);
    await c.node(1).bifrost.reconfigure(L1, {}, { reason: "test" });
    for (let i = 5; i <= 8; i++) await c.node(2).bifrost.append(L1, [enc(`a${i}`)]);
    const t = await c.node(3).bifrost.trim(L1, lsn(5));
    expect(t.trimPoint).toBe(lsn(5));
    const d = findLog(await doc(c), L1)!;
    expect(d.trimPoint).toBe(5);
    expect(d.segments.map((s) => s.index)).toEqual([1]); // segment 0 held 1..4: gone
    expect(texts(await readAll(c, 1))).toEqual(["gap 1-5", "6:a6", "7:a7", "8:a8"]);
    expect(texts(await readAll(c, 2, 3))).toEqual(["gap 3-5", "6:a6", "7:a7", "8:a8"]);
    // Trimming beyond the tail clips to the last record; a lower trim changes nothing.
    expect((await c.node(1).bifrost.trim(L1, lsn(100))).trimPoint).toBe(lsn(8));
    expect((await c.node(1).bifrost.trim(L1, lsn(2))).trimPoint).toBe(lsn(8));
    expect(texts(await readAll(c, 1))).toEqual(["gap 1-8"]);
    const again = await c.node(1).bifrost.append(L1, [enc("z")]);
    expect(again.first).toBe(lsn(9));
  });

  test("seal: the tail segment gets its sealed tail and appends wait for a reconfiguration", async () => {
    const c = start(3, 2, { appendTimeoutMs: 300 });
    await c.node(1).bifrost.reconfigure(L1, {}, { reason: "test" });
    await c.node(2).bifrost.append(L1, [enc("x"), enc("y")]);
    const sealed = await c.node(3).bifrost.seal(L1);
    expect(tailSegment(sealed)!.sealedTail).toBe(3);
    expect(await c.node(1).bifrost.findTail(L1)).toMatchObject({ tailLsn: 3, sealed: true });
    const err = await c.node(1).bifrost.append(L1, [enc("z")]).catch((e: unknown) => e);
    expect(isCairnError(err, "LOG_SEALED")).toBe(true);
    await c.node(1).bifrost.reconfigure(L1, {}, { reason: "test" });
    expect((await c.node(1).bifrost.append(L1, [enc("z")])).first).toBe(lsn(3));
  });

  test("operator placements are checked: dead nodes, too few nodes, unknown logs", async () => {
    const c = start(3, 2);
    c.kill(3);
    const dead = await c.node(1).bifrost.reconfigure(L1, { nodeset: [nodeId(1), nodeId(3)] }, { reason: "test" }).catch((e: unknown) => e);
    expect(isCairnError(dead, "LOG_INVALID_RECONFIGURATION")).toBe(true);
    const small = await c.node(1).bifrost.reconfigure(L1, { nodeset: [nodeId(1)], replication: 2 }, { reason: "test" }).catch((e: unknown) => e);
    expect(isCairnError(small, "LOG_INVALID_RECONFIGURATION")).toBe(true);
    const unknown = await c.node(1).bifrost.findTail(logId(77)).catch((e: unknown) => e);
    expect(isCairnError(unknown, "LOG_UNKNOWN_LOG")).toBe(true);
  });

  test("many logs reconfigured at once share the logs document without losing an update", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1, 2, 3, 4, 5, 6, 7, 8]);
    const c = cluster;
    await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => c.node(1 + (i % 3)).bifrost.reconfigure(logId(i), {}, { reason: "test" })));
    const d = await doc(c);
    expect(d.logs.map((l) => l.segments.length)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // Sequencers spread over the nodes.
    expect(new Set(d.logs.map((l) => l.segments[0]!.params.sequencer.split(":")[0])).size).toBe(3);
  });
});
