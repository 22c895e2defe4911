// A load-generating process of the metadata benchmarks (run by load-procs.ts, never by hand): it
// takes one job (see load-jobs.ts) as argv[2], says "ready", waits for "go", runs the job, prints
// its result and exits on "exit" or end of input. Keeping the load out of the benchmark's own
// process lets the parent measure this process's CPU and add processes when one saturates.
import { kvFor } from "./kv-http.ts";
import type { LoadJob, PreloadJob, PreloadOutcome } from "./load-jobs.ts";
import { preloadKey, withProgress, workerMain } from "./load-jobs.ts";
import { type Op, makeValue, noteError, runLoadRaw } from "./load.ts";

const RETRY_PAUSE_MS = 100;

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
  return withProgress(out, job.clients, client);
}

await workerMain<LoadJob>("usage: load-worker.ts <job JSON> (started by load-procs.ts)", async (job, stop) => {
  if (job.kind === "preload") return { type: "result", preload: await preload(job) };
  const kv = kvFor(job.system);
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
  return { type: "result", load: await runLoadRaw({ concurrency: job.clients, warmupMs: job.warmupMs, measure: job.measureMs ?? stop, deadlineMs: job.deadlineMs, op }) };
});
