// The `refuse` nemesis exercises the log controller's refused-means-dead rule on a live process: a
// node's fabric port (the proxy listener its peers dial) refuses every connection while its process
// keeps running. The metadata leader's log controller must declare it dead by refusals (its log line
// naming the node) — the nemesis checks that on heal and counts it — and once the port accepts again
// the node is live and serves writes, with the same PID.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChaosCluster } from "./cluster.ts";
import { request, keyPath } from "./client.ts";
import { Nemesis, refusedDeadVerdict } from "./nemesis.ts";
import { stopAll } from "./node-process.ts";
import { Rng } from "./rng.ts";
import { eventually } from "../helpers/cluster.ts";

let cluster: ChaosCluster;

beforeAll(async () => {
  cluster = await ChaosCluster.start({ size: 3, dir: mkdtempSync(join(tmpdir(), "cairn-refuse-")), rng: new Rng(5) });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  await stopAll();
}, 60_000);

describe("the refuse nemesis", () => {
  test("a live node whose fabric port refuses connections is declared dead by the log controller; the nemesis sees and counts it", async () => {
    const lines: string[] = [];
    const nemesis = new Nemesis(cluster, new Rng(11), () => performance.now(), (l) => lines.push(l));
    const marks = cluster.logMarks();
    const fault = await nemesis.start("refuse");
    expect(fault.targets).toHaveLength(1);
    const target = fault.targets[0]!;
    const leader = await cluster.leader();
    expect(target).not.toBe(leader?.name);
    const pid = cluster.pids()[target];
    const id = await cluster.nodeId(target);
    expect(id).toMatch(/^N\d+$/);
    // Nothing listens on its advertised address, yet the process answers its own admin API.
    const [host, port] = cluster.node(target).advertised.split(":");
    const dial = await Bun.connect({ hostname: host!, port: Number(port), socket: { data() {} } }).then(
      (s) => (s.end(), "connected"),
      (e: { code?: string }) => e.code ?? "error",
    );
    expect(dial).toBe("ECONNREFUSED");
    expect((await request(cluster.adminUrl(cluster.node(target)), "GET", "/health", { timeoutMs: 2000 })).kind).toBe("ok");
    await eventually("the log controller's refused-means-dead verdict", async () =>
      cluster.logsSince(marks).some((l) => refusedDeadVerdict(l.text, id!)) ? true : undefined, 30_000);

    const healed = await fault.heal();
    expect(String(healed)).toContain("took effect");
    expect(nemesis.refuseEffects).toEqual({ scheduled: 1, tookEffect: 1 });
    expect(cluster.pids()[target]).toBe(pid); // never restarted
    await eventually("the node to serve a write again", async () => {
      const r = await request(cluster.adminUrl(cluster.node(target)), "PUT", keyPath("refuse/after"), { body: 1, timeoutMs: 3000 });
      return r.kind === "ok" ? true : undefined;
    }, 30_000);
  }, 120_000);

  test("the verdict is looked for on the node named, not any node", () => {
    const line = JSON.stringify({ level: 30, node: "N2", msg: "log-server node refuses connections (its process is gone): the log controller acts now" });
    expect(refusedDeadVerdict(`x\n${line}\n`, "N2")).toBe(true);
    expect(refusedDeadVerdict(`x\n${line}\n`, "N3")).toBe(false);
    expect(refusedDeadVerdict("nothing here", "N2")).toBe(false);
  });
});
