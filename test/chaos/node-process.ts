// Spawning and stopping `cairn server` processes for the chaos harness without bun:test (the `bun run
// chaos` script uses it too, and test/helpers/cairn-process.ts registers an afterAll on import).
// Every process started here is remembered until it has exited; stopAll() stops the rest by PID, and
// an exit hook SIGKILLs whatever is left if the harness itself dies. Uses the compiled binary when
// CAIRN_TEST_BINARY names one, the sources otherwise.
import { closeSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const REPO_ROOT = resolve(import.meta.dir, "../..");

export function cairnCommand(): string[] {
  const bin = process.env.CAIRN_TEST_BINARY;
  return bin ? [resolve(REPO_ROOT, bin)] : [process.execPath, join(REPO_ROOT, "src/main.ts")];
}

/** The environment without the developer's CAIRN_* variables. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CAIRN_") && v !== undefined) env[k] = v;
  return env;
}

const live = new Set<Subprocess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const p of live) {
      try {
        process.kill(p.pid, "SIGCONT");
        process.kill(p.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

export interface SpawnedNode {
  readonly proc: Subprocess;
  readonly pid: number;
  readonly logFile: string;
}

/**
 * Starts `cairn server <args>` with stdout and stderr appended to `logFile`. `prefix` runs it through
 * a wrapper that execs it (`nsenter … --`), so the PID is still the server's.
 */
export function spawnServer(args: readonly string[], logFile: string, env: Record<string, string> = {}, prefix: readonly string[] = []): SpawnedNode {
  installExitHook();
  const fd = openSync(logFile, "a");
  let proc: Subprocess;
  try {
    proc = Bun.spawn([...prefix, ...cairnCommand(), "server", ...args], {
      env: { ...cleanEnv(), ...env },
      stdout: fd,
      stderr: fd,
      stdin: "ignore",
    });
  } finally {
    closeSync(fd);
  }
  return { proc: track(proc), pid: proc.pid, logFile };
}

/**
 * Remembers a helper process (strace, a mount-namespace holder) like a server: stopAll() and the
 * exit hook stop it by PID, and liveCount() counts it until it has exited.
 */
export function track(proc: Subprocess): Subprocess {
  installExitHook();
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  return proc;
}

export function isRunning(proc: Subprocess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

/** Waits until GET `url` answers 200, or the process exits, or the deadline passes. */
export async function waitHttpOk(proc: Subprocess, url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(proc)) return false;
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) })
      .then(async (r) => {
        await r.arrayBuffer();
        return r.ok;
      })
      .catch(() => false);
    if (ok) return true;
    await Bun.sleep(50);
  }
  return false;
}

/** Stops one process by PID: SIGCONT (it may be paused), `signal`, then SIGKILL after the grace time. */
export async function stopServer(proc: Subprocess, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
  if (isRunning(proc)) {
    try {
      process.kill(proc.pid, "SIGCONT");
    } catch {
      // gone
    }
    proc.kill(signal);
  }
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
  if (!exited) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
  live.delete(proc);
}

/** Stops every process this module started that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stopServer(p, "SIGKILL", 5_000)));
}

export function liveCount(): number {
  return [...live].filter(isRunning).length;
}

export function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
