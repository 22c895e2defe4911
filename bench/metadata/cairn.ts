// A 3-node cairn cluster for the metadata benchmark: started with `cairn dev --json` (from source),
// driven through each node's admin API (HTTP/1.1), its members killed with SIGKILL and restarted
// with the same node name, data dir and addresses, as an operator would.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchNode, Cluster, ReadMode, Roles } from "./cluster.ts";
import { httpFail } from "./cluster.ts";
import { cairnKv } from "./kv-http.ts";
import type { ProcessRegistry } from "./procs.ts";

const MAIN_TS = join(import.meta.dir, "../../src/main.ts");
const CLUSTER_NAME = "dev";

export interface DevJson {
  cluster: string;
  nodes: Array<{ name: string; dataDir: string; pid: number; admin: string; fabric: string }>;
}

/**
 * Starts `cairn dev <devArgs> --json` from source with its output in files under `baseDir`, tracks
 * it in `registry`, and waits for the JSON line that describes the cluster (printed once it is up).
 */
export async function startDev(registry: ProcessRegistry, baseDir: string, timeoutMs: number, devArgs: string[], label: string): Promise<{ devPid: number; dev: DevJson }> {
  mkdirSync(baseDir, { recursive: true });
  const outPath = join(baseDir, "dev.out");
  const errPath = join(baseDir, "dev.err");
  const out = openSync(outPath, "w");
  const err = openSync(errPath, "w");
  const proc = Bun.spawn(
    [process.execPath, MAIN_TS, "dev", ...devArgs, "--base-dir", join(baseDir, "nodes"), "--admin-port", "0", "--fabric-port", "0", "--ingress-port", "0", "--json"],
    // The environment explicitly: Bun.spawn without `env` passes the environment this process
    // started with, not variables set since (withEnv in bench/log/cairn.ts relies on them).
    { stdout: out, stderr: err, stdin: "ignore", env: { ...process.env } },
  );
  closeSync(out);
  closeSync(err);
  registry.track(proc.pid, "cairn", label, proc);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${label} exited (${proc.exitCode ?? proc.signalCode}) before the cluster was up; see ${errPath}:\n${tail(errPath)}`);
    }
    if (performance.now() > deadline) throw new Error(`${label} did not print the cluster within ${timeoutMs} ms; see ${errPath}`);
    const line = readFileSync(outPath, "utf8").split("\n").find((l) => l.startsWith("{"));
    if (line !== undefined) {
      const dev = JSON.parse(line) as DevJson;
      for (const n of dev.nodes) registry.track(n.pid, "cairn", `cairn ${n.name}`);
      return { devPid: proc.pid, dev };
    }
    await Bun.sleep(100);
  }
}

interface CairnStatus {
  node: string;
  state: string;
  raft: {
    role: string;
    term: number;
    leader: string | null;
    commitIndex: number;
    appliedIndex: number;
    firstIndex?: number;
    lastIndex?: number;
    snapshotIndex?: number;
  } | null;
}

interface CairnNode extends BenchNode {
  dataDir: string;
  fabric: string;
  /** Extra arguments the node was first started with (seeds). */
  extraArgs: string[];
  restarts: number;
}

function hostPort(url: string): string {
  return url.replace(/^[a-z0-9]+:\/\//, "");
}

export class CairnCluster implements Cluster {
  readonly system = "cairn" as const;

  private constructor(
    readonly nodes: CairnNode[],
    private readonly devPid: number,
    private readonly registry: ProcessRegistry,
    private readonly baseDir: string,
  ) {}

  static async start(registry: ProcessRegistry, baseDir: string, timeoutMs: number): Promise<CairnCluster> {
    const { devPid, dev } = await startDev(registry, baseDir, timeoutMs, ["--nodes", "3"], "cairn dev");
    const seedFabric = dev.nodes[0]!.fabric;
    const nodes: CairnNode[] = dev.nodes.map((n, i) => ({
      name: n.name,
      pid: n.pid,
      url: n.admin,
      dataDir: n.dataDir,
      fabric: n.fabric,
      // What `cairn dev` passed: every node but the first is seeded with the first's fabric address.
      extraArgs: i === 0 ? [] : ["--set", `metadata-client.addresses=${seedFabric}`],
      restarts: 0,
    }));
    return new CairnCluster(nodes, devPid, registry, baseDir);
  }

  /** The metadata server's Raft timing as the nodes use it (from the first node's effective config). */
  async raftTiming(): Promise<{ tickIntervalMs: number; electionTimeoutTicks: number; heartbeatIntervalTicks: number } | undefined> {
    try {
      const res = await fetch(`${this.nodes[0]!.url}/v1/node/config`, { signal: AbortSignal.timeout(2000) });
      const ms = ((await res.json()) as Record<string, Record<string, number> | undefined>)["metadata-server"];
      if (ms === undefined) return undefined;
      return {
        tickIntervalMs: ms["tick-interval-ms"]!,
        electionTimeoutTicks: ms["election-timeout-ticks"]!,
        heartbeatIntervalTicks: ms["heartbeat-interval-ticks"]!,
      };
    } catch {
      return undefined;
    }
  }

  private async status(node: BenchNode, signal?: AbortSignal): Promise<CairnStatus | undefined> {
    try {
      const res = await fetch(`${node.url}/v1/metadata-server/status`, { signal: signal ?? AbortSignal.timeout(1000) });
      if (!res.ok) {
        await res.arrayBuffer();
        return undefined;
      }
      const s = (await res.json()) as CairnStatus;
      node.id = s.node;
      return s;
    } catch {
      return undefined;
    }
  }

  async roles(signal?: AbortSignal): Promise<Roles> {
    const statuses = await Promise.all(this.nodes.map((n) => this.status(n, signal)));
    const leaderIdx = statuses.findIndex((s) => s?.raft?.role === "leader");
    const leader = this.nodes[leaderIdx];
    const leaderId = statuses[leaderIdx]?.node;
    if (leader === undefined || leaderId === undefined) throw new Error("cairn: no member reports itself leader");
    const disagree = statuses.filter((s) => s !== undefined && s.raft?.leader !== leaderId);
    if (disagree.length > 0) throw new Error(`cairn: members disagree on the leader (${statuses.map((s) => s?.raft?.leader ?? "?").join(", ")})`);
    return { leader, leaderId, followers: this.nodes.filter((n) => n !== leader) };
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last = "";
    while (performance.now() < deadline) {
      const statuses = await Promise.all(this.nodes.map((n) => this.status(n)));
      last = statuses
        .map((s, i) => {
          const r = s?.raft;
          return s ? `${this.nodes[i]!.name}=${s.node}:${s.state}/${r?.role}/term=${r?.term}/leader=${r?.leader}/commit=${r?.commitIndex}/applied=${r?.appliedIndex}/first=${r?.firstIndex}/last=${r?.lastIndex}/snapshot=${r?.snapshotIndex}` : `${this.nodes[i]!.name}: no answer`;
        })
        .join(", ");
      const leaders = new Set(statuses.map((s) => s?.raft?.leader ?? null));
      const ok =
        statuses.every((s) => s?.state === "member" && s.raft !== null) &&
        leaders.size === 1 &&
        !leaders.has(null) &&
        statuses.filter((s) => s?.raft?.role === "leader").length === 1;
      if (ok) {
        const commit = Math.max(...statuses.map((s) => s!.raft!.commitIndex));
        const applied = Math.min(...statuses.map((s) => s!.raft!.appliedIndex));
        if (commit - applied <= 2) return;
      }
      await Bun.sleep(100);
    }
    throw new Error(`cairn: cluster not healthy within ${timeoutMs} ms (last seen: ${last})`);
  }

  async leaderSeenBy(node: BenchNode, signal: AbortSignal): Promise<string | null> {
    return (await this.status(node, signal))?.raft?.leader ?? null;
  }

  put(node: BenchNode, key: string, value: string, signal: AbortSignal): Promise<void> {
    return cairnKv.put(node.url, key, value, signal);
  }

  get(node: BenchNode, key: string, mode: ReadMode, signal: AbortSignal): Promise<void> {
    return cairnKv.get(node.url, key, mode, signal);
  }

  async read(node: BenchNode, key: string, signal: AbortSignal): Promise<string | undefined> {
    const res = await fetch(`${node.url}/v1/metadata/${key}?consistency=linearizable`, { signal });
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    if (!res.ok) await httpFail(res, "read");
    const body = (await res.json()) as { value: unknown };
    return JSON.stringify(body.value);
  }

  killHard(node: BenchNode): void {
    this.registry.killHard(node.pid);
  }

  async restart(node: BenchNode): Promise<void> {
    const n = node as CairnNode;
    if (!(await this.registry.waitGone(n.pid, 5000))) throw new Error(`cairn ${n.name} (pid ${n.pid}) still alive; cannot restart`);
    this.registry.untrack(n.pid);
    n.restarts++;
    await this.spawnServer(n, hostPort(n.url), n.fabric, join(this.baseDir, `${n.name}.restart-${n.restarts}.log`), `cairn ${n.name} (restart ${n.restarts})`);
  }

  /**
   * Starts a new node `name` (fresh data dir, ports picked by the OS) seeded with every member's
   * fabric address, as an operator adds a node: with auto-join on it joins the metadata cluster as
   * a learner and is promoted to member. Resolves once it has published its addresses; it is not
   * one of `nodes` (roles and health stay those of the original members). Returns it and the
   * moment it was spawned (performance.now()).
   */
  async startJoiner(name: string): Promise<{ node: BenchNode; spawnedAtMs: number }> {
    const n: CairnNode = {
      name,
      pid: 0,
      url: "",
      dataDir: join(this.baseDir, "nodes", name),
      fabric: "",
      extraArgs: ["--set", `metadata-client.addresses=${this.nodes.map((m) => m.fabric).join(",")}`],
      restarts: 0,
    };
    mkdirSync(n.dataDir, { recursive: true });
    const spawnedAtMs = performance.now();
    const published = await this.spawnServer(n, "127.0.0.1:0", "127.0.0.1:0", join(this.baseDir, `${name}.log`), `cairn ${name} (joiner)`);
    n.url = published.admin;
    n.fabric = published.fabric;
    return { node: n, spawnedAtMs };
  }

  /** The node's state in the metadata cluster ("auto-join", "member", "standby"), or undefined. */
  async metadataState(node: BenchNode, signal?: AbortSignal): Promise<string | undefined> {
    return (await this.status(node, signal))?.state;
  }

  /** `cairn server` for `n` (tracked by PID); resolves with the addresses it publishes under its pid. */
  private async spawnServer(n: CairnNode, adminAddress: string, fabricAddress: string, logPath: string, label: string): Promise<{ admin: string; fabric: string }> {
    const log = openSync(logPath, "w");
    const args = [
      process.execPath, MAIN_TS, "server",
      "--node-name", n.name,
      "--base-dir", n.dataDir,
      "--cluster-name", CLUSTER_NAME,
      "--admin-address", adminAddress,
      "--fabric-address", fabricAddress,
      "--ingress-address", "127.0.0.1:0",
      "--set", "log.format=json",
      ...n.extraArgs,
    ];
    // CAIRN_EXIT_WITH_PARENT: if this benchmark dies, the node stops by itself.
    const proc = Bun.spawn(args, { stdout: log, stderr: log, stdin: "ignore", env: { ...process.env, CAIRN_EXIT_WITH_PARENT: "1" } });
    closeSync(log);
    this.registry.track(proc.pid, "cairn", label, proc);
    n.pid = proc.pid;
    // Ready once it has published its addresses under its new pid.
    const deadline = performance.now() + 30_000;
    const addressesPath = join(n.dataDir, "addresses.json");
    while (performance.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${label} exited (${proc.exitCode ?? proc.signalCode}); see ${logPath}:\n${tail(logPath)}`);
      try {
        if (existsSync(addressesPath)) {
          const a = JSON.parse(readFileSync(addressesPath, "utf8")) as { pid: number; admin: string; fabric: string };
          if (a.pid === proc.pid) return a;
        }
      } catch {
        // Being written.
      }
      await Bun.sleep(50);
    }
    throw new Error(`${label} did not start within 30 s; see ${logPath}`);
  }

  waitRejoined(_node: BenchNode, timeoutMs: number): Promise<void> {
    return this.waitHealthy(timeoutMs);
  }

  /** SIGTERM to `cairn dev` stops the nodes it started; then whatever we restarted ourselves. */
  async stop(): Promise<void> {
    try {
      process.kill(this.devPid, "SIGTERM");
    } catch {
      // Already gone.
    }
    await this.registry.waitGone(this.devPid, 15_000);
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}
