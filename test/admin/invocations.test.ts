// The operators' invocation routes on a real 3-node cluster running the real SDK fixture: the list
// merges every worker's partitions (filters, counts, newest first), describe shows one invocation,
// kill and cancel end waiting invocations (their callers get 409 killed / canceled), purge forgets a
// completed one, and bad or unknown ids get 400 / 404 (bad filters 422) with their codes; Restate's PATCH/DELETE paths too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import createClient from "openapi-fetch";
import type { paths } from "../../openapi/cairn.d.ts";
import { formatInvocationId, randomInvocationId } from "../../src/worker/invoker/ids.ts";
import { eventually, type TestCluster } from "../helpers/cluster.ts";
import { startInvocationCluster } from "../helpers/invocation-cluster.ts";
import type { SdkEndpoint } from "../helpers/sdk-endpoint.ts";

let cluster: TestCluster;
let sdk: SdkEndpoint;
let admin: string[];
let ingress: string[];

beforeAll(async () => {
  ({ cluster, sdk, admin } = await startInvocationCluster());
  ingress = cluster.nodes.map((n) => n.addresses.ingress!);
}, 180_000);

afterAll(async () => {
  await Promise.all([cluster?.stop(), sdk?.stop()]);
}, 60_000);

interface Called {
  status: number;
  id: string | null;
  body: unknown;
}

