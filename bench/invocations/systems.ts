// The two systems under bench/invocations.ts, behind one shape: cairn (`cairn dev`, from source) and
// Restate 1.7 (the npm binary installed by bench/setup-restate.sh), each on one node or three on
// 127.0.0.1. Every process is tracked by PID in the benchmark's registry; a node can be killed with
// SIGKILL and restarted with the same data directory and ports.
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { evenPartitionTable, partitionForKey } from "../../src/worker/partition-table.ts";
import { partitionKeyOf } from "../../src/worker/key-hash.ts";
import { CairnCluster, nodeId } from "../log/cairn.ts";
import { startDev } from "../metadata/cairn.ts";
import { freePort } from "../metadata/etcd.ts";
import type { ProcessRegistry } from "../metadata/procs.ts";

export type SystemName = "cairn" | "restate";
export type Topology = "single" | "three";

export interface SysNode {
  name: string;
  pid: number;
  admin: string;
  ingress: string;
}

export interface FailoverTarget {
  key: string;
  node: SysNode;
  keyOnNode: boolean;
  how: string;
}

export type FailoverWhen = "settled" | "rejoined" | "moving";
export const FAILOVER_WHEN: readonly FailoverWhen[] = ["settled", "rejoined", "moving"];

export interface SystemUnderTest {
  readonly system: SystemName;
  readonly version: string;
  nodes(): SysNode[];
  /** A key of `service` and the node to kill; `keyOnNode`: the node is known to lead the key's partition. */
  /**
   * The node to kill and a key it leads. `when`: "settled" waits until leaderships stopped moving;
   * "rejoined" takes the cluster as it is right after the previous restart (every partition led);
   * "moving" waits until a leadership moves back to the last restarted node, and no longer.
   */
  failoverTarget(service: string, when: FailoverWhen): Promise<FailoverTarget>;
  killHard(node: SysNode): void;
  restart(node: SysNode): Promise<void>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 120_000;

async function untilTrue(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`${what} within ${timeoutMs} ms`);
}

/** Registers the SDK endpoint through `admin` (POST /deployments, Restate's admin route on both). */
export async function registerDeployment(admin: string, serviceUri: string): Promise<void> {
  const r = await fetch(`${admin}/deployments`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ uri: serviceUri, force: true }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  if (r.status !== 200 && r.status !== 201) throw new Error(`POST ${admin}/deployments: HTTP ${r.status} ${text.slice(0, 300)}`);
}

// ---------------------------------------------------------------- cairn

interface PartitionRow {
  id: number;
  leader: string | null;
  leaderApplied: boolean;
  epoch?: number;
}

/** How long the partition leaderships must stay unchanged before a failover trial kills a node. */
const SETTLED_MS = 3_000;
/** `--failover-when moving`: the longest wait for a leadership to move back to the restarted node. */
const MOVING_WAIT_MS = 60_000;

function ingressOf(dataDir: string): string {
  return (JSON.parse(readFileSync(join(dataDir, "addresses.json"), "utf8")) as { ingress: string }).ingress;
}

async function cairnPartitions(admin: string): Promise<PartitionRow[]> {
  const r = await fetch(`${admin}/v1/partitions`, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`GET /v1/partitions: ${r.status}`);
  return ((await r.json()) as { partitions: PartitionRow[] }).partitions;
}

class Cairn implements SystemUnderTest {
  readonly system = "cairn" as const;
  readonly version = "source (bun src/main.ts)";
  private readonly ids = new Map<string, string>();
  /** The node restarted last (after a failover trial). */
  private lastRestarted: string | undefined;

  private constructor(
    private readonly registry: ProcessRegistry,
    private readonly single: { devPid: number; node: { name: string; pid: number; admin: string; dataDir: string } } | null,
    private readonly cluster: CairnCluster | null,
  ) {}

  static async start(registry: ProcessRegistry, dir: string, topology: Topology): Promise<Cairn> {
    let c: Cairn;
    if (topology === "single") {
      const { devPid, dev } = await startDev(registry, dir, READY_TIMEOUT_MS, ["--single-node"], "cairn dev --single-node");
      const n = dev.nodes[0]!;
      c = new Cairn(registry, { devPid, node: { name: n.name, pid: n.pid, admin: n.admin, dataDir: n.dataDir } }, null);
    } else {
      c = new Cairn(registry, null, await CairnCluster.start(registry, dir, READY_TIMEOUT_MS));
    }
    await c.waitLed();
    return c;
  }

  nodes(): SysNode[] {
    if (this.single) return [{ name: this.single.node.name, pid: this.single.node.pid, admin: this.single.node.admin, ingress: ingressOf(this.single.node.dataDir) }];
    return this.cluster!.nodes.map((n) => ({ name: n.name, pid: n.pid, admin: n.url, ingress: ingressOf(n.dataDir) }));
  }

