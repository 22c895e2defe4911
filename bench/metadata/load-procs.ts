// The benchmark's side of its load-worker processes: spawn one process per job (tracked by PID
// in the registry, group "load"), wait until all are ready, start them together, collect their
// results and their CPU (utime + stime from /proc/<pid>/stat between "go" and the result, while
// the process is still alive), then let them exit: close(), which stops whatever is left by PID,
// belongs in the caller's `finally`.
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type PreloadOutcome, type WorkerMessage, forEachLine } from "./load-jobs.ts";
import { type RawLoad, round } from "./load.ts";
import type { ProcessRegistry } from "./procs.ts";
import { JIFFIES_PER_SECOND, processCpuJiffies } from "./procstat.ts";

const WORKER_TS = join(import.meta.dir, "load-worker.ts");
const READY_TIMEOUT_MS = 30_000;
const EXIT_GRACE_MS = 5000;

/** CPU of the load processes over a run, each in % of one core (100 = a saturated process). */
export interface LoadCpu {
  processes: number;
  perProcessPctOfCore: number[];
  maxPctOfCore: number;
  sumPctOfCore: number;
}

export interface LoadOutcome {
  loads: RawLoad[];
  preloads: PreloadOutcome[];
  cpu: LoadCpu;
}

/** `total` clients in processes of at most `perProcess` each, as evenly as possible. */
export function splitClients(total: number, perProcess: number): number[] {
  const n = Math.max(1, Math.ceil(total / Math.max(1, perProcess)));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0)).filter((c) => c > 0);
}

interface Worker {
  proc: Subprocess<"pipe", "pipe", number>;
  ready: Promise<void>;
  result: Promise<WorkerMessage & { type: "result" }>;
  written: number;
  failed: number;
}

export class LoadProcesses {
  private cpu0: number[] = [];
  private t0Ms = 0;

  private constructor(
    private readonly registry: ProcessRegistry,
    private readonly workers: Worker[],
  ) {}

  /**
   * Spawn one worker per job; resolves once every one is ready (or throws, having stopped them).
   * `workerTs` is another worker script speaking the same messages (bench/invocations/load-worker.ts).
   */
  static async start(registry: ProcessRegistry, jobs: readonly object[], logDir: string, label: string, workerTs: string = WORKER_TS): Promise<LoadProcesses> {
    const workers: Worker[] = [];
    const group = new LoadProcesses(registry, workers);
    try {
      for (const [i, job] of jobs.entries()) workers.push(spawnWorker(registry, workerTs, job, join(logDir, "load-workers.log"), `${label} #${i + 1}`));
      const timeout = Bun.sleep(READY_TIMEOUT_MS).then(() => {
        throw new Error(`${label}: load processes not ready within ${READY_TIMEOUT_MS} ms; see ${join(logDir, "load-workers.log")}`);
      });
      await Promise.race([Promise.all(workers.map((w) => w.ready)), timeout]);
    } catch (e) {
      await group.close();
      throw e;
    }
    return group;
  }

  /** Keys written so far by preload jobs (from their progress lines). */
  get written(): number {
    return this.workers.reduce((a, w) => a + w.written, 0);
  }

  go(): void {
    this.cpu0 = this.workers.map((w) => processCpuJiffies(w.proc.pid) ?? 0);
    this.t0Ms = performance.now();
    for (const w of this.workers) send(w, "go");
  }

  /** Ends open-ended windows (jobs with measureMs null). */
  stop(): void {
    for (const w of this.workers) send(w, "stop");
  }

  /** Every worker's result and CPU. The workers live on until close() (the caller's `finally`). */
  async finish(): Promise<LoadOutcome> {
    const loads: RawLoad[] = [];
    const preloads: PreloadOutcome[] = [];
    const perProcessPctOfCore: number[] = [];
    // Each process's CPU is read as soon as its own result arrives, while it still lives.
    await Promise.all(
      this.workers.map(async (w, i) => {
        const r = await w.result;
        const jiffies = (processCpuJiffies(w.proc.pid) ?? this.cpu0[i]!) - this.cpu0[i]!;
        const seconds = Math.max(0.001, (performance.now() - this.t0Ms) / 1000);
        perProcessPctOfCore[i] = round((100 * jiffies) / JIFFIES_PER_SECOND / seconds, 1);
        if (r.load) loads.push(r.load);
        if (r.preload) preloads.push(r.preload);
      }),
    );
    return {
      loads,
      preloads,
      cpu: {
        processes: this.workers.length,
        perProcessPctOfCore,
        maxPctOfCore: Math.max(0, ...perProcessPctOfCore),
        sumPctOfCore: round(perProcessPctOfCore.reduce((a, x) => a + x, 0), 1),
      },
    };
  }

  /** Ask every worker to exit, then stop by PID whichever has not. Safe to call twice. */
  async close(): Promise<void> {
    for (const w of this.workers) send(w, "exit");
    await Promise.all(this.workers.map((w) => this.registry.waitGone(w.proc.pid, EXIT_GRACE_MS)));
    for (const w of this.workers) {
      if (this.registry.isAlive(w.proc.pid)) this.registry.killHard(w.proc.pid);
    }
    await Promise.all(this.workers.map((w) => w.proc.exited));
    for (const w of this.workers) this.registry.untrack(w.proc.pid);
  }
}

function send(w: Worker, command: "go" | "stop" | "exit"): void {
  if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
  try {
    w.proc.stdin.write(`${command}\n`);
    void w.proc.stdin.flush();
    if (command === "exit") void w.proc.stdin.end();
  } catch {
    // The pipe closed: the process is exiting.
  }
}

function spawnWorker(registry: ProcessRegistry, workerTs: string, job: object, logPath: string, label: string): Worker {
  const log = openSync(logPath, "a");
  const proc = Bun.spawn([process.execPath, workerTs, JSON.stringify(job)], { stdin: "pipe", stdout: "pipe", stderr: log, env: { ...process.env } });
  closeSync(log);
  registry.track(proc.pid, "load", label, proc);
  let onReady!: () => void;
  let onNotReady!: (e: Error) => void;
  let onResult!: (m: WorkerMessage & { type: "result" }) => void;
  let onError!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onNotReady = reject;
  });
  const result = new Promise<WorkerMessage & { type: "result" }>((resolve, reject) => {
    onResult = resolve;
    onError = reject;
  });
  const worker: Worker = { proc, ready, result, written: 0, failed: 0 };
  const fail = (why: string) => {
    const e = new Error(`${label} (pid ${proc.pid}): ${why}; see ${logPath}`);
    onNotReady(e);
    onError(e);
  };
  // A worker that dies early fails both waits (a settled promise ignores the second call).
  ready.catch(() => undefined);
  result.catch(() => undefined);
  void (async () => {
    await forEachLine(proc.stdout, (line) => {
      const m = JSON.parse(line) as WorkerMessage;
      if (m.type === "ready") onReady();
      else if (m.type === "progress") {
        worker.written = m.written;
        worker.failed = m.failed;
      } else if (m.type === "result") {
        if (m.preload) worker.written = m.preload.written;
        onResult(m);
      } else fail(m.message);
    });
    await proc.exited;
    fail(`exited (${proc.exitCode ?? proc.signalCode}) without a result`);
  })();
  return worker;
}
