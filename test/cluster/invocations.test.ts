// Durable invocations on real `cairn` processes (3 nodes, every role, 4 partitions, replication 2)
// running services written with the official Restate SDK (test/fixtures/sdk-services.ts, its own
// process): results through every node; retries; ctx.run side effects counted outside the handler;
// kill -9 of a partition leader's node and of the service process in the middle of invocations,
// after which every invocation completes exactly once; a durable sleep across a full-cluster restart.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ALL_ROLES } from "../helpers/cairn-process.ts";
import { eventually, json, leaderOf, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { startSdkEndpoint, type SdkEndpoint } from "../helpers/sdk-endpoint.ts";
import { partitionOfObject, evenPartitionTable } from "../../src/worker/index.ts";

let cluster: TestCluster;
let sdk: SdkEndpoint;
let sideEffects: string;
const live = () => cluster.nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
const ingress = (i: number) => cluster.nodes[i]!.addresses.ingress!;

beforeAll(async () => {
  cluster = await startCluster(3, {
    replication: 2,
    extraArgs: ["--roles", ALL_ROLES, "--set", "invoker.retry-initial-interval-ms=50", "--set", "invoker.retry-max-interval-ms=500"],
  });
  sideEffects = join(cluster.dir, "side-effects.txt");
  writeFileSync(sideEffects, "");
  sdk = await startSdkEndpoint("h2c", { env: { SIDE_EFFECTS_FILE: sideEffects } });
  const r = await json<{ id: string }>(`${cluster.nodes[0]!.addresses.admin}/deployments`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ uri: sdk.uri }),
  });
  expect(r.status).toBe(201);
  await everyPartitionLed();
}, 120_000);

afterAll(async () => {
  await sdk?.stop();
  await cluster?.stop();
}, 60_000);

async function everyPartitionLed(): Promise<void> {
  await eventually("every partition led", async () => {
    const node = live()[0]!;
    const r = await json<{ partitions: Array<{ leader: string | null; leaderApplied: boolean }> }>(`${node.addresses.admin}/v1/partitions`);
    return r.status === 200 && r.body.partitions.length === 4 && r.body.partitions.every((p) => p.leader !== null && p.leaderApplied) ? true : undefined;
  }, 60_000);
}

