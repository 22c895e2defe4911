import { describe, expect, test } from "bun:test";
import type { Entry } from "../../src/raft/index.ts";
import { MemoryStorage, RaftInvariantError, RaftStorageError, bootstrapPersistedState } from "../../src/raft/index.ts";
import { id } from "./harness.ts";

const e = (index: number, term: number): Entry => ({ kind: "normal", term: term as never, index: index as never, data: new Uint8Array([index]) });
const i = (n: number) => n as never;

describe("MemoryStorage", () => {
  test("append replaces the stored suffix from the first new index", () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    s.append([e(2, 2)]);
    expect(s.lastIndex()).toBe(i(2));
    expect(s.term(i(2))).toBe(i(2));
    expect(() => s.append([e(5, 2)])).toThrow(RaftInvariantError);
  });

  test("entries respect the size bound but always return at least one", () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    expect(s.entries(i(1), i(4), 1).length).toBe(1);
    expect(s.entries(i(1), i(4), 1000).length).toBe(3);
    expect(() => s.entries(i(1), i(5), 1000)).toThrow(RaftStorageError);
  });

  test("a snapshot then compaction keeps the term of the compaction point and refuses older reads", () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
    s.createSnapshot(i(3), { voters: [id(1)], learners: [] }, new Uint8Array([42]));
    expect(s.firstIndex()).toBe(i(1)); // kept until compacted
    s.compact(i(2));
    expect(s.firstIndex()).toBe(i(3));
    expect(s.term(i(2))).toBe(i(1));
    expect(() => s.term(i(1))).toThrow(RaftStorageError);
    expect(() => s.entries(i(2), i(4), 100)).toThrow(RaftStorageError);
    expect(() => s.compact(i(4))).toThrow(RaftInvariantError); // beyond the snapshot
    expect(s.snapshot().metadata).toEqual({ index: i(3), term: i(2), confState: { voters: [id(1)], learners: [] } });
  });

  test("installing a snapshot replaces the log", () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1)]);
    s.applySnapshot({ metadata: { index: i(10), term: i(3), confState: { voters: [id(1)], learners: [] } }, data: new Uint8Array(0) });
    expect(s.firstIndex()).toBe(i(11));
    expect(s.lastIndex()).toBe(i(10));
    expect(s.term(i(10))).toBe(i(3));
    s.append([e(11, 3)]);
    expect(s.lastIndex()).toBe(i(11));
  });

  test("round-trips through its persisted-state form", () => {
    const s = MemoryStorage.fromPersistedState(bootstrapPersistedState([id(1), id(2), id(3)]));
    s.append([e(4, 2), e(5, 2)]);
    s.createSnapshot(i(4), { voters: [id(1), id(2), id(3)], learners: [] }, new Uint8Array([1]));
    s.compact(i(4));
    const copy = MemoryStorage.fromPersistedState(s.toPersistedState());
    expect(copy.firstIndex()).toBe(s.firstIndex());
    expect(copy.lastIndex()).toBe(s.lastIndex());
    expect(copy.snapshot()).toEqual(s.snapshot());
    expect(copy.hardState()).toEqual(s.hardState());
  });
});
