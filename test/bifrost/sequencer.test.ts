// Scenario tests of the sequencer core, driven step by step: the test plays the log-servers.
import { describe, expect, test } from "bun:test";
import {
  SeededRandom,
  SequencerCore,
  type CoreRequest,
  type ReplicatedLogletParams,
  type SequencerEvent,
} from "../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset, nodeId, type NodeId } from "../../src/ids/index.ts";
import type { StoreResponse, StoreStatus } from "../../src/logserver/index.ts";

const N = [nodeId(1), nodeId(2), nodeId(3)];
type StoreCoreRequest = Extract<CoreRequest, { rpc: "store" }>;
const PARAMS: ReplicatedLogletParams = { loglet: asLogletId("7_0"), sequencer: generationalNodeId(9, 1), nodeset: N, replication: 2 };
/** Most scenarios play every server of the nodeset: send each batch to all of them. */
const FLOOD = { spreadWidth: "flood" } as const;

function bytes(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => new Uint8Array([i]));
}

class Harness {
  readonly events: SequencerEvent[] = [];
  readonly requests: CoreRequest[] = [];
  constructor(readonly core: SequencerCore) {
    this.drain();
  }
  drain(): void {
    while (this.core.hasReady()) {
      const r = this.core.ready();
      this.core.advance();
      this.requests.push(...r.requests);
      this.events.push(...r.events);
    }
  }
  /** Stores sent to `node` for the batch starting at `first`, newest last. */
  storesTo(node: NodeId, first?: number): StoreCoreRequest[] {
    return this.requests.filter(
      (r): r is StoreCoreRequest => r.to === node && r.rpc === "store" && (first === undefined || r.request.firstOffset === first),
    );
  }
  answer(r: CoreRequest, status: StoreStatus): void {
    const response: StoreResponse = { status, localTail: logletOffset(1), sealed: status === "sealed", knownGlobalTail: logletOffset(1) };
    this.core.receive(r.id, { ok: true, rpc: "store", response });
    this.drain();
  }
  fail(r: CoreRequest): void {
    this.core.receive(r.id, { ok: false, error: "connection reset" });
    this.drain();
  }
  ticks(n: number): void {
    for (let i = 0; i < n; i++) {
      this.core.tick();
      this.drain();
    }
  }
  committed(): Array<[number, number]> {
    return this.events.flatMap((e) => (e.kind === "committed" ? [[e.first, e.last] as [number, number]] : []));
  }
}

