// Snapshots on a real 3-node cluster (every role, 8 partitions, replication 2, one shared file
// repository): objects written through the data plane; POST /v1/snapshots on a node that is not the
// controller is forwarded to it; the job completes for all 8 partitions; GET /v1/snapshots lists
// them; snapshots/<p> is set in metadata; each snapshot holds the objects written before it.
// `cairn ctl snapshots create/list` drive the same. kill -9 of a partition leader's node during a
// job leaves every latest.json naming a complete snapshot, and the next job succeeds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ALL_ROLES, runCairn, tempDir } from "../helpers/cairn-process.ts";
import { eventually, json, leaderOf, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { evenPartitionTable, partitionOfObject } from "../../src/worker/index.ts";
import { fileChecksum } from "../../src/snapshot/index.ts";

const NUM_PARTITIONS = 8;
let cluster: TestCluster;
const repoDir = join(tempDir("cairn-snap-repo-"), "snapshots");
const table = evenPartitionTable(NUM_PARTITIONS);

interface Task {
  partition: number;
  state: string;
  lsn: number | null;
  sizeBytes: number | null;
  attempts: number;
  error: string | null;
  node: string | null;
}
interface Job {
  id: string;
  state: string;
  controller: string;
  partitions: Task[];
}

beforeAll(async () => {
  cluster = await startCluster(3, {
    replication: 2,
    numPartitions: NUM_PARTITIONS,
    extraArgs: [
      "--roles", ALL_ROLES,
      "--set", "snapshots.repository=file",
      "--set", `snapshots.path=${repoDir}`,
      "--set", "snapshots.retry-backoff-initial-ms=200",
      "--set", "snapshots.retry-backoff-max-ms=1000",
      "--set", "snapshots.max-attempts=8",
      // Two at a time: a job spans several rounds (the kill below lands while one runs).
      "--set", "snapshots.max-concurrent-cluster=2",
    ],
  });
  await allLed();
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

const alive = () => cluster.nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);

async function allLed(): Promise<void> {
  await eventually(
    "every partition led",
    async () => {
      const r = await json<{ partitions: Array<{ leader: string | null; leaderApplied: boolean }> }>(`${alive()[0]!.addresses.admin}/v1/partitions`);
      return r.status === 200 && r.body.partitions.length === NUM_PARTITIONS && r.body.partitions.every((p) => p.leader !== null && p.leaderApplied) ? true : undefined;
    },
    120_000,
  );
}

async function put(service: string, key: string, value: string): Promise<void> {
  await eventually(`write ${service}/${key}`, async () => {
    const n = alive()[Math.floor(Math.random() * alive().length)]!;
    const r = await fetch(`${n.addresses.ingress}/v1/objects/${service}/${encodeURIComponent(key)}/state/v`, {
      method: "PUT",
      body: value,
      headers: { "content-type": "text/plain", "idempotency-key": `${service}-${key}-${value}` },
      signal: AbortSignal.timeout(15_000),
    });
    return r.status === 200 ? true : undefined;
  });
}

async function finishedJob(admin: string, id: string): Promise<Job> {
  return eventually(
    `snapshot job ${id} to finish`,
    async () => {
      const r = await json<Job>(`${admin}/v1/snapshots/jobs/${id}`);
      if (r.status !== 200) throw new Error(`GET job answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body.state === "running" ? undefined : r.body;
    },
    120_000,
  );
}

/** Every latest.json in the repository names a complete snapshot whose store matches its checksum. */
async function repositoryConsistent(): Promise<number> {
  let checked = 0;
  for (let p = 0; p < NUM_PARTITIONS; p++) {
    const latestPath = join(repoDir, String(p), "latest.json");
    if (!existsSync(latestPath)) continue;
    const latest = JSON.parse(readFileSync(latestPath, "utf8")) as { lsn: number; path: string };
    const dir = join(repoDir, String(p), latest.path);
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8")) as { lsn: number; checksum: string; sizeBytes: number; partition: number };
    expect(meta.lsn).toBe(latest.lsn);
    expect(meta.partition).toBe(p);
    expect(await fileChecksum(join(dir, "store.sqlite"))).toEqual({ checksum: meta.checksum, sizeBytes: meta.sizeBytes });
    checked++;
  }
  return checked;
}

describe("snapshots on 3 real nodes", () => {
  const written: Array<{ key: string; value: string; partition: number }> = [];

  test("a job started on a node that is not the controller snapshots all 8 partitions; they are listed and indexed in metadata", async () => {
    for (let i = 0; i < 48; i++) {
      const key = `user-${i}`;
      await put("profile", key, `v${i}`);
      written.push({ key, value: `v${i}`, partition: partitionOfObject(table, "profile", key) });
    }
    expect(new Set(written.map((w) => w.partition)).size).toBe(NUM_PARTITIONS);
    const controller = await leaderOf(cluster);
    const other = cluster.nodes.find((n) => n !== controller)!;
    const started = await json<Job>(`${other.addresses.admin}/v1/snapshots`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(started.status).toBe(202);
    expect(started.body.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const third = cluster.nodes.find((n) => n !== controller && n !== other)!;
    const job = await finishedJob(third.addresses.admin, started.body.id);
    expect(job.state).toBe("succeeded");
    for (const t of job.partitions) {
      expect(t.state).toBe("succeeded");
      expect(t.lsn).toBeGreaterThan(0);
      expect(t.sizeBytes).toBeGreaterThan(0);
    }

    // The controller's metrics saw every partition.
    const metrics = await (await fetch(`${controller.addresses.admin}/metrics`)).text();
    expect(Number(/^cairn_snapshot_duration_seconds_count (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(NUM_PARTITIONS);
    for (const t of job.partitions) expect(metrics).toContain(`cairn_snapshot_last_lsn{partition="${t.partition}"} ${t.lsn}`);
    expect(metrics).toMatch(/^cairn_snapshot_age_seconds\{partition="0"\} /m);
    expect(metrics).toMatch(/^cairn_snapshots_in_flight 0$/m);

    const list = await json<{ snapshots: Array<{ partition: number; lsn: number; id: string; latest: boolean; checksum: string }> }>(`${other.addresses.admin}/v1/snapshots`);
    expect(list.status).toBe(200);
    expect(list.body.snapshots.filter((s) => s.latest).map((s) => s.partition)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await repositoryConsistent()).toBe(NUM_PARTITIONS);

    for (const t of job.partitions) {
      const idx = await json<{ value: { partition: number; latestLsn: number; latestId: string; oldestRetainedLsn: number } }>(
        `${other.addresses.admin}/v1/metadata/${encodeURIComponent(`snapshots/${t.partition}`)}`,
      );
      expect(idx.status).toBe(200);
      expect(idx.body.value).toMatchObject({ partition: t.partition, latestLsn: t.lsn!, oldestRetainedLsn: t.lsn! });
    }

    // Each snapshot's store holds the objects written to its partition before the job.
    for (let p = 0; p < NUM_PARTITIONS; p++) {
      const latest = JSON.parse(readFileSync(join(repoDir, String(p), "latest.json"), "utf8")) as { path: string };
      const db = new Database(join(repoDir, String(p), latest.path, "store.sqlite"), { readonly: true });
      try {
        for (const w of written.filter((x) => x.partition === p)) {
          const row = db.query<{ value: Uint8Array }, [string]>("SELECT value FROM state WHERE service = 'profile' AND key = ? AND name = 'v'").get(w.key);
          expect(row === null ? null : new TextDecoder().decode(row.value)).toBe(w.value);
        }
      } finally {
        db.close();
      }
    }
  }, 180_000);

  test("cairn ctl snapshots create --partition runs a job to a summary; list shows the newer snapshots; bad input is refused", async () => {
    await put("profile", "user-0", "changed");
    const p0 = partitionOfObject(table, "profile", "user-0");
    const admin = alive().map((n) => n.addresses.admin).join(",");
    const created = await runCairn(["ctl", "--address", admin, "snapshots", "create", "--partition", String(p0)], { timeoutMs: 120_000 });
    expect(created.stderr + created.stdout).toContain("succeeded");
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toContain("PARTITION");
    expect(created.stdout).toMatch(/1\/1 partitions snapshotted/);
    const listed = await runCairn(["ctl", "--address", admin, "--json", "snapshots", "list", "--partition", String(p0)]);
    expect(listed.exitCode).toBe(0);
    const rows = (JSON.parse(listed.stdout) as { snapshots: Array<{ partition: number; lsn: number; latest: boolean }> }).snapshots;
    // num-retained = 1: only the newest is kept.
    expect(rows.length).toBe(1);
    expect(rows[0]!.latest).toBe(true);
    const bad = await json<{ code: string }>(`${alive()[0]!.addresses.admin}/v1/snapshots`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ partitions: [NUM_PARTITIONS + 3] }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("CAIRN-SNAPSHOT-0006");
    const missing = await json<{ code: string }>(`${alive()[0]!.addresses.admin}/v1/snapshots/jobs/snap-nope`);
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("CAIRN-SNAPSHOT-0004");
  }, 180_000);

  test("kill -9 of a partition leader's node during a job: latest.json still names complete snapshots, and the next job succeeds", async () => {
    const controller = await leaderOf(cluster);
    const ids = await Promise.all(cluster.nodes.map(async (n) => (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id));
    // Every partition was first placed on the nodes alive at provisioning; leaderships spread to the
    // others only after worker.rebalance-delay-ms, one move at a time. Wait for a leader that is not
    // the controller's node (a fault there tests the snapshot job, not the controller's failover).
    const victim = await eventually(
      "a partition led by a node other than the controller's",
      async () => {
        const r = await json<{ partitions: Array<{ id: number; leader: string | null; leaderApplied: boolean }> }>(`${controller.addresses.admin}/v1/partitions`);
        if (r.status !== 200 || !r.body.partitions.every((p) => p.leader !== null && p.leaderApplied)) return undefined;
        const i = cluster.nodes.findIndex((n, k) => n !== controller && r.body.partitions.some((p) => p.leader === ids[k]));
        return i >= 0 ? i : undefined;
      },
      120_000,
    );
    for (let i = 0; i < 16; i++) await put("cart", `c-${i}`, `x${i}`);
    const started = await json<Job>(`${controller.addresses.admin}/v1/snapshots`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(started.status).toBe(202);
    await cluster.nodes[victim]!.stop("SIGKILL");
    const first = await finishedJob(controller.addresses.admin, started.body.id);
    // Whatever the interrupted job reports, the repository never shows a partial snapshot.
    expect(["succeeded", "failed"]).toContain(first.state);
    expect(await repositoryConsistent()).toBe(NUM_PARTITIONS);
    await allLed();
    const next = await eventually(
      "a snapshot job that succeeds after the failover",
      async () => {
        const r = await json<Job>(`${controller.addresses.admin}/v1/snapshots`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
        if (r.status !== 202) return undefined;
        const done = await finishedJob(controller.addresses.admin, r.body.id);
        return done.state === "succeeded" ? done : undefined;
      },
      150_000,
    );
    expect(next.partitions.every((t) => t.state === "succeeded")).toBe(true);
    expect(await repositoryConsistent()).toBe(NUM_PARTITIONS);
    // The dead node led none of them any more.
    expect(next.partitions.some((t) => t.node === ids[victim])).toBe(false);
  }, 300_000);
});
