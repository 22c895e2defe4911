// A cluster of real `cairn server` processes for chaos runs. Node i binds its own loopback address
// 127.0.0.(10+i) (admin, fabric, ingress) and advertises the fault proxy's listener for it on the
// same address, so every peer reaches it through the proxy while clients call its admin API
// directly. Ports are chosen once and kept across restarts (a restarted node keeps its addresses).
// Node 1 is provisioned; the others join through the proxies. Every process is stopped by PID.
// Storage faults (io-faults.ts) and metadata membership changes are applied here too, and a node exit
// the running fault explains (a failed fsync, a full disk) is recorded as expected, not as a crash.
import { closeSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { FaultProxy } from "./net/fault-proxy.ts";
import { childPids, nodeNameOfPid, pidOwningInode, socketInode } from "./net/socket-owner.ts";
import { FsyncFailure, TmpfsHolder } from "./io-faults.ts";
import { isRunning, readText, spawnServer, stopServer, waitHttpOk, type SpawnedNode } from "./node-process.ts";
import type { Rng } from "./rng.ts";

/** Partitions the harness provisions (logs 0..3; the log workload uses its own log, CHAOS_LOG_ID). */
export const CHAOS_PARTITIONS = 4;

export interface ChaosNode {
  readonly name: string;
  readonly ip: string;
  readonly dataDir: string;
  readonly logFile: string;
  adminPort: number;
  fabricPort: number;
  /** The data plane's port (kept across restarts, like the others). */
  ingressPort: number;
  /** The proxy listener other nodes dial (the node's advertised fabric address). */
  readonly advertised: string;
  process: SpawnedNode | null;
  paused: boolean;
  /** Process starts, the first included. */
  starts: number;
  /** Set while the harness itself stops or kills the process (its exit is then expected). */
  stopping: boolean;
  /** The private mount namespace whose size-limited tmpfs holds the data directory (disk-full). */
  tmpfs: TmpfsHolder | null;
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

/** A node process that exited because of a storage fault the harness injected (then restarted). */
export interface ExpectedExit {
  readonly node: string;
  readonly pid: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly atMs: number;
  /** The fault that explains it. */
  readonly cause: string;
  /** The node's last fatal/error log line before the exit. */
  readonly lastError: string;
}

/** One metadata server as GET /v1/metadata-servers lists it. */
export interface MetadataServerView {
  readonly node: string;
  readonly name: string;
  readonly state: "auto-join" | "member" | "standby";
  readonly status: { readonly state: string; readonly raft: { readonly role: string; readonly voters: readonly string[] } | null } | null;
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
  /** Every node also runs the worker role (partition processors, the invoker). */
  readonly workers?: boolean;
  /** This node's data directory lives on a tmpfs of this size in a private mount namespace. */
  readonly tmpfsNode?: { readonly name: string; readonly sizeBytes: number };
}

/**
 * How a storage fault may end a process. The metadata raft driver exits with 70 when it cannot
 * persist; another component may die of the I/O error it got. Anything else is a crash to report.
 */
const EXIT_CODE_FATAL_PERSIST = 70;
/** The gauge a node's log-server drops to 0 once a failed write disabled its store (src/logserver/store.ts). */
const STORE_DISABLED_METRIC = /^cairn_logserver_store_writable 0$/m;
const STORAGE_ERROR_IN_LOG = /SQLITE_IOERR|SQLITE_FULL|disk I\/O error|database or disk is full|ENOSPC|EIO\b|No space left/;

/** Faster Raft and shorter metadata deadlines than the defaults, so faults resolve within a short run. */
export const CHAOS_NODE_ARGS = [
  "--set",
  "metadata-server.tick-interval-ms=50",
  "--set",
  "metadata-server.request-timeout-ms=2000",
  "--set",
  "log.format=json",
  // A store disabled by a storage fault probes at most every 2 s, so it is back soon after the heal.
  "--set",
  "log-server.recovery-probe-max-delay-ms=2000",
] as const;

/** How long after a storage fault's heal a disabled log-server store may take to re-enable itself. */
const STORE_RECOVERY_WAIT_MS = 15_000;

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** What a file holds from byte `offset` on (what one process wrote to a log shared across restarts). */
function readSince(path: string, offset: number): string {
  try {
    const fd = openSync(path, "r");
    try {
      const buf = Buffer.alloc(Math.max(0, statSync(path).size - offset));
      const n = readSync(fd, buf, 0, buf.length, offset);
      return buf.subarray(0, n).toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    return "";
  }
}

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
  readonly expectedExits: ExpectedExit[] = [];
  readonly proxy: FaultProxy;
  private readonly log: (line: string) => void;
  /** Node → the storage fault under which (or within the grace time after which) it may exit. */
  private readonly exitExcuses = new Map<string, { cause: string; untilMs: number }>();
  private readonly fsyncFaults = new Map<string, FsyncFailure>();
  /** Node → the PID that was running when its current storage fault began. */
  private readonly faultPid = new Map<string, number>();
  /** Nodes the membership nemesis removed from the metadata cluster (re-added on heal). */
  readonly removedMetadataServers = new Set<string>();
  private closing = false;

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

  ingressUrl(n: ChaosNode): string {
    return `http://${n.ip}:${n.ingressPort}`;
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
        ingressPort: await freePort(ip),
        advertised,
        process: null,
        paused: false,
        starts: 0,
        stopping: false,
        tmpfs: null,
      });
    }
    const limited = this.options.tmpfsNode;
    if (limited !== undefined) {
      const n = this.node(limited.name);
      n.tmpfs = await TmpfsHolder.start(n.dataDir, limited.sizeBytes);
      this.log(`${n.name}'s data directory is a ${Math.round(limited.sizeBytes / 2 ** 20)} MiB tmpfs in a private mount namespace (holder pid ${n.tmpfs.pid})`);
    }
    const first = this.nodes[0]!;
    await this.startProcess(first, []);
    const provisioned = await fetch(`${this.adminUrl(first)}/v1/cluster/provision`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ numPartitions: CHAOS_PARTITIONS, replication: this.options.replication ?? Math.min(2, size) }),
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
      `${n.ip}:${n.ingressPort}`,
      // Workers only when a workload needs them (the log workload writes its own, non-partition log).
      "--roles",
      this.options.workers === true ? "metadata-server,log-server,worker,admin,ingress" : "metadata-server,log-server,admin,ingress",
      // Invocations retry soon after a fault (the defaults back off for much longer than a fault lasts).
      ...(this.options.workers === true ? ["--set", "invoker.retry-initial-interval-ms=50", "--set", "invoker.retry-max-interval-ms=500"] : []),
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
      const logStart = fileSize(n.logFile);
      const spawned = spawnServer(this.args(n, seeds), n.logFile, {}, n.tmpfs?.prefix() ?? []);
      n.process = spawned;
      n.paused = false;
      n.stopping = false;
      n.starts++;
      void spawned.proc.exited.then(() => {
        if (n.stopping || n.process !== spawned) return;
        const log = readText(n.logFile);
        if (this.excused(n, spawned, readSince(n.logFile, logStart))) return;
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
      n.ingressPort = await freePort(n.ip);
      this.log(`${n.name} exited during start; retrying with admin port ${n.adminPort}, fabric port ${n.fabricPort}`);
    }
  }

  /**
   * An exit during a storage fault on this node (or within the grace time after its heal) is
   * expected when it is the fatal-persist exit or the log's end shows the I/O error; after the heal
   * the node is restarted at once.
   */
  private excused(n: ChaosNode, spawned: SpawnedNode, ownLog: string): boolean {
    const excuse = this.exitExcuses.get(n.name);
    if (excuse === undefined || Date.now() > excuse.untilMs) return false;
    const tail = ownLog.slice(-6000);
    const code = spawned.proc.exitCode;
    if (code !== EXIT_CODE_FATAL_PERSIST && !STORAGE_ERROR_IN_LOG.test(tail)) return false;
    const lastError =
      tail
        .split("\n")
        .filter((l) => /"level":(50|60)|fatal|error/i.test(l))
        .pop()
        ?.slice(0, 600) ?? "";
    this.expectedExits.push({
      node: n.name,
      pid: spawned.pid,
      exitCode: code,
      signal: spawned.proc.signalCode === null ? null : String(spawned.proc.signalCode),
      atMs: Date.now(),
      cause: excuse.cause,
      lastError,
    });
    this.log(`${n.name} (pid ${spawned.pid}) exited under ${excuse.cause}: exit ${code ?? spawned.proc.signalCode} (expected)`);
    if (excuse.untilMs !== Infinity && !this.closing) {
      this.restart(n.name).catch((e: unknown) => this.log(`restarting ${n.name} after its expected exit: ${(e as Error).message}`));
    }
    return true;
  }

  /** From now until endExcuse(), an exit of `name` caused by `cause` is expected. */
  private excuse(name: string, cause: string): void {
    this.exitExcuses.set(name, { cause, untilMs: Infinity });
    this.faultPid.set(name, this.node(name).process?.pid ?? 0);
  }

  /**
   * After a storage fault: a node that survived it but whose log-server disabled its store must
   * re-enable it by itself (its recovery probe) once the fault is gone; one that has not within
   * STORE_RECOVERY_WAIT_MS is restarted, as an operator would, and the timeline says so loudly.
   * Returns what was done.
   */
  private async restartIfStoreDisabled(name: string): Promise<string> {
    const n = this.node(name);
    const pid = this.faultPid.get(name);
    this.faultPid.delete(name);
    // A process started since (after an exit) has a fresh store.
    if (pid === undefined || n.process === null || n.process.pid !== pid || !isRunning(n.process.proc)) return "";
    if (!(await this.storeDisabled(n))) return "";
    const began = performance.now();
    while (performance.now() - began < STORE_RECOVERY_WAIT_MS) {
      await Bun.sleep(250);
      if (!isRunning(n.process.proc)) return "";
      if (!(await this.storeDisabled(n))) {
        const ms = Math.round(performance.now() - began);
        this.log(`${name}: its log-server store, disabled under the fault, re-enabled itself ${ms} ms after the heal`);
        return `; its log-server store re-enabled itself (recovery probe) ${ms} ms after the heal`;
      }
    }
    n.stopping = true;
    await stopServer(n.process.proc, "SIGTERM", 10_000);
    await this.restart(name);
    this.log(`${name}: its log-server store stayed disabled ${STORE_RECOVERY_WAIT_MS} ms after the heal (no recovery); restarted`);
    return `; its log-server store did NOT re-enable itself within ${STORE_RECOVERY_WAIT_MS} ms: restarted`;
  }

  /**
   * Whether the node says (in /metrics, as an operator would see it) that its log-server store takes
   * no writes. A node that does not answer within a few tries counts as not saying so: the liveness
   * check at the end of the run reports a node that stays unresponsive.
   */
  private async storeDisabled(n: ChaosNode): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const r = await fetch(`${this.adminUrl(n)}/metrics`, { signal: AbortSignal.timeout(3000) });
        if (r.ok) return STORE_DISABLED_METRIC.test(await r.text());
      } catch {
        // Busy or restarting: ask again.
      }
      await Bun.sleep(500);
    }
    this.log(`${n.name}: /metrics did not answer; cannot tell whether its log-server store is disabled`);
    return false;
  }

  /** The fault is healed: exits stay excused for `graceMs` (an error already under way), then no more. */
  private endExcuse(name: string, graceMs: number): void {
    const e = this.exitExcuses.get(name);
    if (e !== undefined) this.exitExcuses.set(name, { ...e, untilMs: Date.now() + graceMs });
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

  // ---- storage faults ------------------------------------------------------------------------------

  /**
   * Makes every fsync/fdatasync of the node's process fail with EIO (strace), or only those on the
   * given files of its data directory, until healFsync().
   */
  async failFsync(name: string, outFile: string, files: readonly string[] = []): Promise<void> {
    const n = this.node(name);
    if (n.process === null || !isRunning(n.process.proc)) throw new Error(`${name} is not running`);
    this.excuse(name, "fsync-error");
    try {
      this.fsyncFaults.set(name, await FsyncFailure.start(n.process.pid, outFile, files.map((f) => join(n.dataDir, f))));
    } catch (e) {
      this.endExcuse(name, 0);
      throw e;
    }
  }

  /**
   * Detaches strace; says how many calls were failed. Restarts the node if the fault killed it or
   * left its log-server's store disabled.
   */
  async healFsync(name: string, graceMs = 5_000): Promise<string> {
    const f = this.fsyncFaults.get(name);
    this.fsyncFaults.delete(name);
    const injected = (await f?.stop()) ?? 0;
    this.endExcuse(name, graceMs);
    const restarted = !(this.node(name).process !== null && isRunning(this.node(name).process!.proc));
    await this.restart(name);
    const disabled = await this.restartIfStoreDisabled(name);
    return `strace detached after failing ${injected} fsync/fdatasync call${injected === 1 ? "" : "s"}${restarted ? "; restarted after its exit" : ""}${disabled}`;
  }

  /** The node whose data directory is on a size-limited tmpfs, if any. */
  diskLimitedNode(): ChaosNode | undefined {
    return this.nodes.find((n) => n.tmpfs !== null);
  }

  /** Fills the node's tmpfs; returns the ballast's size. */
  async fillDisk(name: string): Promise<number> {
    const t = this.node(name).tmpfs;
    if (t === null) throw new Error(`${name}'s data directory is not on a tmpfs`);
    this.excuse(name, "disk-full");
    return t.fill();
  }

  /** Deletes the ballast; restarts the node if the full disk killed it or left its log-server's store disabled. */
  async drainDisk(name: string, graceMs = 5_000): Promise<string> {
    const n = this.node(name);
    if (n.tmpfs === null) return "";
    await n.tmpfs.drain();
    this.endExcuse(name, graceMs);
    const restarted = !(n.process !== null && isRunning(n.process.proc));
    await this.restart(name);
    const disabled = await this.restartIfStoreDisabled(name);
    return `ballast deleted${restarted ? "; restarted after its exit" : ""}${disabled}`;
  }

  // ---- metadata membership ---------------------------------------------------------------------------

  /** The metadata servers as the first answering node lists them. */
  async metadataServers(): Promise<MetadataServerView[] | undefined> {
    for (const n of this.running().filter((x) => !x.paused)) {
      try {
        const r = await fetch(`${this.adminUrl(n)}/v1/metadata-servers`, { signal: AbortSignal.timeout(3000) });
        if (r.status !== 200) continue;
        return ((await r.json()) as { servers: MetadataServerView[] }).servers;
      } catch {
        // next node
      }
    }
    return undefined;
  }

  /**
   * POST /v1/metadata-servers/{name}/{action} on the running nodes in turn until one answers 200 or
   * 409 (the transition is not possible: already done, or refused), or the deadline passes.
   */
  async changeMembership(name: string, action: "add" | "remove", timeoutMs = 15_000): Promise<{ ok: boolean; answer: string }> {
    const deadline = Date.now() + timeoutMs;
    // Every answer, in order: a 409 after an unanswered attempt may mean the first one did it.
    const answers: string[] = [];
    const said = () => answers.join("; ") || "no node answered";
    while (Date.now() < deadline) {
      for (const n of this.running().filter((x) => !x.paused)) {
        try {
          const r = await fetch(`${this.adminUrl(n)}/v1/metadata-servers/${encodeURIComponent(name)}/${action}`, {
            method: "POST",
            signal: AbortSignal.timeout(Math.max(1000, Math.min(8000, deadline - Date.now()))),
          });
          const body = (await r.json().catch(() => ({}))) as { code?: string; detail?: string };
          answers.push(`${r.status}${body.code ? ` ${body.code}` : ""}${body.detail ? ` (${body.detail})` : ""} via ${n.name}`);
          if (r.status === 200) return { ok: true, answer: said() };
          if (r.status === 409) return { ok: false, answer: said() };
        } catch (e) {
          answers.push(`${(e as Error).message} via ${n.name}`);
        }
        if (Date.now() >= deadline) break;
      }
      await Bun.sleep(250);
    }
    return { ok: false, answer: said() };
  }

  /** What the node's own metadata server says it is (member, standby, joining, …), if it answers. */
  async ownMetadataState(name: string): Promise<string | undefined> {
    try {
      const r = await fetch(`${this.adminUrl(this.node(name))}/v1/metadata-server/status`, { signal: AbortSignal.timeout(2000) });
      return ((await r.json()) as { state?: string }).state;
    } catch {
      return undefined;
    }
  }

  /** The node's id (`N2`) as its admin API reports it, undefined when it does not answer. */
  async nodeId(name: string): Promise<string | undefined> {
    try {
      const r = await fetch(`${this.adminUrl(this.node(name))}/v1/node`, { signal: AbortSignal.timeout(2000) });
      return ((await r.json()) as { id?: string }).id;
    } catch {
      return undefined;
    }
  }

  /** Where every node's log ends now (see logsSince). */
  logMarks(): Map<string, number> {
    return new Map(this.nodes.map((n) => [n.name, fileSize(n.logFile)]));
  }

  /** What every node logged since `marks` (restarts included: the log file is shared across them). */
  logsSince(marks: ReadonlyMap<string, number>): Array<{ node: string; text: string }> {
    return this.nodes.map((n) => ({ node: n.name, text: readSince(n.logFile, marks.get(n.name) ?? 0) }));
  }

  /**
   * The node's fabric port (the proxy listener every peer dials) refuses connections: open ones are
   * reset, new ones refused by the kernel, while the process keeps running. Returns the resets.
   */
  async refuseConnections(name: string): Promise<number> {
    return await this.proxy.refuse(this.node(name).name);
  }

  async acceptConnections(name: string): Promise<void> {
    await this.proxy.accept(this.node(name).name);
  }

  /** Waits until `name`'s entry in the nodes configuration is in one of `states`. */
  async waitMetadataState(name: string, states: readonly string[], timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    let last: string | undefined;
    do {
      last = (await this.metadataServers())?.find((s) => s.name === name)?.state;
      if (last !== undefined && states.includes(last)) return last;
      await Bun.sleep(200);
    } while (Date.now() < deadline);
    return last;
  }

  /** The node running the sequencer of `logId`'s last segment, if a node lists the logs. */
  async logSequencerNode(logId: number): Promise<string | undefined> {
    for (const n of this.running().filter((x) => !x.paused)) {
      try {
        const r = await fetch(`${this.adminUrl(n)}/v1/logs`, { signal: AbortSignal.timeout(2000) });
        if (r.status !== 200) continue;
        const body = (await r.json()) as { logs: Array<{ id: number; segments: Array<{ sequencer: string | null }> }> };
        const sequencer = body.logs.find((l) => l.id === logId)?.segments.at(-1)?.sequencer; // "N2:1"
        const nodeId = sequencer?.split(":")[0];
        if (nodeId === undefined) return undefined;
        return (await this.metadataServers())?.find((s) => s.node === nodeId)?.name;
      } catch {
        // next node
      }
    }
    return undefined;
  }

  /** Re-adds every node the membership nemesis removed that is still standby. */
  async readdRemovedMetadataServers(): Promise<void> {
    for (const name of [...this.removedMetadataServers]) {
      const state = (await this.metadataServers())?.find((s) => s.name === name)?.state;
      if (state === "standby") {
        const r = await this.changeMembership(name, "add");
        this.log(`re-adding ${name} to the metadata cluster: ${r.answer}`);
        if (!r.ok) continue;
      }
      if (state !== undefined) this.removedMetadataServers.delete(name);
    }
  }

  /** Everything back to normal: links healed, paused nodes resumed, storage faults healed, dead nodes restarted, removed metadata servers re-added. */
  async healAll(): Promise<void> {
    this.proxy.heal();
    for (const name of this.proxy.refused()) await this.proxy.accept(name);
    for (const n of this.nodes) if (n.paused) this.resume(n.name);
    for (const name of [...this.fsyncFaults.keys()]) await this.healFsync(name);
    for (const n of this.nodes) if (n.tmpfs !== null && this.exitExcuses.get(n.name)?.untilMs === Infinity) await this.drainDisk(n.name);
    for (const n of this.nodes) if (n.process === null || !isRunning(n.process.proc)) await this.restart(n.name);
    await this.readdRemovedMetadataServers();
  }

  async stop(): Promise<void> {
    this.closing = true;
    for (const n of this.nodes) n.stopping = true;
    await Promise.all([...this.fsyncFaults.values()].map((f) => f.stop()));
    this.fsyncFaults.clear();
    const procs: Subprocess[] = this.nodes.map((n) => n.process?.proc).filter((p): p is Subprocess => p !== undefined);
    await Promise.all(procs.map((p) => stopServer(p, "SIGTERM", 10_000)));
    for (const n of this.nodes) {
      if (n.tmpfs === null) continue;
      // Leave the data directory readable from outside the namespace (artifacts), then drop it.
      await n.tmpfs.exportContents().catch((e: unknown) => this.log(`copying ${n.name}'s tmpfs out: ${(e as Error).message}`));
      await n.tmpfs.stop();
    }
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
