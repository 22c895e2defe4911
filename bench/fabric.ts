// Peer fabric round trips: FabricClient → FabricServer (echo RPC with a binary payload) against a
// baseline of plain HTTP/1.1 fetch → Bun.serve echoing the same bytes, in the same run. A second
// reference, a bare node:http2 session → Bun.serve (http2) echo without codec, validation or fencing,
// separates the fabric's own cost from the HTTP/2 stack's. The servers run in a child process so
// client and server do not share one JS thread. Prints a table with fabric/baseline ratios and
// writes bench/results/fabric.json.
//   flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/fabric.ts [--seconds 3] [--quick]
// Other work on the machine skews figures: bg_cpu% is the CPU other processes used during each trial.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import os from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { Type } from "@sinclair/typebox";
import { createRegistry } from "../src/observability/metrics.ts";
import { defineRpc, FabricClient, FabricServer, type ServerTransportKind } from "../src/net/index.ts";

const BenchEcho = defineRpc({
  service: "bench",
  method: "echo",
  request: Type.Object({ payload: Type.Uint8Array() }),
  response: Type.Object({ payload: Type.Uint8Array() }),
});

const IDENTITY = { clusterName: "bench", fingerprint: "fp-bench", nodeId: "N1", generation: 1 };
const { values: args } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    transport: { type: "string", default: "bun" },
    seconds: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
  },
});

if (args.serve) {
  await serve(args.transport as ServerTransportKind);
} else {
  await main();
}

/** Child: a fabric server and a baseline HTTP/1.1 echo server; prints their ports. */
async function serve(transport: ServerTransportKind): Promise<void> {
  const fabric = new FabricServer({
    host: "127.0.0.1",
    port: 0,
    identity: () => IDENTITY,
    registry: createRegistry({ defaultMetrics: false }),
    options: { serverTransport: transport },
  });
  fabric.register(BenchEcho, (req) => ({ payload: req.payload }));
  await fabric.start();
  const baseline = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: async (req) => new Response(await req.arrayBuffer(), { headers: { "content-type": "application/octet-stream" } }),
  });
  const rawH2 = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    http2: true,
    idleTimeout: 0,
    fetch: async (req) => new Response(await req.arrayBuffer(), { headers: { "content-type": "application/octet-stream" } }),
  });
  process.stdout.write(`${JSON.stringify({ fabric: fabric.address.port, baseline: baseline.port, rawH2: rawH2.port })}\n`);
  process.on("SIGTERM", () => {
    void fabric
      .stop()
      .then(() => Promise.all([baseline.stop(true), rawH2.stop(true)]))
      .then(() => process.exit(0));
  });
}

interface Trial {
  readonly target: string;
  readonly payloadBytes: number;
  readonly concurrency: number;
  readonly calls: number;
  readonly errors: number;
  readonly seconds: number;
  readonly callsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly bgCpuPercent: number;
  /** Server process CPU per call (user + sys), from /proc at 10 ms resolution. */
  readonly serverCpuUsPerCall: number;
}

