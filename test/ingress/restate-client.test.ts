// The official typed ingress client (`@restatedev/restate-sdk-clients` 1.17.2, unmodified) against
// cairn's data-plane app: it builds the paths and headers, cairn answers, and the client must parse every
// answer (outputs, send answers, 470, error JSON, Retry-After). Invocations run in the in-memory
// InvocationClient (the thing under test is the HTTP mapping, not the invoker).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as restate from "@restatedev/restate-sdk";
import * as clients from "@restatedev/restate-sdk-clients";
import { startTestIngress, type TestIngress } from "./restate-fixture.ts";

// The services' types, as their authors declare them with the SDK (never served here: only their
// names and signatures reach the client).
const Greeter = restate.service({
  name: "Greeter",
  handlers: {
    greet: async (_ctx: restate.Context, _name: string): Promise<string> => "",
    fail: async (_ctx: restate.Context, _req: { code: number }): Promise<string> => "",
    slow: async (_ctx: restate.Context, _ms: number): Promise<string> => "",
  },
});
const Counter = restate.object({
  name: "Counter",
  handlers: {
    add: async (_ctx: restate.ObjectContext, _delta: number): Promise<number> => 0,
    get: restate.handlers.object.shared(async (_ctx: restate.ObjectSharedContext): Promise<{ key: string; count: number }> => ({ key: "", count: 0 })),
  },
});
const Signup = restate.workflow({
  name: "Signup",
  handlers: {
    run: async (_ctx: restate.WorkflowContext, _email: string): Promise<string> => "",
    confirm: async (_ctx: restate.WorkflowSharedContext, _answer: string): Promise<boolean> => true,
  },
});
const Waiter = restate.service({ name: "Waiter", handlers: { wait: async (_ctx: restate.Context): Promise<string> => "" } });

let ing: TestIngress;
beforeAll(() => {
  ing = startTestIngress({ requestTimeoutMs: 500 });
});
afterAll(async () => {
  await ing?.stop();
});

const lastRequest = () => ing.memory.requests[ing.memory.requests.length - 1]!;

async function until<T>(f: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

async function rejection(p: PromiseLike<unknown>): Promise<clients.HttpCallError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(clients.HttpCallError);
    return e as clients.HttpCallError;
  }
  throw new Error("expected the call to fail");
}

