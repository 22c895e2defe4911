// Starts real `cairn` processes for tests: temp data dirs, port 0 everywhere, waits for readiness,
// and stops every process it started by PID (SIGTERM, then SIGKILL), even when a test fails.
// Uses the compiled binary when CAIRN_TEST_BINARY names one (CI does), the sources otherwise.
import { afterAll } from "bun:test";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "../..");

export function cairnCommand(): string[] {
  const bin = process.env.CAIRN_TEST_BINARY;
  return bin ? [resolve(ROOT, bin)] : [process.execPath, join(ROOT, "src/main.ts")];
}

const started = new Set<Subprocess>();
const tempDirs: string[] = [];

afterAll(async () => {
  await Promise.all([...started].map((p) => stopProcess(p)));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

// bun runs a module's afterAll only for the first test file that imported it: processes started by
// later files and left running by a failed test are killed (by PID) when the test process exits.
process.on("exit", () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = "cairn-test-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run a cairn command to completion (with a generous deadline) and capture its output. */
export async function runCairn(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const proc = Bun.spawn([...cairnCommand(), ...args], {
    cwd: options.cwd ?? tempDir(),
    env: { ...cleanEnv(), ...options.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  started.add(proc);
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  started.delete(proc);
  return { exitCode, stdout, stderr };
}

/** The environment without CAIRN_* variables of the developer's shell. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CAIRN_") && v !== undefined) env[k] = v;
  return env;
}

export interface Addresses {
  pid: number;
  admin: string;
  fabric: string;
  ingress: string | null;
}

export interface NodeProcess {
  proc: Subprocess;
  pid: number;
  dataDir: string;
  logFile: string;
  addresses: Addresses;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Spawn `cairn server` on port 0 with its own data dir, and wait until /ready answers 200. */
/** Every role but the worker (see startNode). */
export const TEST_DEFAULT_ROLES = "metadata-server,log-server,admin,ingress";
/** Every role, the worker included: for tests of partitions and the data plane. */
export const ALL_ROLES = "metadata-server,log-server,worker,admin,ingress";

export async function startNode(
  options: {
    name?: string;
    dataDir?: string;
    args?: string[];
    env?: Record<string, string>;
    readyTimeoutMs?: number;
    /** What must answer 200 before the node counts as started (default /ready). */
    readyPath?: string;
  } = {},
): Promise<NodeProcess> {
  const name = options.name ?? "n1";
  const dataDir = options.dataDir ?? join(tempDir(), name);
  const logFile = `${dataDir}.log`;
  const logFd = openSync(logFile, "a");
  const proc = Bun.spawn(
    [
      ...cairnCommand(),
      "server",
      "--node-name", name,
      "--base-dir", dataDir,
      "--admin-address", "127.0.0.1:0",
      "--fabric-address", "127.0.0.1:0",
      "--ingress-address", "127.0.0.1:0",
      // No worker unless a test asks for it (a later --roles wins): tests of raw logs append their
      // own records to logs 0..n, which are partition logs; a processor would (rightly) stop on them.
      "--roles", TEST_DEFAULT_ROLES,
      ...(options.args ?? []),
    ],
    { env: { ...cleanEnv(), ...options.env }, stdout: logFd, stderr: logFd, stdin: "ignore" },
  );
  closeSync(logFd);
  started.add(proc);
  const log = () => readFileSync(logFile, "utf8");
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  let addresses: Addresses | undefined;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`cairn server exited with ${proc.exitCode ?? proc.signalCode} during start:\n${log()}`);
    }
    try {
      const published = JSON.parse(readFileSync(join(dataDir, "addresses.json"), "utf8")) as Addresses;
      // A file left by an earlier process on this data dir is not ours.
      if (published.pid === proc.pid) addresses = published;
    } catch {
      // Not written yet.
    }
    if (addresses) {
      const ok = await fetch(`${addresses.admin}${options.readyPath ?? "/ready"}`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
    }
    await Bun.sleep(25);
  }
  if (!addresses) {
    await stopProcess(proc);
    throw new Error(`cairn server did not become ready:\n${log()}`);
  }
  return {
    proc,
    pid: proc.pid,
    dataDir,
    logFile,
    addresses,
    log,
    stop: async (signal: NodeJS.Signals = "SIGTERM") => {
      const code = await stopProcess(proc, signal);
      return code;
    },
  };
}

/** Stop one process by PID: the given signal, then SIGKILL if it has not exited in time. */
export async function stopProcess(proc: Subprocess, signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000): Promise<number> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
  if (!exited) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
  started.delete(proc);
  return proc.exitCode ?? 128 + (proc.signalCode === "SIGKILL" ? 9 : 15);
}

/** Remember a process started some other way, so afterAll stops it. */
export function track(proc: Subprocess): void {
  started.add(proc);
}
