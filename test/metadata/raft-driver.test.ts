// The metadata Raft driver with real SQLite storage: three drivers wired by an in-process transport,
// recording the order in which each one persists and sends. Proves the one liberty the driver takes
// with the core's "persist, then send" contract (a leader's appends leave before its own fsync) and
// that nothing else does.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { asRaftId, bootstrapPersistedState, decodeMessage, type Message, type RaftId } from "../../src/raft/index.ts";
import { MetadataRaftStorage } from "../../src/metadata/raft-storage.ts";
import { SnapshotSource, type SnapshotChunkRequest } from "../../src/metadata/snapshot-transfer.ts";
import { RaftDriver } from "../../src/metadata/raft-driver.ts";
import { NONE } from "../../src/metadata/kv.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { tempDir } from "../helpers/cairn-process.ts";

type Event =
  | { readonly kind: "persist"; readonly node: number; readonly term: number; readonly vote: number; readonly lastIndex: number }
  | { readonly kind: "send"; readonly node: number; readonly message: Message };

const drivers: RaftDriver[] = [];
const storages: MetadataRaftStorage[] = [];
const sources: SnapshotSource[] = [];
const sourceOf = new Map<number, SnapshotSource>();
afterEach(() => {
  for (const d of drivers.splice(0)) d.stop();
  for (const s of sources.splice(0)) s.close();
  for (const s of storages.splice(0)) s.close();
});

/** Links that drop every message (a partitioned member): `${from}>${to}`. */
const cut = new Set<string>();
/** Transfers begun by any member, and the pause before each page is served (a slow transfer). */
let transfersStarted = 0;
let pageDelayMs = 1;

function cluster(options: { snapshotIntervalEntries?: number; snapshotKeepEntries?: number } = {}): { drivers: Map<number, RaftDriver>; events: Event[] } {
  cut.clear();
  transfersStarted = 0;
  pageDelayMs = 1;
  const ids = [1, 2, 3].map(asRaftId);
  const dir = tempDir();
  const events: Event[] = [];
  const byId = new Map<number, RaftDriver>();
  for (const id of ids) {
    const storage = MetadataRaftStorage.open(join(dir, `raft-${id}.sqlite`));
    storage.initialize({ storageId: `s${id}`, createdAtMs: 1, nodeId: id }, bootstrapPersistedState(ids));
    storages.push(storage);
    const persist = storage.persist.bind(storage);
    const source = new SnapshotSource(storage.path);
    sources.push(source);
    storage.persist = (rd, also) => {
      persist(rd, also);
      const hs = storage.mirror.hardState();
      events.push({ kind: "persist", node: id, term: hs.term, vote: hs.vote, lastIndex: storage.mirror.lastIndex() });
    };
    const transport = {
      send: async (to: RaftId, messages: Uint8Array[]): Promise<Uint8Array[]> => {
        for (const bytes of messages) events.push({ kind: "send", node: id, message: decodeMessage(bytes) });
        await Bun.sleep(1);
        if (cut.has(`${id}>${to}`) || cut.has(`${to}>${id}`)) throw new Error(`link N${id}-N${to} is cut`);
        const peer = byId.get(to);
        if (peer === undefined) throw new Error(`no N${to}`);
        const replies = peer.receiveAndReply(id, messages);
        for (const bytes of replies) events.push({ kind: "send", node: to, message: decodeMessage(bytes) });
        return replies;
      },
      snapshotChunk: async (from: RaftId, req: SnapshotChunkRequest) => {
        if (req.table === "kv" && req.after === null) transfersStarted++;
        await Bun.sleep(pageDelayMs);
        if (cut.has(`${id}>${from}`) || cut.has(`${from}>${id}`)) throw new Error(`link N${id}-N${from} is cut`);
        return structuredClone(sourceOf.get(from)!.chunk(req));
      },
    };
    sourceOf.set(id, source);
    const driver = new RaftDriver(
      id,
      storage,
      transport,
      {
        tickIntervalMs: 5,
        electionTimeoutTicks: 10,
        heartbeatIntervalTicks: 2,
        snapshotIntervalEntries: options.snapshotIntervalEntries ?? 1000,
        snapshotKeepEntries: options.snapshotKeepEntries ?? 100,
      },
      silentLogger(),
      id * 7919,
      (e) => {
        throw e;
      },
    );
    byId.set(id, driver);
    drivers.push(driver);
  }
  for (const d of byId.values()) d.start();
  return { drivers: byId, events };
}

async function leaderOf(ds: Map<number, RaftDriver>): Promise<RaftDriver> {
  for (let i = 0; i < 400; i++) {
    for (const d of ds.values()) if (d.leader === d.id) return d;
    await Bun.sleep(10);
  }
  throw new Error("no leader elected");
}

