import { afterEach, describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { CairnError } from "../../src/observability/errors.ts";
import { defineRpc, type FabricClient, type FabricServer } from "../../src/net/index.ts";
import { Echo, Sleep } from "./fixtures/rpcs.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { newClient, rejection, sender, spawnPeer, startServer } from "./helpers.ts";

const Gate = defineRpc({ service: "test", method: "gate", request: Type.Object({ id: Type.Integer() }), response: Type.Object({ id: Type.Integer() }) });

/** A server whose `gate` calls wait until released, recording the highest concurrency seen. */
async function gatedServer(): Promise<{ server: FabricServer; open: () => void; maxConcurrent: () => number; waiting: () => number }> {
  const server = await startServer("bun");
  let concurrent = 0;
  let max = 0;
  const waiters: (() => void)[] = [];
  let opened = false;
  server.register(Gate, async (req) => {
    concurrent++;
    max = Math.max(max, concurrent);
    if (!opened) await new Promise<void>((resolve) => waiters.push(resolve));
    concurrent--;
    return { id: req.id };
  });
  return {
    server,
    open: () => {
      opened = true;
      for (const w of waiters.splice(0)) w();
    },
    maxConcurrent: () => max,
    waiting: () => waiters.length,
  };
}

async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await Bun.sleep(10);
  }
}

