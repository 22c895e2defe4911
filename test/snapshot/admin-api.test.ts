// The snapshot routes' answers to requests they cannot serve, on a real in-process node: no
// repository configured (409 CAIRN-SNAPSHOT-0001, also for the listing), a cluster not provisioned,
// malformed bodies and parameters (400/422), an unknown job (404). Never a crash, never a 500.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Node } from "../../src/node/index.ts";
import { inProcessNode } from "../helpers/in-process-node.ts";
import { removeTempDirs, tempDir } from "./support.ts";

let node: Node;
let admin: string;
const dir = tempDir("cairn-snap-api-");

async function call(method: string, path: string, body?: string): Promise<{ status: number; code: string | undefined }> {
  const r = await fetch(`${admin}${path}`, { method, body, headers: body === undefined ? {} : { "content-type": "application/json" } });
  const parsed = (await r.json()) as { code?: string };
  return { status: r.status, code: parsed.code };
}

beforeAll(async () => {
  node = inProcessNode("n1", join(dir, "n1"));
  await node.start();
  admin = node.addresses.admin;
});
afterAll(async () => {
  await node?.stop();
  removeTempDirs();
});

describe("snapshot routes refuse what they cannot do", () => {
  test("before provisioning: a job cannot start, and the answer says so", async () => {
    expect((await call("POST", "/v1/snapshots", "{}")).code).toBe("CAIRN-CLUSTER-0001");
  });

  test("a body that is not JSON is 400, one that does not fit the schema 422, with CAIRN-API codes", async () => {
    expect(await call("POST", "/v1/snapshots", "{not json")).toEqual({ status: 400, code: "CAIRN-API-0003" });
    const invalid = { status: 422, code: "CAIRN-API-0001" };
    expect(await call("POST", "/v1/snapshots", JSON.stringify({ partitions: [-1] }))).toEqual(invalid);
    expect(await call("POST", "/v1/snapshots", JSON.stringify({ partitions: "all" }))).toEqual(invalid);
    expect(await call("POST", "/v1/snapshots", JSON.stringify({ other: 1 }))).toEqual(invalid);
    expect(await call("GET", "/v1/snapshots?partition=abc")).toEqual(invalid);
  });

  test("provisioned without a repository: 409 CAIRN-SNAPSHOT-0001 for jobs and the listing; an unknown job is 404", async () => {
    await node.provision({ numPartitions: 2, replication: 1 });
    expect(await call("POST", "/v1/snapshots", "{}")).toEqual({ status: 409, code: "CAIRN-SNAPSHOT-0001" });
    expect(await call("POST", "/v1/snapshots")).toEqual({ status: 409, code: "CAIRN-SNAPSHOT-0001" });
    expect(await call("GET", "/v1/snapshots")).toEqual({ status: 409, code: "CAIRN-SNAPSHOT-0001" });
    expect(await call("GET", "/v1/snapshots/jobs/snap-unknown")).toEqual({ status: 404, code: "CAIRN-SNAPSHOT-0004" });
  });
});
