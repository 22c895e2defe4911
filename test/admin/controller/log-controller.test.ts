// The log controller: its decisions as a pure function, its liveness rules, then the whole loop over
// the in-process cluster: first segments, a sequencer's node killed while appending (every
// acknowledged append is read back exactly once, in LSN order), a restarted sequencer fenced by its
// new generation, a killed node found by its refusing port well before the failure timeout, and a
// paused node (silent, port accepting) left to the timeout.
import { afterEach, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { LogController, planLogActions, type PlanInput } from "../../../src/admin/controller/index.ts";
import {
  ANSWERED,
  LOGS_KEY,
  LivenessTracker,
  NodeDirectory,
  REFUSED,
  SILENT,
  connectionRefused,
  parseLogsDocument,
  tailSegment,
  type BifrostPeers,
  type Liveness,
  type LogReadEntry,
  type LogsDocument,
  type Segment,
} from "../../../src/bifrost/index.ts";
import { logId, lsn, nodeId, type NodeId } from "../../../src/ids/index.ts";
import { isCairnError } from "../../../src/observability/errors.ts";
import { silentLogger } from "../../../src/observability/log.ts";
import { useTempDirs } from "../../logserver/helpers.ts";
import { TestCluster } from "../../bifrost/harness.ts";

const tempDir = useTempDirs();
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function segment(index: number, sequencer: string, nodeset: string[], extra: Partial<Segment> = {}): Segment {
  return {
    index,
    baseLsn: 1,
    kind: "replicated",
    params: { loglet: `1_${index}`, sequencer, nodeset, replication: 2 },
    placement: "auto",
    createdAtMs: 0,
    ...extra,
  };
}

function plan(docLogs: LogsDocument["logs"], status: Record<string, Liveness>, extra: Partial<PlanInput> = {}) {
  return planLogActions({
    doc: { defaultReplication: 2, logs: docLogs },
    nodes: ["N1", "N2", "N3", "N4"].map((id, i) => ({ id: id as NodeId, generation: i === 1 ? 5 : 1, logServer: true })),
    liveness: (id) => status[id] ?? "alive",
    liveGeneration: () => undefined,
    inflight: new Set(),
    lastImprovedMs: new Map(),
    nowMs: 100_000,
    autoImprove: true,
    improveIntervalMs: 10_000,
    nodesetSize: 0,
    defaultProvider: "replicated",
    ...extra,
  });
}

describe("controller decisions", () => {
  const threeOfFour = ["N1", "N2", "N3"];
  test("an empty chain gets a first segment once r log-servers live", () => {
    expect(plan([{ id: 1, trimPoint: 0, segments: [] }], {})).toEqual([{ log: logId(1), reason: "no-segment", expectTailIndex: -1 }]);
    expect(plan([{ id: 1, trimPoint: 0, segments: [] }], { N1: "dead", N2: "dead", N3: "dead" })).toEqual([]);
  });
  test("a dead sequencer, a restarted one (older generation than registered) and a removed one are replaced", () => {
    const logs = (seq: string) => [{ id: 1, trimPoint: 0, segments: [segment(0, seq, threeOfFour)] }];
    expect(plan(logs("N1:1"), { N1: "dead" })).toEqual([{ log: logId(1), reason: "sequencer-dead", expectTailIndex: 0, avoidSequencer: nodeId(1) }]);
    expect(plan(logs("N2:4"), {})).toEqual([{ log: logId(1), reason: "sequencer-restarted", expectTailIndex: 0 }]);
    expect(plan(logs("N9:1"), {})).toEqual([{ log: logId(1), reason: "sequencer-gone", expectTailIndex: 0, avoidSequencer: nodeId(9) }]);
    expect(plan(logs("N1:1"), { N1: "unknown" })).toEqual([]);
    // In flight already: nothing more.
    expect(plan(logs("N1:1"), { N1: "dead" }, { inflight: new Set([1]) })).toEqual([]);
  });
  test("improvements: a dead member with a replacement, a nodeset below 2r − 1; never for manual placements or sealed logs, and rate-limited", () => {
    const logs = (s: Segment) => [{ id: 1, trimPoint: 0, segments: [s] }];
    expect(plan(logs(segment(0, "N1:1", threeOfFour)), { N3: "dead" })).toEqual([{ log: logId(1), reason: "nodeset-member-dead", expectTailIndex: 0 }]);
    expect(plan(logs(segment(0, "N1:1", ["N1", "N2"])), {})).toEqual([{ log: logId(1), reason: "nodeset-too-small", expectTailIndex: 0 }]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour)), {})).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour, { placement: "manual" })), { N3: "dead" })).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour, { sealedTail: 1 })), { N3: "dead" })).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour)), { N3: "dead" }, { lastImprovedMs: new Map([[1, 95_000]]) })).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour)), { N3: "dead" }, { autoImprove: false })).toEqual([]);
  });
  test("a tail sealed by a reconfiguration that never added the next segment gets it; an operator's seal, or one that does not say who sealed it, stays", () => {
    const logs = (s: Segment) => [{ id: 1, trimPoint: 0, segments: [s] }];
    const unfinished = { log: logId(1), reason: "unfinished-reconfiguration" as const, expectTailIndex: 0 };
    expect(plan(logs(segment(0, "N1:1", threeOfFour, { sealedTail: 1, sealedBy: "reconfiguration" })), {})).toEqual([unfinished]);
    // Also for a manual placement (the reconfiguration keeps it), and without automatic improvements.
    expect(plan(logs(segment(0, "N1:1", threeOfFour, { sealedTail: 1, sealedBy: "reconfiguration", placement: "manual" })), {}, { autoImprove: false })).toEqual([unfinished]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour, { sealedTail: 1, sealedBy: "operator" })), {})).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", threeOfFour, { sealedTail: 1 })), {})).toEqual([]);
  });

  test("a member whose store lost its data is moved off once enough other live log-servers carry r copies", () => {
    const logs = (s: Segment) => [{ id: 1, trimPoint: 0, segments: [s] }];
    const n3Lost = { lostData: (id: NodeId) => id === nodeId(3) };
    // N1, N2, N4 live and writable: enough for r = 2 (no outsider is needed).
    expect(plan(logs(segment(0, "N1:1", ["N1", "N2", "N3"])), {}, n3Lost)).toEqual([{ log: logId(1), reason: "nodeset-member-lost-data", expectTailIndex: 0 }]);
    expect(plan(logs(segment(0, "N1:1", ["N1", "N2", "N3"])), { N2: "dead", N4: "dead" }, n3Lost)).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", ["N1", "N2", "N4"])), {}, n3Lost)).toEqual([]);
    expect(plan(logs(segment(0, "N1:1", ["N1", "N2", "N3"], { placement: "manual" })), {}, n3Lost)).toEqual([]);
  });
  test("liveness: alive while answers are fresh, dead after the failure timeout of silence, unknown before", () => {
    const t = new LivenessTracker(1000);
    const n = nodeId(1);
    expect(t.status(n, 0)).toBe("unknown");
    t.probed(n, 0, SILENT);
    expect(t.status(n, 500)).toBe("unknown");
    expect(t.status(n, 1000)).toBe("dead");
    t.probed(n, 1100, ANSWERED(3));
    expect([t.status(n, 1500), t.generation(n)]).toEqual(["alive", 3]);
    t.probed(n, 1600, SILENT);
    expect(t.status(n, 2099)).toBe("alive");
    expect(t.status(n, 2100)).toBe("dead");
  });
  test("liveness: a port refusing connections for refused-dead-ms (two probes or more) is dead long before the failure timeout, until the node answers", () => {
    const t = new LivenessTracker(2000, 300);
    const n = nodeId(1);
    t.probed(n, 0, ANSWERED(1));
    t.probed(n, 100, REFUSED);
    // One refusal: no longer a place for new segments, not dead either.
    expect([t.status(n, 100), t.suspect(n, 100)]).toEqual(["unknown", true]);
    t.probed(n, 350, REFUSED);
    expect(t.status(n, 350)).toBe("unknown"); // two refusals, but only 250 ms apart
    t.probed(n, 400, REFUSED);
    expect([t.status(n, 400), t.suspect(n, 400)]).toEqual(["dead", false]);
    t.probed(n, 450, SILENT); // a verdict reached stays: only an answer clears it
    expect(t.status(n, 450)).toBe("dead");
    t.probed(n, 500, ANSWERED(2));
    expect([t.status(n, 500), t.generation(n)]).toEqual(["alive", 2]);
  });
  test("liveness: refusals that are not consecutive, or not spread over refused-dead-ms, prove nothing; silence alone (a paused node) waits for the failure timeout", () => {
    const n = nodeId(1);
    const broken = new LivenessTracker(2000, 300);
    broken.probed(n, 0, ANSWERED(1));
    broken.probed(n, 100, REFUSED);
    broken.probed(n, 200, SILENT); // the port accepted (or the probe timed out): the streak restarts
    broken.probed(n, 300, REFUSED);
    broken.probed(n, 500, REFUSED);
    expect(broken.status(n, 500)).toBe("unknown");
    broken.probed(n, 600, REFUSED);
    expect(broken.status(n, 600)).toBe("dead"); // 300 → 600: a fresh streak of 300 ms
    const paused = new LivenessTracker(2000, 300);
    paused.probed(n, 0, ANSWERED(1));
    for (let ms = 100; ms < 2000; ms += 100) paused.probed(n, ms, SILENT);
    expect([paused.status(n, 1999), paused.suspect(n, 1999)]).toEqual(["alive", true]);
    expect(paused.status(n, 2000)).toBe("dead");
    const off = new LivenessTracker(2000, 0); // refused-dead-ms = 0: refusals never decide
    off.probed(n, 0, ANSWERED(1));
    for (let ms = 100; ms < 2000; ms += 100) off.probed(n, ms, REFUSED);
    expect(off.status(n, 1999)).toBe("unknown");
    expect(off.status(n, 2000)).toBe("dead");
    const once = new LivenessTracker(2000, 1); // a single refusal is never enough, however old
    once.probed(n, 0, ANSWERED(1));
    once.probed(n, 10, REFUSED);
    expect(once.status(n, 1500)).toBe("unknown");
  });
});

