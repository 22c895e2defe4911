// `cairn dev`: a local cluster of real processes, all ready, addresses printed, all stopped on SIGTERM.
import { describe, expect, test } from "bun:test";
import { cairnCommand, cleanEnv, runCairn, stopProcess, tempDir, track } from "../helpers/cairn-process.ts";

interface DevOutput {
  cluster: string;
  nodes: Array<{ name: string; pid: number; admin: string; fabric: string }>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Start `cairn dev` on random ports; resolves with the JSON line it prints once the cluster is up. */
async function startDev(nodes: number | "single", stderr: "pipe" | "ignore") {
  const dir = tempDir();
  const proc = Bun.spawn(
    [...cairnCommand(), "dev", ...(nodes === "single" ? ["--single-node"] : ["--nodes", String(nodes)]), "--base-dir", dir, "--admin-port", "0", "--fabric-port", "0", "--ingress-port", "0", "--json"],
    { cwd: dir, env: cleanEnv(), stdout: "pipe", stderr, stdin: "ignore" },
  );
  track(proc);
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return { proc, out: JSON.parse(text) as DevOutput };
}

describe("cairn dev", () => {
  test("starts three nodes, each ready, and stops them all on SIGTERM", async () => {
    const { proc, out } = await startDev(3, "pipe");
    expect(out.nodes.map((n) => n.name)).toEqual(["node-1", "node-2", "node-3"]);
    const pids = new Set(out.nodes.map((n) => n.pid));
    expect(pids.size).toBe(3);
    for (const n of out.nodes) {
      const info = (await (await fetch(`${n.admin}/v1/node`)).json()) as { name: string; pid: number; cluster: { name: string } };
      expect(info.name).toBe(n.name);
      expect(info.pid).toBe(n.pid);
      expect(info.cluster.name).toBe("dev");
    }
    expect(await stopProcess(proc, "SIGTERM")).toBe(0);
    for (const n of out.nodes) expect(alive(n.pid)).toBe(false);
    const logs = await new Response(proc.stderr).text();
    // Not a terminal: the nodes' JSON lines, unchanged (each names its node).
    const lines = logs.split("\n").filter((l) => l !== "");
    const nodes = new Set(lines.map((l) => (JSON.parse(l) as { node: string }).node));
    for (const name of ["node-1", "node-2", "node-3"]) expect(nodes).toContain(name);
    // Every node stopped gracefully. The metadata leader's controllers used to wait on writes to the
    // quorum that was stopping with it, until the shutdown timeout cut the stop short (10 s).
    expect(logs).not.toContain("graceful shutdown took too long");
  });

  test("--single-node is one node at replication 1, warned of in its log and its status; with --nodes it is a usage error", async () => {
    const { proc, out } = await startDev("single", "pipe");
    expect(out.nodes.map((n) => n.name)).toEqual(["node-1"]);
    const admin = out.nodes[0]!.admin;
    expect(((await (await fetch(`${admin}/v1/cluster`)).json()) as { replication: number }).replication).toBe(1);
    const status = (await (await fetch(`${admin}/v1/cluster/status?tails=false`)).json()) as { warnings: Array<{ code: string }> };
    expect(status.warnings.map((w) => w.code)).toContain("CAIRN-CLUSTER-0008");
    expect(await stopProcess(proc, "SIGTERM")).toBe(0);
    expect(await new Response(proc.stderr).text()).toContain("single-replica setup");
    const both = await runCairn(["dev", "--single-node", "--nodes", "3"]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain("--single-node");
  });

  test("the nodes stop by themselves when the supervisor is killed with SIGKILL", async () => {
    const { proc, out } = await startDev(2, "ignore");
    proc.kill("SIGKILL");
    await proc.exited;
    const deadline = Date.now() + 30_000;
    while (out.nodes.some((n) => alive(n.pid)) && Date.now() < deadline) await Bun.sleep(100);
    const orphans = out.nodes.filter((n) => alive(n.pid));
    for (const n of orphans) process.kill(n.pid, "SIGKILL");
    expect(orphans.map((n) => n.name)).toEqual([]);
  });
});