async function main(): Promise<void> {
  const seconds = Number(args.seconds);
  const warmupMs = 500;
  const jitWarmupMs = 1_500;
  const payloads = [100, 64 * 1024];
  const concurrencies = args.quick ? [16] : [1, 16, 256];
  const transports: ServerTransportKind[] = ["bun", "node"];
  const trials: Trial[] = [];
  const started = Date.now();

  for (const transport of transports) {
    const child = await startChild(transport);
    try {
      const client = new FabricClient({ identity: () => IDENTITY, registry: createRegistry({ defaultMetrics: false }) });
      const fabricUrl = `127.0.0.1:${child.ports.fabric}`;
      const baselineUrl = `http://127.0.0.1:${child.ports.baseline}/echo`;
      const raw = transport === "bun" ? await rawH2Session(child.ports.rawH2) : null;
      // Warm the JIT on every path before the first measured trial (the first trial ran cold otherwise).
      const small = new Uint8Array(100);
      await runLoad(() => client.call(fabricUrl, BenchEcho, { payload: small }).then(() => {}), 16, jitWarmupMs, null);
      if (transport === "bun") await runLoad(() => fetch(baselineUrl, { method: "POST", body: small }).then((r) => r.arrayBuffer()).then(() => {}), 16, jitWarmupMs, null);
      if (raw !== null) await runLoad(() => rawH2Echo(raw, small), 16, jitWarmupMs, null);
      for (const payloadBytes of payloads) {
        const payload = new Uint8Array(payloadBytes).map((_, i) => i & 255);
        for (const concurrency of concurrencies) {
          const fabricCall = async (): Promise<void> => {
            const res = await client.call(fabricUrl, BenchEcho, { payload });
            if (res.payload.byteLength !== payloadBytes) throw new Error("bad echo");
          };
          trials.push(await trial(`fabric(${transport})`, payloadBytes, concurrency, fabricCall, seconds, warmupMs, child.pid));
          // The baseline does not depend on the fabric's server transport: measure it once.
          if (transport === "bun") {
            const baselineCall = async (): Promise<void> => {
              const res = await fetch(baselineUrl, { method: "POST", body: payload });
              if ((await res.arrayBuffer()).byteLength !== payloadBytes) throw new Error("bad echo");
            };
            trials.push(await trial("baseline http1.1", payloadBytes, concurrency, baselineCall, seconds, warmupMs, child.pid));
          }
          if (raw !== null) {
            const rawCall = () => rawH2Echo(raw, payload);
            trials.push(await trial("raw h2 (no fabric)", payloadBytes, concurrency, rawCall, seconds, warmupMs, child.pid));
          }
        }
      }
      await client.close();
      raw?.close();
    } finally {
      await child.stop();
    }
  }

  printTable(trials);
  const out = join(dirname(new URL(import.meta.url).pathname), "results", "fabric.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        benchmark: "fabric",
        date: new Date().toISOString(),
        bun: Bun.version,
        cpus: os.cpus().length,
        secondsPerTrial: seconds,
        note:
          "client in this process, servers in a child process; baseline = fetch (HTTP/1.1) to Bun.serve echoing raw bytes; " +
          "raw h2 = node:http2 session (same tuning) to Bun.serve http2 echoing raw bytes; fabric(x) = FabricClient to FabricServer " +
          "on transport x (frame codec, schema validation both ways, fencing, deadlines, metrics); bgCpuPercent = CPU used by other processes",
        totalSeconds: (Date.now() - started) / 1000,
        trials,
        ratios: ratios(trials),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${out} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

async function trial(
  target: string,
  payloadBytes: number,
  concurrency: number,
  call: () => Promise<void>,
  seconds: number,
  warmupMs: number,
  childPid: number,
): Promise<Trial> {
  await runLoad(call, concurrency, warmupMs, null);
  const cpuBefore = cpuSample(childPid);
  const latenciesMs: number[] = [];
  const t0 = performance.now();
  const { calls, errors } = await runLoad(call, concurrency, seconds * 1000, latenciesMs);
  const elapsedS = (performance.now() - t0) / 1000;
  const cpuAfter = cpuSample(childPid);
  const bgCpuPercent = backgroundCpuPercent(cpuBefore, cpuAfter);
  const serverCpuUsPerCall = calls === 0 ? Number.NaN : ((cpuAfter.serverTicks - cpuBefore.serverTicks) * 10_000) / calls;
  latenciesMs.sort((a, b) => a - b);
  const t: Trial = {
    target,
    payloadBytes,
    concurrency,
    calls,
    errors,
    seconds: round(elapsedS, 2),
    callsPerSecond: Math.round(calls / elapsedS),
    p50Ms: round(percentile(latenciesMs, 0.5), 3),
    p99Ms: round(percentile(latenciesMs, 0.99), 3),
    bgCpuPercent: Math.round(bgCpuPercent),
    serverCpuUsPerCall: round(serverCpuUsPerCall, 1),
  };
  console.error(`${target.padEnd(17)} ${String(payloadBytes).padStart(6)} B c=${String(concurrency).padEnd(3)} ${String(t.callsPerSecond).padStart(7)}/s p50 ${t.p50Ms} ms p99 ${t.p99Ms} ms errors ${errors} server ${t.serverCpuUsPerCall} µs/call bg ${t.bgCpuPercent}%`);
  return t;
}

/** `concurrency` workers call back to back until `durationMs` has passed. */
async function runLoad(call: () => Promise<void>, concurrency: number, durationMs: number, latenciesMs: number[] | null): Promise<{ calls: number; errors: number }> {
  const endAt = performance.now() + durationMs;
  let calls = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < endAt) {
      const start = performance.now();
      try {
        await call();
        calls++;
        latenciesMs?.push(performance.now() - start);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { calls, errors };
}

interface Child {
  readonly pid: number;
  readonly ports: { fabric: number; baseline: number; rawH2: number };
  stop(): Promise<void>;
}

async function startChild(transport: ServerTransportKind): Promise<Child> {
  const proc = Bun.spawn([process.execPath, new URL(import.meta.url).pathname, "--serve", "--transport", transport], { stdout: "pipe", stderr: "inherit" });
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5_000).then(() => false)]);
    if (!exited) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  };
  try {
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) throw new Error("bench server exited before reporting its ports");
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    return { pid: proc.pid, ports: JSON.parse(text.slice(0, text.indexOf("\n"))) as Child["ports"], stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A node:http2 session tuned like the fabric's (windows, session memory), for the raw reference. */
async function rawH2Session(port: number): Promise<http2.ClientHttp2Session> {
  const windowSizeBytes = 16 * 1024 * 1024;
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: windowSizeBytes }, maxSessionMemory: 256 });
  await new Promise((resolve, reject) => {
    session.once("remoteSettings", resolve);
    session.once("error", reject);
  });
  session.setLocalWindowSize(windowSizeBytes);
  return session;
}

