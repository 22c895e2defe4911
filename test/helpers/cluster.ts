// A cluster of real `cairn server` processes on 127.0.0.1 for tests: node 1 is started and
// provisioned, the others join through it. Every process is stopped by PID (see cairn-process.ts).
import { join } from "node:path";
import { startNode, tempDir, type NodeProcess } from "./cairn-process.ts";

export interface TestCluster {
  dir: string;
  nodes: NodeProcess[];
  /** Start (or restart) a node by name with the cluster's seed address and any extra args. */
  start(name: string, extraArgs?: string[], dataDir?: string): Promise<NodeProcess>;
  stop(): Promise<void>;
}

export interface ServerEntry {
  node: string;
  name: string;
  state: string;
  status: { state: string; raft: { role: string; leader: string | null; term: number; appliedIndex: number } | null } | null;
}

export async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export async function servers(admin: string): Promise<ServerEntry[]> {
  const r = await json<{ servers: ServerEntry[] }>(`${admin}/v1/metadata-servers`);
  if (r.status !== 200) throw new Error(`metadata-servers answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.servers;
}

/** Poll until `check` returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    await Bun.sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
}

export const FAST_RAFT = ["--set", "metadata-server.tick-interval-ms=50"];

export async function startCluster(size: number, options: { replication?: number; extraArgs?: string[]; numPartitions?: number } = {}): Promise<TestCluster> {
  const dir = tempDir("cairn-cluster-");
  const nodes: NodeProcess[] = [];
  const extra = [...FAST_RAFT, ...(options.extraArgs ?? [])];
  const first = await startNode({ name: "n1", dataDir: join(dir, "n1"), args: extra });
  nodes.push(first);
  const p = await json(`${first.addresses.admin}/v1/cluster/provision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ numPartitions: options.numPartitions ?? 4, replication: options.replication ?? 1 }),
  });
  if (p.status !== 200) throw new Error(`provisioning failed: ${p.status} ${JSON.stringify(p.body)}`);
  // Seeds: every running node (a restarted node has a new port, so a fixed list would go stale).
  const seeds = () =>
    nodes
      .filter((n) => n.proc.exitCode === null && n.proc.signalCode === null)
      .map((n) => n.addresses.fabric)
      .join(",");
  const cluster: TestCluster = {
    dir,
    nodes,
    start: async (name, extraArgs = [], dataDir = join(dir, name)) => {
      const n = await startNode({ name, dataDir, args: [...extra, "--set", `metadata-client.addresses=${seeds()}`, ...extraArgs] });
      const i = nodes.findIndex((x) => x.dataDir === dataDir);
      if (i >= 0) nodes[i] = n;
      else nodes.push(n);
      return n;
    },
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  for (let i = 2; i <= size; i++) await cluster.start(`n${i}`);
  await eventually(`${size} metadata members`, async () => {
    const s = await servers(first.addresses.admin);
    return s.filter((x) => x.state === "member" && x.status?.state === "member").length === size ? s : undefined;
  });
  return cluster;
}

export async function leaderOf(cluster: TestCluster): Promise<NodeProcess> {
  return eventually("a metadata leader", async () => {
    for (const n of cluster.nodes) {
      if (n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
      const r = await json<{ raft: { role: string } | null }>(`${n.addresses.admin}/v1/metadata-server/status`).catch(() => undefined);
      if (r?.body?.raft?.role === "leader") return n;
    }
    return undefined;
  });
}
