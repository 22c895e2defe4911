// Restate's deployment and service routes on real cairn processes (two nodes: registrations on one
// are seen on the other, as the registry is metadata), registering the real SDK fixture over h2c
// and HTTP/1.1, through the generated client and with raw requests for Restate's snake_case bodies.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import createClient from "openapi-fetch";
import type { paths } from "../../openapi/cairn.d.ts";
import { startCluster, type TestCluster } from "../helpers/cluster.ts";
import { startSdkEndpoint, type SdkEndpoint } from "../helpers/sdk-endpoint.ts";

let cluster: TestCluster;
let h2c: SdkEndpoint;
let http1: SdkEndpoint;
let a: string;
let b: string;

beforeAll(async () => {
  [cluster, h2c, http1] = await Promise.all([startCluster(2), startSdkEndpoint("h2c"), startSdkEndpoint("http1")]);
  a = cluster.nodes[0]!.addresses.admin;
  b = cluster.nodes[1]!.addresses.admin;
}, 120_000);

afterAll(async () => {
  await Promise.all([cluster?.stop(), h2c?.stop(), http1?.stop()]);
});

async function post(base: string, body: unknown): Promise<{ status: number; location: string | null; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, location: res.headers.get("location"), body: (await res.json()) as Record<string, unknown> };
}

const NAMES = ["Caller", "Counter", "Greeter", "Runner", "Signup", "Waiter"];

