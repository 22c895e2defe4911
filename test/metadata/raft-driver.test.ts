// The metadata Raft driver with real SQLite storage: three drivers wired by an in-process transport,
// recording the order in which each one persists and sends. Proves the one liberty the driver takes
// with the core's "persist, then send" contract (a leader's appends leave before its own fsync) and
// that nothing else does.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { asRaftId, bootstrapPersistedState, decodeMessage, type Message, type RaftId } from "../../src/raft/index.ts";
import { MetadataRaftStorage } from "../../src/metadata/raft-storage.ts";
import { RaftDriver } from "../../src/metadata/raft-driver.ts";
import { NONE } from "../../src/metadata/kv.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { tempDir } from "../helpers/cairn-process.ts";

type Event =
  | { readonly kind: "persist"; readonly node: number; readonly term: number; readonly vote: number; readonly lastIndex: number }
  | { readonly kind: "send"; readonly node: number; readonly message: Message };

const drivers: RaftDriver[] = [];
const storages: MetadataRaftStorage[] = [];
afterEach(() => {
  for (const d of drivers.splice(0)) d.stop();
  for (const s of storages.splice(0)) s.close();
});

function cluster(): { drivers: Map<number, RaftDriver>; events: Event[] } {
  const ids = [1, 2, 3].map(asRaftId);
  const dir = tempDir();
  const events: Event[] = [];
  const byId = new Map<number, RaftDriver>();
  for (const id of ids) {
    const storage = MetadataRaftStorage.open(join(dir, `raft-${id}.sqlite`));
    storage.initialize({ storageId: `s${id}`, createdAtMs: 1, nodeId: id }, bootstrapPersistedState(ids));
    storages.push(storage);
    const persist = storage.persist.bind(storage);
    storage.persist = (rd) => {
      persist(rd);
      const hs = storage.mirror.hardState();
      events.push({ kind: "persist", node: id, term: hs.term, vote: hs.vote, lastIndex: storage.mirror.lastIndex() });
    };
    const transport = {
      send: async (to: RaftId, messages: Uint8Array[]): Promise<Uint8Array[]> => {
        for (const bytes of messages) events.push({ kind: "send", node: id, message: decodeMessage(bytes) });
        await Bun.sleep(1);
        const peer = byId.get(to);
        if (peer === undefined) throw new Error(`no N${to}`);
        const replies = peer.receiveAndReply(id, messages);
        for (const bytes of replies) events.push({ kind: "send", node: to, message: decodeMessage(bytes) });
        return replies;
      },
    };
    const driver = new RaftDriver(
      id,
      storage,
      transport,
      { tickIntervalMs: 5, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, snapshotIntervalEntries: 1000, snapshotKeepEntries: 100 },
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
});