describe("liveness evidence from real sockets", () => {
  test("a killed process's port refuses connections; a paused one's (SIGSTOP) still accepts them", async () => {
    const child = Bun.spawn(
      [process.execPath, "-e", `const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") }); console.log(s.port); setInterval(() => {}, 1000);`],
      { stdout: "pipe", stderr: "ignore" },
    );
    try {
      const reader = child.stdout.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      const address = `127.0.0.1:${Number(text.trim())}`;
      const probe = () => connectionRefused(address, AbortSignal.timeout(2000));
      expect(await probe()).toBe(false);
      process.kill(child.pid, "SIGSTOP");
      expect([await probe(), await probe()]).toEqual([false, false]);
      process.kill(child.pid, "SIGKILL");
      await child.exited;
      expect([await probe(), await probe()]).toEqual([true, true]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL");
      await child.exited;
    }
  });
  test("connection probe: a listening port is not refused, a closed one is, an address that is no host:port is not", async () => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    expect(await connectionRefused(`127.0.0.1:${port}`, AbortSignal.timeout(2000))).toBe(false);
    expect(await connectionRefused(`http://127.0.0.1:${port}`, AbortSignal.timeout(2000))).toBe(false);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(await connectionRefused(`127.0.0.1:${port}`, AbortSignal.timeout(2000))).toBe(true);
    expect(await connectionRefused("mem:N1", AbortSignal.timeout(2000))).toBe(false);
    expect(await connectionRefused("127.0.0.1:1", AbortSignal.abort())).toBe(false);
  });
});