describe("registering the SDK endpoint", () => {
  let id: string;

  test("POST /deployments with Restate's body: 201, Location, services with revision 1", async () => {
    const r = await post(a, { uri: h2c.uri, additional_headers: { "x-test": "1" }, use_http_11: false });
    expect(r.status).toBe(201);
    id = r.body.id as string;
    expect(id).toMatch(/^dp_[a-z2-7]{26}$/);
    expect(r.location).toBe(`deployments/${id}`);
    expect(r.body.min_protocol_version).toBe(5);
    expect(r.body.max_protocol_version).toBe(7);
    expect(r.body.sdk_version).toMatch(/^restate-sdk-typescript\//);
    const services = r.body.services as Array<{ name: string; ty: string; revision: number; deployment_id: string; public: boolean; handlers: Array<{ name: string; ty: string | null }> }>;
    expect(services.map((s) => s.name).sort()).toEqual(NAMES);
    for (const s of services) expect([s.revision, s.deployment_id, s.public]).toEqual([1, id, true]);
    const counter = services.find((s) => s.name === "Counter")!;
    expect(counter.ty).toBe("VirtualObject");
    expect(counter.handlers.map((h) => [h.name, h.ty])).toEqual([["add", "Exclusive"], ["get", "Shared"], ["reset", "Exclusive"]]);
  });

  test("the same endpoint again: 200, the same id, nothing re-registered", async () => {
    const r = await post(b, { uri: `${h2c.uri}/`, additional_headers: { "x-test": "1" } });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(id);
    expect((r.body.services as Array<{ revision: number }>).every((s) => s.revision === 1)).toBe(true);
  });

  test("any node lists the deployment and the services (typed client)", async () => {
    const client = createClient<paths>({ baseUrl: b });
    const list = await client.GET("/deployments");
    expect(list.error).toBeUndefined();
    const d = list.data!.deployments.find((x) => x.id === id)!;
    expect(d).toMatchObject({ uri: h2c.uri, http_version: "HTTP/2.0", protocol_type: "BidiStream", additional_headers: { "x-test": "1" } });
    expect(d.services.map((s) => s.name).sort()).toEqual(NAMES);
    const services = await client.GET("/services");
    expect(services.data!.services.map((s) => s.name).sort()).toEqual(NAMES);
    const one = await client.GET("/services/{name}", { params: { path: { name: "Signup" } } });
    expect(one.data!.ty).toBe("Workflow");
    const handlers = await client.GET("/services/{name}/handlers", { params: { path: { name: "Signup" } } });
    expect(handlers.data!.handlers.map((h) => [h.name, h.ty])).toEqual([["run", "Workflow"], ["confirm", "Shared"], ["stage", "Shared"]]);
    const detail = await client.GET("/deployments/{id}", { params: { path: { id } } });
    expect(detail.data!.services.find((s) => s.name === "Greeter")!.handlers[0]!.input_content_type).toBe("application/json");
  });

  test("the HTTP/1.1 endpoint with the same services: a new deployment, every service re-pointed at revision 2", async () => {
    const r = await post(a, { uri: http1.uri, use_http_11: true });
    expect(r.status).toBe(201);
    const id2 = r.body.id as string;
    expect(id2).not.toBe(id);
    const services = (await (await fetch(`${b}/services`)).json()) as { services: Array<{ name: string; deployment_id: string; revision: number }> };
    for (const s of services.services) expect([s.deployment_id, s.revision]).toEqual([id2, 2]);
    const list = (await (await fetch(`${a}/deployments`)).json()) as { deployments: Array<{ id: string; http_version: string; services: unknown[] }> };
    expect(list.deployments.find((d) => d.id === id)!.services).toEqual([]);
    expect(list.deployments.find((d) => d.id === id2)!.http_version).toBe("HTTP/1.1");

    // The old deployment serves nothing now: removed without force (202).
    const del = await fetch(`${b}/deployments/${id}`, { method: "DELETE" });
    expect(del.status).toBe(202);
    expect(await del.json()).toEqual({ id, removed_services: [] });
    // The new one serves every service: refused unless forced.
    const refused = await fetch(`${a}/deployments/${id2}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { code: string }).code).toBe("CAIRN-DEPLOY-0009");
    const forced = await fetch(`${a}/deployments/${id2}?force=true`, { method: "DELETE" });
    expect(forced.status).toBe(202);
    expect(((await forced.json()) as { removed_services: string[] }).removed_services.sort()).toEqual(NAMES);
    expect(((await (await fetch(`${b}/services`)).json()) as { services: unknown[] }).services).toEqual([]);
  });

  test("dry_run discovers and answers but writes nothing", async () => {
    const r = await post(a, { uri: h2c.uri, dry_run: true });
    expect(r.status).toBe(201);
    expect((r.body.services as unknown[]).length).toBe(6);
    expect(((await (await fetch(`${a}/deployments`)).json()) as { deployments: unknown[] }).deployments).toEqual([]);
  });
});

describe("refusals are problem+json with DEPLOY codes", () => {
  async function problem(res: Response): Promise<{ status: number; code: string; detail: string }> {
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const body = (await res.json()) as { code: string; detail: string };
    return { status: res.status, code: body.code, detail: body.detail };
  }

  test("an unreachable endpoint, a bad URI, a bad header, an unknown field", async () => {
    const send = (body: unknown) => fetch(`${a}/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(await problem(await send({ uri: "http://127.0.0.1:1" }))).toMatchObject({ status: 400, code: "CAIRN-DEPLOY-0002" });
    expect(await problem(await send({ uri: "file:///etc/passwd" }))).toMatchObject({ status: 400, code: "CAIRN-DEPLOY-0001" });
    expect(await problem(await send({ uri: h2c.uri, additional_headers: { "bad header": "x" } }))).toMatchObject({ status: 400, code: "CAIRN-DEPLOY-0013" });
    expect((await problem(await send({ uri: h2c.uri, arn: "arn:aws:lambda:x" }))).status).toBe(422);
    // The admin API itself is not a Restate endpoint.
    expect(await problem(await send({ uri: a }))).toMatchObject({ status: 400, code: "CAIRN-DEPLOY-0003" });
  });

  test("unknown deployments, services and handlers are 404", async () => {
    expect(await problem(await fetch(`${a}/deployments/dp_nope`))).toMatchObject({ status: 404, code: "CAIRN-DEPLOY-0008" });
    expect(await problem(await fetch(`${a}/deployments/dp_nope`, { method: "DELETE" }))).toMatchObject({ status: 404, code: "CAIRN-DEPLOY-0008" });
    expect(await problem(await fetch(`${a}/services/Nope`))).toMatchObject({ status: 404, code: "CAIRN-DEPLOY-0010" });
    expect(await problem(await fetch(`${a}/services/Nope/handlers`))).toMatchObject({ status: 404, code: "CAIRN-DEPLOY-0010" });
  });
});
