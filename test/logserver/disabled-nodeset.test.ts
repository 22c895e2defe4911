// A log whose nodeset holds two disabled log-server stores (a failed write each, a real SQLite failure):
// while they are disabled a seal cannot gather nodeset − r + 1 answers and says so, with the code and
// the servers that failed; once the fault is gone their recovery probes re-enable them (no reopen, no
// restart) and the log is sealed and moved on to a new segment without losing an acknowledged record.
import { afterEach, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { findLog, LOGS_KEY, parseLogsDocument } from "../../src/bifrost/chain.ts";
import { logId, lsn, nodeId } from "../../src/ids/index.ts";
import { LogStore } from "../../src/logserver/index.ts";
import { CairnError, isCairnError } from "../../src/observability/errors.ts";
import { TestCluster } from "../bifrost/harness.ts";
import { eventually } from "../helpers/cluster.ts";
import { useTempDirs } from "./helpers.ts";

const tempDir = useTempDirs();
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const L1 = logId(1);

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const db = (s: LogStore) => (s as unknown as { db: Database }).db;


describe("a nodeset with two disabled stores", () => {
  test("a seal reports exactly why it cannot complete, and succeeds once the stores' recovery probes re-enable them", async () => {
    const c = new TestCluster(tempDir(), 3, 2, [1], { appendTimeoutMs: 2_000 });
    cluster = c;
    // Stores with short recovery probes (same files, reopened before any write).
    for (const i of [1, 2, 3]) {
      const n = c.node(i);
      const path = n.store.path;
      await n.store.close();
      n.store = LogStore.open({ path, sync: false, recoveryProbeInitialDelayMs: 20, recoveryProbeMaxDelayMs: 100 });
    }
    await c.node(1).bifrost.reconfigure(L1, { sequencer: nodeId(1) }, { reason: "test" });
    const before = await c.node(1).bifrost.append(L1, [enc("before")]);
    const chainBefore = findLog(parseLogsDocument((await c.metadata.get(LOGS_KEY))!.value), L1)!;
    expect(chainBefore.segments.at(-1)!.params.nodeset).toHaveLength(3);

    // The disk fault on nodes 2 and 3: every write fails until it is lifted.
    for (const i of [2, 3]) db(c.node(i).store).run("PRAGMA query_only = 1");
    const during = await c.node(1).bifrost.append(L1, [enc("during")]).catch((e: unknown) => e);
    expect(during).toBeInstanceOf(CairnError);
    await eventually("both stores disabled", async () => (!c.node(2).store.writable && !c.node(3).store.writable) || undefined);

    const refused = await c.node(1).bifrost.seal(L1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CairnError);
    const e = refused as CairnError;
    // Why, exactly: a seal needs nodeset − r + 1 = 2 answers; only node 1's store could write one.
    expect(isCairnError(e, "LOG_RECOVERY_FAILED")).toBe(true);
    // Both failed servers are named with what they answered (the store's own error).
    for (const n of ["N2", "N3"]) expect(e.message).toMatch(new RegExp(`${n}: [^;]*cannot write`));

    for (const i of [2, 3]) db(c.node(i).store).run("PRAGMA query_only = 0");
    await eventually("both stores re-enabled by their probes", async () => (c.node(2).store.writable && c.node(3).store.writable) || undefined);
    const sealed = await c.node(1).bifrost.seal(L1);
    expect(sealed.segments.at(-1)!.sealedTail).toBeDefined();
    await c.node(1).bifrost.reconfigure(L1, {}, { reason: "test" });
    const after = await c.node(2).bifrost.append(L1, [enc("after")]);
    expect(after.first).toBeGreaterThan(before.last);
    const read = await c.node(3).bifrost.read(L1, lsn(1), { limit: 10 });
    const texts = read.entries.flatMap((x) => (x.kind === "record" ? [dec(x.payload)] : []));
    expect(texts[0]).toBe("before");
    expect(texts.at(-1)).toBe("after");
  }, 60_000);
});
