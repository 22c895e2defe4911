// Every process the metadata benchmark starts, by PID, so that all of them are stopped whatever
// happens: stopAll() on the normal path (SIGTERM, then SIGKILL after a grace period), and a
// synchronous SIGKILL sweep from process.on("exit") if the benchmark dies on the way.
import { readFileSync } from "node:fs";
import type { Subprocess } from "bun";

interface Tracked {
  pid: number;
  group: string;
  label: string;
  /** Present for our direct children; absent for grandchildren (nodes spawned by `cairn dev`). */
  proc?: Subprocess;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export class ProcessRegistry {
  private readonly tracked = new Map<number, Tracked>();

  track(pid: number, group: string, label: string, proc?: Subprocess): void {
    this.tracked.set(pid, { pid, group, label, ...(proc ? { proc } : {}) });
  }

  untrack(pid: number): void {
    this.tracked.delete(pid);
  }

  groupOf(pid: number): string | undefined {
    return this.tracked.get(pid)?.group;
  }

  isAlive(pid: number): boolean {
    const t = this.tracked.get(pid);
    if (t?.proc) return t.proc.exitCode === null && t.proc.signalCode === null;
    return pidAlive(pid);
  }

  /** kill -9 one tracked process (the benchmark's fault injection). */
  killHard(pid: number): void {
    if (!this.tracked.has(pid)) throw new Error(`refusing to kill untracked pid ${pid}`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /** Wait until a tracked process is gone (bounded). */
  async waitGone(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (!this.isAlive(pid)) return true;
      await Bun.sleep(20);
    }
    return !this.isAlive(pid);
  }

  /** SIGTERM every tracked process, then SIGKILL whatever is left after graceMs. */
  async stopAll(graceMs: number): Promise<void> {
    const all = [...this.tracked.values()];
    for (const t of all) {
      if (!this.isAlive(t.pid)) continue;
      try {
        process.kill(t.pid, "SIGTERM");
      } catch {
        // Gone meanwhile.
      }
    }
    const deadline = performance.now() + graceMs;
    while (performance.now() < deadline && all.some((t) => this.isAlive(t.pid))) await Bun.sleep(50);
    for (const t of all) {
      if (this.isAlive(t.pid)) {
        process.stderr.write(`warning: ${t.label} (pid ${t.pid}) ignored SIGTERM for ${graceMs} ms: SIGKILL\n`);
        try {
          process.kill(t.pid, "SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }
    }
    await Promise.all(all.map((t) => this.waitGone(t.pid, 5000)));
    for (const t of all) this.tracked.delete(t.pid);
  }

  /** Last resort from process.on("exit"): synchronous, so only signals. */
  killAllSync(): void {
    for (const t of this.tracked.values()) {
      try {
        if (pidAlive(t.pid)) process.kill(t.pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
  }
}

/**
 * Stop every process a benchmark started when it exits or is interrupted: `killAllSync` on exit,
 * and `stopEverything` (graceful, then exit 130) on the first SIGINT/SIGTERM/SIGHUP.
 */
export function stopOnExitAndSignals(registry: ProcessRegistry, stopEverything: () => Promise<void>): void {
  process.on("exit", () => registry.killAllSync());
  let interrupted = false;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      process.stderr.write(`\n${signal}: stopping every process this benchmark started\n`);
      void stopEverything().finally(() => process.exit(130));
    });
  }
}
