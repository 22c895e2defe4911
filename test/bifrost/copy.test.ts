// The re-replication copy core (replicated/copy.ts) driven by hand, one answer at a time: it reads
// the next window while earlier windows' stores are in flight, never has more than maxStoringWindows
// windows' stores in flight, splits a window into stores of at most storeBytes, and reports done
// only after the last store is answered.
import { describe, expect, test } from "bun:test";
import { CopyTask, type CopyEvent, type CoreRequest, type RpcOutcome } from "../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset, nodeId } from "../../src/ids/index.ts";

const N1 = nodeId(1);
const N2 = nodeId(2);
const enc = (s: string) => new TextEncoder().encode(s);

function take(core: CopyTask): { requests: CoreRequest[]; events: CopyEvent[] } {
  if (!core.hasReady()) return { requests: [], events: [] };
  const r = core.ready();
  core.advance();
  return { requests: [...r.requests], events: [...r.events] };
}

const sealed: RpcOutcome = { ok: true, rpc: "seal", response: { authoritative: true } } as never;
const stored: RpcOutcome = { ok: true, rpc: "store", response: { status: "stored" } } as never;
function records(from: number, to: number, bytes = 0): RpcOutcome {
  const entries = [];
  for (let o = from; o <= to; o++) entries.push({ kind: "data", offset: logletOffset(o), payload: enc(`r${o}`.padEnd(bytes, ".")) });
  return { ok: true, rpc: "getRecords", response: { entries, nextOffset: logletOffset(to + 1) } } as never;
}
function only(reqs: CoreRequest[], rpc: CoreRequest["rpc"]): CoreRequest[] {
  return reqs.filter((r) => r.rpc === rpc);
}

