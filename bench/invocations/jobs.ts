// What an invocation load process (bench/invocations/load-worker.ts) is asked to do: the job it gets as
// argv[2] (JSON) and the requests it sends. The messages on stdout and the commands on stdin are the
// metadata benchmark's (bench/metadata/load-jobs.ts), so bench/metadata/load-procs.ts drives it.

/** greet: the stateless handler; counter-hot: one object key; counter-many: a new key every request. */
export type InvocationOp = "greet" | "counter-hot" | "counter-many";

interface JobBase {
  op: InvocationOp;
  /** Ingress base URL (`http://127.0.0.1:8080`); the process talks to this one only. */
  url: string;
  /** Closed-loop clients in this process (one request in flight each). */
  clients: number;
  deadlineMs: number;
  /** Key of the hot object (counter-hot); a prefix unique to this process and run (counter-many). */
  key: string;
}

/** A timed window: warm-up, then measureMs (or until "stop" when null). */
export interface WindowJob extends JobBase {
  kind: "window";
  warmupMs: number;
  measureMs: number | null;
}

/** Exactly `count` invocations (RSS growth), alternating greet and counter-many per client. */
export interface CountJob extends JobBase {
  kind: "count";
  count: number;
}

export type InvocationJob = WindowJob | CountJob;

export const SERVICE = { greeter: "BenchGreeter", counter: "BenchCounter" } as const;

/** One invocation through the ingress (HTTP/1.1 keep-alive via fetch); throws unless HTTP 200. */
export async function invoke(url: string, op: InvocationOp, key: string, seq: number, signal: AbortSignal): Promise<void> {
  const path = op === "greet" ? `/${SERVICE.greeter}/greet` : `/${SERVICE.counter}/${encodeURIComponent(op === "counter-hot" ? key : `${key}-${seq}`)}/add`;
  const body = op === "greet" ? JSON.stringify(`caller ${seq}`) : "1";
  const r = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${op}: HTTP ${r.status} ${text.slice(0, 120)}`);
}
