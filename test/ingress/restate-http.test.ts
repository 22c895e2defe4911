// Restate's ingress API on the data-plane port, through real HTTP against the Elysia app: every status
// code and header a caller (curl, the official client) relies on, with an in-memory InvocationClient
// and SchemaSource standing in for the invoker (the thing under test is the HTTP mapping).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { defaultConfig } from "../../src/config/index.ts";
import { createIngressApp, IngressRole } from "../../src/ingress/index.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { parseInvocationId } from "../../src/worker/invoker/ids.ts";
import { startTestIngress, testHandlers, testSchema, type TestIngress } from "./restate-fixture.ts";
import { handler, MemoryInvocations, service } from "./restate-memory.ts";

let ing: TestIngress;
beforeAll(() => {
  ing = startTestIngress({ requestTimeoutMs: 300 });
});
afterAll(async () => {
  await ing?.stop();
});

const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${ing.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${ing.url}${path}`, { headers });

/** An ingress error: its status, Restate's `message`/`source`, cairn's `code`/`hint`, and the source header. */
async function expectIngressError(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const body = (await res.json()) as Record<string, unknown>;
  expect({ status: res.status, code: body.code }).toEqual({ status, code });
  expect(res.headers.get("x-restate-error-source")).toBe("ingress");
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(body.source).toBe("ingress");
  expect(body.message).toBeString();
  expect(body.hint).toBeString();
  if (status === 503) expect(res.headers.get("retry-after")).toBe("1");
  return body;
}

const lastRequest = () => ing.memory.requests[ing.memory.requests.length - 1]!;

describe("calls", () => {
  test("a service call answers 200 with the output bytes, the handler's content type and x-restate-id", async () => {
    const res = await post("/Greeter/greet", "bob");
    expect(res.status).toBe(200);
    expect(await res.json()).toBe("Hello bob");
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(parseInvocationId(res.headers.get("x-restate-id")!)).toBeDefined();
    expect(res.headers.get("idempotency-expires")).toBeNull();
    expect(lastRequest()).toMatchObject({ target: { service: "Greeter", handler: "greet", key: null }, mode: "call", delayMs: null, idempotencyKey: null });
  });

  test("GET calls a handler too (with an empty input)", async () => {
    const res = await get("/Greeter/text");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("plain words");
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(lastRequest().input.length).toBe(0);
  });

  test("an empty output has no content type unless the handler sets it when empty", async () => {
    const plain = await post("/Greeter/empty");
    expect(plain.status).toBe(200);
    expect(await plain.text()).toBe("");
    expect(plain.headers.get("content-type")).toBeNull();
    const typed = await post("/Greeter/emptyTyped");
    expect(typed.headers.get("content-type")).toBe("application/json");
  });

  test("an object call carries its percent-decoded key; a trailing segment named like a handler is read by the service's type", async () => {
    const res = await post(`/Counter/${encodeURIComponent("a b/ü")}/add`, 3);
    expect(res.status).toBe(200);
    expect(await res.json()).toBe(3);
    expect(lastRequest().target).toEqual({ service: "Counter", handler: "add", key: "a b/ü" });
    // On an object `/Counter/k/send` is the handler `send` of key k; on a service `/Greeter/send` is its handler `send`.
    const objSend = await post("/Counter/k/send");
    expect(await objSend.json()).toBe("send on k");
    const svcSend = await post("/Greeter/send");
    expect(await svcSend.json()).toBe("a handler named send");
  });

  test("the caller's headers reach the handler, without this hop's, idempotency-key and x-restate-*, plus x-restate-ingress-path", async () => {
    const res = await post("/Greeter/headers", undefined, { "x-custom": "yes", "x-restate-forged": "no", "idempotency-key": "hdr-1", connection: "keep-alive" });
    const seen = new Map(JSON.parse(await res.text()) as Array<[string, string]>);
    expect(seen.get("x-custom")).toBe("yes");
    expect(seen.get("content-type")).toBe("application/json");
    expect(seen.get("x-restate-ingress-path")).toBe("/Greeter/headers");
    for (const dropped of ["host", "connection", "content-length", "idempotency-key", "x-restate-forged"]) expect(seen.has(dropped)).toBe(false);
    expect(lastRequest().idempotencyKey).toBe("hdr-1");
  });

  test("an idempotency-key makes a repeated call answer the same invocation, with idempotency-expires", async () => {
    const first = await post("/Counter/idem/add", 5, { "idempotency-key": "once" });
    const again = await post("/Counter/idem/add", 5, { "idempotency-key": "once" });
    expect(await first.json()).toBe(5);
    expect(await again.json()).toBe(5);
    expect(again.headers.get("x-restate-id")).toBe(first.headers.get("x-restate-id")!);
    const expires = Date.parse(first.headers.get("idempotency-expires")!);
    expect(expires).toBeGreaterThan(Date.now());
  });

  test("a terminal failure answers its code as the status, Restate's error JSON and x-restate-error-source: invocation", async () => {
    const res = await post("/Greeter/fail", { code: 409, metadata: { reason: "taken" } });
    expect(res.status).toBe(409);
    expect(res.headers.get("x-restate-error-source")).toBe("invocation");
    expect(res.headers.get("x-restate-id")).toStartWith("inv_1");
    expect(await res.json()).toEqual({ code: 409, message: "failed with 409", metadata: { reason: "taken" }, source: "invocation" });
  });

  test("a failure code that is no HTTP error status answers 500 (its code stays in the body)", async () => {
    for (const code of [200, 302, 600, 0]) {
      const res = await post("/Greeter/fail", { code });
      expect(res.status).toBe(500);
      expect(((await res.json()) as { code: number }).code).toBe(code);
    }
  });

  test("a call outliving one client deadline keeps waiting by attach and answers the result", async () => {
    const attachesBefore = ing.memory.calls.attach;
    const res = await post("/Greeter/slow", 1200);
    expect(res.status).toBe(200);
    expect(await res.json()).toBe("slept");
    // requestTimeoutMs is 300: the invoke answered pending and attaches took over.
    expect(ing.memory.calls.attach - attachesBefore).toBeGreaterThanOrEqual(2);
  });
});

describe("sends", () => {
  test("a send answers 202 {invocationId, status: Accepted} with x-restate-id", async () => {
    const res = await post("/Greeter/greet/send", "ann");
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, string>;
    expect(body).toEqual({ invocationId: res.headers.get("x-restate-id")!, status: "Accepted" });
    expect(lastRequest()).toMatchObject({ mode: "send", delayMs: null });
  });

  test("a delayed send takes friendly and ISO 8601 durations and answers the execution time", async () => {
    for (const [delay, ms] of [["100ms", 100], ["10s", 10_000], ["1m", 60_000], ["PT1S", 1_000], ["1h30m", 5_400_000]] as const) {
      const before = Date.now();
      const res = await post(`/Counter/d/add/send?delay=${encodeURIComponent(delay)}`, 1);
      expect(res.status).toBe(202);
      expect(lastRequest().delayMs).toBe(ms);
      const body = (await res.json()) as { executionTime: string };
      expect(Date.parse(body.executionTime)).toBeGreaterThanOrEqual(before + ms - 1_000);
    }
  });

  test("a bad delay, or a delay on a call, is 400", async () => {
    await expectIngressError(await post("/Greeter/greet/send?delay=soon", "x"), 400, "CAIRN-INVOKE-0005");
    await expectIngressError(await post("/Greeter/greet/send?delay=10", "x"), 400, "CAIRN-INVOKE-0005");
    await expectIngressError(await post("/Greeter/greet?delay=1s", "x"), 400, "CAIRN-INVOKE-0005");
  });

  test("a repeated send with the same idempotency-key answers PreviouslyAccepted", async () => {
    const first = await post("/Greeter/greet/send", "z", { "idempotency-key": "send-once" });
    const again = await post("/Greeter/greet/send", "z", { "idempotency-key": "send-once" });
    const a = (await first.json()) as { invocationId: string; status: string };
    expect(a.status).toBe("Accepted");
    expect(await again.json()).toEqual({ invocationId: a.invocationId, status: "PreviouslyAccepted" });
  });

  test("/restate/call and /restate/send reach handlers like the plain paths", async () => {
    const call = await post("/restate/call/Counter/alias/add", 2);
    expect(await call.json()).toBe(2);
    const send = await post("/restate/send/Greeter/greet", "x");
    expect(send.status).toBe(202);
  });
});

describe("refusals", () => {
  test("an unknown service or handler is 404; a service registered since is found by re-reading the registry once", async () => {
    await expectIngressError(await post("/Nobody/greet", "x"), 404, "CAIRN-INVOKE-0001");
    await expectIngressError(await post("/Greeter/nobody", "x"), 404, "CAIRN-INVOKE-0002");
    ing.schema.registerLater(service("Late", "service", [handler("hi")]));
    const refreshes = ing.schema.refreshes;
    const res = await post("/Late/hi/send");
    expect(res.status).toBe(202);
    expect(ing.schema.refreshes).toBe(refreshes + 1);
  });

  test("a key for a service, or none for an object or workflow, is 400", async () => {
    await expectIngressError(await post("/Greeter/k/greet", "x"), 400, "CAIRN-INVOKE-0003");
    await expectIngressError(await post("/Counter/add", 1), 400, "CAIRN-INVOKE-0003");
    await expectIngressError(await post("/Signup/run", 1), 400, "CAIRN-INVOKE-0003");
    await expectIngressError(await post("/Greeter/greet/send/more", "x"), 400, "CAIRN-INVOKE-0003");
    await expectIngressError(await post("/Counter/%E0%A4%A/add", 1), 400, "CAIRN-INVOKE-0003");
  });

  test("a private service is 400; an empty body for a handler that needs input is 400", async () => {
    await expectIngressError(await post("/Hidden/ping"), 400, "CAIRN-INVOKE-0004");
    await expectIngressError(await post("/Greeter/needsInput"), 400, "CAIRN-INVOKE-0007");
    expect((await post("/Greeter/needsInput", "1")).status).toBe(200);
  });

  test("an idempotency-key on a workflow's run is 400 (on its shared handlers it is fine)", async () => {
    await expectIngressError(await post("/Signup/w-idem/run", "x", { "idempotency-key": "k" }), 400, "CAIRN-INVOKE-0006");
    expect((await post("/Signup/w-idem/confirm", "x", { "idempotency-key": "k" })).status).toBe(200);
  });

  test("methods other than GET and POST are 405", async () => {
    const res = await fetch(`${ing.url}/Greeter/greet`, { method: "PUT", body: "1" });
    await expectIngressError(res, 405, "CAIRN-INVOKE-0009");
    await expectIngressError(await get("/restate/a/sign_1x/resolve"), 405, "CAIRN-INVOKE-0009");
  });

  test("scopes and limit keys are refused with 400", async () => {
    await expectIngressError(await post("/restate/scope/s/call/Greeter/greet", "x"), 400, "CAIRN-INVOKE-0017");
    await expectIngressError(await post("/Greeter/greet", "x", { "x-restate-limit-key": "l" }), 400, "CAIRN-INVOKE-0017");
  });

  test("a workflow's run called twice is 409 from the invocation; sent twice, PreviouslyAccepted", async () => {
    const sent = await post("/Signup/twice/run/send", "x");
    expect(((await sent.json()) as { status: string }).status).toBe("Accepted");
    const resent = await post("/Signup/twice/run/send", "x");
    expect(((await resent.json()) as { status: string }).status).toBe("PreviouslyAccepted");
    const called = await post("/Signup/twice/run", "x");
    expect(called.status).toBe(409);
    expect(called.headers.get("x-restate-error-source")).toBe("invocation");
    expect(((await called.json()) as { code: number; source: string })).toMatchObject({ code: 409, source: "invocation" });
  });
});

describe("invocation handles", () => {
  test("attach and output by id, by idempotency key, for services and objects; 470 while running", async () => {
    const started = await post("/Greeter/slow/send", 800, { "idempotency-key": "handle-1" });
    const { invocationId } = (await started.json()) as { invocationId: string };
    const early = await get(`/restate/invocation/${invocationId}/output`);
    await expectIngressError(early, 470, "CAIRN-INVOKE-0011");
    expect(early.headers.get("x-restate-id")).toBe(invocationId);
    const attached = await get(`/restate/invocation/${invocationId}/attach`);
    expect(attached.status).toBe(200);
    expect(await attached.json()).toBe("slept");
    expect(attached.headers.get("x-restate-id")).toBe(invocationId);
    for (const path of [`/restate/invocation/${invocationId}/output`, `/restate/output/${invocationId}`, `/restate/attach/${invocationId}`, "/restate/invocation/Greeter/slow/handle-1/output"]) {
      const res = await get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      expect(await res.json()).toBe("slept");
    }
    await post("/Counter/h/add", 7, { "idempotency-key": "handle-2" });
    const byKey = await get("/restate/invocation/Counter/h/add/handle-2/attach");
    expect(await byKey.json()).toBe(7);
    expect(byKey.headers.get("content-type")).toBe("application/json");
  });

  test("an unknown id is 404, a malformed one 400, an invocation without a kept output 400", async () => {
    await expectIngressError(await get(`/restate/invocation/inv_1${"0".repeat(33)}/attach`), 404, "CAIRN-INVOKE-0010");
    await expectIngressError(await get("/restate/invocation/not-an-id/output"), 400, "CAIRN-INVOKE-0013");
    const plain = await post("/Greeter/greet", "p");
    await expectIngressError(await get(`/restate/invocation/${plain.headers.get("x-restate-id")}/output`), 400, "CAIRN-INVOKE-0012");
    await expectIngressError(await get("/restate/invocation/Greeter/greet/never-used/output"), 404, "CAIRN-INVOKE-0010");
    await expectIngressError(await get("/restate/invocation/Counter/greet/x/attach"), 400, "CAIRN-INVOKE-0003");
    await expectIngressError(await get("/restate/invocation/x/y/z/w/v/u/attach"), 400, "CAIRN-INVOKE-0003");
  });

  test("a workflow's output is 470 until its run completes, then attach and output answer the result", async () => {
    expect((await post("/Signup/wf-1/run/send", "x")).status).toBe(202);
    await expectIngressError(await get("/restate/workflow/Signup/wf-1/output"), 470, "CAIRN-INVOKE-0011");
    const attach = get("/restate/workflow/Signup/wf-1/attach");
    expect(await (await post("/Signup/wf-1/confirm", "yes")).json()).toBe(true);
    const res = await attach;
    expect(res.status).toBe(200);
    expect(await res.json()).toBe('wf-1 confirmed with "yes"');
    expect(await (await get("/restate/workflow/Signup/wf-1/output")).json()).toBe('wf-1 confirmed with "yes"');
    await expectIngressError(await get("/restate/workflow/Signup/never/output"), 404, "CAIRN-INVOKE-0010");
    await expectIngressError(await get("/restate/workflow/Counter/k/output"), 400, "CAIRN-INVOKE-0003");
    await expectIngressError(await get("/restate/workflow/Signup/k/peek"), 400, "CAIRN-INVOKE-0003");
  });
});

describe("awakeables and health", () => {
  test("resolve and reject answer 202 with an empty body and complete the awakeable (value bytes; text as a 500 failure)", async () => {
    const sent = await post("/Waiter/wait/send", undefined, { "idempotency-key": "aw-1" });
    const { invocationId } = (await sent.json()) as { invocationId: string };
    const id = await until(() => ing.memory.awakeableIds().at(-1));
    const res = await post(`/restate/awakeables/${id}/resolve`, { ok: 1 });
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("");
    expect(await (await get(`/restate/invocation/${invocationId}/attach`)).json()).toBe('woken with {"ok":1}');

    await post("/Waiter/wait/send", undefined, { "idempotency-key": "aw-2" });
    const id2 = await until(() => ing.memory.awakeableIds().find((a) => a !== id));
    const rejected = await fetch(`${ing.url}/restate/a/${id2}/reject`, { method: "POST", body: "no way" });
    expect(rejected.status).toBe(202);
    expect(ing.memory.resolved.at(-1)).toEqual({ id: id2, result: { kind: "failure", code: 500, message: "no way", metadata: [] } });
    const failed = await get("/restate/invocation/Waiter/wait/aw-2/attach");
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ code: 500, message: "no way", source: "invocation" });
  });

  test("a malformed awakeable id or path is 400", async () => {
    await expectIngressError(await post("/restate/awakeables/sign_1AAAA/resolve", 1), 400, "CAIRN-INVOKE-0014");
    await expectIngressError(await post("/restate/awakeables/prom_1abc/resolve", 1), 400, "CAIRN-INVOKE-0014");
    await expectIngressError(await post("/restate/awakeables/x/complete", 1), 400, "CAIRN-INVOKE-0003");
  });

  test("GET /restate/health answers 200", async () => {
    expect((await get("/restate/health")).status).toBe(200);
  });
});

describe("cairn's own routes keep winning", () => {
  test("/v1/objects is cairn's data plane (problem+json), never a service named v1", async () => {
    const read = await get("/v1/objects/Counter/k/state");
    expect(read.status).toBe(503);
    expect(read.headers.get("content-type")).toBe("application/problem+json");
    expect(((await read.json()) as { code: string }).code).toBe("CAIRN-CLUSTER-0001");
    const unmatched = await post("/v1/objects/Counter/k/state");
    expect(unmatched.status).toBe(404);
    expect(((await unmatched.json()) as { code: string }).code).toBe("CAIRN-API-0002");
    for (const name of ["metrics", "health", "openapi.json"]) {
      const res = await post(`/${name}/x`);
      expect({ name, status: res.status, ct: res.headers.get("content-type") }).toEqual({ name, status: 404, ct: "application/problem+json" });
    }
  });

  test("the data plane's OpenAPI document holds no Restate path", async () => {
    const doc = (await (await get("/openapi-raw.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).length).toBe(2);
    for (const p of Object.keys(doc.paths)) expect(p).toStartWith("/v1/objects/");
  });
});

describe("limits and availability", () => {
  test("a body over ingress.max-body-bytes is 413, with or without content-length", async () => {
    const small = startTestIngress({ maxBodyBytes: 1_000 });
    try {
      const declared = await fetch(`${small.url}/Greeter/needsInput`, { method: "POST", body: "x".repeat(1_001) });
      await expectIngressError(declared, 413, "CAIRN-INVOKE-0008");
      const chunks = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(400));
          c.close();
        },
      });
      const streamed = await fetch(`${small.url}/Greeter/needsInput`, { method: "POST", body: chunks });
      await expectIngressError(streamed, 413, "CAIRN-INVOKE-0008");
      expect(small.memory.calls.invoke).toBe(0);
    } finally {
      await small.stop();
    }
  });

  test("a node without an InvocationClient answers 503 with Retry-After", async () => {
    const early = startTestIngress({ invocationsReady: false });
    try {
      await expectIngressError(await fetch(`${early.url}/Greeter/greet`, { method: "POST", body: '"x"' }), 503, "CAIRN-INVOKE-0015");
    } finally {
      await early.stop();
    }
  });

  test("routing errors are 503 with Retry-After; a bug is 500 and reported", async () => {
    ing.memory.failNext.push("PARTITION_UNAVAILABLE");
    await expectIngressError(await post("/Greeter/greet", "x"), 503, "CAIRN-PARTITION-0002");
    ing.memory.failNext.push("PARTITION_NOT_LEADER");
    await expectIngressError(await post("/Greeter/greet", "x"), 503, "CAIRN-PARTITION-0002");
    ing.memory.failNext.push("CLUSTER_NOT_PROVISIONED");
    await expectIngressError(await post("/Greeter/greet", "x"), 503, "CAIRN-CLUSTER-0001");
    const bugs = ing.bugs.length;
    ing.memory.failNext.push(new TypeError("boom"));
    await expectIngressError(await post("/Greeter/greet", "x"), 500, "CAIRN-API-0005");
    expect(ing.bugs.length).toBe(bugs + 1);
  });

  test("an attach that meets a leaderless partition waits it out and still answers the result", async () => {
    const sent = await post("/Greeter/slow/send", 300, { "idempotency-key": "leaderless" });
    const { invocationId } = (await sent.json()) as { invocationId: string };
    ing.memory.failNext.push("PARTITION_UNAVAILABLE", "PARTITION_NOT_LEADER");
    const res = await get(`/restate/invocation/${invocationId}/attach`);
    expect(res.status).toBe(200);
    expect(await res.json()).toBe("slept");
  });

  test("a call still running after ingress.invocation-wait-ms is 503 with Retry-After and the invocation's id", async () => {
    const short = startTestIngress({ requestTimeoutMs: 100, invocationWaitMs: 400 });
    try {
      const res = await fetch(`${short.url}/Greeter/forever`, { method: "POST" });
      const body = await expectIngressError(res, 503, "CAIRN-INVOKE-0016");
      expect(res.headers.get("x-restate-id")).toBe(body.invocationId as string);
    } finally {
      await short.stop();
    }
  });

  test("a call longer than the server's idle timeout is not cut off", async () => {
    const idle = startTestIngress({ idleTimeoutSeconds: 1 });
    try {
      // Bun cuts a request without a body (a GET attach, a body-less POST) after the idle timeout.
      const sent = await fetch(`${idle.url}/Greeter/slow/send`, { method: "POST", body: "10000", headers: { "idempotency-key": "idle" } });
      const { invocationId } = (await sent.json()) as { invocationId: string };
      const res = await fetch(`${idle.url}/restate/invocation/${invocationId}/attach`);
      expect(res.status).toBe(200);
      expect(await res.json()).toBe("slept");
    } finally {
      await idle.stop();
    }
  }, 30_000);

  test("without an InvocationClient and SchemaSource the app serves no Restate path", async () => {
    const app = createIngressApp({ router: () => undefined, maxValueBytes: 1, maxBodyBytes: 1, requestTimeoutMs: 1, onBug: () => {} });
    const res = await app.handle(new Request("http://localhost/Greeter/greet", { method: "POST" }));
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe("CAIRN-API-0002");
  });
});


async function until<T>(f: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

describe("the ingress role", () => {
  test("serves Restate's API when given an InvocationClient and a SchemaSource, with ingress.invocation-wait-ms from the config", async () => {
    const schema = testSchema();
    const memory = new MemoryInvocations(schema, testHandlers());
    const config = { ...defaultConfig().ingress, "bind-address": "127.0.0.1:0", "request-timeout-ms": 100, "invocation-wait-ms": 300 };
    const role = new IngressRole({ config, router: () => undefined, spec: async () => ({}), logger: silentLogger(), invocations: () => memory, schema: () => schema });
    role.start();
    try {
      const ok = await fetch(`${role.url}/Greeter/greet`, { method: "POST", body: '"role"' });
      expect(await ok.json()).toBe("Hello role");
      const waited = await fetch(`${role.url}/Greeter/forever`, { method: "POST" });
      await expectIngressError(waited, 503, "CAIRN-INVOKE-0016");
    } finally {
      await role.stop();
      memory.stop();
    }
  });
});