describe("fabric client", () => {
  let server: FabricServer | undefined;
  let client: FabricClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.stop();
    client = undefined;
    server = undefined;
  });

  test("calls beyond maxInFlightPerPeer wait in the queue, and beyond the queue fail with NET_OVERLOADED", async () => {
    const gate = await gatedServer();
    server = gate.server;
    client = newClient({ options: { maxInFlightPerPeer: 2, maxQueuedPerPeer: 3 } });
    const calls = Array.from({ length: 5 }, (_, id) => client!.call(server!.url, Gate, { id }));
    await until(() => gate.waiting() === 2);
    expect(client.peerStatus(server.url)).toMatchObject({ inFlight: 2, queued: 3 });
    const overloaded = await rejection(client.call(server.url, Gate, { id: 99 }));
    expect(overloaded.code).toBe("CAIRN-NET-0007");
    gate.open();
    expect((await Promise.all(calls)).map((r) => r.id)).toEqual([0, 1, 2, 3, 4]);
    expect(gate.maxConcurrent()).toBe(2);
    expect(client.peerStatus(server.url)).toMatchObject({ inFlight: 0, queued: 0 });
  });

  test("a queued call whose deadline passes fails without ever taking a slot", async () => {
    const gate = await gatedServer();
    server = gate.server;
    client = newClient({ options: { maxInFlightPerPeer: 1 } });
    const first = client.call(server.url, Gate, { id: 1 });
    await until(() => gate.waiting() === 1);
    const e = await rejection(client.call(server.url, Gate, { id: 2 }, { deadlineMs: 100 }));
    expect(e.code).toBe("CAIRN-NET-0005");
    expect(client.peerStatus(server.url)).toMatchObject({ inFlight: 1, queued: 0 });
    gate.open();
    expect((await first).id).toBe(1);
    expect(gate.maxConcurrent()).toBe(1);
  });

  test("the in-flight byte budget holds back large calls but never blocks a lone one", async () => {
    const gate = await gatedServer();
    server = gate.server;
    client = newClient({ options: { maxInFlightBytesPerPeer: 1024 } });
    const Big = defineRpc({ service: "test", method: "echo", request: Echo.request, response: Echo.response });
    const a = client.call(server.url, Gate, { id: 1 });
    await until(() => gate.waiting() === 1);
    // 4 KiB > budget: waits while another call is in flight...
    const big = client.call(server.url, Big, { text: "b", payload: new Uint8Array(4096) });
    await Bun.sleep(50);
    expect(client.peerStatus(server.url)).toMatchObject({ inFlight: 1, queued: 1 });
    gate.open();
    await a;
    // ...and goes alone once the peer is idle.
    expect((await big).payload?.byteLength).toBe(4096);
  });

  test("a caller's AbortSignal cancels the call with NET_DEADLINE_EXCEEDED", async () => {
    server = await startServer("bun");
    client = newClient();
    const controller = new AbortController();
    const call = client.call(server.url, Sleep, { delayMs: -1 }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("caller gave up")), 100);
    const e = await rejection(call);
    expect(e.code).toBe("CAIRN-NET-0005");
    expect((e as unknown as CairnError).cause).toBeInstanceOf(Error);
    const already = await rejection(client.call(server.url, Echo, { text: "x" }, { signal: AbortSignal.abort() }));
    expect(already.code).toBe("CAIRN-NET-0005");
    expect(client.peerStatus(server.url)).toMatchObject({ inFlight: 0 });
  });

  test("close() fails calls in flight with NET_SHUTTING_DOWN and refuses new ones", async () => {
    server = await startServer("bun");
    client = newClient();
    const pending = rejection(client.call(server.url, Sleep, { delayMs: -1 }));
    await Bun.sleep(50);
    await client.close();
    expect((await pending).code).toBe("CAIRN-NET-0013");
    expect((await rejection(client.call(server.url, Echo, { text: "late" }))).code).toBe("CAIRN-NET-0013");
  });

  test("a peer that refuses connections fails calls with NET_UNREACHABLE and backs off with jitter", async () => {
    // Bind and release a port so nothing listens there.
    const probe = await startServer("bun");
    const address = probe.url;
    await probe.stop();
    // Windows of a second or more: the fail-fast check below must not outlive them on a busy machine.
    client = newClient({ random: () => 1, options: { reconnectBackoffInitialMs: 1_000, reconnectBackoffMaxMs: 2_000 } });
    const first = await rejection(client.call(address, Echo, { text: "x" }));
    expect(first.code).toBe("CAIRN-NET-0006");
    const status = client.peerStatus(address);
    expect(status?.consecutiveFailures).toBe(1);
    expect(status?.retryInMs).toBeGreaterThan(0);
    expect(status?.retryInMs).toBeLessThanOrEqual(1_000);
    // Within the backoff window calls fail fast, without a connect attempt.
    const fast = await rejection(client.call(address, Echo, { text: "x" }));
    expect(fast.message).toContain("next connect attempt");
    expect(client.peerStatus(address)?.consecutiveFailures).toBe(1);
    // After the window a new attempt is made; the delay doubles up to the maximum.
    await Bun.sleep(client.peerStatus(address)!.retryInMs + 10);
    await rejection(client.call(address, Echo, { text: "x" }));
    expect(client.peerStatus(address)?.consecutiveFailures).toBe(2);
    expect(client.peerStatus(address)?.retryInMs).toBeGreaterThan(1_000 - 100); // random() = 1: the full, doubled window
    expect(client.peerStatus(address)?.retryInMs).toBeLessThanOrEqual(2_000);
    // Once the peer is back, the next attempt after the window connects.
    server = await startServer("bun", { port: Number(address.split(":")[1]) });
    await Bun.sleep(client.peerStatus(address)!.retryInMs + 10);
    expect((await client.call(address, Echo, { text: "back" })).text).toBe("back");
    expect(client.peerStatus(address)).toMatchObject({ connected: true, consecutiveFailures: 0 });
  });

  test("peer addresses may carry a scheme; anything else is refused", async () => {
    server = await startServer("bun");
    client = newClient();
    expect((await client.call(`http://${server.url}`, Echo, { text: "x" })).text).toBe("x");
    expect((await rejection(client.call("not an address", Echo, { text: "x" }))).code).toBe("CAIRN-NET-0006");
    expect((await rejection(client.call("https://127.0.0.1:1", Echo, { text: "x" }))).code).toBe("CAIRN-NET-0006");
  });
});

