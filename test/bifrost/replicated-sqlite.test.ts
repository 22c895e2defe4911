// The replicated loglet end to end in one process: drivers over real SQLite log stores through
// localTransport (the same LogServerTransport the peer fabric will implement).
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  ReplicatedLogletAppender,
  SeededRandom,
  localTransport,
  readLoglet,
  recoverLoglet,
  sealLoglet,
  type LogServerTransport,
  type ReplicatedLogletParams,
} from "../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset, nodeId, type NodeId } from "../../src/ids/index.ts";
import { LogStore, type LogServerApi } from "../../src/logserver/index.ts";
import { isCairnError } from "../../src/observability/errors.ts";
import { useTempDirs } from "../logserver/helpers.ts";

const tempDir = useTempDirs();

const N = [nodeId(1), nodeId(2), nodeId(3)];
const PARAMS: ReplicatedLogletParams = { loglet: asLogletId("3_1"), sequencer: generationalNodeId(1, 4), nodeset: N, replication: 2 };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

let stores: LogStore[] = [];
let appenders: ReplicatedLogletAppender[] = [];

afterEach(async () => {
  for (const a of appenders) a.stop();
  appenders = [];
  await Promise.all(stores.map((s) => s.close()));
  stores = [];
});

function cluster(): { servers: Map<NodeId, LogStore>; transport: LogServerTransport } {
  const dir = tempDir();
  const servers = new Map<NodeId, LogStore>();
  for (const n of N) {
    const s = LogStore.open({ path: join(dir, `${n}.sqlite`), sync: false });
    stores.push(s);
    servers.set(n, s);
  }
  return { servers, transport: localTransport(servers as Map<NodeId, LogServerApi>) };
}

function appender(transport: LogServerTransport, params = PARAMS): ReplicatedLogletAppender {
  const a = new ReplicatedLogletAppender(params, transport, { tickMs: 5, random: new SeededRandom(7), sequencer: { maxInflightBatches: 8 } });
  appenders.push(a);
  a.start();
  return a;
}

