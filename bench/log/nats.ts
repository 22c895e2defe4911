// NATS JetStream beside cairn: three nats-server processes on 127.0.0.1 joined by cluster routes,
// one R3 file-backed stream. The load connects to the stream leader's server (as cairn's load goes
// to the sequencer's node). JetStream acknowledges a publish once a quorum has it in memory/page
// cache (its file store does not fsync per message), so it compares with cairn's sync=false.
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { type JetStreamClient, type JetStreamManager, type NatsConnection, StorageType, connect } from "nats";
import type { ProcessRegistry } from "../metadata/procs.ts";

export const STREAM = "BENCH";
export const SUBJECT = "bench.log";

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function natsVersion(): string | undefined {
  const r = Bun.spawnSync(["nats-server", "--version"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : undefined;
}

async function retryConnect(servers: string[], deadline: number): Promise<NatsConnection> {
  for (;;) {
    try {
      return await connect({ servers });
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await Bun.sleep(100);
    }
  }
}

interface NatsServer {
  name: string;
  pid: number;
  port: number;
}

export class NatsCluster {
  private conns: NatsConnection[] = [];

  private constructor(
    readonly servers: NatsServer[],
    private readonly registry: ProcessRegistry,
  ) {}

  static async start(registry: ProcessRegistry, baseDir: string): Promise<NatsCluster> {
    const ports = [];
    for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), cluster: await freePort() });
    const servers: NatsServer[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = join(baseDir, `s${i + 1}`);
      mkdirSync(dir, { recursive: true });
      const log = openSync(join(dir, "server.log"), "w");
      const routes = ports.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p.cluster}`).join(",");
      const proc = Bun.spawn(
        ["nats-server", "-a", "127.0.0.1", "-p", String(ports[i]!.client), "-n", `s${i + 1}`, "-js", "-sd", dir,
          "--cluster_name", "bench", "--cluster", `nats://127.0.0.1:${ports[i]!.cluster}`, "--routes", routes],
        { stdout: log, stderr: log, stdin: "ignore" },
      );
      closeSync(log);
      registry.track(proc.pid, "nats", `nats-server s${i + 1}`, proc);
      servers.push({ name: `s${i + 1}`, pid: proc.pid, port: ports[i]!.client });
    }
    return new NatsCluster(servers, registry);
  }

  /** Creates the file stream with `replicas` copies (R3 unless told; retrying while the JetStream
   * meta group elects) and returns a publisher connected to the stream leader's server, and the
   * stream manager (on a connection to any server). */
  async streamPublisher(timeoutMs: number, replicas = 3): Promise<{ js: JetStreamClient; jsm: JetStreamManager; leader: string }> {
    const deadline = performance.now() + timeoutMs;
    // The servers take a moment to listen: connect refused until then.
    const admin = await retryConnect(this.servers.map((s) => `127.0.0.1:${s.port}`), deadline);
    this.conns.push(admin);
    let leader: string | undefined;
    let jsm: JetStreamManager | undefined;
    let last: unknown;
    while (leader === undefined && performance.now() < deadline) {
      try {
        jsm = await admin.jetstreamManager({ timeout: 5000 });
        try {
          await jsm.streams.info(STREAM);
        } catch {
          await jsm.streams.add({ name: STREAM, subjects: ["bench.>"], num_replicas: replicas, storage: StorageType.File });
        }
        const info = await jsm.streams.info(STREAM);
        if (info.cluster?.leader && (info.cluster.replicas ?? []).filter((r) => r.current).length === replicas - 1) leader = info.cluster.leader;
        else await Bun.sleep(200);
      } catch (e) {
        last = e;
        await Bun.sleep(300);
      }
    }
    if (leader === undefined || jsm === undefined) throw new Error(`JetStream stream not ready within ${timeoutMs} ms: ${String(last)}`);
    const server = this.servers.find((s) => s.name === leader)!;
    const nc = await retryConnect([`127.0.0.1:${server.port}`], deadline);
    this.conns.push(nc);
    return { js: nc.jetstream({ timeout: 10_000 }), jsm, leader };
  }

  async stop(): Promise<void> {
    for (const c of this.conns) await c.close().catch(() => undefined);
    this.conns = [];
    for (const s of this.servers) {
      try {
        process.kill(s.pid, "SIGTERM");
      } catch {
        // Gone.
      }
    }
    await Promise.all(this.servers.map((s) => this.registry.waitGone(s.pid, 10_000)));
  }

  logTail(name: string, dir: string): string {
    try {
      return readFileSync(join(dir, name, "server.log"), "utf8").split("\n").slice(-10).join("\n");
    } catch {
      return "";
    }
  }
}
