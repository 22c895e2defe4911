// A load-generating process of the metadata benchmarks (run by load-procs.ts, never by hand): it
// takes one job (see load-jobs.ts) as argv[2], says "ready", waits for "go", runs the job, prints
// its result and exits on "exit" or end of input. Keeping the load out of the benchmark's own
// process lets the parent measure this process's CPU and add processes when one saturates.
import { kvFor } from "./kv-http.ts";
import type { LoadJob, PreloadJob, PreloadOutcome, WorkerCommand, WorkerMessage } from "./load-jobs.ts";
import { forEachLine, preloadKey } from "./load-jobs.ts";
import { type Op, errorText, makeValue, noteError, runLoadRaw } from "./load.ts";

const PROGRESS_INTERVAL_MS = 1000;
const RETRY_PAUSE_MS = 100;

function send(m: WorkerMessage): void {
  process.stdout.write(JSON.stringify(m) + "\n");
}

/** Resolves the first time each command arrives; end of input counts as "stop" and "exit". */
function commands(): Record<WorkerCommand, Promise<void>> {
  const resolvers = {} as Record<WorkerCommand, () => void>;
  const promises = {} as Record<WorkerCommand, Promise<void>>;
  for (const c of ["go", "stop", "exit"] as const) promises[c] = new Promise<void>((r) => (resolvers[c] = r));
  void (async () => {
    await forEachLine(Bun.stdin.stream(), (line) => resolvers[line.trim() as WorkerCommand]?.());
    resolvers.stop();
    resolvers.exit();
  })();
  return promises;
}

async function preload(job: PreloadJob): Promise<PreloadOutcome> {
  const kv = kvFor(job.system);
  const out: PreloadOutcome = { written: 0, failed: 0, errorSamples: {} };
  let next = job.from;
  const client = async (c: number) => {
    while (next < job.to) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await kv.put(job.url, preloadKey(job.keyModulo === undefined ? i : i % job.keyModulo), makeValue(c, i, job.valueBytes), AbortSignal.timeout(job.deadlineMs));
          out.written++;
          break;
        } catch (e) {
          noteError(out.errorSamples, e);
          if (attempt >= job.attemptsPerKey) {
            out.failed++;
            break;
          }
          await Bun.sleep(RETRY_PAUSE_MS);
        }
      }
    }
  };
  const progress = setInterval(() => send({ type: "progress", written: out.written, failed: out.failed }), PROGRESS_INTERVAL_MS);
  try {
    await Promise.all(Array.from({ length: job.clients }, (_, c) => client(c)));
  } finally {
    clearInterval(progress);
  }
  return out;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "null") as LoadJob | null;
  if (job === null) throw new Error("usage: load-worker.ts <job JSON> (started by load-procs.ts)");
  const cmd = commands();
  send({ type: "ready" });
  const started = await Promise.race([cmd.go.then(() => true), cmd.exit.then(() => false)]);
  if (!started) process.exit(0);
  const kv = kvFor(job.system);
  try {
    if (job.kind === "preload") {
      send({ type: "result", preload: await preload(job) });
    } else {
      const op: Op =
        job.kind === "put"
          ? (c, seq, signal) =>
              kv.put(
                job.url,
                job.keyCount === undefined ? `${job.keyPrefix}c${c}-${seq}` : preloadKey(Math.floor(Math.random() * job.keyCount)),
                makeValue(c, seq, job.valueBytes),
                signal,
              )
          : (_c, _seq, signal) => kv.get(job.url, preloadKey(Math.floor(Math.random() * job.keyCount)), job.mode, signal);
      const load = await runLoadRaw({ concurrency: job.clients, warmupMs: job.warmupMs, measure: job.measureMs ?? cmd.stop, deadlineMs: job.deadlineMs, op });
      send({ type: "result", load });
    }
  } catch (e) {
    send({ type: "error", message: errorText(e) });
  }
  // Stay alive until told (the parent reads this process's CPU after the result).
  await cmd.exit;
  process.exit(0);
}

await main();
