// A cairn cluster that grows under the re-replication benchmark: `cairn server` processes started
// one by one (node 1 provisioned alone with replication 1, later nodes joining through the running
// ones), each tracked by PID in its own CPU group ("cairn-n1", ...), stopped by PID.
// Nodes run without the worker and ingress roles: the benchmark measures the log layer, and a
// partition processor would only stop at the first raw (non-envelope) record anyway.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchNode } from "../metadata/cluster.ts";
import { httpFail } from "../metadata/cluster.ts";
import type { ProcessRegistry } from "../metadata/procs.ts";
import { nodeId, retryUntil } from "./cairn.ts";

const MAIN_TS = join(import.meta.dir, "../../src/main.ts");
const ROLES = "metadata-server,log-server,admin";
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

interface Published {
  pid: number;
  admin: string;
  fabric: string;
}

export interface GrowingNode extends BenchNode {
  /** The node's id (`N1`), learned once it is registered. */
  id: string;
  fabric: string;
  dataDir: string;
}

export class GrowingCluster {
  readonly nodes: GrowingNode[] = [];

  constructor(
    private readonly registry: ProcessRegistry,
    private readonly baseDir: string,
  ) {}

  /** Node 1, provisioned alone: every log starts on it with replication 1. */
  static async startFirst(registry: ProcessRegistry, baseDir: string, numPartitions: number): Promise<GrowingCluster> {
    const c = new GrowingCluster(registry, baseDir);
    const first = await c.spawn("n1", []);
    const res = await fetch(`${first.url}/v1/cluster/provision`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ numPartitions, replication: 1 }),
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) await httpFail(res, "provision");
    await res.arrayBuffer();
    first.id = await registeredId(first);
    return c;
  }

  /** Another node, seeded with every running node's fabric address; resolves once it is registered. */
  async join(name: string): Promise<GrowingNode> {
    const seeds = this.nodes.filter((n) => this.registry.isAlive(n.pid)).map((n) => n.fabric).join(",");
    const n = await this.spawn(name, ["--set", `metadata-client.addresses=${seeds}`]);
    n.id = await registeredId(n);
    return n;
  }

  /** Until every node reports itself a metadata member (joiners go auto-join → member). */
  async waitMembers(timeoutMs: number): Promise<void> {
    await retryUntil(`${this.nodes.length} metadata members`, timeoutMs, async () => {
      for (const n of this.nodes) {
        const res = await fetch(`${n.url}/v1/metadata-server/status`, { signal: AbortSignal.timeout(2000) });
        if (!res.ok) await httpFail(res, "metadata-server status");
        const s = (await res.json()) as { state: string };
        if (s.state !== "member") throw new Error(`${n.name} is ${s.state}`);
      }
    });
  }

  byId(id: string): GrowingNode {
    const n = this.nodes.find((m) => m.id === id);
    if (n === undefined) throw new Error(`no node ${id} (have ${this.nodes.map((m) => m.id).join(",")})`);
    return n;
  }

  /** kill -9 of one node (tracked by PID). */
  async killHard(n: GrowingNode): Promise<void> {
    this.registry.killHard(n.pid);
    await this.registry.waitGone(n.pid, STOP_GRACE_MS);
  }

  /** SIGTERM to every node by PID, SIGKILL after a grace period. */
  async stop(): Promise<void> {
    for (const n of this.nodes) {
      try {
        if (this.registry.isAlive(n.pid)) process.kill(n.pid, "SIGTERM");
      } catch {
        // Gone meanwhile.
      }
    }
    await Promise.all(this.nodes.map((n) => this.registry.waitGone(n.pid, STOP_GRACE_MS)));
    for (const n of this.nodes) {
      if (this.registry.isAlive(n.pid)) this.registry.killHard(n.pid);
      await this.registry.waitGone(n.pid, 5000);
      this.registry.untrack(n.pid);
    }
  }

  private async spawn(name: string, extraArgs: string[]): Promise<GrowingNode> {
    const dataDir = join(this.baseDir, name);
    mkdirSync(dataDir, { recursive: true });
    const logPath = join(this.baseDir, `${name}.log`);
    const log = openSync(logPath, "w");
    const args = [
      process.execPath, MAIN_TS, "server",
      "--node-name", name,
      "--base-dir", dataDir,
      "--cluster-name", "bench",
      "--roles", ROLES,
      "--admin-address", "127.0.0.1:0",
      "--fabric-address", "127.0.0.1:0",
      "--set", "log.format=json",
      ...extraArgs,
    ];
    // CAIRN_EXIT_WITH_PARENT: if this benchmark dies, the node stops by itself.
    const proc = Bun.spawn(args, { stdout: log, stderr: log, stdin: "ignore", env: { ...process.env, CAIRN_EXIT_WITH_PARENT: "1" } });
    closeSync(log);
    this.registry.track(proc.pid, `cairn-${name}`, `cairn ${name}`, proc);
    const deadline = performance.now() + START_TIMEOUT_MS;
    const addressesPath = join(dataDir, "addresses.json");
    let published: Published | undefined;
    while (published === undefined) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`cairn ${name} exited (${proc.exitCode ?? proc.signalCode}); see ${logPath}:\n${tail(logPath)}`);
      if (performance.now() > deadline) throw new Error(`cairn ${name} did not publish its addresses within ${START_TIMEOUT_MS} ms; see ${logPath}`);
      try {
        if (existsSync(addressesPath)) {
          const a = JSON.parse(readFileSync(addressesPath, "utf8")) as Published;
          if (a.pid === proc.pid) published = a;
        }
      } catch {
        // Being written.
      }
      if (published === undefined) await Bun.sleep(50);
    }
    const node: GrowingNode = { name, pid: proc.pid, url: published.admin, fabric: published.fabric, dataDir, id: "" };
    this.nodes.push(node);
    return node;
  }
}

/** The node's id once it has registered (`N<id>`). */
async function registeredId(n: BenchNode): Promise<string> {
  return await retryUntil(`${n.name} registered`, START_TIMEOUT_MS, async () => {
    const id = await nodeId(n.url);
    if (!/^N[0-9]+$/.test(String(id))) throw new Error(`id ${String(id)}`);
    return id;
  });
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}
