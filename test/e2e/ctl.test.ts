// `cairn ctl` against a real node: human and --json output, and exit codes scripts can trust.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runCairn, startNode, type NodeProcess } from "../helpers/cairn-process.ts";

let node: NodeProcess;
beforeAll(async () => {
  node = await startNode({ name: "ctl-node", args: ["--set", "metadata-server.type=local"] });
});
afterAll(async () => {
  await node.stop();
});

describe("cairn ctl", () => {
  test("status of an unprovisioned node says so, says what to run, and exits 4 (also with --json)", async () => {
    const human = await runCairn(["ctl", "--address", node.addresses.admin, "status"]);
    expect(human.exitCode).toBe(4);
    expect(human.stdout).toContain("ctl-node");
    expect(human.stdout).toContain("running, ready");
    expect(human.stdout).toContain("NOT PROVISIONED");
    expect(human.stdout).toContain("provision");
    const json = await runCairn(["ctl", "--json", "--address", node.addresses.admin, "status"]);
    expect(json.exitCode).toBe(4);
    const body = JSON.parse(json.stdout) as { node: { name: string; pid: number }; readiness: { ready: boolean }; provisioned: boolean };
    expect(body.node.name).toBe("ctl-node");
    expect(body.node.pid).toBe(node.pid);
    expect(body.readiness.ready).toBe(true);
    expect(body.provisioned).toBe(false);
  });

  test("status of an unprovisioned node without the metadata-server role says to provision through one that has it", async () => {
    const seed = await startNode({ name: "ctl-seed" });
    const worker = await startNode({
      name: "ctl-worker",
      args: ["--roles", "log-server,worker,admin,ingress", "--set", `metadata-client.addresses=${seed.addresses.fabric}`],
      readyPath: "/health",
    });
    try {
      const r = await runCairn(["ctl", "--address", worker.addresses.admin, "status"]);
      expect(r.exitCode).toBe(4);
      expect(r.stdout).toContain("NOT PROVISIONED");
      expect(r.stdout).toContain("a node with the metadata-server role");
      expect(r.stderr).not.toContain("    at ");
    } finally {
      await Promise.all([worker.stop(), seed.stop()]);
    }
  });

  test("the address can come from CAIRN_ADDRESS, with or without a scheme", async () => {
    const bare = node.addresses.admin.replace("http://", "");
    const r = await runCairn(["ctl", "--json", "config", "get"], { env: { CAIRN_ADDRESS: bare } });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)["node-name"]).toBe("ctl-node");
  });

  test("an unreachable node exits 3 with the error code, in JSON too", async () => {
    const r = await runCairn(["ctl", "--json", "--address", "http://127.0.0.1:1", "status"]);
    expect(r.exitCode).toBe(3);
    expect(JSON.parse(r.stdout).error.code).toBe("CAIRN-CTL-0001");
    expect(r.stderr).toContain("hint:");
  });

  test("a node with admin.token refuses requests without it (401) but keeps /health open", async () => {
    const secured = await startNode({ name: "secured", args: ["--set", "admin.token=t0ken"], readyPath: "/health" });
    const base = secured.addresses.admin;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const denied = await fetch(`${base}/v1/node`);
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { code: string }).code).toBe("CAIRN-API-0006");
    expect((await fetch(`${base}/v1/node`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${base}/v1/node`, { headers: { authorization: "Bearer t0ken" } })).status).toBe(200);
    // A missing or wrong token has its own exit code (6), distinct from other refusals (5).
    expect((await runCairn(["ctl", "--address", base, "status"])).exitCode).toBe(6);
    // With the token it gets through (and learns the node is not provisioned: exit 4).
    expect((await runCairn(["ctl", "--address", base, "status"], { env: { CAIRN_TOKEN: "t0ken" } })).exitCode).toBe(4);
    expect((await runCairn(["ctl", "--address", base, "--token", "t0ken", "config", "get"])).exitCode).toBe(0);
    await secured.stop();
  });

  test("usage errors exit 2", async () => {
    expect((await runCairn(["ctl", "no-such-command"])).exitCode).toBe(2);
    expect((await runCairn(["ctl", "--address", node.addresses.admin, "metadata", "put", "k", "{not json"])).exitCode).toBe(2);
    expect((await runCairn(["ctl", "--address", node.addresses.admin, "provision", "--replication", "two"])).exitCode).toBe(2);
  });

  test("before provisioning, metadata commands exit 4 and say what to run; provision once; then read and write", async () => {
    const a = ["ctl", "--address", node.addresses.admin];
    const early = await runCairn([...a, "metadata", "list"]);
    expect(early.exitCode).toBe(4);
    expect(early.stderr).toContain("cairn ctl provision");

    const p = await runCairn([...a, "--json", "provision", "--num-partitions", "2"]);
    expect(p.exitCode).toBe(0);
    expect(JSON.parse(p.stdout).numPartitions).toBe(2);
    const status = await runCairn([...a, "status"]);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toContain("2 partitions, replication 1");
    const again = await runCairn([...a, "provision"]);
    expect(again.exitCode).toBe(5);
    expect(again.stderr).toContain("CAIRN-CLUSTER-0002");

    expect((await runCairn([...a, "metadata", "put", "app/x", '{"n":1}', "--create"])).exitCode).toBe(0);
    const conflict = await runCairn([...a, "--json", "metadata", "put", "app/x", '{"n":2}', "--version", "9"]);
    expect(conflict.exitCode).toBe(5);
    expect(JSON.parse(conflict.stdout).error).toMatchObject({ code: "CAIRN-METADATA-0002", currentVersion: 1 });
    const get = await runCairn([...a, "--json", "metadata", "get", "app/x"]);
    expect(JSON.parse(get.stdout)).toEqual({ key: "app/x", version: 1, value: { n: 1 } });
    const list = await runCairn([...a, "metadata", "list", "--prefix", "app/"]);
    expect(list.stdout).toBe("app/x\tv1\n");
    expect((await runCairn([...a, "metadata", "delete", "app/x", "--version", "1"])).exitCode).toBe(0);
    expect((await runCairn([...a, "metadata", "get", "app/x"])).exitCode).toBe(5);
  });
});
