// cairn under the log benchmark: a 1-node cluster (local loglet) or a 3-node one (replicated,
// r = 2) started with `cairn dev --json`, log-server settings passed through the environment
// (`cairn dev` and restarted nodes inherit it). Appends go through any node's admin API; the log's
// chain names the sequencer, so the load can be aimed at the sequencer's node (or away from it).
import http2 from "node:http2";
import { CairnCluster, startDev } from "../metadata/cairn.ts";
import type { BenchNode } from "../metadata/cluster.ts";
import { httpFail } from "../metadata/cluster.ts";
import type { ProcessRegistry } from "../metadata/procs.ts";

export interface Segment {
  index: number;
  baseLsn: number;
  sealedTail: number | null;
  kind: string;
  sequencer: string;
  nodeset: string[];
  replication: number;
}

/** Append a batch of utf8 records; resolves once cairn reports them durable. */
export async function appendRecords(url: string, log: number, body: string, signal: AbortSignal): Promise<void> {
  const res = await fetch(`${url}/v1/logs/${log}/records`, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
  if (!res.ok) await httpFail(res, "append");
  await res.arrayBuffer();
}

/**
 * The load of one benchmark cell: every append on one HTTP/2 cleartext connection to the admin API
 * (as JetStream's publishes share one NATS connection). HTTP/1.1 needs a connection per request in
 * flight, and Bun's fetch keeps only 64 idle ones: at 256 in flight it reconnected for about every
 * other request (12 000 TCP set-ups/s, twice the server CPU per request), measuring TCP, not cairn.
 */
export async function appendClient(url: string, log: number, body: string): Promise<{
  client: string;
  append: (signal: AbortSignal) => Promise<void>;
  close: () => Promise<void>;
}> {
  const session = http2.connect(url, { settings: { initialWindowSize: 16 << 20 } });
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("error", reject);
  });
  session.setLocalWindowSize(16 << 20);
  session.on("error", () => undefined); // a lost connection fails the streams in flight ("close" below)
  const bytes = Buffer.from(body);
  const headers = { ":method": "POST", ":path": `/v1/logs/${log}/records`, "content-type": "application/json", "content-length": bytes.byteLength };
  const append = (signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      const stream = session.request(headers);
      const onAbort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
      signal.addEventListener("abort", onAbort, { once: true });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (status = Number(h[":status"])));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("close", () => {
        signal.removeEventListener("abort", onAbort);
        if (status === 200) resolve();
        else if (signal.aborted) reject(signal.reason);
        else reject(new Error(`append: HTTP ${status} ${Buffer.concat(chunks).toString("utf8").slice(0, 200)}`));
      });
      stream.on("error", () => undefined); // "close" reports the outcome
      stream.end(bytes);
    });
  return {
    client: "node:http2, one h2c connection",
    append,
    close: () => new Promise<void>((resolve) => session.close(() => resolve())),
  };
}

export function appendBody(records: string[]): string {
  return JSON.stringify({ records, encoding: "utf8" });
}

export async function tailSegment(url: string, log: number, signal = AbortSignal.timeout(2000)): Promise<Segment> {
  const res = await fetch(`${url}/v1/logs/${log}`, { signal });
  if (!res.ok) await httpFail(res, "chain");
  const body = (await res.json()) as { log: { segments: Segment[] } };
  const last = body.log.segments[body.log.segments.length - 1];
  if (last === undefined) throw new Error(`log ${log} has no segment`);
  return last;
}

export async function nodeId(url: string, signal = AbortSignal.timeout(2000)): Promise<string> {
  const res = await fetch(`${url}/v1/node`, { signal });
  if (!res.ok) await httpFail(res, "node");
  return ((await res.json()) as { id: string }).id;
}

/** "N2:5" → "N2". */
export function sequencerNode(seg: Segment): string {
  return seg.sequencer.split(":")[0]!;
}

/** Run `fn` with extra environment variables visible to processes spawned meanwhile. */
export async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A single-node cluster (replication 1); `cairn dev --nodes 1`, stopped by SIGTERM to its PID. */
export class SingleNode {
  private constructor(
    readonly node: BenchNode,
    private readonly devPid: number,
    private readonly registry: ProcessRegistry,
  ) {}

  static async start(registry: ProcessRegistry, baseDir: string, timeoutMs: number): Promise<SingleNode> {
    const { devPid, dev } = await startDev(registry, baseDir, timeoutMs, ["--nodes", "1", "--replication", "1", "--num-partitions", "1"], "cairn dev (1 node)");
    const n = dev.nodes[0]!;
    return new SingleNode({ name: n.name, pid: n.pid, url: n.admin }, devPid, registry);
  }

  async stop(): Promise<void> {
    try {
      process.kill(this.devPid, "SIGTERM");
    } catch {
      // Already gone.
    }
    await this.registry.waitGone(this.devPid, 15_000);
  }
}

/** Until `fn` succeeds (bounded); returns its value. */
export async function retryUntil<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await Bun.sleep(100);
    }
  }
  throw new Error(`${what} within ${timeoutMs} ms: ${last instanceof Error ? last.message : String(last)}`);
}

export { CairnCluster };
