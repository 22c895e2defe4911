// The S3 repository against a real S3-compatible server (s3rver on 127.0.0.1, random port): the
// layout under the prefix, latest.json forward-only, retention, a roundtrip of a real store; a
// missing bucket and wrong credentials fail with CAIRN-SNAPSHOT-0002 naming the cause, and publish
// nothing. A real node configured for S3 (credentials from AWS_* in its environment) runs a job
// into the bucket.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import S3rver from "s3rver";
import { join } from "node:path";
import { importStore, S3BlobStore, SnapshotRepository, type S3StoreOptions } from "../../src/snapshot/index.ts";
import { isCairnError, type CairnError } from "../../src/observability/errors.ts";
import { PartitionStore } from "../../src/worker/store.ts";
import { ALL_ROLES, startNode } from "../helpers/cairn-process.ts";
import { eventually, FAST_RAFT, json } from "../helpers/cluster.ts";
import { applyWrite, expectConditionalWrites, removeTempDirs, snapshotStore, storeDigest, tempDir } from "./support.ts";

let server: S3rver;
let endpoint: string;
const BUCKET = "cairn-snapshots";

beforeAll(async () => {
  server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: tempDir("cairn-s3rver-"), configureBuckets: [{ name: BUCKET }] });
  const address = await server.run();
  endpoint = `http://127.0.0.1:${address.port}`;
});
afterAll(async () => {
  await server?.close();
  removeTempDirs();
});

