// `cairn server` as a real process: start-up, identity, graceful shutdown, refusal to share a data
// directory, configuration errors that stop start-up with a named key and code.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { join } from "node:path";
import { parse } from "smol-toml";
import { runCairn, startNode, tempDir } from "../helpers/cairn-process.ts";

/** GET over an HTTP/2 cleartext connection opened with prior knowledge; closed afterwards. */
async function h2Get(base: string, path: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(base);
  try {
    return await new Promise((resolve, reject) => {
      session.once("error", reject);
      const stream = session.request({ ":method": "GET", ":path": path });
      let status = 0;
      let body = "";
      stream.setEncoding("utf8");
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk: string) => (body += chunk));
      stream.on("end", () => resolve({ status, body }));
      stream.on("error", reject);
    });
  } finally {
    session.close();
  }
}

describe("cairn server", () => {
  test("starts on port 0, publishes its addresses, serves the admin API and stops cleanly on SIGTERM", async () => {
    const node = await startNode({ name: "e2e-1" });
    const info = (await (await fetch(`${node.addresses.admin}/v1/node`)).json()) as Record<string, unknown>;
    expect(info.name).toBe("e2e-1");
    expect(info.pid).toBe(node.pid);
    expect(info.generation).toBe(1);
    expect((await fetch(`${node.addresses.admin}/health`)).status).toBe(200);
    // The same port speaks HTTP/2 cleartext to a client that starts with it (prior knowledge).
    expect(await h2Get(node.addresses.admin, "/v1/node")).toMatchObject({ status: 200, body: expect.stringContaining('"name":"e2e-1"') });
    expect(await node.stop("SIGTERM")).toBe(0);
    expect(node.log()).toContain("node lifecycle stopping -> stopped");
  });

  test("the metadata storage is checked again in a worker thread on its timer; status reports the last check, not a new one", async () => {
    const node = await startNode({ name: "integrity", args: ["--set", "auto-provision=true", "--set", "metadata-server.integrity-check-interval-ms=1000"] });
    type Status = { storage: { integrityOk: boolean; integrityDetail: string; integrityCheckedAtMs: number } };
    const status = async () => ((await (await fetch(`${node.addresses.admin}/v1/metadata-server/status`)).json()) as Status).storage;
    const first = await status();
    expect(first).toMatchObject({ integrityOk: true, integrityDetail: "ok" });
    // Two calls in a row run no check of their own: they report the same check, or (when the
    // 1-second timer fired in between) one about a timer period later, never one per request.
    const gapMs = (await status()).integrityCheckedAtMs - first.integrityCheckedAtMs;
    expect(gapMs === 0 || gapMs >= 900).toBe(true);
    // ...and the timer's check (in a Worker: in the compiled binary too) moves it forward.
    let later = first;
    for (let i = 0; i < 100 && later.integrityCheckedAtMs === first.integrityCheckedAtMs; i++) {
      await Bun.sleep(100);
      later = await status();
    }
    expect(later.integrityCheckedAtMs).toBeGreaterThan(first.integrityCheckedAtMs);
    expect(later).toMatchObject({ integrityOk: true, integrityDetail: "ok" });
    expect(await node.stop("SIGTERM")).toBe(0);
  });

  test("a restart is a new generation of the same node", async () => {
    const first = await startNode({ name: "gen" });
    await first.stop();
    const second = await startNode({ name: "gen", dataDir: first.dataDir });
    const info = (await (await fetch(`${second.addresses.admin}/v1/node`)).json()) as { generation: number };
    expect(info.generation).toBe(2);
    await second.stop();
  });

  test("auto-provision = true provisions a single node at start, once", async () => {
    const node = await startNode({ name: "auto", args: ["--set", "auto-provision=true"] });
    const c = await fetch(`${node.addresses.admin}/v1/cluster`);
    expect(c.status).toBe(200);
    const first = ((await c.json()) as { fingerprint: string }).fingerprint;
    // A single node with replication 1 gets local loglets (nothing to replicate to).
    const deadline = Date.now() + 30_000;
    let kinds: string[] = [];
    while (Date.now() < deadline) {
      const logs = (await (await fetch(`${node.addresses.admin}/v1/logs`)).json()) as { logs: Array<{ segments: Array<{ kind: string }> }> };
      kinds = logs.logs.flatMap((l) => l.segments.map((x) => x.kind));
      if (kinds.length === logs.logs.length && kinds.length > 0) break;
      await Bun.sleep(100);
    }
    expect(new Set(kinds)).toEqual(new Set(["local"]));
    await node.stop();
    const again = await startNode({ name: "auto", dataDir: node.dataDir, args: ["--set", "auto-provision=true"] });
    const c2 = (await (await fetch(`${again.addresses.admin}/v1/cluster`)).json()) as { fingerprint: string };
    expect(c2.fingerprint).toBe(first);
    await again.stop();
  });

  test("a second process on the same data directory is refused with a clear error", async () => {
    const node = await startNode({ name: "locked" });
    const r = await runCairn(["server", "--node-name", "locked", "--base-dir", node.dataDir, "--admin-address", "127.0.0.1:0", "--fabric-address", "127.0.0.1:0"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("CAIRN-NODE-0001");
    expect(r.stderr).toContain(`pid ${node.pid}`);
    // The first node is unharmed.
    expect((await fetch(`${node.addresses.admin}/ready`)).status).toBe(200);
    await node.stop();
  });

  test("a data directory of another cluster is refused", async () => {
    const node = await startNode({ name: "c1", args: ["--cluster-name", "alpha"] });
    await node.stop();
    const r = await runCairn(["server", "--cluster-name", "beta", "--base-dir", node.dataDir, "--admin-address", "127.0.0.1:0", "--fabric-address", "127.0.0.1:0"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("CAIRN-NODE-0003");
    expect(r.stderr).toContain("'alpha'");
  });

  test("a bad configuration stops start-up naming the key, the value and the code", async () => {
    const dir = tempDir();
    const file = join(dir, "cairn.toml");
    writeFileSync(file, "[net]\nrequest-timeout-ms = -5\n");
    const r = await runCairn(["server", "--config", file]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("CAIRN-CONFIG-0001");
    expect(r.stderr).toContain("net.request-timeout-ms");
    expect(r.stderr).toContain("-5");

    const env = await runCairn(["server"], { env: { CAIRN_ADMIN__BIND_ADRESS: "127.0.0.1:1" } });
    expect(env.exitCode).toBe(2);
    expect(env.stderr).toContain("CAIRN-CONFIG-0005");
    expect(env.stderr).toContain("CAIRN_ADMIN__BIND_ADRESS");

    const flag = await runCairn(["server", "--set", "admin.colour=blue"]);
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toContain("CAIRN-CONFIG-0002");
  });

  test("--dump-config prints the effective configuration as TOML, sources merged", async () => {
    const dir = tempDir();
    const file = join(dir, "cairn.toml");
    writeFileSync(file, 'cluster-name = "from-file"\n[log]\nlevel = "warn"\n');
    const r = await runCairn(["server", "--config", file, "--node-name", "dumped", "--dump-config"], {
      env: { CAIRN_LOG__LEVEL: "debug" },
      cwd: dir,
    });
    expect(r.exitCode).toBe(0);
    const cfg = parse(r.stdout) as Record<string, Record<string, unknown>>;
    expect(cfg["cluster-name"] as unknown).toBe("from-file");
    expect(cfg["node-name"] as unknown).toBe("dumped");
    expect(cfg.log!.level).toBe("debug");
    expect(cfg.admin!["bind-address"]).toBe("127.0.0.1:9070");
    expect(readFileSync(file, "utf8")).toContain("from-file");
  });
});

describe("cairn commands", () => {
  test("version, openapi and --help", async () => {
    const v = await runCairn(["version", "--json"]);
    expect(v.exitCode).toBe(0);
    expect(JSON.parse(v.stdout).version).toMatch(/^\d+\.\d+\.\d+/);
    const o = await runCairn(["openapi"]);
    expect(o.exitCode).toBe(0);
    expect(JSON.parse(o.stdout).openapi).toStartWith("3.");
    for (const args of [["--help"], ["server", "--help"], ["dev", "--help"], ["ctl", "--help"], ["ctl", "status", "--help"]]) {
      const h = await runCairn(args);
      expect(h.exitCode, args.join(" ")).toBe(0);
      expect(h.stdout, args.join(" ")).toContain("Usage:");
    }
  });

  test("an unknown command or flag is a usage error", async () => {
    expect((await runCairn(["frobnicate"])).exitCode).toBe(2);
    expect((await runCairn(["server", "--no-such-flag"])).exitCode).toBe(2);
  });
});

describe("cluster secret", () => {
  test("nodes with different net.cluster-secret values cannot talk; the same secret works", async () => {
    const { FabricClient } = await import("../../src/net/index.ts");
    const { createRegistry } = await import("../../src/observability/metrics.ts");
    const { StatusRpc } = await import("../../src/metadata/rpc.ts");
    const node = await startNode({ name: "sec", args: ["--set", "net.cluster-secret=right"] });
    const call = async (secret: string | undefined) => {
      const client = new FabricClient({
        identity: () => ({ clusterName: "localcluster", fingerprint: null, nodeId: null, generation: 1, ...(secret ? { secret } : {}) }),
        registry: createRegistry({ defaultMetrics: false }),
      });
      try {
        return await client.call(node.addresses.fabric, StatusRpc, {}).then(
          () => "ok",
          (e: { code?: string }) => e.code ?? "error",
        );
      } finally {
        await client.close();
      }
    };
    expect(await call("right")).toBe("ok");
    expect(await call("wrong")).toBe("CAIRN-NET-0014");
    expect(await call(undefined)).toBe("CAIRN-NET-0014");
    await node.stop();
  });
});