/** A call on the data plane (retried while the node has not learnt the new deployment yet). */
async function invoke(node: number, path: string, input: unknown): Promise<Called> {
  return eventually(`POST ${path}`, async () => {
    const res = await fetch(`${ingress[node]}/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input), signal: AbortSignal.timeout(60_000) });
    const text = await res.text();
    if (res.status === 503) return undefined;
    return { status: res.status, id: res.headers.get("x-restate-id"), body: text === "" ? null : (JSON.parse(text) as unknown) };
  });
}

type Summary = { id: string; service: string; handler: string; key: string | null; status: string; createdAtMs: number; result: unknown; partition: number };
type List = { invocations: Summary[]; counts: Record<string, number>; unreachable: string[]; missingPartitions: number[] };

async function get<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: (await res.json()) as T };
}

async function act<T>(method: string, url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** Waits until the list shows `service`'s invocation with a key in `status`. */
function waitFor(service: string, key: string, status: string): Promise<Summary> {
  return eventually(`${service}/${key} ${status}`, async () => {
    const r = await get<List>(`${admin[1]}/v1/invocations?service=${service}&status=${status}`);
    return r.body.invocations.find((x) => x.key === key);
  });
}

describe("listing and describing invocations", () => {
  const greeted: string[] = [];

  test("calls through every node show up in one list from any node, newest first, with counts", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await invoke(i, "Greeter/greet", `n${i}`);
      expect([r.status, r.body]).toEqual([200, `Hello n${i}`]);
      greeted.push(r.id!);
    }
    for (let i = 0; i < 2; i++) expect((await invoke(i, "Counter/list-c/add", 1)).body).toBe(i + 1);

    for (const node of [0, 2]) {
      // Partitions still move to their placed leaders right after the cluster formed: a list names
      // the partitions nobody answered for, and is complete once every partition has a leader.
      const all = await eventually("a list covering every partition", async () => {
        const r = await get<List>(`${admin[node]}/v1/invocations`);
        expect(r.status).toBe(200);
        return r.body.missingPartitions.length === 0 ? r : undefined;
      });
      expect(all.body.unreachable).toEqual([]);
      const ids = all.body.invocations.map((x) => x.id);
      for (const id of greeted) expect(ids).toContain(id);
      expect(new Set(ids).size).toBe(ids.length);
      const created = all.body.invocations.map((x) => x.createdAtMs);
      expect(created).toEqual([...created].sort((a, b) => b - a));
      expect(all.body.counts.completed).toBeGreaterThanOrEqual(5);
    }

    const greeter = await get<List>(`${admin[1]}/v1/invocations?service=Greeter&status=completed`);
    expect(greeter.body.invocations.map((x) => x.id).sort()).toEqual([...greeted].sort());
    expect(greeter.body.invocations.every((x) => x.service === "Greeter" && x.handler === "greet" && x.status === "completed")).toBe(true);
    const counter = await get<List>(`${admin[1]}/v1/invocations?service=Counter`);
    expect(counter.body.invocations.map((x) => [x.handler, x.key])).toEqual([["add", "list-c"], ["add", "list-c"]]);
    const two = await get<List>(`${admin[1]}/v1/invocations?limit=2`);
    expect(two.body.invocations.length).toBe(2);
    expect(two.body.invocations[0]!.createdAtMs).toBeGreaterThanOrEqual(two.body.invocations[1]!.createdAtMs);
    expect((await get<List>(`${admin[1]}/v1/invocations?status=suspended&service=Greeter`)).body.invocations).toEqual([]);
  });

  test("describe through the typed client: target, status, attempts, result", async () => {
    const client = createClient<paths>({ baseUrl: admin[2]! });
    const r = await client.GET("/v1/invocations/{id}", { params: { path: { id: greeted[0]! } } });
    expect(r.error).toBeUndefined();
    expect(r.data).toMatchObject({ id: greeted[0], service: "Greeter", handler: "greet", key: null, status: "completed", idempotencyKey: null, lastError: null });
    expect(r.data!.attempts).toBeGreaterThanOrEqual(1);
    expect(r.data!.result).toEqual({ ok: true, valueBytes: JSON.stringify("Hello n0").length });
    expect(r.data!.completedAtMs).toBeGreaterThanOrEqual(r.data!.createdAtMs);
  });

  test("bad filters get 422, malformed ids 400, unknown ids 404, each with its code", async () => {
    const badStatus = await get<{ code: string }>(`${admin[0]}/v1/invocations?status=sleeping`);
    expect([badStatus.status, badStatus.body.code]).toEqual([422, "CAIRN-API-0001"]);
    for (const limit of ["0", "2.5", "10001", "ten"]) {
      const badLimit = await get<{ code: string }>(`${admin[0]}/v1/invocations?limit=${limit}`);
      expect([limit, badLimit.status, badLimit.body.code]).toEqual([limit, 422, "CAIRN-API-0001"]);
    }
    const malformed = await get<{ code: string }>(`${admin[0]}/v1/invocations/inv_nonsense`);
    expect([malformed.status, malformed.body.code]).toEqual([400, "CAIRN-INVOKE-0013"]);
    const unknown = formatInvocationId(randomInvocationId(12345n));
    for (const node of [0, 1, 2]) {
      const r = await get<{ code: string; hint: string }>(`${admin[node]}/v1/invocations/${unknown}`);
      expect([r.status, r.body.code]).toEqual([404, "CAIRN-INVOKE-0010"]);
    }
    const killUnknown = await act<{ code: string }>("POST", `${admin[0]}/v1/invocations/${unknown}/kill`);
    expect([killUnknown.status, killUnknown.body.code]).toEqual([404, "CAIRN-INVOKE-0010"]);
    const patchMalformed = await act<{ code: string }>("PATCH", `${admin[0]}/invocations/not-an-id/cancel`);
    expect([patchMalformed.status, patchMalformed.body.code]).toEqual([400, "CAIRN-INVOKE-0013"]);
  });
});

describe("acting on invocations", () => {
  test("kill of a suspended invocation (waits on an awakeable): its caller gets 409 killed", async () => {
    const call = invoke(0, "Waiter/kill-me/wait", null);
    const waiting = await waitFor("Waiter", "kill-me", "suspended");
    const killed = await act<{ id: string; action: string; previousStatus: string; status: string }>("POST", `${admin[2]}/v1/invocations/${waiting.id}/kill`);
    expect(killed.status).toBe(200);
    expect(killed.body).toEqual({ id: waiting.id, action: "kill", previousStatus: "suspended", status: "completed" });
    const answer = await call;
    expect(answer.status).toBe(409);
    expect(answer.id).toBe(waiting.id);
    expect(answer.body).toMatchObject({ code: 409, message: "killed", source: "invocation" });
    const described = await get<Summary>(`${admin[1]}/v1/invocations/${waiting.id}`);
    expect(described.body.result).toEqual({ ok: false, code: 409, message: "killed" });
    // Completed now: a second kill is refused with a conflict and changes nothing.
    const again = await act<{ code: string }>("POST", `${admin[0]}/v1/invocations/${waiting.id}/kill`);
    expect([again.status, again.body.code]).toEqual([409, "CAIRN-INVOKE-0060"]);
    // The object's lock was released: the next call on the same key runs.
    const next = invoke(1, "Waiter/kill-me/wait", null);
    const second = await waitFor("Waiter", "kill-me", "suspended");
    expect(second.id).not.toBe(waiting.id);
    expect((await act<{ status: string }>("DELETE", `${admin[1]}/invocations/${second.id}?mode=kill`)).status).toBe(202);
    expect((await next).status).toBe(409);
  });

  test("cancel (Restate's PATCH path) of a long durable sleep: the SDK ends it, the caller gets 409", async () => {
    const call = invoke(1, "Runner/sleep", 3_600_000);
    const sleeping = await eventually("a suspended Runner.sleep", async () => {
      const r = await get<List>(`${admin[0]}/v1/invocations?service=Runner&status=suspended`);
      return r.body.invocations.find((x) => x.handler === "sleep");
    });
    const canceled = await act<{ action: string; previousStatus: string }>("PATCH", `${admin[0]}/invocations/${sleeping.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ action: "cancel", previousStatus: "suspended" });
    const answer = await call;
    expect(answer.status).toBe(409);
    // The SDK's implicit cancellation: the pending sleep throws CancelledError (terminal, 409 "Cancelled").
    expect(answer.body).toMatchObject({ code: 409, message: "Cancelled", source: "invocation" });
    const done = await eventually("the canceled invocation completed", async () => {
      const r = await get<Summary>(`${admin[2]}/v1/invocations/${sleeping.id}`);
      return r.body.status === "completed" ? r.body : undefined;
    });
    expect(done.result).toMatchObject({ ok: false, code: 409 });
  });

  test("purge forgets a completed invocation (DELETE ?mode=purge); resume and purge refuse what they cannot act on", async () => {
    const r = await invoke(2, "Greeter/greet", "purge-me");
    expect(r.status).toBe(200);
    const resume = await act<{ code: string }>("POST", `${admin[0]}/v1/invocations/${r.id}/resume`);
    expect([resume.status, resume.body.code]).toEqual([409, "CAIRN-INVOKE-0060"]);
    const purged = await act<{ status: string; previousStatus: string }>("DELETE", `${admin[0]}/invocations/${r.id}?mode=purge`);
    expect(purged.status).toBe(202);
    expect(purged.body).toMatchObject({ previousStatus: "completed", status: "gone" });
    expect((await get<{ code: string }>(`${admin[1]}/v1/invocations/${r.id}`)).status).toBe(404);
    expect((await get<List>(`${admin[1]}/v1/invocations?service=Greeter`)).body.invocations.map((x) => x.id)).not.toContain(r.id);

    const call = invoke(0, "Waiter/purge-running/wait", null);
    const waiting = await waitFor("Waiter", "purge-running", "suspended");
    const refused = await act<{ code: string }>("POST", `${admin[2]}/v1/invocations/${waiting.id}/purge`);
    expect([refused.status, refused.body.code]).toEqual([409, "CAIRN-INVOKE-0060"]);
    expect((await get<Summary>(`${admin[2]}/v1/invocations/${waiting.id}`)).body.status).toBe("suspended");
    expect((await act<{ status: string }>("PATCH", `${admin[2]}/invocations/${waiting.id}/kill`)).status).toBe(200);
    expect((await call).status).toBe(409);
  });
});
