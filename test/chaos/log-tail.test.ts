// A reproduction of an anomaly the chaos log checker found (seeds 5 and 8 of `bun scripts/chaos.ts
// --workload log`), kept as a regression test: kill -9 the sequencer of log 0, append more through
// another node (a new segment takes over), restart the killed node. For ~200–400 ms after it answered
// /ready, its GET /v1/logs/0/tail answered the old segment's base (tailLsn 31 with LSN 90 acknowledged)
// and reads from 90 returned nothing: Bifrost.committedTail took the log-servers' lower bound (or
// offset 1 when none answered) for the tail. Fixed in 1a6f67c (such a tail is 503 CAIRN-LOG-0020).
// Any answer is allowed here except a tail at or below an acknowledged LSN.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChaosCluster } from "./cluster.ts";
import { request } from "./client.ts";
import { stopAll } from "./node-process.ts";
import { Rng } from "./rng.ts";

afterAll(async () => {
  await stopAll();
});

test("a restarted node never reports a log tail below an append acknowledged before it restarted", async () => {
  const cluster = await ChaosCluster.start({ size: 3, dir: mkdtempSync(join(tmpdir(), "cairn-logtail-")), rng: new Rng(11) });
  try {
    const url = (name: string) => cluster.adminUrl(cluster.node(name));
    let last = 0;
    const append = async (via: string, count: number) => {
      for (let ok = 0, tries = 0; ok < count; tries++) {
        expect(tries).toBeLessThan(count + 300);
        const r = await request(url(via), "POST", "/v1/logs/0/records", { body: { records: [`tail-${via}-${ok}`] }, timeoutMs: 4000 });
        if (r.kind === "ok") {
          ok++;
          last = Math.max(last, (r.body as { lastLsn: number }).lastLsn);
        } else await Bun.sleep(100);
      }
    };
    await append("n2", 30);
    const described = await request(url("n2"), "GET", "/v1/logs/0", { timeoutMs: 4000 });
    if (described.kind !== "ok") throw new Error(`describe log 0: ${described.code}`);
    const segments = (described.body as { log: { segments: Array<{ sequencer: string }> } }).log.segments;
    const sequencerId = segments.at(-1)!.sequencer.split(":")[0]!;
    const servers = await request(url("n2"), "GET", "/v1/metadata-servers", { timeoutMs: 4000 });
    if (servers.kind !== "ok") throw new Error(`metadata servers: ${servers.code}`);
    const victim = (servers.body as { servers: Array<{ node: string; name: string }> }).servers.find((s) => s.node === sequencerId)!.name;
    const other = ["n1", "n2", "n3"].find((n) => n !== victim)!;

    await cluster.kill(victim);
    await append(other, 60);
    const acknowledged = last;
    await cluster.restart(victim);

    const stale: string[] = [];
    const until = performance.now() + 2000;
    while (performance.now() < until) {
      const t = await request(url(victim), "GET", "/v1/logs/0/tail", { timeoutMs: 4000 });
      if (t.kind === "ok" && (t.body as { tailLsn: number }).tailLsn <= acknowledged) stale.push(`tailLsn ${(t.body as { tailLsn: number }).tailLsn}`);
      await Bun.sleep(20);
    }
    expect(stale, `LSN ${acknowledged} was acknowledged before ${victim} restarted`).toEqual([]);
  } finally {
    await cluster.stop();
  }
}, 90_000);
