// Fault behaviour against a peer in its own process: paused (SIGSTOP), killed (SIGKILL) and restarted
// on the same port, and stopped gracefully (GOAWAY). Assertions are about behaviour, with generous
// time budgets, so they hold on a busy machine.
import { afterEach, describe, expect, test } from "bun:test";
import { createRegistry } from "../../src/observability/metrics.ts";
import type { FabricClient } from "../../src/net/index.ts";
import { Echo, Sleep } from "./fixtures/rpcs.ts";
import { TRANSPORTS, eventually, newClient, rejection, spawnPeer, type PeerProcess } from "./helpers.ts";

describe.each(TRANSPORTS)("a peer process on %s", (transport) => {
  const peers: PeerProcess[] = [];
  let client: FabricClient | undefined;
  afterEach(async () => {
    await client?.close();
    client = undefined;
    for (const p of peers.splice(0)) await p.kill();
  });

  async function peer(port?: number): Promise<PeerProcess> {
    const p = await spawnPeer({ transport, port });
    peers.push(p);
    return p;
  }

  test("a paused peer is detected by the heartbeat (NET_UNREACHABLE), and calls succeed again once it resumes", async () => {
    const p = await peer();
    const registry = createRegistry({ defaultMetrics: false });
    client = newClient({ registry, options: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_000, connectTimeoutMs: 1_000 } });
    expect((await client.call(p.address, Echo, { text: "before" })).text).toBe("before");

    process.kill(p.pid, "SIGSTOP");
    // The deadline is far away: only the heartbeat can fail these calls.
    const inFlight = Array.from({ length: 4 }, () => rejection(client!.call(p.address, Echo, { text: "during" }, { deadlineMs: 60_000 })));
    for (const e of await Promise.all(inFlight)) expect(e.code).toBe("CAIRN-NET-0006");
    expect(await registry.metrics()).toMatch(/cairn_fabric_client_heartbeat_failures_total\{peer="[^"]+"\} [1-9]/);
    // While paused, new calls fail too (a paused process still accepts TCP, but sends no SETTINGS).
    expect((await rejection(client.call(p.address, Echo, { text: "still paused" }, { deadlineMs: 60_000 }))).code).toBe("CAIRN-NET-0006");

    process.kill(p.pid, "SIGCONT");
    const after = await eventually(() => client!.call(p.address, Echo, { text: "after" }));
    expect(after.text).toBe("after");
    expect(await registry.metrics()).toMatch(/cairn_fabric_client_reconnects_total\{peer="[^"]+"\} [1-9]/);
  }, 90_000);

  test("a killed peer fails calls in flight at once, and after a restart on the same port calls succeed", async () => {
    const p = await peer();
    client = newClient();
    expect((await client.call(p.address, Echo, { text: "before" })).text).toBe("before");
    const inFlight = Array.from({ length: 8 }, () => rejection(client!.call(p.address, Sleep, { delayMs: 30_000 }, { deadlineMs: 60_000 })));
    await Bun.sleep(100);
    const killedAt = Date.now();
    await p.kill();
    for (const e of await Promise.all(inFlight)) expect(e.code).toBe("CAIRN-NET-0006");
    // "At once" = long before any deadline or heartbeat timeout could have fired.
    expect(Date.now() - killedAt).toBeLessThan(10_000);

    const restarted = await eventually(() => peer(p.port));
    const after = await eventually(() => client!.call(restarted.address, Echo, { text: "after restart" }));
    expect(after.text).toBe("after restart");
  }, 90_000);

  test("a peer stopping gracefully (GOAWAY) lets calls in flight complete", async () => {
    const p = await peer();
    client = newClient();
    await client.call(p.address, Echo, { text: "warm up" });
    const inFlight = Array.from({ length: 16 }, () => client!.call(p.address, Sleep, { delayMs: 500 }, { deadlineMs: 60_000 }));
    await Bun.sleep(150);
    process.kill(p.pid, "SIGTERM");
    const results = await Promise.all(inFlight);
    expect(results.every((r) => r.slept === 500)).toBe(true);
    expect(await p.exited).toBe(0);
    expect((await rejection(client.call(p.address, Echo, { text: "gone" }))).code).toBe("CAIRN-NET-0006");
  }, 90_000);
});
