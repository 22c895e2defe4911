// A log-server store disabled by a real disk fault recovers without a process restart: a real `cairn`
// process whose fsyncs on its record store fail with EIO (strace --inject) disables the store, says so
// on /ready and /metrics, keeps probing while the fault lasts, and takes writes again — same PID, no
// acknowledged record lost — once the fault is gone. Needs root and strace (skipped otherwise).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { FsyncFailure, storageFaultUnavailable } from "../chaos/io-faults.ts";
import { startNode, tempDir } from "../helpers/cairn-process.ts";
import { eventually } from "../helpers/cluster.ts";

const unavailable = storageFaultUnavailable("fsync-error");

async function post(url: string, body: unknown): Promise<Response> {
  return await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
}

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

describe.skipIf(unavailable !== null)("log-server store recovery after a disk fault (real process)", () => {
  test("a store disabled by failed fsyncs re-enables itself once they succeed again: /ready, metrics, appends, same process", async () => {
    const node = await startNode({
      name: "recover",
      args: ["--set", "log-server.recovery-probe-initial-delay-ms=200", "--set", "log-server.recovery-probe-max-delay-ms=1000", "--set", "bifrost.append-timeout-ms=3000"],
    });
    const admin = node.addresses.admin;
    let fault: FsyncFailure | undefined;
    try {
      expect((await post(`${admin}/v1/cluster/provision`, { numPartitions: 1, replication: 1 })).status).toBe(200);
      await eventually("a first append", async () => ((await post(`${admin}/v1/logs/0/records`, { records: ["before"] })).status === 200 ? true : undefined));

      const store = join(node.dataDir, "logserver.sqlite");
      fault = await FsyncFailure.start(node.pid, join(tempDir(), "strace.out"), [store, `${store}-wal`]);
      const during = await post(`${admin}/v1/logs/0/records`, { records: ["during"] });
      expect(during.status).toBeGreaterThanOrEqual(500);
      await eventually("/ready to report the disabled store", async () => {
        const r = await fetch(`${admin}/ready`);
        const text = await r.text();
        return r.status === 503 && text.includes("takes no writes since a write failed") ? true : undefined;
      });
      // The fault lasts: probes fail, the store stays disabled.
      await eventually("two failed recovery probes", async () => {
        const m = await (await fetch(`${admin}/metrics`)).text();
        return (metric(m, 'cairn_logserver_store_recovery_probes_total{result="failed"}') ?? 0) >= 2 ? true : undefined;
      });
      const meanwhile = await (await fetch(`${admin}/metrics`)).text();
      expect(metric(meanwhile, "cairn_logserver_store_writable")).toBe(0);

      const injected = await fault.stop();
      fault = undefined;
      expect(injected).toBeGreaterThan(0);
      await eventually("the store to take writes again", async () => {
        const m = await (await fetch(`${admin}/metrics`)).text();
        return metric(m, "cairn_logserver_store_writable") === 1 ? m : undefined;
      }).then((m) => expect(metric(m, "cairn_logserver_store_reenabled_total")).toBe(1));
      await eventually("/ready 200", async () => ((await fetch(`${admin}/ready`)).status === 200 ? true : undefined));
      await eventually("an append after recovery", async () => ((await post(`${admin}/v1/logs/0/records`, { records: ["after"] })).status === 200 ? true : undefined));

      const read = (await (await fetch(`${admin}/v1/logs/0/records?from=1`)).json()) as { entries: Array<{ kind?: string; record?: string; payload?: string; data?: string }> };
      const texts = JSON.stringify(read.entries);
      expect(texts).toContain("before");
      expect(texts).toContain("after");
      expect(node.proc.exitCode).toBeNull(); // recovered in place: no restart
      expect(node.log()).toContain("store writes re-enabled");
    } finally {
      await fault?.stop();
      await node.stop();
    }
  }, 120_000);
});