describe("replicated loglet over SQLite stores", () => {
  test("concurrent appends resolve with dense offsets once durable on r servers, and read back in order", async () => {
    const { servers, transport } = cluster();
    const a = appender(transport);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => a.append([enc(`r${i}a`), enc(`r${i}b`)])));
    // More appends than in-flight slots: the appender queued them and still kept the order of calls.
    expect(results.map((r) => r.first)).toEqual(Array.from({ length: 50 }, (_, i) => logletOffset(2 * i + 1)));
    expect(a.core.committedTail()).toBe(logletOffset(101));
    for (let o = 1; o <= 100; o++) {
      let copies = 0;
      for (const s of servers.values()) {
        const d = await s.getDigest({ loglet: PARAMS.loglet, from: logletOffset(o), to: logletOffset(o) });
        if (d.entries.length > 0) copies++;
      }
      expect(copies).toBeGreaterThanOrEqual(2);
    }
    const read = await readLoglet(PARAMS, transport, logletOffset(1), logletOffset(101), { tickMs: 5 });
    expect(read.map((e) => (e.kind === "record" ? dec(e.payload) : "gap"))).toEqual(
      Array.from({ length: 50 }, (_, i) => [`r${i}a`, `r${i}b`]).flat(),
    );
  });

  test("appends made in one turn of the event loop share one store per log-server; each caller gets its own offsets", async () => {
    const { transport } = cluster();
    const stores: Array<{ to: NodeId; first: number; records: number }> = [];
    const counting: LogServerTransport = {
      ...transport,
      store: (to, request, signal) => {
        stores.push({ to, first: request.firstOffset, records: request.payloads.length });
        return transport.store(to, request, signal);
      },
    };
    const a = new ReplicatedLogletAppender(PARAMS, counting, { tickMs: 5, random: new SeededRandom(9), maxBatchRecords: 40 });
    appenders.push(a);
    a.start();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => a.append([enc(`x${i}`), enc(`y${i}`)])));
    expect(results).toEqual(Array.from({ length: 30 }, (_, i) => ({ first: logletOffset(2 * i + 1), last: logletOffset(2 * i + 2) })));
    // 60 records in batches of at most 40 records (whole appends only): 20 appends, then 10.
    expect([...new Set(stores.map((s) => `${s.first}+${s.records}`))].sort()).toEqual(["1+40", "41+20"]);
    expect(stores.length).toBeLessThanOrEqual(2 * N.length);
    // An append awaited before the next is made goes alone.
    stores.length = 0;
    expect(await a.append([enc("alone")])).toEqual({ first: logletOffset(61), last: logletOffset(61) });
    expect(new Set(stores.map((s) => `${s.first}+${s.records}`))).toEqual(new Set(["61+1"]));
    const read = await readLoglet(PARAMS, transport, logletOffset(1), logletOffset(62), { tickMs: 5 });
    expect(read.map((e) => (e.kind === "record" ? dec(e.payload) : "gap"))).toEqual([...Array.from({ length: 30 }, (_, i) => [`x${i}`, `y${i}`]).flat(), "alone"]);
  });

  test("an idle sequencer is not ticked; with stores in flight it is, so silent servers still time out and are retried", async () => {
    const { transport } = cluster();
    // N2 and N3 never answer their first store (r = 2: the batch cannot commit without a retry).
    const silenced = new Set<NodeId>([N[1]!, N[2]!]);
    const silent: LogServerTransport = {
      ...transport,
      store: (to, request, signal) => {
        if (silenced.delete(to)) {
          return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
        }
        return transport.store(to, request, signal);
      },
    };
    const a = new ReplicatedLogletAppender(PARAMS, silent, { tickMs: 5, random: new SeededRandom(3), sequencer: { spreadWidth: "r", hedgeTicks: 0, storeTimeoutTicks: 4 } });
    appenders.push(a);
    a.start();
    expect(a.ticking).toBe(false);
    const pending = a.append([enc("late")]);
    await Bun.sleep(0);
    await Bun.sleep(0);
    expect(a.ticking).toBe(true);
    expect(await pending).toEqual({ first: logletOffset(1), last: logletOffset(1) });
    expect(silenced.size).toBe(0); // both silent stores were tried, and the batch committed after their timeouts
    // Graylisting of the silent servers runs out in ticks; then the sequencer is quiet again.
    for (let i = 0; i < 400 && a.ticking; i++) await Bun.sleep(5);
    expect(a.ticking).toBe(false);
    expect(await a.append([enc("next")])).toEqual({ first: logletOffset(2), last: logletOffset(2) });
  });

  test("appends commit while one log-server of three is unreachable", async () => {
    const { servers } = cluster();
    const partial = new Map(servers) as Map<NodeId, LogServerApi>;
    partial.delete(N[2]!);
    const a = appender(localTransport(partial));
    const r = await a.append([enc("x")]);
    expect(r).toEqual({ first: logletOffset(1), last: logletOffset(1) });
  });

  test("after the sequencer is lost: seal, find the tail, repair single copies, refuse the old sequencer", async () => {
    const { servers, transport } = cluster();
    const a = appender(transport);
    for (let i = 0; i < 5; i++) await a.append([enc(`ok${i}`)]);
    a.stop();
    // What the lost sequencer left behind: offset 6 reached one server only, 7 nobody, 8 one server.
    const seq = PARAMS.sequencer;
    await servers.get(N[0]!)!.store({ loglet: PARAMS.loglet, sequencer: seq, firstOffset: logletOffset(6), payloads: [enc("half")], knownGlobalTail: logletOffset(6) });
    await servers.get(N[1]!)!.store({ loglet: PARAMS.loglet, sequencer: seq, firstOffset: logletOffset(8), payloads: [enc("beyond")], knownGlobalTail: logletOffset(6) });

    const result = await recoverLoglet(PARAMS, transport, { tickMs: 5, random: new SeededRandom(1) });
    expect(result.tail).toBe(logletOffset(7)); // 6 is kept (and now replicated), 7 is a hole, so 8 is not part of the loglet
    expect(result.knownGlobalTail).toBe(logletOffset(6));
    expect(result.maxLocalTail).toBe(logletOffset(9));
    expect(result.copiesWritten).toBe(1);
    expect(result.lost).toEqual([]);
    let copies6 = 0;
    for (const s of servers.values()) {
      const info = await s.getLogletInfo({ loglet: PARAMS.loglet });
      const d = await s.getDigest({ loglet: PARAMS.loglet, from: logletOffset(6), to: logletOffset(6) });
      if (d.entries.length > 0) copies6++;
      if (info.sealed) expect(info.localTail).toBeGreaterThanOrEqual(6);
    }
    expect(copies6).toBe(2);
    const read = await readLoglet(PARAMS, transport, logletOffset(1), result.tail, { tickMs: 5 });
    expect(read.map((e) => (e.kind === "record" ? dec(e.payload) : "gap"))).toEqual(["ok0", "ok1", "ok2", "ok3", "ok4", "half"]);

    // A recovery run again finds the same tail. (It may copy offset 6 once more: its evidence is any
    // f-majority of digests, which need not include the server the first repair wrote to.)
    const again = await recoverLoglet(PARAMS, transport, { tickMs: 5, random: new SeededRandom(2) });
    expect(again.tail).toBe(result.tail);
    expect(again.copiesWritten).toBeLessThanOrEqual(1);

    // The old sequencer (same identity, say a stale process) cannot append any more.
    const stale = appender(transport);
    const err = await stale.append([enc("late")]).catch((e) => e);
    expect(isCairnError(err, "LOG_SEALED")).toBe(true);
  });

  test("a nodeset of exactly r servers with one down: recovery publishes a single-copy record instead of blocking", async () => {
    // Regression (CI, log-tail test): log 0's nodeset was [N1, N2] with r = 2 when N2, its sequencer's
    // node, was killed; offset 30 had reached N1 only, no server could take a second copy, and
    // every recovery failed in repair until N2 came back: the log took no appends at all.
    const { servers } = cluster();
    const two: ReplicatedLogletParams = { ...PARAMS, loglet: asLogletId("3_2"), nodeset: [N[0]!, N[1]!] };
    const a = appender(localTransport(servers as Map<NodeId, LogServerApi>), two);
    for (let i = 0; i < 3; i++) await a.append([enc(`ok${i}`)]);
    a.stop();
    await servers.get(N[0]!)!.store({ loglet: two.loglet, sequencer: two.sequencer, firstOffset: logletOffset(4), payloads: [enc("half")], knownGlobalTail: logletOffset(4) });
    const withoutN2 = new Map(servers) as Map<NodeId, LogServerApi>;
    withoutN2.delete(N[1]!);
    const transport = localTransport(withoutN2);
    const result = await recoverLoglet(two, transport, { tickMs: 2, random: new SeededRandom(3) });
    // Offset 4 may have been acknowledged (its second copy could sit on N2), so it stays in the loglet.
    expect(result.tail).toBe(logletOffset(5));
    expect(result.underReplicated).toEqual([{ from: logletOffset(4), to: logletOffset(4) }]);
    expect(result.lost).toEqual([]);
    const read = await readLoglet(two, transport, logletOffset(1), result.tail, { tickMs: 2 });
    expect(read.map((e) => (e.kind === "record" ? dec(e.payload) : "gap"))).toEqual(["ok0", "ok1", "ok2", "half"]);
  });

  test("a sequencer of a newer generation is fenced by servers that saw the old one", async () => {
    const { transport } = cluster();
    const a = appender(transport);
    await a.append([enc("first")]);
    const b = appender(transport, { ...PARAMS, sequencer: generationalNodeId(1, 5) });
    const err = await b.append([enc("second")]).catch((e) => e);
    expect(isCairnError(err, "LOG_WRITE_UNAVAILABLE")).toBe(true);
  });

  test("sealLoglet seals an f-majority and answers each server's frozen tail", async () => {
    const { transport } = cluster();
    const a = appender(transport);
    await a.append([enc("a"), enc("b")]);
    const sealed = await sealLoglet(PARAMS, transport, { tickMs: 5 });
    expect(sealed.size).toBeGreaterThanOrEqual(2);
    for (const r of sealed.values()) expect(r.sealed).toBe(true);
    expect(Math.max(...[...sealed.values()].map((r) => r.localTail))).toBe(3);
  });
});
