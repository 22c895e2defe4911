import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NONE, asVersion } from "../../src/metadata/kv.ts";
import { SqliteKvStore } from "../../src/metadata/kv-store.ts";
import { SnapshotSource, adoptIncoming, dropIncoming, pullSnapshot, type SnapshotChunkRequest } from "../../src/metadata/snapshot-transfer.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openStore(name: string): { db: Database; kv: SqliteKvStore; path: string } {
  const dir = mkdtempSync(join(tmpdir(), "cairn-snap-"));
  dirs.push(dir);
  const path = join(dir, name);
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  return { db, kv: new SqliteKvStore(db), path };
}

function fill(db: Database, kv: SqliteKvStore, n: number, from = 0, applied = n): void {
  db.transaction(() => {
    for (let i = from; i < from + n; i++) kv.apply({ op: "put", key: `k/${String(i).padStart(7, "0")}`, value: { i, pad: "x".repeat(80) }, precondition: NONE });
    db.query("INSERT OR REPLACE INTO kv_requests (id, idx, result) VALUES (?, ?, ?)").run(`req-${from}`, applied, JSON.stringify({ ok: true, version: 1 }));
    kv.setAppliedIndex(applied);
  })();
}

const run = (db: Database) => <T>(fn: () => T): T => db.transaction(fn)() as T;

describe("metadata snapshot transfer", () => {
  test("a sink gets exactly the pinned read, page by page, while the source keeps writing", async () => {
    const source = openStore("source.sqlite");
    fill(source.db, source.kv, 5_000);
    source.kv.apply({ op: "delete", key: "k/0000007", precondition: NONE });
    const serving = new SnapshotSource(source.path, { idleTimeoutMs: 5_000, maxTransfers: 2 });
    const sink = openStore("sink.sqlite");
    fill(sink.db, sink.kv, 10, 900_000, 3); // old state the snapshot replaces
    let pages = 0;
    let wroteDuring = false;
    const pulled = await pullSnapshot({
      db: sink.db,
      transfer: "t1",
      maxBytes: 64 * 1024,
      signal: new AbortController().signal,
      transaction: (fn) => run(sink.db)(fn),
      fetch: async (req: SnapshotChunkRequest) => {
        pages++;
        const page = structuredClone(serving.chunk(req));
        if (!wroteDuring) {
          // The source goes on after the first page: the transfer must not see these.
          fill(source.db, source.kv, 100, 5_000, 6_000);
          wroteDuring = true;
        }
        return page;
      },
    });
    expect(pulled.appliedIndex).toBe(5_000);
    expect(pulled.versionFloor).toBe(1);
    expect(pages).toBeGreaterThan(10); // 64 KiB pages of ~100-byte rows
    expect(serving.transfersOpen).toBe(0); // the last page releases the pinned read
    sink.db.transaction(() => adoptIncoming(sink.db, pulled))();
    sink.kv.reload();
    expect(sink.kv.size()).toBe(4_999);
    expect(sink.kv.appliedIndex()).toBe(5_000);
    expect(sink.kv.get("k/0000042")).toEqual({ value: { i: 42, pad: "x".repeat(80) }, version: asVersion(1) });
    expect(sink.kv.get("k/0000007")).toBeUndefined();
    expect(sink.kv.get("k/0005001")).toBeUndefined();
    expect(sink.kv.get("k/0900001")).toBeUndefined();
    expect(sink.db.query("SELECT count(*) AS n FROM kv_requests").get()).toEqual({ n: 1 });
    // Writes after adoption work on the adopted tables (statements prepared before are re-prepared).
    const r = sink.kv.apply({ op: "put", key: "k/0000007", value: 1, precondition: NONE });
    expect(r.ok && r.version).toBe(asVersion(2));
    serving.close();
  });

  test("a transfer cut halfway leaves the sink's state untouched and its staging tables are dropped", async () => {
    const source = openStore("source.sqlite");
    fill(source.db, source.kv, 3_000);
    const serving = new SnapshotSource(source.path, { idleTimeoutMs: 5_000, maxTransfers: 2 });
    const sink = openStore("sink.sqlite");
    fill(sink.db, sink.kv, 5, 0, 9);
    let pages = 0;
    const cut = pullSnapshot({
      db: sink.db,
      transfer: "t2",
      maxBytes: 16 * 1024,
      signal: new AbortController().signal,
      transaction: (fn) => run(sink.db)(fn),
      fetch: async (req) => {
        if (++pages === 4) throw new Error("connection reset");
        return serving.chunk(req);
      },
    });
    await expect(cut).rejects.toThrow("connection reset");
    expect(sink.kv.size()).toBe(5);
    expect(sink.kv.appliedIndex()).toBe(9);
    dropIncoming(sink.db); // what opening the storage does
    const tables = sink.db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((t) => t.name);
    expect(tables).toEqual(["kv", "kv_meta", "kv_requests"]);
    // The source forgets the abandoned transfer after its idle timeout; a page of an unknown transfer is refused.
    expect(() => serving.chunk({ transfer: "nope", table: "requests", after: "x", maxBytes: 4096 })).toThrow(/not open/);
    serving.close();
    expect(serving.transfersOpen).toBe(0);
  });
});
