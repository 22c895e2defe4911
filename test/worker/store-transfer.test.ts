// The two ends of a peer store transfer, on real stores and real exports (a Worker thread each):
// a copy pulled in bounded chunks equals the source store by digest; a copy below the trim point,
// a chunk damaged on the way or a source that changes its answer leaves no file behind; the source
// refuses what it cannot serve with CAIRN-SNAPSHOT-0011, bounds its open exports and deletes an
// export nobody asks for within the idle timeout.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { isCairnError } from "../../src/observability/errors.ts";
import { installStore, pullStore, StoreTransferSource } from "../../src/worker/peer-transfer.ts";
import type { FetchStoreChunk, FetchStoreRequest } from "../../src/worker/rpc.ts";
import { PartitionStore } from "../../src/worker/store.ts";
import { applyWrite, removeTempDirs, storeDigest, tempDir } from "../snapshot/support.ts";
import { eventually } from "../helpers/cluster.ts";

afterEach(removeTempDirs);

function seeded(n: number): PartitionStore {
  const store = new PartitionStore(join(tempDir(), "p0.sqlite"));
  for (let lsn = 1; lsn <= n; lsn++) applyWrite(store, lsn, 1024);
  return store;
}

function source(store: PartitionStore | undefined, limits = { chunkBytes: 8192, idleTimeoutMs: 60_000, maxOpen: 2 }) {
  const scratchDir = tempDir();
  return { scratchDir, src: new StoreTransferSource({ scratchDir, limits, storeOf: (p) => (p === 0 ? store?.path : undefined), node: () => "N9" }) };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isCairnError(e) ? e.code : `not a CairnError: ${(e as Error).message}`;
  }
  return "resolved";
}

describe("peer store transfer", () => {
  test("a store pulled in bounded chunks equals the source by digest and the export is removed after the last chunk", async () => {
    const store = seeded(500);
    const { scratchDir, src } = source(store);
    const sizes: number[] = [];
    const dir = tempDir();
    const tmp = join(dir, "p0.sqlite.from-N9");
    const pulled = await pullStore({
      partition: 0,
      minLsn: 400,
      tempPath: tmp,
      chunkBytes: 1_000_000, // asks for more than the source's bound: it is clipped to 8192
      fetch: async (req) => {
        const c = await src.chunk(req);
        sizes.push(c.data.byteLength);
        return c;
      },
    });
    expect(pulled.lsn).toBe(500);
    expect(pulled.node).toBe("N9");
    expect(sizes.length).toBeGreaterThan(10);
    expect(Math.max(...sizes)).toBe(8192);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(pulled.sizeBytes);
    await installStore(tmp, join(dir, "p0.sqlite"));
    store.checkpoint();
    expect(storeDigest(join(dir, "p0.sqlite"))).toEqual(storeDigest(store.path));
    expect(src.exportsOpen).toBe(0);
    expect(readdirSync(scratchDir)).toEqual([]);
    store.close();
  });

  test("a copy below the trim point, a damaged chunk or a changing source leaves nothing behind", async () => {
    const store = seeded(200);
    const { src } = source(store);
    const dir = tempDir();
    const tmp = join(dir, "incoming");
    const fail = (minLsn: number, fetch: (req: FetchStoreRequest) => Promise<FetchStoreChunk>) => code(pullStore({ partition: 0, minLsn, tempPath: tmp, chunkBytes: 4096, fetch }));

    expect(await fail(201, (req) => src.chunk(req))).toBe("CAIRN-SNAPSHOT-0011");
    expect(existsSync(tmp)).toBe(false);

    let n = 0;
    const damaged = await fail(1, async (req) => {
      const c = await src.chunk(req);
      if (n++ === 3) c.data[10] = (c.data[10] ?? 0) ^ 0xff;
      return c;
    });
    expect(damaged).toBe("CAIRN-SNAPSHOT-0003");
    expect(existsSync(tmp)).toBe(false);

    let m = 0;
    const changing = await fail(1, async (req) => {
      const c = await src.chunk(req);
      return m++ === 2 ? { ...c, lsn: c.lsn + 1 } : c;
    });
    expect(changing).toBe("CAIRN-SNAPSHOT-0011");
    expect(existsSync(tmp)).toBe(false);
    store.close();
  });

  test("the source refuses partitions it does not hold, unknown transfers and more exports than its bound, and drops idle exports", async () => {
    const store = seeded(300);
    const { scratchDir, src } = source(store, { chunkBytes: 4096, idleTimeoutMs: 1_000, maxOpen: 2 });
    expect(await code(src.chunk({ partition: 1, transfer: "t0", offset: 0, maxBytes: 4096 }))).toBe("CAIRN-SNAPSHOT-0011");
    expect(await code(src.chunk({ partition: 0, transfer: "nope", offset: 4096, maxBytes: 4096 }))).toBe("CAIRN-SNAPSHOT-0011");
    await src.chunk({ partition: 0, transfer: "t1", offset: 0, maxBytes: 4096 });
    await src.chunk({ partition: 0, transfer: "t2", offset: 0, maxBytes: 4096 });
    expect(src.exportsOpen).toBe(2);
    expect(await code(src.chunk({ partition: 0, transfer: "t3", offset: 0, maxBytes: 4096 }))).toBe("CAIRN-SNAPSHOT-0011");
    // Nobody asks for the rest: both exports are deleted after the idle timeout.
    await eventually("idle exports removed", async () => (src.exportsOpen === 0 && readdirSync(scratchDir).length === 0 ? true : undefined), 30_000);
    expect(await code(src.chunk({ partition: 0, transfer: "t1", offset: 4096, maxBytes: 4096 }))).toBe("CAIRN-SNAPSHOT-0011");
    await src.close();
    store.close();
  });
});