describe("the official ingress client", () => {
  test("calls a service and a virtual object and reads their outputs", async () => {
    const ingress = clients.connect({ url: ing.url });
    expect(await ingress.serviceClient(Greeter).greet("bob")).toBe("Hello bob");
    const counter = ingress.objectClient(Counter, "client/ü");
    expect(await counter.add(2)).toBe(2);
    expect(await counter.add(3)).toBe(5);
    expect(await counter.get()).toEqual({ key: "client/ü", count: 5 });
    expect(lastRequest().target).toEqual({ service: "Counter", handler: "get", key: "client/ü" });
  });

  test("a call waits past one client deadline (slow handler) and gets the output", async () => {
    const ingress = clients.connect({ url: ing.url });
    expect(await ingress.serviceClient(Greeter).slow(1_500)).toBe("slept");
  });

  test("sees a terminal failure as its status and Restate's error JSON, and never retries it", async () => {
    const ingress = clients.connect({ url: ing.url, retry: true });
    const before = ing.memory.calls.invoke;
    const err = await rejection(ingress.serviceClient(Greeter).fail({ code: 409 }, clients.rpc.opts({ idempotencyKey: "fail-once" })));
    expect(err.status).toBe(409);
    expect(JSON.parse(err.responseText)).toEqual({ code: 409, message: "failed with 409", source: "invocation" });
    expect(ing.memory.calls.invoke - before).toBe(1);
  });

  test("sends, with a delay, and reads the send answer", async () => {
    const ingress = clients.connect({ url: ing.url });
    const sent = await ingress.serviceSendClient(Greeter).greet("later", clients.rpc.sendOpts({ delay: 250 }));
    expect(sent.status).toBe("Accepted");
    expect(sent.invocationId).toStartWith("inv_1");
    expect(sent.attachable).toBe(false);
    expect(lastRequest()).toMatchObject({ mode: "send", delayMs: 250 });
  });

  test("a send with an idempotency key is attachable: result() attaches and gets the output", async () => {
    const ingress = clients.connect({ url: ing.url });
    const send = await ingress.objectSendClient(Counter, "attach-me").add(4, clients.rpc.sendOpts({ idempotencyKey: "send-add-4" }));
    expect(send.attachable).toBe(true);
    expect(await ingress.result(send)).toBe(4);
    const again = await ingress.objectSendClient(Counter, "attach-me").add(4, clients.rpc.sendOpts({ idempotencyKey: "send-add-4" }));
    expect(again).toMatchObject({ invocationId: send.invocationId, status: "PreviouslyAccepted" });
  });

  test("submits a workflow once, reads its output as not ready, signals it, attaches to its result", async () => {
    const ingress = clients.connect({ url: ing.url });
    const wf = ingress.workflowClient(Signup, "ann@example.com");
    const first = await wf.workflowSubmit("ann@example.com");
    expect(first.status).toBe("Accepted");
    const second = await wf.workflowSubmit("ann@example.com");
    expect(second).toMatchObject({ invocationId: first.invocationId, status: "PreviouslyAccepted" });
    expect((await wf.workflowOutput()).ready).toBe(false);
    const attached = wf.workflowAttach();
    expect(await wf.confirm("yes")).toBe(true);
    expect(await attached).toBe('ann@example.com confirmed with "yes"');
    const output = await wf.workflowOutput();
    expect(output.ready).toBe(true);
    expect(output.result).toBe('ann@example.com confirmed with "yes"');
    // A second call (not a send) of run is the invocation's 409.
    const err = await rejection(ingress.call({ service: "Signup", handler: "run", key: "ann@example.com", parameter: "ann@example.com" }));
    expect(err.status).toBe(409);
  });

  test("resolves and rejects awakeables", async () => {
    const ingress = clients.connect({ url: ing.url });
    const known = new Set(ing.memory.awakeableIds());
    const woken = await ingress.serviceSendClient(Waiter).wait(clients.rpc.sendOpts({ idempotencyKey: "wake-1" }));
    const id1 = await until(() => ing.memory.awakeableIds().find((a) => !known.has(a)));
    await ingress.resolveAwakeable(id1, { ok: 1 });
    expect(await ingress.result(woken)).toBe('woken with {"ok":1}');

    known.add(id1);
    const refused = await ingress.serviceSendClient(Waiter).wait(clients.rpc.sendOpts({ idempotencyKey: "wake-2" }));
    const id2 = await until(() => ing.memory.awakeableIds().find((a) => !known.has(a)));
    await ingress.rejectAwakeable(id2, "not today");
    const err = await rejection(ingress.result(refused));
    expect(err.status).toBe(500);
    expect(JSON.parse(err.responseText)).toMatchObject({ code: 500, message: "not today" });

    const bad = await rejection(ingress.resolveAwakeable("sign_1nonsense", 1));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.responseText)).toMatchObject({ code: "CAIRN-INVOKE-0014", source: "ingress" });
  });

  test("retries a 503 (honouring Retry-After) only when the request may be repeated", async () => {
    const retrying = clients.connect({ url: ing.url, retry: true });
    const before = ing.memory.calls.invoke;
    ing.memory.failNext.push("PARTITION_UNAVAILABLE");
    expect(await retrying.serviceClient(Greeter).greet("again", clients.rpc.opts({ idempotencyKey: "retry-503" }))).toBe("Hello again");
    expect(ing.memory.calls.invoke - before).toBe(2);

    ing.memory.failNext.push("PARTITION_UNAVAILABLE");
    const err = await rejection(retrying.serviceClient(Greeter).greet("no key"));
    expect(err.status).toBe(503);
    expect(JSON.parse(err.responseText)).toMatchObject({ code: "CAIRN-PARTITION-0002", source: "ingress" });
  });

  test("an unknown service is the client's 404", async () => {
    const ingress = clients.connect({ url: ing.url });
    const err = await rejection(ingress.call({ service: "Nobody", handler: "greet", parameter: "x" }));
    expect(err.status).toBe(404);
    expect(JSON.parse(err.responseText)).toMatchObject({ code: "CAIRN-INVOKE-0001", source: "ingress" });
  });
});
