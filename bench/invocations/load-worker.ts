// A load-generating process of bench/invocations.ts (started by bench/metadata/load-procs.ts, never by
// hand): one job (jobs.ts) as argv[2]; says "ready", waits for "go", runs closed-loop invocations,
// prints its result, exits on "exit" or end of input. Separate processes keep the load generator's
// CPU visible and out of the systems' way.
import { type PreloadOutcome, withProgress, workerMain } from "../metadata/load-jobs.ts";
import { noteError, runLoadRaw } from "../metadata/load.ts";
import { type CountJob, type InvocationJob, invoke } from "./jobs.ts";

const FAILURE_PAUSE_MS = 10;

/** `count` invocations shared by the clients; a failure is counted, not retried (RSS is what matters). */
function runCount(job: CountJob): Promise<PreloadOutcome> {
  const out: PreloadOutcome = { written: 0, failed: 0, errorSamples: {} };
  let next = 0;
  return withProgress(out, job.clients, async () => {
    while (next < job.count) {
      const seq = next++;
      try {
        await invoke(job.url, seq % 2 === 0 ? "greet" : "counter-many", job.key, seq, AbortSignal.timeout(job.deadlineMs));
        out.written++;
      } catch (e) {
        out.failed++;
        noteError(out.errorSamples, e);
        await Bun.sleep(FAILURE_PAUSE_MS);
      }
    }
  });
}

await workerMain<InvocationJob>("usage: load-worker.ts <job JSON> (started by bench/invocations.ts)", async (job, stop) => {
  if (job.kind === "count") return { type: "result", preload: await runCount(job) };
  // counter-many keys are `${key}-c${client}-${seq}`: never reused.
  const load = await runLoadRaw({
    concurrency: job.clients,
    warmupMs: job.warmupMs,
    measure: job.measureMs ?? stop,
    deadlineMs: job.deadlineMs,
    op: (client, seq, signal) => invoke(job.url, job.op, job.op === "counter-hot" ? job.key : `${job.key}-c${client}`, seq, signal),
  });
  return { type: "result", load };
});