  /** Every partition led by an applied leader, as every node's admin API reports. */
  async waitLed(): Promise<void> {
    await untilTrue("cairn: every partition led", READY_TIMEOUT_MS, async () => {
      const rows = await cairnPartitions(this.nodes()[0]!.admin);
      return rows.length > 0 && rows.every((p) => p.leader !== null && p.leaderApplied);
    });
  }

  /**
   * Every partition led, leaders on every node, and no leadership change for SETTLED_MS: after a
   * restart the placement moves leaderships back to the returning node for a few seconds, and a kill
   * in the middle of that would time those moves, not the failover.
   */
  async waitSettled(): Promise<void> {
    let last = "";
    let sinceMs = performance.now();
    await untilTrue("cairn: partition leaderships settled", READY_TIMEOUT_MS, async () => {
      const rows = await cairnPartitions(this.nodes()[0]!.admin);
      const led = rows.length > 0 && rows.every((p) => p.leader !== null && p.leaderApplied) && new Set(rows.map((p) => p.leader)).size === this.nodes().length;
      const signature = rows.map((p) => `${p.id}:${p.leader}:${p.epoch ?? ""}`).join(",");
      if (!led || signature !== last) {
        last = signature;
        sinceMs = performance.now();
        return false;
      }
      return performance.now() - sinceMs >= SETTLED_MS;
    });
  }

  /** The first key whose partition leader is not the metadata leader (only partition failover is timed). */
  async failoverTarget(service: string, when: FailoverWhen): Promise<FailoverTarget> {
    if (!this.cluster) throw new Error("cairn single node: no failover");
    await this.cluster.waitHealthy(READY_TIMEOUT_MS);
    if (when === "settled") await this.waitSettled();
    else if (when === "moving" && this.lastRestarted !== undefined) await this.waitMovingBackTo(this.lastRestarted);
    const metadataLeader = (await this.cluster.roles()).leader.name;
    for (let i = 0; i < 256; i++) {
      const key = `failover-${i}`;
      const node = await this.leaderOfKey(service, key);
      if (node !== null && node.name !== metadataLeader) return { key, node, keyOnNode: true, how: "leader of the key's partition (GET /v1/partitions), not the metadata leader" };
    }
    throw new Error("cairn: no key led by a node other than the metadata leader");
  }

  /** Until the placement names `name` leader of a partition (a leadership moving back to it), at most MOVING_WAIT_MS. */
  private async waitMovingBackTo(name: string): Promise<void> {
    const node = this.nodes().find((n) => n.name === name)!;
    const id = await nodeId(node.admin);
    const deadline = performance.now() + MOVING_WAIT_MS;
    while (performance.now() < deadline) {
      const rows = await cairnPartitions(this.nodes()[0]!.admin).catch(() => []);
      if (rows.some((p) => p.leader === id)) return;
      await Bun.sleep(20);
    }
    console.log(`  (no leadership moved back to ${name} within ${MOVING_WAIT_MS} ms: killing anyway)`);
  }

  private async leaderOfKey(service: string, key: string): Promise<SysNode | null> {
    const nodes = this.nodes();
    const rows = await cairnPartitions(nodes[0]!.admin);
    const partition = partitionForKey(evenPartitionTable(rows.length), partitionKeyOf(service, key));
    const leader = rows.find((r) => r.id === partition)?.leader ?? null;
    if (leader === null) return null;
    for (const n of nodes) {
      if (!this.ids.has(n.name)) this.ids.set(n.name, await nodeId(n.admin));
      if (this.ids.get(n.name) === leader) return n;
    }
    return null;
  }

  killHard(node: SysNode): void {
    this.registry.killHard(node.pid);
  }

  async restart(node: SysNode): Promise<void> {
    if (!this.cluster) throw new Error("cairn single node: no restart in this benchmark");
    const n = this.cluster.nodes.find((m) => m.name === node.name)!;
    await this.cluster.restart(n);
    this.lastRestarted = node.name;
    await this.cluster.waitHealthy(READY_TIMEOUT_MS);
    await this.waitLed();
  }

  async stop(): Promise<void> {
    if (this.cluster) await this.cluster.stop();
    if (this.single) {
      try {
        process.kill(this.single.devPid, "SIGTERM");
      } catch {
        // Already gone.
      }
      await this.registry.waitGone(this.single.devPid, 15_000);
    }
  }
}

// ---------------------------------------------------------------- Restate

interface RestateNode extends SysNode {
  env: Record<string, string>;
  logPath: string;
  restarts: number;
}