let cluster: TestCluster | undefined;
let controller: LogController | undefined;
afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  await cluster?.close();
  cluster = undefined;
});

async function logsDoc(c: TestCluster): Promise<LogsDocument> {
  return parseLogsDocument((await c.metadata.get(LOGS_KEY))!.value);
}

function runController(c: TestCluster, on: number): LogController {
  const directory = new NodeDirectory();
  controller = new LogController({
    bifrost: c.node(on).bifrost,
    peers: c.peers,
    directory,
    liveness: new LivenessTracker(150),
    isLeader: () => true,
    refreshNodes: () => directory.refresh(c.metadata),
    options: { intervalMs: 25, failureTimeoutMs: 150, maxConcurrent: 4, autoImprove: true, improveIntervalMs: 60_000, nodesetSize: 0, defaultProvider: "replicated" },
    logger: silentLogger(),
  });
  controller.start();
  return controller;
}

/**
 * A controller with production-like proportions, scaled down: rounds every `intervalMs`, a failure
 * timeout far above it, suspects re-probed every 50 ms. A killed node's port refuses connections (and
 * the fabric notices the lost connection at once); a paused node's pings hang and its port accepts.
 */
async function runWatchingController(c: TestCluster, on: number, paused: ReadonlySet<NodeId>, timing: { intervalMs: number; failureTimeoutMs: number }): Promise<LogController> {
  const directory = new NodeDirectory();
  const hanging = (signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
  const peers: BifrostPeers = { ...c.peers, ping: (to, signal) => (paused.has(to) ? hanging(signal) : c.peers.ping(to, signal)) };
  controller = new LogController({
    bifrost: c.node(on).bifrost,
    peers,
    directory,
    liveness: new LivenessTracker(timing.failureTimeoutMs, 150),
    refusesConnections: async (id) => c.down.has(id),
    connectionLost: (id) => c.down.has(id) || paused.has(id),
    isLeader: () => true,
    refreshNodes: () => directory.refresh(c.metadata),
    options: { ...timing, probeIntervalMs: 50, maxConcurrent: 4, autoImprove: false, improveIntervalMs: 60_000, nodesetSize: 0, defaultProvider: "replicated" },
    logger: silentLogger(),
  });
  await controller.round(); // leading, every node seen alive
  controller.start();
  return controller;
}

async function sequencerOf(c: TestCluster): Promise<string> {
  return tailSegment((await logsDoc(c)).logs[0]!)!.params.sequencer;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== undefined) return v;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function readAll(c: TestCluster, via: number, log = logId(1)): Promise<LogReadEntry[]> {
  const out: LogReadEntry[] = [];
  let cursor = lsn(1);
  for (;;) {
    const r = await c.node(via).bifrost.read(log, cursor, { limit: 200 });
    out.push(...r.entries);
    if (r.nextLsn >= r.tailLsn || r.entries.length === 0) return out;
    cursor = r.nextLsn;
  }
}

describe("controller loop", () => {
  test("gives every log a first segment, spread over the nodes", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1, 2, 3, 4, 5, 6]);
    const c = cluster;
    runController(c, 1);
    const doc = await until("first segments", async () => {
      const d = await logsDoc(c);
      return d.logs.every((l) => l.segments.length === 1) ? d : undefined;
    });
    expect(doc.logs.every((l) => l.segments[0]!.params.nodeset.length === 3)).toBe(true);
    expect(new Set(doc.logs.map((l) => l.segments[0]!.params.sequencer)).size).toBeGreaterThan(1);
  });

  test("a sequencer's node dies while appending: the log moves to a new sequencer, every acknowledged append is read back exactly once in LSN order", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1], { appendTimeoutMs: 5_000 });
    const c = cluster;
    await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(2) }, { reason: "test" });
    runController(c, 1);
    const acked = new Map<string, number>();
    let failures = 0;
    let stop = false;
    const writers = [1, 3].map((via) =>
      (async () => {
        for (let i = 0; !stop; i++) {
          const text = `n${via}-${i}`;
          try {
            const r = await c.node(via).bifrost.append(logId(1), [enc(text)]);
            acked.set(text, r.first);
          } catch (e) {
            expect(isCairnError(e, "LOG_APPEND_INDETERMINATE") || isCairnError(e, "LOG_WRITE_UNAVAILABLE")).toBe(true);
            failures++;
          }
        }
      })(),
    );
    await until("some appends", async () => (acked.size >= 20 ? true : undefined));
    const beforeKill = acked.size;
    c.kill(2);
    const moved = await until("a new sequencer", async () => {
      const seg = tailSegment((await logsDoc(c)).logs[0]!)!;
      return seg.params.sequencer.startsWith("N2:") ? undefined : seg;
    });
    expect(moved.index).toBe(1);
    await until("appends after the move", async () => (acked.size >= beforeKill + 20 ? true : undefined));
    stop = true;
    await Promise.all(writers);
    const records = (await readAll(c, 3)).filter((e) => e.kind === "record");
    expect(records.map((e) => e.lsn)).toEqual(records.map((_, i) => lsn(i + 1)));
    const seen = new Map<string, number>();
    for (const r of records) {
      const t = dec(r.payload);
      expect(seen.has(t)).toBe(false); // never twice, acknowledged or not
      seen.set(t, r.lsn);
    }
    for (const [text, at] of acked) expect(seen.get(text)).toBe(at);
    expect(failures).toBeLessThan(10);
  }, 30_000);

  test("a killed sequencer's node, whose port refuses connections, is replaced at once: before the next round, long before the failure timeout", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1]);
    const c = cluster;
    await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(2) }, { reason: "test" });
    await runWatchingController(c, 1, new Set(), { intervalMs: 3_000, failureTimeoutMs: 10_000 });
    const killedAt = performance.now();
    c.kill(2);
    const moved = await until("a new sequencer", async () => ((await sequencerOf(c)).startsWith("N2:") ? undefined : true), 5_000);
    expect(moved).toBe(true);
    // 150 ms of refusals, then a round at once; the next periodic round was ~3 s away.
    expect(performance.now() - killedAt).toBeLessThan(2_000);
    expect((await c.node(3).bifrost.append(logId(1), [enc("after")])).first).toBe(lsn(1));
  });

  test("a paused sequencer's node (pings time out, its port accepts) is left alone until the failure timeout", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1]);
    const c = cluster;
    await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(2) }, { reason: "test" });
    const paused = new Set<NodeId>();
    await runWatchingController(c, 1, paused, { intervalMs: 100, failureTimeoutMs: 1_500 });
    const pausedAt = performance.now();
    paused.add(nodeId(2));
    await Bun.sleep(1_000); // ~20 probes of a suspect, ~10 rounds: silence, never a refusal
    expect(await sequencerOf(c)).toBe("N2:1");
    await until("a new sequencer after the failure timeout", async () => ((await sequencerOf(c)).startsWith("N2:") ? undefined : true), 10_000);
    expect(performance.now() - pausedAt).toBeGreaterThanOrEqual(1_500);
  });

  test("between rounds only refusals act: a node silent past the failure timeout is reconfigured by the next round, not earlier", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1]);
    const c = cluster;
    await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(2) }, { reason: "test" });
    const paused = new Set<NodeId>();
    await runWatchingController(c, 1, paused, { intervalMs: 1_500, failureTimeoutMs: 500 });
    const pausedAt = performance.now();
    paused.add(nodeId(2)); // dead by silence at ~500 ms; the next round is ~1.5 s after start
    await until("a new sequencer", async () => ((await sequencerOf(c)).startsWith("N2:") ? undefined : true), 10_000);
    expect(performance.now() - pausedAt).toBeGreaterThanOrEqual(1_200);
  });

  test("a reconfiguration cut off after its seal (the write adding the next segment failed) is finished by the controller; an operator's seal stays", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1, 2]);
    const c = cluster;
    await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(2) }, { reason: "test" });
    await c.node(1).bifrost.reconfigure(logId(2), { sequencer: nodeId(2) }, { reason: "test" });
    for (let i = 0; i < 5; i++) await c.node(1).bifrost.append(logId(1), [enc(`a${i}`)]);
    // The metadata store refuses the write that would add log 1's next segment, once (as when the
    // metadata leader changes between a reconfiguration's seal and its second write).
    const put = c.metadata.put.bind(c.metadata);
    let refused = 0;
    c.metadata.put = async (key, value, precondition) => {
      const doc = value as LogsDocument;
      if (key === LOGS_KEY && refused === 0 && doc.logs.find((l) => l.id === 1)!.segments.length > 1) {
        refused++;
        throw new Error("the metadata leader changed");
      }
      return put(key, value, precondition);
    };
    const cut = await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(1) }, { reason: "partition-leader", acceptConcurrent: true }).then(
      () => "finished",
      (e: unknown) => String(e),
    );
    expect(cut).toContain("the metadata leader changed");
    const sealed = tailSegment((await logsDoc(c)).logs.find((l) => l.id === 1)!)!;
    expect(sealed).toMatchObject({ index: 0, sealedTail: 6, sealedBy: "reconfiguration" });
    // An operator seals log 2 on purpose.
    await c.node(1).bifrost.seal(logId(2));
    runController(c, 1);
    const next = await until("log 1's next segment", async () => {
      const s = tailSegment((await logsDoc(c)).logs.find((l) => l.id === 1)!)!;
      return s.index === 1 ? s : undefined;
    });
    expect(next.baseLsn).toBe(6);
    expect((await c.node(3).bifrost.append(logId(1), [enc("b")])).first).toBe(lsn(6));
    expect((await readAll(c, 2)).map((e) => (e.kind === "record" ? dec(e.payload) : "gap"))).toEqual(["a0", "a1", "a2", "a3", "a4", "b"]);
    // The operator's seal is still the tail of log 2 a few rounds later.
    await Bun.sleep(200);
    expect(tailSegment((await logsDoc(c)).logs.find((l) => l.id === 2)!)!).toMatchObject({ index: 0, sealedBy: "operator" });
  });

  test("a restarted sequencer is fenced by its new generation: the log gets a new segment and the old one stays readable", async () => {
    cluster = new TestCluster(tempDir(), 3, 2, [1]);
    const c = cluster;
    await c.node(1).bifrost.reconfigure(logId(1), { sequencer: nodeId(3) }, { reason: "test" });
    for (let i = 0; i < 5; i++) await c.node(1).bifrost.append(logId(1), [enc(`a${i}`)]);
    c.kill(3);
    await c.restart(3);
    runController(c, 1);
    const seg = await until("a segment for the new generation", async () => {
      const s = tailSegment((await logsDoc(c)).logs[0]!)!;
      return s.index === 1 ? s : undefined;
    });
    expect(seg.params.sequencer).toBe("N3:2"); // the same node, alive again, at its new generation
    expect((await c.node(2).bifrost.append(logId(1), [enc("b")])).first).toBe(lsn(6));
    const all = (await readAll(c, 1)).map((e) => (e.kind === "record" ? dec(e.payload) : "gap"));
    expect(all).toEqual(["a0", "a1", "a2", "a3", "a4", "b"]);
  });
});