describe("re-replication copy core", () => {
  test("reads the next window while the previous window's stores are in flight, one window storing at a time", () => {
    const core = new CopyTask(
      { loglet: asLogletId("0_0"), sequencer: generationalNodeId(1, 1), sources: [N1], targets: [N2], from: 1, end: 7 },
      { batchRecords: 2, batchBytes: 1 << 20, bytesPerTick: 1 << 20, requestTimeoutTicks: 100, maxStoringWindows: 1 },
    );
    const seal = take(core).requests;
    expect(seal.map((r) => [r.rpc, r.to])).toEqual([["seal", N2]]);
    core.receive(seal[0]!.id, sealed);

    const read1 = take(core).requests;
    expect(read1.map((r) => [r.rpc, (r.request as { from: number }).from])).toEqual([["getRecords", 1]]);
    core.receive(read1[0]!.id, records(1, 2));

    // Window 1's store and window 2's read leave together.
    const out1 = take(core).requests;
    const store1 = only(out1, "store");
    const read2 = only(out1, "getRecords");
    expect(store1.map((r) => (r.request as { firstOffset: number }).firstOffset)).toEqual([1]);
    expect(read2.map((r) => (r.request as { from: number }).from)).toEqual([3]);

    // Window 2 is read, but its store waits for window 1's answer.
    core.receive(read2[0]!.id, records(3, 4));
    expect(only(take(core).requests, "store")).toEqual([]);

    core.receive(store1[0]!.id, stored);
    const out2 = take(core);
    expect(out2.events).toEqual([{ kind: "progress", copiedRecords: 2 }]);
    const store2 = only(out2.requests, "store");
    const read3 = only(out2.requests, "getRecords");
    expect(store2.map((r) => (r.request as { firstOffset: number }).firstOffset)).toEqual([3]);
    expect(read3.map((r) => (r.request as { from: number }).from)).toEqual([5]);

    core.receive(read3[0]!.id, records(5, 6));
    expect(only(take(core).requests, "store")).toEqual([]);
    core.receive(store2[0]!.id, stored);
    const out3 = take(core);
    const store3 = only(out3.requests, "store");
    expect(store3.map((r) => (r.request as { firstOffset: number }).firstOffset)).toEqual([5]);
    expect(out3.events).toEqual([{ kind: "progress", copiedRecords: 4 }]);
    // Every window is read: nothing is done until the last store is answered.
    expect(core.hasReady()).toBe(false);
    core.receive(store3[0]!.id, stored);
    expect(take(core).events).toEqual([
      { kind: "progress", copiedRecords: 6 },
      { kind: "done", copiedRecords: 6 },
    ]);
  });

  test("with two windows storing, a third waits for either; a window goes out as stores of at most storeBytes", () => {
    // Records of 10 bytes ("r1........"), windows of 4, stores of at most 25 bytes: 2 records each.
    const core = new CopyTask(
      { loglet: asLogletId("0_0"), sequencer: generationalNodeId(1, 1), sources: [N1], targets: [N2], from: 1, end: 13 },
      { batchRecords: 4, batchBytes: 1 << 20, bytesPerTick: 1 << 20, requestTimeoutTicks: 100, maxStoringWindows: 2, storeBytes: 25 },
    );
    core.receive(take(core).requests[0]!.id, sealed);
    const firstOffsets = (reqs: CoreRequest[]) => only(reqs, "store").map((r) => [(r.request as { firstOffset: number }).firstOffset, (r.request as unknown as { payloads: unknown[] }).payloads.length]);
    core.receive(take(core).requests[0]!.id, records(1, 4, 10));
    const out1 = take(core).requests;
    expect(firstOffsets(out1)).toEqual([[1, 2], [3, 2]]);
    core.receive(only(out1, "getRecords")[0]!.id, records(5, 8, 10));
    // Window 2's stores go while window 1's are in flight; window 3 is read meanwhile.
    const out2 = take(core).requests;
    expect(firstOffsets(out2)).toEqual([[5, 2], [7, 2]]);
    core.receive(only(out2, "getRecords")[0]!.id, records(9, 12, 10));
    // Two windows storing: window 3 waits.
    expect(only(take(core).requests, "store")).toEqual([]);
    // Window 2 answers first (out of order): it counts, and window 3 goes.
    for (const r of only(out2, "store")) core.receive(r.id, stored);
    const out3 = take(core);
    expect(out3.events).toEqual([{ kind: "progress", copiedRecords: 4 }]);
    expect(firstOffsets(out3.requests)).toEqual([[9, 2], [11, 2]]);
    for (const r of only(out3.requests, "store")) core.receive(r.id, stored);
    // Window 1 is still unanswered: no done.
    expect(take(core).events).toEqual([{ kind: "progress", copiedRecords: 8 }]);
    const [a, b] = only(out1, "store");
    core.receive(a!.id, stored);
    expect(core.hasReady()).toBe(false);
    core.receive(b!.id, stored);
    expect(take(core).events).toEqual([
      { kind: "progress", copiedRecords: 12 },
      { kind: "done", copiedRecords: 12 },
    ]);
  });

  test("a failed store of the storing window fails the copy while the next window is being read", () => {
    const core = new CopyTask(
      { loglet: asLogletId("0_0"), sequencer: generationalNodeId(1, 1), sources: [N1], targets: [N2], from: 1, end: 5 },
      { batchRecords: 2, batchBytes: 1 << 20, bytesPerTick: 1 << 20, requestTimeoutTicks: 100 },
    );
    core.receive(take(core).requests[0]!.id, sealed);
    core.receive(take(core).requests[0]!.id, records(1, 2));
    const out = take(core).requests;
    core.receive(only(out, "store")[0]!.id, { ok: false, error: "disk full" });
    const events = take(core).events;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: "failed", reason: "target-failed", node: N2 });
    // The read in flight is ignored once the copy failed.
    core.receive(only(out, "getRecords")[0]!.id, records(3, 4));
    expect(core.hasReady()).toBe(false);
  });

  test("pacing moves bytesPerTick on average: what a tick adds beyond a window is not lost", () => {
    // 10 windows of 10 records × 100 bytes at 300 bytes per tick: 10 000 bytes take about 33 ticks.
    // Capping the credit at one window (1000) dropped 200 bytes per window: 4 ticks each, 40 in all.
    const { ticks } = runPaced(300, () => false);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor((10_000 - 2 * 1300) / 300));
    expect(ticks).toBeLessThanOrEqual(Math.ceil(10_000 / 300) + 1);
  });

  test("a lagged tick adds no credit and drops the saved credit: no window is stored until a punctual tick", () => {
    // Windows of 1000 bytes at 2000 bytes per tick: without lag, one window per tick or better.
    const punctual = runPaced(2000, () => false);
    expect(punctual.ticks).toBeLessThanOrEqual(6);
    // Every other tick late: only the punctual ones pay for windows, so the copy takes about twice the ticks.
    const halfLate = runPaced(2000, (t) => t % 2 === 0);
    expect(halfLate.storesAfterLag).toBe(0);
    expect(halfLate.ticks).toBeGreaterThanOrEqual(2 * punctual.ticks - 2);
  });
});

/**
 * Copies 100 records of 100 bytes in windows of 10, every request answered at once (only the pacing
 * holds the copy back); `laggedTick(n)` says whether tick n comes late. Counts ticks to done.
 */
function runPaced(bytesPerTick: number, laggedTick: (tick: number) => boolean): { ticks: number; storesAfterLag: number } {
  const core = new CopyTask(
    { loglet: asLogletId("0_0"), sequencer: generationalNodeId(1, 1), sources: [N1], targets: [N2], from: 1, end: 101 },
    { batchRecords: 10, batchBytes: 1000, bytesPerTick, requestTimeoutTicks: 1000 },
  );
  let ticks = 0;
  let done = false;
  let storesAfterLag = 0;
  let lagging = false;
  while (!done && ticks < 200) {
    for (let more = true; more; ) {
      const out = take(core);
      more = out.requests.length > 0;
      if (out.events.some((e) => e.kind === "done")) done = true;
      for (const r of out.requests) {
        if (r.rpc === "seal") core.receive(r.id, sealed);
        else if (r.rpc === "store") {
          if (lagging) storesAfterLag++;
          core.receive(r.id, stored);
        } else if (r.rpc === "getRecords") {
          const q = r.request as { from: number; to: number };
          core.receive(r.id, records(q.from, q.to, 100));
        }
      }
    }
    if (!done) {
      lagging = laggedTick(ticks);
      if (lagging) core.lagged();
      core.tick();
      ticks++;
    }
  }
  expect(done).toBe(true);
  return { ticks, storesAfterLag };
}
