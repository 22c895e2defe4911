import { describe, expect, test } from "bun:test";
import { DOES_NOT_EXIST, KvStateMachine, NONE, NO_VERSION, asVersion, matchesVersion, type KvCommand } from "../../src/metadata/kv.ts";

const put = (key: string, value: unknown, precondition = NONE): KvCommand => ({ op: "put", key, value, precondition });
const del = (key: string, precondition = NONE): KvCommand => ({ op: "delete", key, precondition });

describe("metadata KV state machine", () => {
  test("the server assigns versions: previous + 1, starting at 1", () => {
    const kv = new KvStateMachine();
    expect(kv.apply(put("a", 1))).toEqual({ ok: true, version: asVersion(1) });
    expect(kv.apply(put("a", 2))).toEqual({ ok: true, version: asVersion(2) });
    expect(kv.get("a")).toEqual({ value: 2, version: asVersion(2) });
    expect(kv.getVersion("missing")).toBe(NO_VERSION);
  });

  test("does-not-exist refuses an existing key and reports its version", () => {
    const kv = new KvStateMachine();
    expect(kv.apply(put("a", 1, DOES_NOT_EXIST)).ok).toBe(true);
    expect(kv.apply(put("a", 2, DOES_NOT_EXIST))).toEqual({ ok: false, reason: "exists", currentVersion: asVersion(1) });
    expect(kv.get("a")?.value).toBe(1);
  });

  test("matches-version succeeds only on the exact current version", () => {
    const kv = new KvStateMachine();
    kv.apply(put("a", "x"));
    kv.apply(put("a", "y"));
    expect(kv.apply(put("a", "z", matchesVersion(asVersion(1))))).toEqual({ ok: false, reason: "version-mismatch", currentVersion: asVersion(2) });
    expect(kv.apply(put("a", "z", matchesVersion(asVersion(2))))).toEqual({ ok: true, version: asVersion(3) });
    expect(kv.apply(put("b", "z", matchesVersion(asVersion(1))))).toEqual({ ok: false, reason: "not-found", currentVersion: NO_VERSION });
  });

  test("a deleted and re-created key continues its version sequence (no ABA)", () => {
    const kv = new KvStateMachine();
    kv.apply(put("a", "old"));
    expect(kv.apply(del("a", matchesVersion(asVersion(1))))).toEqual({ ok: true, version: asVersion(1) });
    expect(kv.get("a")).toBeUndefined();
    expect(kv.list()).toEqual([]);
    expect(kv.apply(put("a", "new", DOES_NOT_EXIST))).toEqual({ ok: true, version: asVersion(2) });
    // A writer still holding version 1 cannot overwrite the new value.
    expect(kv.apply(put("a", "stale", matchesVersion(asVersion(1)))).ok).toBe(false);
    expect(kv.get("a")?.value).toBe("new");
  });

  test("deleting a missing key reports not-found and changes nothing", () => {
    const kv = new KvStateMachine();
    expect(kv.apply(del("nope"))).toEqual({ ok: false, reason: "not-found", currentVersion: NO_VERSION });
    expect(kv.snapshot().entries).toEqual([]);
  });

  test("list is sorted and filtered by prefix", () => {
    const kv = new KvStateMachine();
    for (const k of ["pp_epoch/2", "logs", "pp_epoch/1", "nodes_config"]) kv.apply(put(k, k));
    expect(kv.list().map((e) => e.key)).toEqual(["logs", "nodes_config", "pp_epoch/1", "pp_epoch/2"]);
    expect(kv.list("pp_epoch/").map((e) => e.key)).toEqual(["pp_epoch/1", "pp_epoch/2"]);
  });

  test("a snapshot restores the same state, tombstones included", () => {
    const kv = new KvStateMachine();
    kv.apply(put("a", { n: 1 }));
    kv.apply(put("b", [1, 2]));
    kv.apply(put("b", [3]));
    kv.apply(del("a"));
    const copy = KvStateMachine.fromSnapshot(JSON.parse(JSON.stringify(kv.snapshot())));
    expect(copy.snapshot()).toEqual(kv.snapshot());
    expect(copy.apply(put("a", 0))).toEqual({ ok: true, version: asVersion(2) });
  });

  test("replicas applying the same random command sequence agree", () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    for (let i = 0; i < 2000; i++) {
      const key = `k${rnd(8)}`;
      const pre = [NONE, DOES_NOT_EXIST, matchesVersion(asVersion(rnd(5)))][rnd(3)]!;
      const cmd = rnd(4) === 0 ? del(key, pre) : put(key, i, pre);
      expect(a.apply(cmd)).toEqual(b.apply(cmd));
    }
    expect(a.snapshot()).toEqual(b.snapshot());
    for (const { key, version } of a.list()) expect(version).toBeGreaterThan(0), expect(a.get(key)?.version).toBe(version);
  });
});

describe("metadata values", () => {
  test("a value nested deeper than the limit is refused (checked without recursion); shallower ones pass", async () => {
    const { checkValue, MAX_VALUE_DEPTH } = await import("../../src/metadata/api.ts");
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(() => checkValue("k", deep)).toThrow("nested more than");
    let ok: unknown = 1;
    for (let i = 0; i < MAX_VALUE_DEPTH - 1; i++) ok = { a: ok };
    checkValue("k", ok);
  });
});