function s3(options: Partial<S3StoreOptions> = {}): S3BlobStore {
  // s3rver's built-in account.
  return new S3BlobStore({ endpoint, bucket: BUCKET, prefix: "cluster-a", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER", requestTimeoutMs: 10_000, ...options });
}

function seededStore(n: number): PartitionStore {
  const store = new PartitionStore(join(tempDir(), "p.sqlite"));
  for (let lsn = 1; lsn <= n; lsn++) applyWrite(store, lsn, 200);
  return store;
}

function snapshotOf(repository: SnapshotRepository, store: PartitionStore, partition: number) {
  return snapshotStore(repository, store.path, partition);
}

describe("S3 snapshot repository (s3rver)", () => {
  test("snapshots roundtrip through the bucket under the prefix; latest.json moves forward and retention deletes the older", async () => {
    const blobs = s3();
    const repo = new SnapshotRepository(blobs, { numRetained: 1 });
    const store = seededStore(40);
    const first = await snapshotOf(repo, store, 2);
    expect(first).toMatchObject({ lsn: 40, uploaded: true });
    for (let lsn = 41; lsn <= 60; lsn++) applyWrite(store, lsn, 200);
    const second = await snapshotOf(repo, store, 2);
    expect(second).toMatchObject({ lsn: 60, uploaded: true, oldestRetainedLsn: 60 });
    const keys = await blobs.list("2/");
    expect(keys).toEqual(["2/latest.json", `2/${second.path}/metadata.json`, `2/${second.path}/store.sqlite`]);
    expect(second.path).toMatch(/^lsn_00000000000000000060-[0-9a-f]{12}$/);
    // The objects really are under the prefix in the bucket.
    const raw = new S3BlobStore({ endpoint, bucket: BUCKET, prefix: "", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER", requestTimeoutMs: 10_000 });
    expect(await raw.list("cluster-a/2/")).toContain("cluster-a/2/latest.json");
    const [meta] = await repo.list(2);
    const target = join(tempDir(), "imported.sqlite");
    await importStore(repo, meta!, target);
    expect(storeDigest(target).lsn).toBe(60);
    expect(storeDigest(target).digest).toBe(storeDigest(store.path).digest);
    expect((await repo.latest(2))?.lsn).toBe(60);
    store.close();
  }, 60_000);

  test("a file below the part size is stored with one PUT, a larger one by a multipart upload; both read back byte for byte", async () => {
    const events: Array<{ name: string; key: string }> = [];
    const onEvent = (e: { Records: Array<{ eventName: string; s3: { object: { key: string } } }> }) => {
      for (const r of e.Records) events.push({ name: r.eventName, key: r.s3.object.key });
    };
    server.on("event", onEvent);
    try {
      const blobs = s3({ prefix: "parts", partSizeBytes: 5 * 1024 * 1024 });
      const dir = tempDir();
      for (const [name, bytes] of [["small", 5 * 1024 * 1024 - 1], ["large", 6 * 1024 * 1024 + 123]] as const) {
        const data = new Uint8Array(bytes);
        for (let i = 0; i < bytes; i += 4096) data[i] = (i / 4096) % 251;
        await Bun.write(join(dir, name), data);
        await blobs.putFile(`0/${name}`, join(dir, name));
        expect(await blobs.getFile(`0/${name}`, join(dir, `${name}.back`))).toBe(true);
        expect(Buffer.compare(new Uint8Array(await Bun.file(join(dir, `${name}.back`)).arrayBuffer()), data)).toBe(0);
      }
      // Paced (a rate limit while the node is busy): still one PUT of the whole file, every byte.
      const paced = new Uint8Array(3 * 1024 * 1024 + 5).fill(9);
      await Bun.write(join(dir, "paced"), paced);
      await blobs.putFile("0/paced", join(dir, "paced"), () => 32 * 1024 * 1024);
      expect(await blobs.getFile("0/paced", join(dir, "paced.back"))).toBe(true);
      expect(Buffer.compare(new Uint8Array(await Bun.file(join(dir, "paced.back")).arrayBuffer()), paced)).toBe(0);
      // Put: one request with the whole body; Post: CompleteMultipartUpload of parts.
      expect(events.filter((e) => e.key.startsWith("parts/0/"))).toEqual([
        { name: "ObjectCreated:Put", key: "parts/0/small" },
        { name: "ObjectCreated:Post", key: "parts/0/large" },
        { name: "ObjectCreated:Put", key: "parts/0/paced" },
      ]);
    } finally {
      server.off("event", onEvent);
    }
  }, 60_000);

  test("a bucket that does not exist: CAIRN-SNAPSHOT-0002 naming NoSuchBucket, nothing published", async () => {
    const repo = new SnapshotRepository(s3({ bucket: "no-such-bucket" }), { numRetained: 1 });
    const store = seededStore(5);
    const err = (await snapshotOf(repo, store, 3).catch((e: unknown) => e)) as CairnError;
    expect(isCairnError(err, "SNAPSHOT_REPOSITORY_UNAVAILABLE")).toBe(true);
    expect(err.details.s3Code).toBe("NoSuchBucket");
    expect(err.message).toContain("no-such-bucket");
    expect(await s3().list("3/")).toEqual([]);
    store.close();
  }, 60_000);

  test("wrong credentials: CAIRN-SNAPSHOT-0002 naming the refusal, nothing published", async () => {
    const repo = new SnapshotRepository(s3({ accessKeyId: "NOT-A-KEY", secretAccessKey: "nope" }), { numRetained: 1 });
    const store = seededStore(5);
    const err = (await snapshotOf(repo, store, 4).catch((e: unknown) => e)) as CairnError;
    expect(isCairnError(err, "SNAPSHOT_REPOSITORY_UNAVAILABLE")).toBe(true);
    expect(err.details.s3Code).toBe("InvalidAccessKeyId");
    expect(await s3().list("4/")).toEqual([]);
    store.close();
  }, 60_000);

  test("a store that never answers fails each request at its deadline with CAIRN-SNAPSHOT-0002", async () => {
    const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    try {
      const store = s3({ endpoint: `http://127.0.0.1:${silent.port}`, requestTimeoutMs: 300 });
      for (const attempt of [() => store.putText("0/x", "y"), () => store.getText("0/x"), () => store.list("0/")]) {
        const err = (await attempt().catch((e: unknown) => e)) as CairnError;
        expect(isCairnError(err, "SNAPSHOT_REPOSITORY_UNAVAILABLE")).toBe(true);
        expect(err.details.s3Code).toBe("Timeout");
      }
    } finally {
      silent.stop(true);
    }
  });

  test("the conditional write of latest.json refuses a writer that read an older version", async () => {
    await expectConditionalWrites(s3({ prefix: "cond" }));
  });

  test("a node with an s3 repository (credentials from AWS_* variables) snapshots its partitions into the bucket", async () => {
    const node = await startNode({
      args: [
        "--roles", ALL_ROLES, ...FAST_RAFT,
        "--set", "snapshots.repository=s3",
        "--set", `snapshots.s3-endpoint=${endpoint}`,
        "--set", `snapshots.s3-bucket=${BUCKET}`,
        "--set", "snapshots.s3-prefix=node-test",
      ],
      env: { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" },
      readyPath: "/health",
    });
    try {
      const admin = node.addresses.admin;
      expect((await json(`${admin}/v1/cluster/provision`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ numPartitions: 2, replication: 1 }) })).status).toBe(200);
      await eventually("both partitions led", async () => {
        const r = await json<{ partitions: Array<{ leaderApplied: boolean }> }>(`${admin}/v1/partitions`);
        return r.status === 200 && r.body.partitions.length === 2 && r.body.partitions.every((p) => p.leaderApplied) ? true : undefined;
      });
      const w = await fetch(`${node.addresses.ingress}/v1/objects/s3svc/k/state/v`, { method: "PUT", body: "x", headers: { "content-type": "text/plain" } });
      expect(w.status).toBe(200);
      const started = await json<{ id: string }>(`${admin}/v1/snapshots`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(started.status).toBe(202);
      const job = await eventually("the job", async () => {
        const r = await json<{ state: string }>(`${admin}/v1/snapshots/jobs/${started.body.id}`);
        return r.body.state === "running" ? undefined : r.body;
      });
      expect(job.state).toBe("succeeded");
      const keys = await s3({ prefix: "node-test" }).list("");
      expect(keys.filter((k) => k.endsWith("latest.json")).sort()).toEqual(["0/latest.json", "1/latest.json"]);
      const listed = await json<{ snapshots: Array<{ partition: number; latest: boolean }> }>(`${admin}/v1/snapshots`);
      expect(listed.body.snapshots.map((x) => [x.partition, x.latest])).toEqual([[0, true], [1, true]]);
    } finally {
      await node.stop();
    }
  }, 120_000);
});
