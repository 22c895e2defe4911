// What a load-worker process is asked to do and what it answers: the job (argv[2], JSON), the
// messages it prints on stdout (one JSON object a line) and the commands it reads on stdin
// ("go", "stop", "exit"; end of input means exit, so a worker never outlives its parent). Key
// names live here too: every process must agree on which keys exist.
import type { ReadMode } from "./cluster.ts";
import type { LoadSystem } from "./kv-http.ts";
import type { RawLoad } from "./load.ts";

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
