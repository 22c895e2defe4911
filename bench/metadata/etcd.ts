// A 3-member etcd cluster on 127.0.0.1 for comparison, driven through etcd's JSON gateway
// (`/v3/kv/put`, `/v3/kv/range`, base64 keys and values) on each member's client URL. fsync stays
// on (no --unsafe-no-fsync), as for cairn. Members are killed with SIGKILL and restarted with the
// same flags and data dir.
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { BenchNode, Cluster, ReadMode, Roles } from "./cluster.ts";
import { httpFail } from "./cluster.ts";
import { b64Key, etcdKv } from "./kv-http.ts";
import type { ProcessRegistry } from "./procs.ts";

interface EtcdStatus {
  header: { member_id: string };
  leader?: string;
  raftIndex?: string;
  raftAppliedIndex?: string;
}

interface EtcdNode extends BenchNode {
  args: string[];
  logPath: string;
  restarts: number;
}

/** A port free right now on 127.0.0.1 (the OS picks it; the small race is acceptable here). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function etcdVersion(): string | undefined {
  const etcd = Bun.which("etcd");
  if (etcd === null) return undefined;
  const r = Bun.spawnSync([etcd, "--version"], { stdout: "pipe", stderr: "pipe" });
  return /etcd Version: (\S+)/.exec(r.stdout.toString())?.[1];
}

export class EtcdCluster implements Cluster {
  readonly system = "etcd" as const;

  private constructor(
    readonly nodes: EtcdNode[],
    private readonly registry: ProcessRegistry,
  ) {}

  static async start(registry: ProcessRegistry, baseDir: string, timeoutMs: number): Promise<EtcdCluster> {
    const etcd = Bun.which("etcd");
    if (etcd === null) throw new Error("etcd is not installed (bench/setup-etcd.sh installs it)");
    const members = [];
    for (let i = 1; i <= 3; i++) members.push({ name: `etcd-${i}`, client: await freePort(), peer: await freePort() });
    const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
    const token = `cairn-bench-${process.pid}-${Date.now()}`;
    const nodes: EtcdNode[] = [];
    for (const m of members) {
      const dataDir = join(baseDir, m.name);
      mkdirSync(dataDir, { recursive: true });
      const args = [
        etcd,
        "--name", m.name,
        "--data-dir", dataDir,
        "--listen-client-urls", `http://127.0.0.1:${m.client}`,
        "--advertise-client-urls", `http://127.0.0.1:${m.client}`,
        "--listen-peer-urls", `http://127.0.0.1:${m.peer}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peer}`,
        "--initial-cluster", initialCluster,
        "--initial-cluster-token", token,
        "--initial-cluster-state", "new",
        "--logger", "zap",
        "--log-level", "warn",
      ];
      const node: EtcdNode = { name: m.name, pid: 0, url: `http://127.0.0.1:${m.client}`, args, logPath: join(baseDir, `${m.name}.log`), restarts: 0 };
      nodes.push(node);
    }
    const cluster = new EtcdCluster(nodes, registry);
    for (const n of nodes) cluster.spawn(n);
    await cluster.waitHealthy(timeoutMs);
    return cluster;
  }

  private spawn(n: EtcdNode): void {
    const log = openSync(n.logPath, "a");
    const proc = Bun.spawn(n.args, { stdout: log, stderr: log, stdin: "ignore" });
    closeSync(log);
    this.registry.track(proc.pid, "etcd", `${n.name}${n.restarts > 0 ? ` (restart ${n.restarts})` : ""}`, proc);
    n.pid = proc.pid;
  }

  private async status(node: BenchNode, signal?: AbortSignal): Promise<EtcdStatus | undefined> {
    try {
      const res = await fetch(`${node.url}/v3/maintenance/status`, { method: "POST", body: "{}", signal: signal ?? AbortSignal.timeout(1000) });
      if (!res.ok) {
        await res.arrayBuffer();
        return undefined;
      }
      const s = (await res.json()) as EtcdStatus;
      node.id = s.header.member_id;
      return s;
    } catch {
      return undefined;
    }
  }

  async roles(signal?: AbortSignal): Promise<Roles> {
    const statuses = await Promise.all(this.nodes.map((n) => this.status(n, signal)));
    const leaderIdx = statuses.findIndex((s) => s !== undefined && s.leader === s.header.member_id);
    const leader = this.nodes[leaderIdx];
    const leaderId = statuses[leaderIdx]?.leader;
    if (leader === undefined || leaderId === undefined) throw new Error("etcd: no member reports itself leader");
    const disagree = statuses.filter((s) => s !== undefined && s.leader !== leaderId);
    if (disagree.length > 0) throw new Error(`etcd: members disagree on the leader`);
    return { leader, leaderId, followers: this.nodes.filter((n) => n !== leader) };
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last = "";
    while (performance.now() < deadline) {
      const statuses = await Promise.all(this.nodes.map((n) => this.status(n)));
      last = statuses.map((s) => (s ? `${s.header.member_id}:leader=${s.leader}/applied=${s.raftAppliedIndex}` : "no answer")).join(", ");
      const leaders = new Set(statuses.map((s) => s?.leader ?? "0"));
      if (statuses.every((s) => s !== undefined) && leaders.size === 1 && !leaders.has("0")) {
        const index = Math.max(...statuses.map((s) => Number(s!.raftIndex ?? 0)));
        const applied = Math.min(...statuses.map((s) => Number(s!.raftAppliedIndex ?? s!.raftIndex ?? 0)));
        if (index - applied <= 2) return;
      }
      await Bun.sleep(100);
    }
    throw new Error(`etcd: cluster not healthy within ${timeoutMs} ms (last seen: ${last})`);
  }

  async leaderSeenBy(node: BenchNode, signal: AbortSignal): Promise<string | null> {
    const l = (await this.status(node, signal))?.leader;
    return l === undefined || l === "0" ? null : l;
  }

  put(node: BenchNode, key: string, value: string, signal: AbortSignal): Promise<void> {
    return etcdKv.put(node.url, key, value, signal);
  }

  get(node: BenchNode, key: string, mode: ReadMode, signal: AbortSignal): Promise<void> {
    return etcdKv.get(node.url, key, mode, signal);
  }

  async read(node: BenchNode, key: string, signal: AbortSignal): Promise<string | undefined> {
    const res = await fetch(`${node.url}/v3/kv/range`, { method: "POST", body: `{"key":"${b64Key(key)}"}`, signal });
    if (!res.ok) await httpFail(res, "range");
    const body = (await res.json()) as { kvs?: Array<{ value?: string }> };
    const v = body.kvs?.[0]?.value;
    return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
  }

  killHard(node: BenchNode): void {
    this.registry.killHard(node.pid);
  }

  async restart(node: BenchNode): Promise<void> {
    const n = node as EtcdNode;
    if (!(await this.registry.waitGone(n.pid, 5000))) throw new Error(`${n.name} (pid ${n.pid}) still alive; cannot restart`);
    this.registry.untrack(n.pid);
    n.restarts++;
    this.spawn(n);
  }

  waitRejoined(_node: BenchNode, timeoutMs: number): Promise<void> {
    return this.waitHealthy(timeoutMs);
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) {
      if (!this.registry.isAlive(n.pid)) continue;
      try {
        process.kill(n.pid, "SIGTERM");
      } catch {
        // Gone.
      }
    }
    await Promise.all(this.nodes.map((n) => this.registry.waitGone(n.pid, 10_000)));
  }

  logTail(node: BenchNode): string {
    try {
      return readFileSync((node as EtcdNode).logPath, "utf8").split("\n").slice(-10).join("\n");
    } catch {
      return "";
    }
  }
}
