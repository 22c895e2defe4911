// The closed-loop load generator shared by cairn and etcd: N clients, each keeping one request in
// flight, every request under its own deadline (AbortSignal.timeout). Counts what completes inside
// the measurement window (after a warm-up) and keeps every latency for percentiles.

/** What a run counted in its measurement window. */
interface LoadCounts {
  concurrency: number;
  ops: number;
  errors: number;
  /** Requests aborted by their deadline (hung past it). */
  deadlineExceeded: number;
  seconds: number;
  /** A few distinct error messages, with counts. */
  errorSamples: Record<string, number>;
}

export interface LoadStats extends LoadCounts {
  opsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
}

export type Op = (client: number, seq: number, signal: AbortSignal) => Promise<void>;

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function isDeadline(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === "TimeoutError" || name === "AbortError";
}

export function errorText(e: unknown): string {
  if (isDeadline(e)) return "client deadline exceeded";
  const msg = e instanceof Error ? e.message : String(e);
  // Collapse numbers so the same failure from different requests counts as one kind.
  return msg.replace(/[0-9]{3,}/g, "#").slice(0, 160);
}

export function noteError(samples: Record<string, number>, e: unknown): void {
  const k = errorText(e);
  if (samples[k] !== undefined || Object.keys(samples).length < 8) samples[k] = (samples[k] ?? 0) + 1;
}

/** What one closed-loop run measured, before summarising; runs of several processes are merged. */
export interface RawLoad extends LoadCounts {
  /** Latency of every request completed in the window, in ms (unsorted). */
  latenciesMs: number[];
}

/**
 * Closed loop: `concurrency` clients, warm-up, then a measurement window that lasts `measure` ms,
 * or until the promise settles (a window whose end is decided elsewhere).
 */
export async function runLoadRaw(opts: { concurrency: number; warmupMs: number; measure: number | Promise<unknown>; deadlineMs: number; op: Op }): Promise<RawLoad> {
  let stop = false;
  let measuring = false;
  let ops = 0;
  let errors = 0;
  let deadlineExceeded = 0;
  const errorSamples: Record<string, number> = {};
  const latenciesMs: number[] = [];
  const client = async (id: number) => {
    for (let seq = 0; !stop; seq++) {
      const started = performance.now();
      try {
        await opts.op(id, seq, AbortSignal.timeout(opts.deadlineMs));
        if (measuring) {
          ops++;
          latenciesMs.push(performance.now() - started);
        }
      } catch (e) {
        if (measuring) {
          errors++;
          if (isDeadline(e)) deadlineExceeded++;
          noteError(errorSamples, e);
        }
        await Bun.sleep(10); // Do not spin on a refusing server.
      }
    }
  };
  const clients = Array.from({ length: opts.concurrency }, (_, i) => client(i));
  await Bun.sleep(opts.warmupMs);
  measuring = true;
  const t0 = performance.now();
  await (typeof opts.measure === "number" ? Bun.sleep(opts.measure) : opts.measure);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(clients);
  return { concurrency: opts.concurrency, ops, errors, deadlineExceeded, seconds, latenciesMs, errorSamples };
}

/** Several processes' runs of the same window as one: throughput adds up, latencies pool. */
export function mergeRaw(runs: RawLoad[]): RawLoad {
  const errorSamples: Record<string, number> = {};
  for (const r of runs) for (const [k, n] of Object.entries(r.errorSamples)) errorSamples[k] = (errorSamples[k] ?? 0) + n;
  return {
    concurrency: runs.reduce((a, r) => a + r.concurrency, 0),
    ops: runs.reduce((a, r) => a + r.ops, 0),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    deadlineExceeded: runs.reduce((a, r) => a + r.deadlineExceeded, 0),
    // Windows of processes started together; their mean is the window.
    seconds: runs.reduce((a, r) => a + r.seconds, 0) / Math.max(1, runs.length),
    latenciesMs: runs.flatMap((r) => r.latenciesMs),
    errorSamples,
  };
}

export function summarizeLoad(raw: RawLoad): LoadStats {
  const latencies = Float64Array.from(raw.latenciesMs).sort();
  return {
    concurrency: raw.concurrency,
    ops: raw.ops,
    errors: raw.errors,
    deadlineExceeded: raw.deadlineExceeded,
    seconds: round(raw.seconds, 2),
    opsPerSecond: Math.round(raw.ops / raw.seconds),
    latencyMsP50: round(percentile(latencies, 50), 2),
    latencyMsP99: round(percentile(latencies, 99), 2),
    latencyMsMax: round(latencies[latencies.length - 1] ?? 0, 2),
    errorSamples: raw.errorSamples,
  };
}

export async function runLoad(opts: { concurrency: number; warmupMs: number; measureMs: number; deadlineMs: number; op: Op }): Promise<LoadStats> {
  return summarizeLoad(await runLoadRaw({ ...opts, measure: opts.measureMs }));
}

const VALUE_BYTES = 100;

/** A JSON document of exactly `bytes` bytes (100 by default) naming its writer and sequence number. */
export function makeValue(client: number, seq: number, bytes: number = VALUE_BYTES): string {
  const head = `{"c":${client},"s":${seq},"p":"`;
  const padLength = Math.max(0, bytes - head.length - 2);
  return `${head}${"x".repeat(padLength)}"}`;
}

export const VALUE_SIZE_BYTES = VALUE_BYTES;

export function keyName(index: number): string {
  return `bench-k${String(index).padStart(4, "0")}`;
}
