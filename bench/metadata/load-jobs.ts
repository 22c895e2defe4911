// What a load-worker process is asked to do and what it answers: the job (argv[2], JSON), the
// messages it prints on stdout (one JSON object a line) and the commands it reads on stdin
// ("go", "stop", "exit"; end of input means exit, so a worker never outlives its parent). Key
// names live here too: every process must agree on which keys exist.
import type { ReadMode } from "./cluster.ts";
import type { LoadSystem } from "./kv-http.ts";
import { errorText, type RawLoad } from "./load.ts";

interface JobBase {
  system: LoadSystem;
  /** Size of every value written (default 100 bytes). */
  valueBytes?: number;
  /** Base URL of the member this process talks to. */
  url: string;
  /** Closed-loop clients in this process (one request in flight each). */
  clients: number;
  deadlineMs: number;
}

/** Write preloadKey(i) for every i in [from, to), then answer; retried on failure (bounded). */
export interface PreloadJob extends JobBase {
  kind: "preload";
  from: number;
  to: number;
  attemptsPerKey: number;
  /** Writes preloadKey(i % keyModulo) instead (rewrites of a fixed set of keys). */
  keyModulo?: number;
}

/**
 * Closed-loop puts, every one to a new key `${keyPrefix}c${client}-${seq}`, or with `keyCount` to
 * preloadKey(i), i uniformly random in [0, keyCount) (rewrites of a fixed set of keys).
 */
export interface PutJob extends JobBase {
  kind: "put";
  keyPrefix: string;
  keyCount?: number;
  warmupMs: number;
  /** Window length; null = until the parent sends "stop". */
  measureMs: number | null;
}

/** Closed-loop reads of preloadKey(i), i uniformly random in [0, keyCount). */
export interface GetJob extends JobBase {
  kind: "get";
  keyCount: number;
  mode: ReadMode;
  warmupMs: number;
  measureMs: number | null;
}

export type LoadJob = PreloadJob | PutJob | GetJob;

export interface PreloadOutcome {
  written: number;
  failed: number;
  errorSamples: Record<string, number>;
}

export type WorkerMessage =
  | { type: "ready" }
  | { type: "progress"; written: number; failed: number }
  | { type: "result"; load?: RawLoad; preload?: PreloadOutcome }
  | { type: "error"; message: string };

export type WorkerCommand = "go" | "stop" | "exit";

/** The preloaded keys, numbered from 0 (the same names for both systems). */
export function preloadKey(index: number): string {
  return `grow-${String(index).padStart(7, "0")}`;
}

/** Calls `onLine` for every line of a byte stream (without its newline), then resolves at its end. */
export async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      onLine(line);
    }
  }
}

/** A worker's commands on stdin: each resolves the first time it arrives; end of input counts as "stop" and "exit". */
function workerCommands(): Record<WorkerCommand, Promise<void>> {
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

export function sendToParent(m: WorkerMessage): void {
  process.stdout.write(JSON.stringify(m) + "\n");
}

/**
 * A load worker's life: the job from argv[2], "ready", wait for "go", run it (`stop` resolves when
 * the parent ends an open window), print its result or error, then stay alive until "exit" (the
 * parent reads this process's CPU after the result).
 */
export async function workerMain<J>(usage: string, run: (job: J, stop: Promise<void>) => Promise<WorkerMessage & { type: "result" }>): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "null") as J | null;
  if (job === null) throw new Error(usage);
  const cmd = workerCommands();
  sendToParent({ type: "ready" });
  const started = await Promise.race([cmd.go.then(() => true), cmd.exit.then(() => false)]);
  if (!started) process.exit(0);
  try {
    sendToParent(await run(job, cmd.stop));
  } catch (e) {
    sendToParent({ type: "error", message: errorText(e) });
  }
  await cmd.exit;
  process.exit(0);
}

/** Runs `clients` clients that count into `out`, printing progress every `intervalMs`. */
export async function withProgress(out: PreloadOutcome, clients: number, client: (c: number) => Promise<void>, intervalMs = 1000): Promise<PreloadOutcome> {
  const progress = setInterval(() => sendToParent({ type: "progress", written: out.written, failed: out.failed }), intervalMs);
  try {
    await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  } finally {
    clearInterval(progress);
  }
  return out;
}