async function call(i: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const r = await fetch(`${ingress(i)}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? "" : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  return { status: r.status, body: text === "" ? undefined : JSON.parse(text), headers: r.headers };
}

/** Retries a request that carries an idempotency key until it is answered (leaders may be moving). */
async function callUntilAnswered(path: string, body: unknown, idempotencyKey: string): Promise<{ status: number; body: unknown }> {
  for (;;) {
    for (const n of live()) {
      const i = cluster.nodes.indexOf(n);
      const r = await call(i, path, body, { "idempotency-key": idempotencyKey }).catch(() => undefined);
      if (r !== undefined && r.status < 500) return r;
      await Bun.sleep(50);
    }
  }
}

describe("durable invocations with the Restate SDK", () => {
  test("services, objects, calls, sends, awakeables and a workflow answer correctly through every node", async () => {
    expect((await call(0, "Greeter/greet", "Ann")).body).toBe("Hello Ann");
    expect((await call(1, "Greeter/greet", "Bo")).body).toBe("Hello Bo");
    const refused = await call(2, "Greeter/refuse", "x");
    expect(refused.status).toBe(409);
    expect(refused.headers.get("x-restate-error-source")).toBe("invocation");
    for (let i = 0; i < 6; i++) expect((await call(i % 3, "Counter/c1/add", 2)).body).toBe(2 * (i + 1));
    expect((await call(1, "Counter/c1/get", undefined)).body).toBe(12);
    // The handler's state is the object's state on the data plane too.
    const state = await json<{ entries: Array<{ name: string; data: string }> }>(`${ingress(2)}/v1/objects/Counter/c1/state`);
    expect(state.body.entries).toEqual([expect.objectContaining({ name: "count", data: "12" })]);
    // Calls across partitions, a one-way send and a delayed one.
    const fan = await call(0, "Caller/fanOut", { name: "Cy", counter: "c2", delayMs: 300 });
    expect(fan.body).toEqual({ greeting: "Hello Cy", count: 1 });
    await eventually("the delayed one-way send applied", async () => ((await call(1, "Counter/c2/get", undefined)).body === 11 ? true : undefined), 20_000);
    // An awakeable resolved through the ingress of another node.
    const waiting = call(0, "Waiter/w1/wait", undefined);
    const id = await eventually("the awakeable id in the object's state", async () => {
      const r = await fetch(`${ingress(1)}/v1/objects/Waiter/w1/state/awakeable`);
      return r.status === 200 ? ((await r.json()) as string) : undefined;
    });
    const resolved = await fetch(`${ingress(2)}/restate/awakeables/${id}/resolve`, { method: "POST", headers: { "content-type": "application/json" }, body: '"yes"' });
    expect(resolved.status).toBe(202);
    expect((await waiting).body).toBe("woken with yes");
    // A workflow: run once per key, its promise resolved by a shared handler, its result attachable.
    expect((await call(0, "Signup/u1/run/send", "a@b.c")).status).toBe(202);
    expect((await call(1, "Signup/u1/run/send", "a@b.c")).body).toMatchObject({ status: "PreviouslyAccepted" });
    await eventually("the run waits for its promise", async () => ((await call(2, "Signup/u1/stage", undefined)).body === "waiting" ? true : undefined));
    expect((await call(2, "Signup/u1/confirm", "42")).body).toBe("ok");
    const attached = await fetch(`${ingress(1)}/restate/workflow/Signup/u1/attach`, { signal: AbortSignal.timeout(30_000) });
    expect(await attached.json()).toBe("a@b.c confirmed with 42");
    expect((await call(0, "Signup/u1/run", "a@b.c")).status).toBe(409);
  }, 120_000);

  test("a handler attaches to invocations of other partitions and gets their results", async () => {
    const ids = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const r = await call(i % 3, "Runner/sleep/send", 200);
        expect(r.status).toBe(202);
        return (r.body as { invocationId: string }).invocationId;
      }),
    );
    const results = await Promise.all(ids.map((id, i) => call(i % 3, "Caller/attachTo", id)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body as number).toBeGreaterThanOrEqual(200);
    }
  }, 60_000);

  test("concurrent calls of an exclusive handler through every node run one at a time: the counter ends exactly right", async () => {
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => call(i % 3, "Counter/race/add", 1)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.body)).size).toBe(60);
    expect((await call(0, "Counter/race/get", undefined)).body).toBe(60);
  }, 60_000);

  test("an idempotency key makes a retried call run once and answer the first result", async () => {
    const first = await call(0, "Counter/idem/add", 5, { "idempotency-key": "once" });
    const second = await call(1, "Counter/idem/add", 5, { "idempotency-key": "once" });
    expect(first.body).toBe(5);
    expect(second.body).toBe(5);
    expect(second.headers.get("x-restate-id")).toBe(first.headers.get("x-restate-id"));
    expect((await call(2, "Counter/idem/get", undefined)).body).toBe(5);
  }, 60_000);

  test("a failing handler is retried until it succeeds; ctx.run side effects run once each", async () => {
    expect((await call(1, "Runner/flaky", { key: "f1", failures: 3 })).body).toBe(4);
    expect((await call(2, "Runner/twoSteps", "t1")).body).toBe("t1-a+t1-b");
    const lines = readFileSync(sideEffects, "utf8").split("\n").filter((l) => l.startsWith("t1 "));
    expect(lines.sort()).toEqual(["t1 first", "t1 second"]);
  }, 60_000);

  test("kill -9 of a partition leader's node during increments: every acknowledged increment counts exactly once", async () => {
    const table = evenPartitionTable(4);
    const key = "hot";
    const partition = partitionOfObject(table, "Counter", key);
    const metaLeader = await leaderOf(cluster);
    // Its current leader, once it leads (a leadership move to even them out may be under way).
    const leaderName = await eventually(`partition ${partition} led`, async () => {
      const r = await json<{ partitions: Array<{ id: number; leader: string | null; leaderApplied: boolean }> }>(`${metaLeader.addresses.admin}/v1/partitions`);
      const row = r.status === 200 ? r.body.partitions.find((p) => p.id === partition) : undefined;
      return row?.leader != null && row.leaderApplied ? row.leader : undefined;
    });
    const names = await Promise.all(cluster.nodes.map(async (n) => (await json<{ id: string }>(`${n.addresses.admin}/v1/node`)).body.id));
    const victim = cluster.nodes[names.indexOf(leaderName)]!;
    const total = 40;
    let killedAtMs = 0;
    let firstAfterKillMs: number | undefined;
    const increments = Array.from({ length: total }, (_, i) =>
      (async () => {
        await Bun.sleep(i * 25);
        const r = await callUntilAnswered(`Counter/${key}/add`, 1, `inc-${i}`);
        if (killedAtMs > 0 && firstAfterKillMs === undefined) firstAfterKillMs = performance.now() - killedAtMs;
        return r;
      })(),
    );
    await Bun.sleep(400);
    victim.proc.kill("SIGKILL");
    await victim.proc.exited;
    killedAtMs = performance.now();
    const answers = await Promise.all(increments);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // Each increment answered the count it produced: all distinct, 1..total.
    expect(new Set(answers.map((a) => a.body)).size).toBe(total);
    const final = await callUntilAnswered(`Counter/${key}/get`, undefined, "final-get");
    expect(final.body).toBe(total);
    console.log(`invocations on the killed leader's partition completed again ${Math.round(firstAfterKillMs ?? 0)} ms after kill -9`);
    await cluster.start(victim.dataDir.split("/").pop()!, [], victim.dataDir);
    await everyPartitionLed();
  }, 180_000);

  test("kill -9 of the service process during invocations: they complete once, after it is back", async () => {
    const port = sdk.port;
    const sends = await Promise.all(Array.from({ length: 10 }, (_, i) => call(i % 3, "Counter/svc/add/send", 1, { "idempotency-key": `svc-${i}` })));
    expect(sends.every((s) => s.status === 202)).toBe(true);
    sdk.proc.kill("SIGKILL");
    await sdk.proc.exited;
    await Bun.sleep(300);
    sdk = await startSdkEndpoint("h2c", { env: { SIDE_EFFECTS_FILE: sideEffects }, port });
    await eventually("every sent increment applied once", async () => ((await call(0, "Counter/svc/get", undefined)).body === 10 ? true : undefined), 60_000);
    await Bun.sleep(500);
    expect((await call(1, "Counter/svc/get", undefined)).body).toBe(10);
  }, 120_000);

  test("a durable sleep survives a restart of the whole cluster", async () => {
    const started = await call(0, "Runner/sleep/send", 3000, { "idempotency-key": "long-sleep" });
    expect(started.status).toBe(202);
    const nodes = [...cluster.nodes];
    await Promise.all(nodes.map((n) => n.stop()));
    // Same fabric ports: the members find each other at the addresses the metadata cluster recorded.
    await Promise.all(nodes.map((n) => cluster.start(n.dataDir.split("/").pop()!, ["--fabric-address", n.addresses.fabric], n.dataDir)));
    await everyPartitionLed().catch((e: unknown) => {
      for (const n of cluster.nodes) console.log(`---- ${n.dataDir}\n${n.log().split("\n").slice(-25).join("\n")}`);
      throw e;
    });
    const r = await eventually(
      "the sleep's result after the restart",
      async () => {
        const x = await fetch(`${ingress(0)}/restate/invocation/Runner/sleep/long-sleep/attach`, { signal: AbortSignal.timeout(30_000) });
        return x.status === 200 ? ((await x.json()) as number) : undefined;
      },
      60_000,
    );
    expect(r).toBeGreaterThanOrEqual(3000);
  }, 180_000);
});