/** The restate-server binary: installs it on demand (bench/setup-restate.sh prints its path last). */
export function restateBinary(): string {
  const out = execFileSync("bash", [join(import.meta.dir, "../setup-restate.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const bin = out.trim().split("\n").at(-1) ?? "";
  if (!existsSync(bin)) throw new Error(`bench/setup-restate.sh printed no restate-server path (got ${JSON.stringify(bin)})`);
  return bin;
}

class Restate implements SystemUnderTest {
  readonly system = "restate" as const;

  private constructor(
    private readonly registry: ProcessRegistry,
    private readonly bin: string,
    readonly version: string,
    private readonly members: RestateNode[],
  ) {}

  static async start(registry: ProcessRegistry, dir: string, topology: Topology): Promise<Restate> {
    const bin = restateBinary();
    const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
    const count = topology === "single" ? 1 : 3;
    const ports = await Promise.all(Array.from({ length: count * 3 }, () => freePort()));
    const fabric = (i: number) => `http://127.0.0.1:${ports[3 * i]}`;
    const members: RestateNode[] = Array.from({ length: count }, (_, i) => {
      const name = `node-${i + 1}`;
      const baseDir = join(dir, name);
      mkdirSync(baseDir, { recursive: true });
      return {
        name,
        pid: 0,
        admin: `http://127.0.0.1:${ports[3 * i + 1]}`,
        ingress: `http://127.0.0.1:${ports[3 * i + 2]}`,
        logPath: join(dir, `${name}.log`),
        restarts: 0,
        env: {
          RESTATE_NODE_NAME: name,
          RESTATE_CLUSTER_NAME: "bench",
          RESTATE_BASE_DIR: baseDir,
          RESTATE_BIND_ADDRESS: `127.0.0.1:${ports[3 * i]}`,
          RESTATE_ADVERTISED_ADDRESS: fabric(i),
          RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${ports[3 * i + 1]}`,
          RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ports[3 * i + 2]}`,
          // Only the first node provisions; the others join through the metadata addresses.
          RESTATE_AUTO_PROVISION: i === 0 ? "true" : "false",
          RESTATE_DEFAULT_REPLICATION: String(count === 1 ? 1 : 2),
          RESTATE_METADATA_CLIENT__ADDRESSES: JSON.stringify(Array.from({ length: count }, (_, j) => fabric(j))),
          RESTATE_DISABLE_TELEMETRY: "true",
          RESTATE_LOG_FORMAT: "json",
        },
      };
    });
    const r = new Restate(registry, bin, version, members);
    for (const m of members) r.spawn(m);
    await r.waitHealthy();
    return r;
  }

  private spawn(m: RestateNode): void {
    const log = openSync(m.logPath, "a");
    const proc = Bun.spawn([this.bin, "--listen-mode", "tcp", "--no-logo"], { stdout: log, stderr: log, stdin: "ignore", env: { ...process.env, ...m.env } });
    closeSync(log);
    this.registry.track(proc.pid, "restate", `restate ${m.name}`, proc);
    m.pid = proc.pid;
  }

  private async waitHealthy(): Promise<void> {
    for (const m of this.members) {
      await untilTrue(`restate ${m.name}: admin and ingress healthy (see ${m.logPath})`, READY_TIMEOUT_MS, async () => {
        if (!this.registry.isAlive(m.pid)) throw new Error(`restate ${m.name} exited; see ${m.logPath}`);
        const a = await fetch(`${m.admin}/health`, { signal: AbortSignal.timeout(2000) });
        const i = await fetch(`${m.ingress}/restate/health`, { signal: AbortSignal.timeout(2000) });
        await a.arrayBuffer();
        await i.arrayBuffer();
        return a.ok && i.ok;
      });
    }
  }

  nodes(): SysNode[] {
    return this.members.map(({ name, pid, admin, ingress }) => ({ name, pid, admin, ingress }));
  }

  /** Restate 1.7 names partition leaders only through restatectl or SQL; the last node is killed. */
  async failoverTarget(): Promise<FailoverTarget> {
    return { key: "failover-0", node: this.nodes().at(-1)!, keyOnNode: false, how: "the last node (Restate 1.7's admin API names no partition leaders): only the every-probe-key time counts" };
  }

  killHard(node: SysNode): void {
    this.registry.killHard(node.pid);
  }

  async restart(node: SysNode): Promise<void> {
    const m = this.members.find((x) => x.name === node.name)!;
    if (!(await this.registry.waitGone(m.pid, 5000))) throw new Error(`restate ${m.name} (pid ${m.pid}) still alive; cannot restart`);
    this.registry.untrack(m.pid);
    m.restarts++;
    this.spawn(m);
    await this.waitHealthy();
  }

  async stop(): Promise<void> {
    for (const m of this.members) {
      if (!this.registry.isAlive(m.pid)) continue;
      try {
        process.kill(m.pid, "SIGTERM");
      } catch {
        // Gone meanwhile.
      }
    }
    for (const m of this.members) {
      if (!(await this.registry.waitGone(m.pid, 20_000))) this.registry.killHard(m.pid);
      await this.registry.waitGone(m.pid, 5000);
      this.registry.untrack(m.pid);
    }
  }
}

export function startSystem(system: SystemName, registry: ProcessRegistry, dir: string, topology: Topology): Promise<SystemUnderTest> {
  return system === "cairn" ? Cairn.start(registry, dir, topology) : Restate.start(registry, dir, topology);
}