function rawH2Echo(session: http2.ClientHttp2Session, payload: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": "/echo", "content-length": payload.byteLength });
    let receivedBytes = 0;
    stream.on("data", (chunk: Buffer) => (receivedBytes += chunk.length));
    stream.on("end", () => (receivedBytes === payload.byteLength ? resolve() : reject(new Error("bad echo"))));
    stream.on("error", reject);
    stream.end(payload);
  });
}

interface CpuSample {
  readonly busyTicks: number;
  readonly ourTicks: number;
  readonly serverTicks: number;
  readonly atMs: number;
}

/** Machine-wide busy CPU and this benchmark's own (this process + the server child), in clock ticks. */
function cpuSample(childPid: number): CpuSample {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const serverTicks = processTicks(String(childPid));
  return { busyTicks: total - idle, ourTicks: processTicks("self") + serverTicks, serverTicks, atMs: performance.now() };
}

function processTicks(pid: string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[11]) + Number(rest[12]); // utime + stime
  } catch {
    return 0;
  }
}

function backgroundCpuPercent(a: CpuSample, b: CpuSample): number {
  const ticksPerSecond = 100;
  const capacityTicks = ((b.atMs - a.atMs) / 1000) * ticksPerSecond * os.cpus().length;
  const background = b.busyTicks - a.busyTicks - (b.ourTicks - a.ourTicks);
  return Math.max(0, (100 * background) / capacityTicks);
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

interface Ratio {
  readonly payloadBytes: number;
  readonly concurrency: number;
  readonly target: string;
  /** calls/s of the target over the HTTP/1.1 baseline's. */
  readonly throughputRatio: number;
  readonly p99Ratio: number;
  /** calls/s of the target over the bare HTTP/2 echo's (the fabric's own cost). */
  readonly throughputVsRawH2: number | null;
}

function ratios(trials: Trial[]): Ratio[] {
  const out: Ratio[] = [];
  const same = (a: Trial, b: Trial): boolean => a.payloadBytes === b.payloadBytes && a.concurrency === b.concurrency;
  for (const t of trials) {
    if (t.target.startsWith("baseline")) continue;
    const base = trials.find((b) => b.target.startsWith("baseline") && same(b, t));
    if (base === undefined) continue;
    const raw = t.target.startsWith("fabric") ? trials.find((b) => b.target.startsWith("raw h2") && same(b, t)) : undefined;
    out.push({
      payloadBytes: t.payloadBytes,
      concurrency: t.concurrency,
      target: t.target,
      throughputRatio: round(t.callsPerSecond / base.callsPerSecond, 2),
      p99Ratio: round(t.p99Ms / base.p99Ms, 2),
      throughputVsRawH2: raw === undefined ? null : round(t.callsPerSecond / raw.callsPerSecond, 2),
    });
  }
  return out;
}

function printTable(trials: Trial[]): void {
  const r = ratios(trials);
  console.log("\n| target | payload | c | calls/s | p50 ms | p99 ms | errors | server µs/call | bg cpu % | calls/s vs baseline | p99 vs baseline | calls/s vs raw h2 |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const t of trials) {
    const ratio = r.find((x) => x.target === t.target && x.payloadBytes === t.payloadBytes && x.concurrency === t.concurrency);
    const size = t.payloadBytes >= 1024 ? `${t.payloadBytes / 1024} KiB` : `${t.payloadBytes} B`;
    console.log(
      `| ${t.target} | ${size} | ${t.concurrency} | ${t.callsPerSecond} | ${t.p50Ms} | ${t.p99Ms} | ${t.errors} | ${t.serverCpuUsPerCall} | ${t.bgCpuPercent} | ${ratio ? `${ratio.throughputRatio}x` : "–"} | ${ratio ? `${ratio.p99Ratio}x` : "–"} | ${ratio?.throughputVsRawH2 != null ? `${ratio.throughputVsRawH2}x` : "–"} |`,
    );
  }
}
