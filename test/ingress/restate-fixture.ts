// The services the ingress tests call (schemas as discovery would store them, and their behaviour in
// MemoryInvocations), and a data-plane app serving them on 127.0.0.1 with a random port.
import { createIngressApp } from "../../src/ingress/index.ts";
import type { InvocationResult } from "../../src/worker/invoker/model.ts";
import { MemoryInvocations, MemorySchema, dec, enc, handler, json, service, type HandlerFn } from "./restate-memory.ts";

export const value = (v: Uint8Array): InvocationResult => ({ kind: "value", value: v });
export const failure = (code: number, message: string, metadata: Array<{ key: string; value: string }> = []): InvocationResult => ({
  kind: "failure",
  code,
  message,
  metadata,
});

export function testSchema(): MemorySchema {
  return new MemorySchema([
    service("Greeter", "service", [
      handler("greet"),
      handler("empty"),
      handler("emptyTyped", { setContentTypeIfEmpty: true }),
      handler("text", { outputContentType: "text/plain" }),
      handler("headers"),
      handler("fail"),
      handler("slow"),
      handler("forever"),
      handler("needsInput", { inputRequired: true }),
      handler("send"),
    ]),
    service("Counter", "virtual-object", [handler("add", { ty: "exclusive" }), handler("get", { ty: "shared" }), handler("send", { ty: "exclusive" })]),
    service("Hidden", "service", [handler("ping")], { public: false }),
    service("Signup", "workflow", [handler("run", { ty: "workflow" }), handler("confirm", { ty: "shared" })]),
    service("Waiter", "service", [handler("wait")]),
  ]);
}

export function testHandlers(): Record<string, HandlerFn> {
  const counts = new Map<string, number>();
  /** Per workflow key, what its run waits for (given by `Signup/confirm`). */
  const confirmations = new Map<string, (r: InvocationResult) => void>();
  return {
    "Greeter/greet": ({ input }) => value(json(`Hello ${JSON.parse(dec(input))}`)),
    "Greeter/empty": () => value(new Uint8Array(0)),
    "Greeter/emptyTyped": () => value(new Uint8Array(0)),
    "Greeter/text": () => value(enc("plain words")),
    "Greeter/headers": ({ headers }) => value(json(headers)),
    "Greeter/fail": ({ input }) => {
      const { code, metadata } = JSON.parse(dec(input)) as { code: number; metadata?: Record<string, string> };
      return failure(code, `failed with ${code}`, Object.entries(metadata ?? {}).map(([key, v]) => ({ key, value: v })));
    },
    "Greeter/slow": async ({ input }) => {
      await Bun.sleep(Number(JSON.parse(dec(input))));
      return value(json("slept"));
    },
    "Greeter/forever": () => new Promise<InvocationResult>(() => {}),
    "Greeter/needsInput": ({ input }) => value(input),
    "Greeter/send": () => value(json("a handler named send")),
    "Counter/add": ({ key, input }) => {
      const next = (counts.get(key!) ?? 0) + Number(JSON.parse(dec(input)));
      counts.set(key!, next);
      return value(json(next));
    },
    "Counter/get": ({ key }) => value(json({ key, count: counts.get(key!) ?? 0 })),
    "Counter/send": ({ key }) => value(json(`send on ${key}`)),
    "Hidden/ping": () => value(json("pong")),
    /** Served by a service the registry only learns of later (MemorySchema.registerLater). */
    "Late/hi": () => value(json("hi")),
    "Signup/run": ({ key }) => {
      const { promise, resolve } = Promise.withResolvers<InvocationResult>();
      confirmations.set(key!, resolve);
      return promise.then((r) => (r.kind === "value" ? value(json(`${key} confirmed with ${dec(r.value)}`)) : r));
    },
    "Signup/confirm": ({ key, input }) => {
      confirmations.get(key!)?.(value(input));
      return value(json(confirmations.has(key!)));
    },
    "Waiter/wait": async (call) => {
      const { promise } = call.awakeable();
      const r = await promise;
      return r.kind === "value" ? value(json(`woken with ${dec(r.value)}`)) : r;
    },
  };
}

export interface TestIngress {
  readonly url: string;
  readonly memory: MemoryInvocations;
  readonly schema: MemorySchema;
  readonly bugs: unknown[];
  stop(): Promise<void>;
}

export interface TestIngressOptions {
  readonly requestTimeoutMs?: number;
  readonly invocationWaitMs?: number;
  readonly maxBodyBytes?: number;
  readonly idleTimeoutSeconds?: number;
  /** False: the node has no InvocationClient yet (starting, not provisioned). */
  readonly invocationsReady?: boolean;
}

export function startTestIngress(opts: TestIngressOptions = {}): TestIngress {
  const schema = testSchema();
  const memory = new MemoryInvocations(schema, testHandlers());
  const bugs: unknown[] = [];
  const app = createIngressApp({
    router: () => undefined,
    maxValueBytes: 1024,
    maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024,
    requestTimeoutMs: opts.requestTimeoutMs ?? 2_000,
    invocationWaitMs: opts.invocationWaitMs ?? 30_000,
    onBug: (e) => bugs.push(e),
    invocations: () => (opts.invocationsReady === false ? undefined : memory),
    schema: () => schema,
  });
  app.listen({ hostname: "127.0.0.1", port: 0, idleTimeout: opts.idleTimeoutSeconds ?? 30 });
  const url = `http://127.0.0.1:${app.server!.port}`;
  return {
    url,
    memory,
    schema,
    bugs,
    stop: async () => {
      memory.stop();
      await app.stop(true);
    },
  };
}