describe("metadata raft driver", () => {
  test("a leader's appends leave before its own fsync; votes and answers only after the fsync of what they promise", async () => {
    const { drivers: ds, events } = cluster();
    const leader = await leaderOf(ds);
    for (let k = 0; k < 20; k++) {
      const outcome = await leader.propose({ t: "kv", id: `w${k}`, cmd: { op: "put", key: `k${k}`, value: k, precondition: NONE } }, 5_000);
      expect(outcome.kind).toBe("kv");
    }
    // Every replica applied the writes.
    for (let i = 0; i < 200 && [...ds.values()].some((d) => d.sm.kv.get("k19") === undefined); i++) await Bun.sleep(10);
    for (const d of ds.values()) expect(d.sm.kv.get("k19")?.value).toBe(19);

    const durable = new Map<number, { term: number; vote: number; lastIndex: number }>();
    let earlyAppends = 0;
    for (const ev of events) {
      if (ev.kind === "persist") {
        durable.set(ev.node, { term: ev.term, vote: ev.vote, lastIndex: ev.lastIndex });
        continue;
      }
      const d = durable.get(ev.node) ?? { term: 0, vote: 0, lastIndex: 0 };
      const m = ev.message;
      // Whatever a message carries about its sender's term was durable when it left.
      if (m.type !== "preVote" && m.type !== "preVoteResponse") expect(m.term).toBeLessThanOrEqual(d.term);
      if (m.type === "vote") expect(d.vote).toBe(ev.node);
      if (m.type === "voteResponse" && !m.reject) expect(d.vote).toBe(m.to);
      if (m.type === "appendResponse" && !m.reject) expect(m.index).toBeLessThanOrEqual(d.lastIndex);
      if (m.type === "append" && m.entries.length > 0 && m.entries[m.entries.length - 1]!.index > d.lastIndex) earlyAppends++;
    }
    // The leader did send appends ahead of its own fsync (the optimisation is live, not dead code).
    expect(earlyAppends).toBeGreaterThan(0);
  });

  test("a member cut off while the log was compacted catches up by pulling the leader's store, and keeps applying after", async () => {
    const { drivers: ds } = cluster({ snapshotIntervalEntries: 20, snapshotKeepEntries: 5 });
    const leader = await leaderOf(ds);
    const lagging = [...ds.values()].find((d) => d !== leader)!;
    for (const d of ds.values()) if (d !== lagging) cut.add(`${lagging.id}>${d.id}`);
    // Far more entries than the log keeps: the lagging member can only be helped by a snapshot.
    for (let k = 0; k < 300; k++) {
      await leader.propose({ t: "kv", id: `s${k}`, cmd: { op: "put", key: `key/${k % 120}`, value: k, precondition: NONE } }, 5_000);
    }
    await leader.propose({ t: "kv", id: "del", cmd: { op: "delete", key: "key/7", precondition: NONE } }, 5_000);
    expect(leader.status().firstIndex).toBeGreaterThan(lagging.status().lastIndex + 1);
    cut.clear();
    for (let i = 0; i < 500 && lagging.applied < leader.applied; i++) await Bun.sleep(10);
    expect(lagging.applied).toBeGreaterThanOrEqual(leader.applied);
    for (let k = 0; k < 120; k++) expect(lagging.sm.kv.get(`key/${k}`)).toEqual(leader.sm.kv.get(`key/${k}`));
    expect(lagging.sm.kv.get("key/7")).toBeUndefined();
    // It goes on as an ordinary follower afterwards, on the adopted tables.
    await leader.propose({ t: "kv", id: "after", cmd: { op: "put", key: "key/7", value: "back", precondition: NONE } }, 5_000);
    for (let i = 0; i < 300 && lagging.sm.kv.get("key/7") === undefined; i++) await Bun.sleep(10);
    expect(lagging.sm.kv.get("key/7")).toEqual(leader.sm.kv.get("key/7"));
    expect(leader.sm.kv.get("key/7")?.version).toBeGreaterThan(1); // re-created above its old versions
  });

  test("a slow snapshot pull while writes go on ends in one install: the leader keeps the entries after the snapshot it sent", async () => {
    const { drivers: ds } = cluster({ snapshotIntervalEntries: 20, snapshotKeepEntries: 5 });
    const leader = await leaderOf(ds);
    const lagging = [...ds.values()].find((d) => d !== leader)!;
    for (const d of ds.values()) if (d !== lagging) cut.add(`${lagging.id}>${d.id}`);
    for (let k = 0; k < 400; k++) {
      await leader.propose({ t: "kv", id: `p${k}`, cmd: { op: "put", key: `big/${k}`, value: "x".repeat(600), precondition: NONE } }, 5_000);
    }
    pageDelayMs = 40; // each page takes a while: the leader compacts many times during one pull
    cut.clear();
    let writes = 0;
    const writer = (async () => {
      for (; lagging.applied < leader.applied || writes < 100; writes++) {
        await leader.propose({ t: "kv", id: `w${writes}`, cmd: { op: "put", key: `during/${writes % 50}`, value: writes, precondition: NONE } }, 5_000);
        if (writes > 3000) break;
      }
    })();
    await writer;
    for (let i = 0; i < 500 && lagging.applied < leader.applied; i++) await Bun.sleep(10);
    expect(lagging.applied).toBeGreaterThanOrEqual(leader.applied);
    expect(transfersStarted).toBeLessThanOrEqual(2);
    for (let k = 0; k < 50; k++) expect(lagging.sm.kv.get(`during/${k}`)).toEqual(leader.sm.kv.get(`during/${k}`));
  });
});
