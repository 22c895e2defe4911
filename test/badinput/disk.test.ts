// On-disk damage found at start: a node whose data directory holds a truncated or corrupted SQLite
// file (metadata-raft.sqlite, metadata-local.sqlite, logserver.sqlite) or a damaged cluster-marker.json
// or node.json must refuse to start: non-zero exit, the catalogue code and the file's name on stderr,
// and the damaged file left as it was (never "repaired" into an empty store, never silently used).
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { runCairn, startNode, tempDir } from "../helpers/cairn-process.ts";

/** A provisioned node's data directory with some keys, stopped cleanly; copied for every case. */
async function golden(name: string, args: string[]): Promise<string> {
  const node = await startNode({ name, args });
  const admin = node.addresses.admin;
  const p = await fetch(`${admin}/v1/cluster/provision`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  expect(p.status).toBe(200);
  for (let i = 0; i < 20; i++) {
    const w = await fetch(`${admin}/v1/metadata/disk%2F${i}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ i, pad: "x".repeat(2000) }) });
    expect(w.status).toBe(200);
  }
  expect(await node.stop("SIGTERM")).toBe(0);
  return node.dataDir;
}

let replicated: string;
let local: string;

beforeAll(async () => {
  replicated = await golden("disk-replicated", []);
  local = await golden("disk-local", ["--set", "metadata-server.type=local"]);
}, 90_000);

type Damage = (dir: string) => void;

const overwrite =
  (file: string, at: (size: number) => number, bytes: number): Damage =>
  (dir) => {
    const path = join(dir, file);
    const fd = openSync(path, "r+");
    try {
      // Deterministic garbage (not zeros: SQLite may read zeroed pages as empty).
      const junk = new Uint8Array(bytes).map((_, i) => (i * 151 + 89) & 0xff);
      writeSync(fd, junk, 0, bytes, at(statSync(path).size));
    } finally {
      closeSync(fd);
    }
  };
const truncateTo =
  (file: string, size: (size: number) => number): Damage =>
  (dir) => {
    const path = join(dir, file);
    truncateSync(path, size(statSync(path).size));
  };
const replace =
  (file: string, content: string): Damage =>
  (dir) =>
    writeFileSync(join(dir, file), content);

interface StartResult {
  exitCode: number;
  stderr: string;
  stdout: string;
  fileUnchanged: boolean;
}

/** Copies `from`, damages the copy, starts a node on it and waits for it to exit (or the deadline). */
async function startDamaged(from: string, file: string, damage: Damage, args: string[] = [], deadlineMs = 20_000): Promise<StartResult> {
  const dir = join(tempDir("cairn-damage-"), "node");
  cpSync(from, dir, { recursive: true });
  rmSync(join(dir, "addresses.json"), { force: true });
  damage(dir);
  const before = readFileSync(join(dir, file));
  const r = await runCairn(
    ["server", "--node-name", "damaged", "--base-dir", dir, "--admin-address", "127.0.0.1:0", "--fabric-address", "127.0.0.1:0", "--ingress-address", "127.0.0.1:0", ...args],
    { timeoutMs: deadlineMs },
  );
  let after: Buffer;
  try {
    after = readFileSync(join(dir, file));
  } catch {
    after = Buffer.alloc(0);
  }
  return { ...r, fileUnchanged: Buffer.compare(before, after) === 0 };
}

/** Killed by our deadline = it started and kept running on the damaged file. */
const KILLED_BY_DEADLINE = 137;

function expectRefused(r: StartResult, code: string, file: string): void {
  const why = `exit ${r.exitCode}; stderr: ${r.stderr.slice(0, 400)}`;
  expect(r.exitCode, why).not.toBe(0);
  expect(r.exitCode, `the node started on the damaged ${file} (${why}; log: ${r.stdout.slice(-400)})`).not.toBe(KILLED_BY_DEADLINE);
  expect(r.stderr, why).toContain(code);
  expect(r.stderr, why).toContain(file);
  expect(r.fileUnchanged, `${file} was rewritten by the failed start`).toBe(true);
}

const SQLITE_DAMAGE: ReadonlyArray<[string, (file: string) => Damage]> = [
  ["truncated to half its size", (f) => truncateTo(f, (s) => Math.floor(s / 2))],
  ["truncated to 1000 bytes", (f) => truncateTo(f, () => 1000)],
  ["header overwritten", (f) => overwrite(f, () => 0, 100)],
  ["second page overwritten", (f) => overwrite(f, () => 4096, 4096)],
  ["last page overwritten", (f) => overwrite(f, (s) => s - 4096, 4096)],
];

describe("damaged metadata-raft.sqlite", () => {
  for (const [label, damage] of SQLITE_DAMAGE) {
    test(`${label}: refused with CAIRN-METADATA-0013 naming the file`, async () => {
      expectRefused(await startDamaged(replicated, "metadata-raft.sqlite", damage("metadata-raft.sqlite")), "CAIRN-METADATA-0013", "metadata-raft.sqlite");
    }, 30_000);
  }
});

describe("damaged metadata-local.sqlite", () => {
  for (const [label, damage] of SQLITE_DAMAGE.slice(0, 4)) {
    test(`${label} (metadata-server.type = local): refused with CAIRN-METADATA-0013 naming the file`, async () => {
      const r = await startDamaged(local, "metadata-local.sqlite", damage("metadata-local.sqlite"), ["--set", "metadata-server.type=local"]);
      expectRefused(r, "CAIRN-METADATA-0013", "metadata-local.sqlite");
    }, 30_000);
  }
  test("truncated, met by the automatic migration to the replicated server: refused naming the file", async () => {
    const r = await startDamaged(local, "metadata-local.sqlite", truncateTo("metadata-local.sqlite", (s) => Math.floor(s / 2)));
    expectRefused(r, "CAIRN-METADATA-0013", "metadata-local.sqlite");
  }, 30_000);
});

describe("damaged logserver.sqlite", () => {
  for (const [label, damage] of SQLITE_DAMAGE.slice(0, 3)) {
    test(`${label}: refused with CAIRN-LOG-0006 naming the file`, async () => {
      expectRefused(await startDamaged(replicated, "logserver.sqlite", damage("logserver.sqlite")), "CAIRN-LOG-0006", "logserver.sqlite");
    }, 30_000);
  }
});

describe("damaged cluster-marker.json and node.json", () => {
  const cases: ReadonlyArray<[string, string, Damage, string]> = [
    ["cluster-marker.json of binary garbage", "cluster-marker.json", replace("cluster-marker.json", "\u0000\u0001\u0002garbage"), "CAIRN-NODE-0007"],
    ["cluster-marker.json truncated mid-document", "cluster-marker.json", truncateTo("cluster-marker.json", () => 40), "CAIRN-NODE-0007"],
    ["cluster-marker.json without its fields", "cluster-marker.json", replace("cluster-marker.json", '{"hello": 1}'), "CAIRN-NODE-0007"],
    ["cluster-marker.json with a fingerprint of type number", "cluster-marker.json", replace("cluster-marker.json", '{"clusterName": "localcluster", "fingerprint": 7}'), "CAIRN-NODE-0007"],
    [
      "cluster-marker.json of another incarnation (fingerprint)",
      "cluster-marker.json",
      replace("cluster-marker.json", JSON.stringify({ clusterName: "localcluster", fingerprint: "0000000000000000", createdAtMs: 1, cairnVersion: "0.1.0" })),
      "CAIRN-NODE-0003",
    ],
    [
      "cluster-marker.json of another cluster (name)",
      "cluster-marker.json",
      replace("cluster-marker.json", JSON.stringify({ clusterName: "someone-else", fingerprint: null, createdAtMs: 1, cairnVersion: "0.1.0" })),
      "CAIRN-NODE-0003",
    ],
    ["node.json of garbage", "node.json", replace("node.json", "{{{"), "CAIRN-NODE-0007"],
    ["node.json with a negative generation", "node.json", replace("node.json", '{"generation": -4}'), "CAIRN-NODE-0007"],
  ];
  for (const [label, file, damage, code] of cases) {
    test(`${label}: refused with ${code}`, async () => {
      const r = await startDamaged(replicated, file, damage);
      // A marker of another cluster names the data directory, not the file: the code is the point.
      expectRefused(r, code, code === "CAIRN-NODE-0003" ? "" : file);
    }, 30_000);
  }
});

describe("regressions: bugs these tests found", () => {
  // Found here (fixed in 1a6f67c): a zero-byte metadata-raft.sqlite was taken for a new, empty store. The
  // node of a provisioned cluster started "running" without any of its keys, and a provision request
  // then answered 409 CAIRN-NODE-0003 while it had provisioned a second cluster into the raft storage.
  test("metadata-raft.sqlite truncated to zero bytes is refused at start", async () => {
    const r = await startDamaged(replicated, "metadata-raft.sqlite", truncateTo("metadata-raft.sqlite", () => 0), [], 10_000);
    expectRefused(r, "CAIRN-METADATA-0013", "metadata-raft.sqlite");
  }, 30_000);

  // Found here (fixed in 1a6f67c): the same for metadata-local.sqlite (metadata-server.type = local).
  test("metadata-local.sqlite truncated to zero bytes is refused at start", async () => {
    const r = await startDamaged(local, "metadata-local.sqlite", truncateTo("metadata-local.sqlite", () => 0), ["--set", "metadata-server.type=local"], 10_000);
    expectRefused(r, "CAIRN-METADATA-0013", "metadata-local.sqlite");
  }, 30_000);

  // Found here: a zero-byte logserver.sqlite was taken for a new, empty record store, and the node
  // served as a log-server that had never stored anything (silent loss of its acknowledged copies).
  test("logserver.sqlite truncated to zero bytes is refused at start", async () => {
    const r = await startDamaged(replicated, "logserver.sqlite", truncateTo("logserver.sqlite", () => 0), [], 10_000);
    expectRefused(r, "CAIRN-LOG-0021", "logserver.sqlite");
  }, 30_000);

  // Found by review: deleting the store together with its write-ahead log left no trace, and the node
  // started an empty store that answered seals and tails as if it had never stored anything.
  test("logserver.sqlite deleted with its WAL is refused while the node's .created marker says it had one", async () => {
    expect(existsSync(join(replicated, "logserver.sqlite.created"))).toBe(true);
    const removeStore = (dir: string): void => {
      for (const f of ["logserver.sqlite", "logserver.sqlite-wal", "logserver.sqlite-shm"]) rmSync(join(dir, f), { force: true });
    };
    const r = await startDamaged(replicated, "logserver.sqlite.created", removeStore, [], 10_000);
    expectRefused(r, "CAIRN-LOG-0021", "logserver.sqlite.created");
  }, 30_000);
});

describe("a record store that is legitimately new is not refused", () => {
  // The provisioned node has no store and no marker (it got the log-server role later, or its store
  // was wiped with the marker, e.g. by an operator following CAIRN-LOG-0021's hint): it starts with a
  // new store, marks it, and — since it cannot tell which — in data-loss mode, which it leaves once
  // no segment names it. Here its own segments name it and no other copy exists: it stays there.
  test("a provisioned node without logserver.sqlite and its marker starts, creates both, and says it is recovering from data loss", async () => {
    const dir = join(tempDir("cairn-damage-"), "node");
    cpSync(replicated, dir, { recursive: true });
    rmSync(join(dir, "addresses.json"), { force: true });
    for (const f of ["logserver.sqlite", "logserver.sqlite-wal", "logserver.sqlite-shm", "logserver.sqlite.created"]) rmSync(join(dir, f), { force: true });
    const node = await startNode({ name: "disk-replicated", dataDir: dir, readyPath: "/health" });
    expect(statSync(join(dir, "logserver.sqlite")).size).toBeGreaterThan(0);
    expect(existsSync(join(dir, "logserver.sqlite.creating"))).toBe(false);
    expect(existsSync(join(dir, "logserver.sqlite.created"))).toBe(true);
    const ready = await fetch(`${node.addresses.admin}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain("CAIRN-LOG-0025");
    const metrics = await (await fetch(`${node.addresses.admin}/metrics`)).text();
    expect(metrics).toContain("cairn_logserver_store_recovering 1");
    expect(await node.stop("SIGTERM")).toBe(0);
  }, 30_000);

  // Nothing can have been acknowledged before the cluster was provisioned.
  test("a never-provisioned node with an empty logserver.sqlite starts with a new store", async () => {
    const fresh = join(tempDir("cairn-fresh-"), "node");
    mkdirSync(fresh, { recursive: true });
    writeFileSync(join(fresh, "logserver.sqlite"), "");
    const node = await startNode({ name: "fresh", dataDir: fresh });
    expect(statSync(join(fresh, "logserver.sqlite")).size).toBeGreaterThan(0);
    expect(await node.stop("SIGTERM")).toBe(0);
  }, 30_000);
});
