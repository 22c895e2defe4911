// A cluster of real `cairn server` processes for chaos runs. Node i binds its own loopback address
// 127.0.0.(10+i) (admin, fabric, ingress) and advertises the fault proxy's listener for it on the
// same address, so every peer reaches it through the proxy while clients call its admin API
// directly. Ports are chosen once and kept across restarts (a restarted node keeps its addresses).
// Node 1 is provisioned; the others join through the proxies. Every process is stopped by PID.
import { mkdirSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { FaultProxy } from "./net/fault-proxy.ts";
import { childPids, nodeNameOfPid, pidOwningInode, socketInode } from "./net/socket-owner.ts";
import { isRunning, readText, spawnServer, stopServer, waitHttpOk, type SpawnedNode } from "./node-process.ts";
import type { Rng } from "./rng.ts";

export interface ChaosNode {
  readonly name: string;
  readonly ip: string;
  readonly dataDir: string;
  readonly logFile: string;
  adminPort: number;
  fabricPort: number;
  /** The proxy listener other nodes dial (the node's advertised fabric address). */
  readonly advertised: string;
  process: SpawnedNode | null;
  paused: boolean;
  /** Process starts, the first included. */
  starts: number;
  /** Set while the harness itself stops or kills the process (its exit is then expected). */
  stopping: boolean;
}

/** A node process that exited without the harness stopping it. */
export interface UnexpectedExit {
  readonly node: string;
  readonly pid: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly atMs: number;
  /** The end of the node's log at that moment. */
  readonly logTail: string;
}

export interface ChaosClusterOptions {
  readonly size: number;
  /** Where data directories and node logs go. */
  readonly dir: string;
  readonly rng: Rng;
  /** Extra `cairn server` arguments for every node. */
  readonly extraArgs?: readonly string[];
  readonly log?: (line: string) => void;
  readonly readyTimeoutMs?: number;
  /** Replication factor given at provisioning. */
  readonly replication?: number;
}

/** Faster Raft and shorter metadata deadlines than the defaults, so faults resolve within a short run. */
export const CHAOS_NODE_ARGS = [
  "--set",
  "metadata-server.tick-interval-ms=50",
  "--set",
  "metadata-server.request-timeout-ms=2000",
  "--set",
  "log.format=json",
] as const;

export function nodeIp(index: number): string {
  return `127.0.0.${10 + index}`;
}

/** A port that was free on `host` a moment ago. */
export async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];
  readonly proxy: FaultProxy;
  private readonly log: (line: string) => void;

  private constructor(private readonly options: ChaosClusterOptions) {
    this.log = options.log ?? (() => {});
    this.proxy = new FaultProxy(
      options.rng.fork("proxy"),
      (socket) => this.identify(socket),
      (source) => this.nodes.find((n) => n.name === source)?.ip,
    );
  }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const cluster = new ChaosCluster(options);
    try {
      await cluster.boot();
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  node(name: string): ChaosNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  adminUrl(n: ChaosNode): string {
    return `http://${n.ip}:${n.adminPort}`;
  }

  /** Nodes whose process runs (paused ones included). */
  running(): ChaosNode[] {
    return this.nodes.filter((n) => n.process !== null && isRunning(n.process.proc));
  }

  /** Every node's current PID (null when down). */
  pids(): Record<string, number | null> {
    return Object.fromEntries(this.nodes.map((n) => [n.name, n.process && isRunning(n.process.proc) ? n.process.pid : null]));
  }

  private async boot(): Promise<void> {
    const { size, dir } = this.options;
    mkdirSync(dir, { recursive: true });
    for (let i = 1; i <= size; i++) {
      const name = `n${i}`;
      const ip = nodeIp(i);
      const advertised = await this.proxy.listen(name, ip);
      this.nodes.push({
        name,
        ip,
        dataDir: join(dir, name),
        logFile: join(dir, `${name}.log`),
        adminPort: await freePort(ip),
        fabricPort: await freePort(ip),
        advertised,
        process: null,
        paused: false,
        starts: 0,
        stopping: false,
      });
    }
    const first = this.nodes[0]!;
    await this.startProcess(first, []);
    const provisioned = await fetch(`${this.adminUrl(first)}/v1/cluster/provision`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ numPartitions: 4, replication: this.options.replication ?? Math.min(2, size) }),
      signal: AbortSignal.timeout(15_000),
    });
    if (provisioned.status !== 200) throw new Error(`provisioning failed: ${provisioned.status} ${await provisioned.text()}`);
    for (const n of this.nodes.slice(1)) await this.startProcess(n, this.seeds());
    await this.waitMembers(size, 60_000);
    this.log(`cluster of ${size} up: ${this.nodes.map((n) => `${n.name} admin ${this.adminUrl(n)} fabric ${n.ip}:${n.fabricPort} via ${n.advertised}`).join("; ")}`);
  }

  private seeds(): string[] {
    return this.nodes.map((n) => n.advertised);
  }

  private args(n: ChaosNode, seeds: readonly string[]): string[] {
    return [
      "--node-name",
      n.name,
      "--base-dir",
      n.dataDir,
      "--admin-address",
      `${n.ip}:${n.adminPort}`,
      "--fabric-address",
      `${n.ip}:${n.fabricPort}`,
      "--ingress-address",
      `${n.ip}:0`,
      "--set",
      `net.advertised-address=${n.advertised}`,
      ...(seeds.length > 0 ? ["--set", `metadata-client.addresses=${seeds.join(",")}`] : []),
      ...CHAOS_NODE_ARGS,
      ...(this.options.extraArgs ?? []),
    ];
  }

  /** Starts the node's process and waits for /ready (and that it is our process answering). */
  private async startProcess(n: ChaosNode, seeds: readonly string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const spawned = spawnServer(this.args(n, seeds), n.logFile);
      n.process = spawned;
      n.paused = false;
      n.stopping = false;
      n.starts++;
      void spawned.proc.exited.then(() => {
        if (n.stopping || n.process !== spawned) return;
        const log = readText(n.logFile);
        this.unexpectedExits.push({
          node: n.name,
          pid: spawned.pid,
          exitCode: spawned.proc.exitCode,
          signal: spawned.proc.signalCode === null ? null : String(spawned.proc.signalCode),
          atMs: Date.now(),
          logTail: log.slice(-2000),
        });
        this.log(`${n.name} (pid ${spawned.pid}) exited by itself: exit ${spawned.proc.exitCode ?? spawned.proc.signalCode}`);
      });
      this.proxy.setTarget(n.name, n.ip, n.fabricPort);
      const ready = await waitHttpOk(spawned.proc, `${this.adminUrl(n)}/ready`, this.options.readyTimeoutMs ?? 30_000);
      if (isRunning(spawned.proc)) {
        // Not ready in time (a fault may hold it back): leave it running, it is ours and may recover.
        if (!ready) this.log(`${n.name} (pid ${spawned.pid}) not ready after ${this.options.readyTimeoutMs ?? 30_000} ms; going on`);
        else if ((await this.answeringPid(n)) !== spawned.pid) throw new Error(`${this.adminUrl(n)} is answered by another process than ${n.name}`);
        return;
      }
      // Exited during start. A port taken meanwhile (by someone else) is retried once on new ports;
      // anything else is a failure to start.
      const portTaken = readText(n.logFile).slice(-4000).includes("CAIRN-NODE-0006");
      if (!portTaken || attempt >= 2) throw new Error(`${n.name} exited during start (exit ${spawned.proc.exitCode}); see ${n.logFile}`);
      const i = this.unexpectedExits.findIndex((x) => x.pid === spawned.pid);
      if (i >= 0) this.unexpectedExits.splice(i, 1);
      n.adminPort = await freePort(n.ip);
      n.fabricPort = await freePort(n.ip);
      this.log(`${n.name} exited during start; retrying with admin port ${n.adminPort}, fabric port ${n.fabricPort}`);
    }
  }

  private async answeringPid(n: ChaosNode): Promise<number | undefined> {
    try {
      const r = await fetch(`${this.adminUrl(n)}/v1/node`, { signal: AbortSignal.timeout(2000) });
      const body = (await r.json()) as { pid?: number };
      return body.pid;
    } catch {
      return undefined;
    }
  }

  async waitMembers(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      for (const n of this.running()) {
        try {
          const r = await fetch(`${this.adminUrl(n)}/v1/metadata-servers`, { signal: AbortSignal.timeout(3000) });
          const body = (await r.json()) as { servers?: Array<{ state: string; status: { state: string } | null }> };
          const members = (body.servers ?? []).filter((s) => s.state === "member" && s.status?.state === "member").length;
          last = `${members} members per ${n.name}`;
          if (members >= count) return;
        } catch (e) {
          last = (e as Error).message;
        }
      }
      await Bun.sleep(200);
    }
    throw new Error(`the metadata cluster did not reach ${count} members within ${timeoutMs} ms (${last})`);
  }

  /** The node whose metadata server says it leads, if one answers quickly. */
  async leader(): Promise<ChaosNode | undefined> {
    const answers = await Promise.all(
      this.running()
        .filter((n) => !n.paused)
        .map(async (n) => {
          try {
            const r = await fetch(`${this.adminUrl(n)}/v1/metadata-server/status`, { signal: AbortSignal.timeout(1000) });
            const body = (await r.json()) as { raft?: { role?: string; term?: number } | null };
            return body.raft?.role === "leader" ? { n, term: body.raft.term ?? 0 } : undefined;
          } catch {
            return undefined;
          }
        }),
    );
    const leaders = answers.filter((a) => a !== undefined).sort((a, b) => b.term - a.term);
    return leaders[0]?.n;
  }

  async kill(name: string): Promise<void> {
    const n = this.node(name);
    if (n.process === null || !isRunning(n.process.proc)) return;
    n.stopping = true;
    n.process.proc.kill("SIGKILL");
    await n.process.proc.exited;
    n.paused = false;
  }

  async restart(name: string): Promise<void> {
    const n = this.node(name);
    if (n.process !== null && isRunning(n.process.proc)) return;
    await this.startProcess(n, this.seeds());
  }

  pause(name: string): void {
    const n = this.node(name);
    if (n.process === null || !isRunning(n.process.proc)) return;
    process.kill(n.process.pid, "SIGSTOP");
    n.paused = true;
  }

  resume(name: string): void {
    const n = this.node(name);
    if (n.process === null || !isRunning(n.process.proc)) return;
    process.kill(n.process.pid, "SIGCONT");
    n.paused = false;
  }

  /** Everything back to normal: links healed, paused nodes resumed, dead nodes restarted. */
  async healAll(): Promise<void> {
    this.proxy.heal();
    for (const n of this.nodes) if (n.paused) this.resume(n.name);
    for (const n of this.nodes) if (n.process === null || !isRunning(n.process.proc)) await this.restart(n.name);
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) n.stopping = true;
    const procs: Subprocess[] = this.nodes.map((n) => n.process?.proc).filter((p): p is Subprocess => p !== undefined);
    await Promise.all(procs.map((p) => stopServer(p, "SIGTERM", 10_000)));
    await this.proxy.close();
  }

  /** Which node opened a connection to the proxy (see socket-owner.ts). */
  private identify(socket: net.Socket): string | null {
    const { remoteAddress, remotePort, localAddress, localPort } = socket;
    if (!remoteAddress || !remotePort || !localAddress || !localPort) return null;
    const inode = socketInode(remoteAddress, remotePort, localAddress, localPort);
    if (inode === undefined) return null;
    const byPid = new Map<number, string>();
    for (const n of this.nodes) if (n.process !== null && isRunning(n.process.proc)) byPid.set(n.process.pid, n.name);
    const pid = pidOwningInode(inode, byPid.keys());
    if (pid !== undefined) return byPid.get(pid) ?? null;
    const other = pidOwningInode(inode, [process.pid, ...childPids(process.pid)]);
    if (other === process.pid) return "harness";
    return other === undefined ? null : (nodeNameOfPid(other) ?? null);
  }
}
