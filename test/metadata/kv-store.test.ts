import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { DOES_NOT_EXIST, NONE, NO_VERSION, asVersion, matchesVersion, type KvCommand } from "../../src/metadata/kv.ts";
import { SqliteKvStore, prefixUpperBound } from "../../src/metadata/kv-store.ts";

const put = (key: string, value: unknown, precondition = NONE): KvCommand => ({ op: "put", key, value, precondition });
const del = (key: string, precondition = NONE): KvCommand => ({ op: "delete", key, precondition });

function store(): SqliteKvStore {
  return new SqliteKvStore(new Database(":memory:", { strict: true }));
}

describe("the metadata KV on disk", () => {
  test("the server assigns versions: previous + 1, starting at 1; preconditions as in memory", () => {
    const kv = store();
    expect(kv.apply(put("a", 1))).toEqual({ ok: true, version: asVersion(1) });
    expect(kv.apply(put("a", 2))).toEqual({ ok: true, version: asVersion(2) });
    expect(kv.get("a")).toEqual({ value: 2, version: asVersion(2) });
    expect(kv.getVersion("missing")).toBe(NO_VERSION);
    expect(kv.apply(put("a", 3, DOES_NOT_EXIST))).toEqual({ ok: false, reason: "exists", currentVersion: asVersion(2) });
    expect(kv.apply(put("a", 3, matchesVersion(asVersion(1))))).toEqual({ ok: false, reason: "version-mismatch", currentVersion: asVersion(2) });
    expect(kv.apply(put("b", 3, matchesVersion(asVersion(1))))).toEqual({ ok: false, reason: "not-found", currentVersion: NO_VERSION });
    expect(kv.apply(del("nope"))).toEqual({ ok: false, reason: "not-found", currentVersion: NO_VERSION });
  });

  test("a delete removes the row, and a re-created key starts above every version it had (no ABA)", () => {
    const kv = store();
    kv.apply(put("a", "v1"));
    kv.apply(put("a", "v2"));
    kv.apply(put("a", "v3"));
    expect(kv.apply(del("a", matchesVersion(asVersion(3))))).toEqual({ ok: true, version: asVersion(3) });
    expect(kv.get("a")).toBeUndefined();
    expect(kv.size()).toBe(0);
    expect(kv.isEmpty()).toBe(true);
    const again = kv.apply(put("a", "new", DOES_NOT_EXIST));
    expect(again.ok && again.version).toBe(asVersion(4));
    // A writer still holding an old version can never overwrite the new value.
    for (const v of [1, 2, 3]) expect(kv.apply(put("a", "stale", matchesVersion(asVersion(v)))).ok).toBe(false);
    expect(kv.get("a")?.value).toBe("new");
  });

  test("the floor survives reopening the database", () => {
    const db = new Database(":memory:", { strict: true });
    const kv = new SqliteKvStore(db);
    kv.apply(put("x", 1));
    kv.apply(put("x", 2));
    kv.apply(del("x"));
    const reopened = new SqliteKvStore(db);
    expect(reopened.versionFloor).toBe(2);
    const r = reopened.apply(put("x", 3));
    expect(r.ok && r.version).toBe(asVersion(3));
  });

  test("list pages through keys in order, by prefix, with a cursor that ends in null", () => {
    const kv = store();
    const keys = ["pp_epoch/10", "logs", "pp_epoch/1", "nodes_config", "pp_epoch/2", "pp_epocha", "pp_epoch"];
    for (const k of keys) kv.apply(put(k, k));
    expect(kv.list({ limit: 100 }).entries.map((e) => e.key)).toEqual([...keys].sort());
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; ; pages++) {
      const page = kv.list({ prefix: "pp_epoch/", limit: 2, ...(after !== undefined ? { after } : {}) });
      seen.push(...page.entries.map((e) => e.key));
      if (page.next === null) break;
      after = page.next;
      expect(pages).toBeLessThan(5);
    }
    expect(seen).toEqual(["pp_epoch/1", "pp_epoch/10", "pp_epoch/2"]);
    // A cursor before the prefix starts at the prefix; one past it ends the listing.
    expect(kv.list({ prefix: "pp_epoch/", after: "a", limit: 10 }).entries.length).toBe(3);
    expect(kv.list({ prefix: "pp_epoch/", after: "pp_epoch/2", limit: 10 })).toEqual({ entries: [], next: null });
    expect(kv.list({ limit: 7 }).next).toBeNull();
    expect(kv.list({ limit: 6 }).next).toBe([...keys].sort()[5]!);
  });

  test("prefix bounds handle the top of the character range", () => {
    expect(prefixUpperBound("ab")).toBe("ac");
    expect(prefixUpperBound("a\uffff")).toBe("b");
    expect(prefixUpperBound("\uffff")).toBeUndefined();
  });

  test("values keep their JSON shape, and the cached documents follow writes and deletes", () => {
    const kv = store();
    const doc = { nodes: [{ id: 1, name: "n1" }], nested: { a: [1, "two", null, true] } };
    kv.apply(put("nodes_config", doc));
    expect(kv.get("nodes_config")?.value).toEqual(doc);
    kv.apply(put("nodes_config", { nodes: [] }));
    expect(kv.get("nodes_config")).toEqual({ value: { nodes: [] }, version: asVersion(2) });
    kv.apply(del("nodes_config"));
    expect(kv.get("nodes_config")).toBeUndefined();
    kv.apply(put("k", null));
    expect(kv.get("k")).toEqual({ value: null, version: asVersion(3) });
  });
});