describe("releasing resources", () => {
  const script = new URL("./fixtures/close-and-exit.ts", import.meta.url).pathname;

  async function runToExit(args: string[]): Promise<{ exited: number | "still running"; stdout: string }> {
    const proc = Bun.spawn([process.execPath, script, ...args], { stdout: "pipe", stderr: "inherit" });
    try {
      const exited = await Promise.race([proc.exited, Bun.sleep(30_000).then(() => "still running" as const)]);
      return { exited, stdout: exited === "still running" ? "" : await new Response(proc.stdout).text() };
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await proc.exited;
    }
  }

  test("after client.close() the process exits by itself while the peer is still up", async () => {
    const peer = await spawnPeer();
    try {
      const { exited, stdout } = await runToExit(["client", peer.address]);
      expect(stdout).toContain("closed CAIRN-NET-0013 CAIRN-NET-0006");
      expect(exited).toBe(0);
    } finally {
      await peer.kill();
    }
  }, 60_000);

  test.each(["bun", "node"])("after server.stop() (%s) the process exits by itself", async (transport) => {
    const { exited, stdout } = await runToExit(["server", transport]);
    expect(stdout).toContain("closed CAIRN-NET-0013 CAIRN-NET-0006");
    expect(exited).toBe(0);
  }, 60_000);
});

describe("unreachable peers", () => {
  test("a call that never left this node says so (sent: false), so callers may retry it safely", async () => {
    const client = newClient({ options: { connectTimeoutMs: 500 } });
    try {
      // Port 1 on loopback: nothing listens, the connection is refused.
      const first = await rejection(client.call("127.0.0.1:1", Echo, { text: "x" }));
      expect(first.code).toBe("CAIRN-NET-0006");
      expect(first.details.sent).toBe(false);
      // During the backoff that follows, calls fail at once, also unsent.
      const second = await rejection(client.call("127.0.0.1:1", Echo, { text: "y" }));
      expect(second.details.sent).toBe(false);
    } finally {
      await client.close();
    }
  });
});

describe("loopback: calls to this node's own address", () => {
  test("are served in-process with the same fencing, errors, deadlines and metrics, and fall back to the network once the server stops", async () => {
    const registry = createRegistry({ defaultMetrics: false });
    const server = await startServer("bun");
    const client = newClient({ registry });
    try {
      client.setLoopback(server.url, server);
      // Served, with the caller's identity as the handler sees it, and no HTTP/2 session opened.
      expect(await client.call(server.url, Echo, { text: "self" })).toEqual({ text: "self", from: "N1", generation: 1 });
      expect(client.peerStatus(server.url)).toBeNull();
      // A handler's own deadline: the caller's budget reaches the handler's signal.
      expect((await rejection(client.call(server.url, Sleep, { delayMs: -1 }, { deadlineMs: 100 }))).code).toBe("CAIRN-NET-0005");
      // The caller's AbortSignal, before and during the call.
      expect((await rejection(client.call(server.url, Echo, { text: "x" }, { signal: AbortSignal.abort() }))).code).toBe("CAIRN-NET-0005");
      const controller = new AbortController();
      const pending = rejection(client.call(server.url, Sleep, { delayMs: -1 }, { signal: controller.signal }));
      setTimeout(() => controller.abort(new Error("caller gave up")), 50);
      expect((await pending).code).toBe("CAIRN-NET-0005");
      // Fencing still applies: a sender of another cluster is refused as over the network.
      const stranger = newClient({ identity: () => sender({ clusterName: "other" }) });
      stranger.setLoopback(server.url, server);
      expect((await rejection(stranger.call(server.url, Echo, { text: "x" }))).code).toBe(new CairnError("NET_CLUSTER_MISMATCH", "").code);
      await stranger.close();
      // Counted like any call, on both sides.
      const text = await registry.metrics();
      expect(text).toContain('cairn_fabric_client_calls_total{service="test",method="echo",outcome="ok"} 1');
      // Stopped: the loopback steps aside and the call fails as a call to a gone peer does.
      await server.stop();
      expect((await rejection(client.call(server.url, Echo, { text: "late" }, { deadlineMs: 2_000 }))).code).toBe(new CairnError("NET_UNREACHABLE", "").code);
    } finally {
      await client.close();
      await server.stop();
    }
  });
});
