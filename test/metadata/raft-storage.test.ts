import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { asIndex, asRaftId, asTerm, bootstrapPersistedState, type Entry } from "../../src/raft/index.ts";
import { MetadataRaftStorage } from "../../src/metadata/raft-storage.ts";
import { ON_DISK_SNAPSHOT_MARKER } from "../../src/metadata/state-machine.ts";
import { CairnError } from "../../src/observability/errors.ts";
import { tempDir } from "../helpers/cairn-process.ts";

function normal(index: number, term: number, text: string): Entry {
  return { kind: "normal", index: asIndex(index), term: asTerm(term), data: new TextEncoder().encode(text) };
}

describe("metadata raft storage (SQLite)", () => {
  test("entries, hard state and identity survive reopening; a later append replaces the conflicting suffix", () => {
    const path = join(tempDir(), "raft.sqlite");
    const s = MetadataRaftStorage.open(path);
    expect(s.identity).toBeUndefined();
    s.initialize({ storageId: "abc", createdAtMs: 1, nodeId: 1 }, bootstrapPersistedState([asRaftId(1)]));
    s.persist({ hardState: { term: asTerm(2), vote: asRaftId(1), commit: asIndex(1) }, entries: [normal(2, 2, "a"), normal(3, 2, "b")], snapshot: null, mustSync: true });
    s.persist({ hardState: null, entries: [normal(3, 3, "c")], snapshot: null, mustSync: true });
    s.close();
    const again = MetadataRaftStorage.open(path);
    expect(again.identity).toEqual({ storageId: "abc", createdAtMs: 1, nodeId: 1 });
    expect(again.mirror.lastIndex()).toBe(asIndex(3));
    expect(again.mirror.term(asIndex(3))).toBe(asTerm(3));
    expect(again.mirror.initialState().hardState).toEqual({ term: asTerm(2), vote: asRaftId(1), commit: asIndex(1) });
    const e = again.mirror.entries(asIndex(2), asIndex(4), 1 << 20);
    expect(e.map((x) => (x.kind === "normal" ? new TextDecoder().decode(x.data) : "conf"))).toEqual(["a", "c"]);
    again.close();
  });

  test("a snapshot compacts the log and is what a restart starts from", () => {
    const path = join(tempDir(), "raft.sqlite");
    const s = MetadataRaftStorage.open(path);
    s.initialize({ storageId: "x", createdAtMs: 1, nodeId: 1 }, bootstrapPersistedState([asRaftId(1)]));
    const entries = Array.from({ length: 20 }, (_, k) => normal(k + 2, 1, `e${k + 2}`));
    s.persist({ hardState: { term: asTerm(1), vote: asRaftId(1), commit: asIndex(21) }, entries, snapshot: null, mustSync: true });
    s.saveSnapshot(asIndex(15), { voters: [asRaftId(1)], learners: [] }, ON_DISK_SNAPSHOT_MARKER, 5);
    // Entries a little below the snapshot are kept for followers slightly behind.
    expect(s.mirror.firstIndex()).toBe(asIndex(11));
    s.close();
    const again = MetadataRaftStorage.open(path);
    expect(again.mirror.snapshot().metadata.index).toBe(asIndex(15));
    expect(again.mirror.snapshot().data).toEqual(ON_DISK_SNAPSHOT_MARKER);
    // A restart starts the log right after the snapshot.
    expect(again.mirror.firstIndex()).toBe(asIndex(16));
    expect(again.mirror.lastIndex()).toBe(asIndex(21));
    again.close();
  });

  test("a storage written before the state moved to disk is upgraded at open: its serialised state fills the tables", () => {
    const path = join(tempDir(), "raft.sqlite");
    const s = MetadataRaftStorage.open(path);
    s.initialize({ storageId: "x", createdAtMs: 1, nodeId: 1 }, bootstrapPersistedState([asRaftId(1)]));
    const entries = Array.from({ length: 20 }, (_, k) => normal(k + 2, 1, ""));
    s.persist({ hardState: { term: asTerm(1), vote: asRaftId(1), commit: asIndex(21) }, entries, snapshot: null, mustSync: true });
    const legacy = {
      formatVersion: 1,
      kv: { formatVersion: 1, entries: [{ key: "a", value: { x: 1 }, version: 3, live: true }, { key: "gone", value: null, version: 7, live: false }] },
      recent: [["r1", { ok: true, version: 3 }]],
    };
    s.saveSnapshot(asIndex(15), { voters: [asRaftId(1)], learners: [] }, new TextEncoder().encode(JSON.stringify(legacy)), 5);
    s.close();
    const again = MetadataRaftStorage.open(path);
    expect(again.kv.get("a")).toEqual({ value: { x: 1 }, version: 3 as never });
    expect(again.kv.get("gone")).toBeUndefined();
    expect(again.kv.versionFloor).toBe(7); // the tombstone's version still protects a re-created "gone"
    expect(again.kv.appliedIndex()).toBe(15);
    expect(again.mirror.snapshot().data).toEqual(ON_DISK_SNAPSHOT_MARKER);
    expect(again.mirror.lastIndex()).toBe(asIndex(21)); // the log after the snapshot is kept
    again.close();
  });

  test("a damaged file is refused with an error naming it", () => {
    const path = join(tempDir(), "raft.sqlite");
    writeFileSync(path, "this is not a database, just some bytes ".repeat(200));
    let err: unknown;
    try {
      MetadataRaftStorage.open(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).code).toBe("CAIRN-METADATA-0013");
    expect((err as CairnError).message).toContain(path);
  });
});