describe("sequencer core", () => {
  test("assigns dense offsets from 1 and floods each batch to the whole nodeset", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    expect(h.core.append(bytes(3))).toEqual({ ok: true, first: logletOffset(1), last: logletOffset(3) });
    expect(h.core.append(bytes(2))).toEqual({ ok: true, first: logletOffset(4), last: logletOffset(5) });
    h.drain();
    for (const n of N) expect(h.storesTo(n).map((r) => r.request.firstOffset)).toEqual([logletOffset(1), logletOffset(4)]);
  });

  test("a batch is committed once r servers stored it, not before", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    h.core.append(bytes(1));
    h.drain();
    h.answer(h.storesTo(N[0]!)[0]!, "stored");
    expect(h.committed()).toEqual([]);
    h.answer(h.storesTo(N[2]!)[0]!, "stored");
    expect(h.committed()).toEqual([[1, 1]]);
    expect(h.core.committedTail()).toBe(logletOffset(2));
  });

  test("a later batch stored first waits for every earlier one: commits come in offset order", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    h.core.append(bytes(2)); // 1..2
    h.core.append(bytes(2)); // 3..4
    h.drain();
    h.answer(h.storesTo(N[0]!, 3)[0]!, "stored");
    h.answer(h.storesTo(N[1]!, 3)[0]!, "stored");
    expect(h.committed()).toEqual([]);
    h.answer(h.storesTo(N[1]!, 1)[0]!, "stored");
    h.answer(h.storesTo(N[2]!, 1)[0]!, "stored");
    expect(h.committed()).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  test("a failed store is retried on the same server after a backoff until r copies exist", () => {
    const h = new Harness(new SequencerCore({ ...PARAMS, replication: 3 }, new SeededRandom(1), { ...FLOOD, retryMinTicks: 2 }));
    h.core.append(bytes(1));
    h.drain();
    h.answer(h.storesTo(N[0]!)[0]!, "stored");
    h.answer(h.storesTo(N[1]!)[0]!, "stored");
    h.fail(h.storesTo(N[2]!)[0]!);
    expect(h.storesTo(N[2]!).length).toBe(1);
    h.ticks(2);
    expect(h.storesTo(N[2]!).length).toBe(2);
    h.answer(h.storesTo(N[2]!)[1]!, "stored");
    expect(h.committed()).toEqual([[1, 1]]);
  });

  test("with spread r a slow server is replaced by another one after the store timeout", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(3), { spreadWidth: 2, hedgeTicks: 0, storeTimeoutTicks: 5 }));
    h.core.append(bytes(1));
    h.drain();
    const first = h.requests.filter((r) => r.rpc === "store");
    expect(first.length).toBe(2);
    const spare = N.find((n) => !first.some((r) => r.to === n))!;
    h.answer(first[0]!, "stored");
    h.ticks(5); // first[1] never answers
    const retry = h.storesTo(spare);
    expect(retry.length).toBe(1);
    // The late answer of the timed-out store still counts, as does the replacement's.
    h.answer(first[1]!, "stored");
    expect(h.committed()).toEqual([[1, 1]]);
  });

  test("once an f-majority answers sealed nothing more is committed and pending batches fail", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    h.core.append(bytes(1));
    h.drain();
    h.answer(h.storesTo(N[0]!)[0]!, "stored");
    h.answer(h.storesTo(N[1]!)[0]!, "sealed");
    h.answer(h.storesTo(N[2]!)[0]!, "sealed"); // f-majority = 3 - 2 + 1 = 2
    expect(h.committed()).toEqual([]);
    expect(h.events).toContainEqual({ kind: "failed", first: logletOffset(1), last: logletOffset(1), reason: "sealed" });
    expect(h.events).toContainEqual({ kind: "sealed", committedTail: logletOffset(1) });
    expect(h.core.append(bytes(1))).toEqual({ ok: false, reason: "sealed" });
  });

  test("a sealed loglet acknowledges no append, even one whose stores complete afterwards", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    h.core.append(bytes(1));
    h.drain();
    h.answer(h.storesTo(N[0]!)[0]!, "stored");
    h.core.markSealed();
    h.drain();
    h.answer(h.storesTo(N[1]!)[0]!, "stored");
    expect(h.committed()).toEqual([]);
  });

  test("servers that fence the sequencer leave too few for a write quorum: write-unavailable", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    h.core.append(bytes(1));
    h.drain();
    h.answer(h.storesTo(N[0]!)[0]!, "fenced");
    expect(h.events).toContainEqual({ kind: "server-refused", node: N[0]!, status: "fenced" });
    h.answer(h.storesTo(N[1]!)[0]!, "disabled");
    expect(h.events).toContainEqual({ kind: "write-unavailable", committedTail: logletOffset(1) });
    expect(h.core.append(bytes(1))).toEqual({ ok: false, reason: "write-unavailable" });
  });

  test("in-flight batches and bytes are bounded: beyond them appends are refused with backpressure", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), { ...FLOOD, maxInflightBatches: 2, maxInflightBytes: 10 }));
    expect(h.core.append(bytes(4)).ok).toBe(true);
    expect(h.core.append(bytes(4)).ok).toBe(true);
    expect(h.core.append(bytes(1))).toEqual({ ok: false, reason: "backpressure" });
    expect(h.core.append(bytes(11))).toEqual({ ok: false, reason: "too-large" });
    expect(h.core.append([])).toEqual({ ok: false, reason: "empty" });
    h.drain();
    for (const r of h.storesTo(N[0]!, 1)) h.answer(r, "stored");
    for (const r of h.storesTo(N[1]!, 1)) h.answer(r, "stored");
    expect(h.core.inflight()).toEqual({ batches: 1, bytes: 4 });
    expect(h.core.append(bytes(1)).ok).toBe(true);
    expect(h.core.nextOffset()).toBe(logletOffset(10));
  });

  test("every store carries the committed tail known when it was sent", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(1), FLOOD));
    h.core.append(bytes(2));
    h.drain();
    h.answer(h.storesTo(N[0]!)[0]!, "stored");
    h.answer(h.storesTo(N[1]!)[0]!, "stored");
    h.core.append(bytes(1));
    h.drain();
    const later = h.storesTo(N[0]!, 3)[0]!;
    expect(later.rpc === "store" && later.request.knownGlobalTail).toBe(logletOffset(3));
  });

  test("by default a batch goes to r servers, the sequencer's own log-server first", () => {
    // The sequencer runs on N2, a member of the nodeset.
    const own = { ...PARAMS, sequencer: generationalNodeId(2, 1) };
    for (let seed = 1; seed <= 20; seed++) {
      const h = new Harness(new SequencerCore(own, new SeededRandom(seed)));
      h.core.append(bytes(1));
      h.drain();
      const to = h.requests.filter((r) => r.rpc === "store").map((r) => r.to);
      expect(to.length).toBe(2);
      expect(to).toContain(nodeId(2));
    }
  });

  test("a batch short of r copies after hedgeTicks goes to every usable server; no earlier", () => {
    const h = new Harness(new SequencerCore(PARAMS, new SeededRandom(5), { hedgeTicks: 3, storeTimeoutTicks: 50 }));
    h.core.append(bytes(1));
    h.drain();
    const first = h.requests.filter((r) => r.rpc === "store");
    expect(first.length).toBe(2);
    h.answer(first[0]!, "stored"); // the other one is slow
    h.ticks(2);
    expect(h.requests.filter((r) => r.rpc === "store").length).toBe(2);
    h.ticks(1);
    const spare = N.find((n) => !first.some((r) => r.to === n))!;
    expect(h.storesTo(spare).length).toBe(1);
    h.answer(h.storesTo(spare)[0]!, "stored");
    expect(h.committed()).toEqual([[1, 1]]);
  });
});
