// What a workload is to the runner: it prepares its keys, performs one operation at a time for a
// client process against a node's API (recording invoke and completion in the history), reads
// everything back from every node after the final heal, and checks its own part of the history.
// New workloads (the log workload once the log routes exist) plug in here without runner changes.
import type { CompleteEvent, History, Operation } from "../history.ts";
import type { Rng } from "../rng.ts";

export interface Endpoint {
  readonly name: string;
  /** Base URL of the node's admin API (called directly, not through the fault proxy). */
  readonly admin: string;
  /** Base URL of the node's data-plane API (also direct). */
  readonly ingress: string;
}

export interface WorkloadContext {
  readonly history: History;
  /** Unique per run; keys are prefixed with it so runs never share state. */
  readonly runId: string;
  /** Client-side deadline of one HTTP request. */
  readonly requestTimeoutMs: number;
  /** Every node (whether it is up or not: a client does not know). */
  endpoints(): Endpoint[];
  log(line: string): void;
}

/** One sequential client. `process` changes after an indeterminate operation (Jepsen's rule). */
export interface ClientState {
  readonly id: number;
  process: number;
  readonly rng: Rng;
}

export interface CheckOutcome {
  readonly workload: string;
  readonly verdict: "ok" | "illegal" | "unknown";
  readonly summary: string;
  readonly details: unknown;
}

export interface Workload {
  readonly name: string;
  /** Clients this workload runs concurrently (the runner may override). */
  readonly defaultClients: number;
  setup(ctx: WorkloadContext): Promise<void>;
  /** One operation by `client` against `node`; returns its completion (already in the history). */
  step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent>;
  /** Reads after the final heal, from every node, recorded in the history like any other read. */
  finalReads(ctx: WorkloadContext): Promise<void>;
  check(ops: readonly Operation[]): CheckOutcome;
  /** Stops what setup started (a service process), also when the run failed. */
  stop?(): Promise<void>;
}

/** Retries `attempt` until it says done, up to `tries` times with a short pause. */
export async function retrying(tries: number, attempt: () => Promise<boolean>, pauseMs = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await attempt()) return true;
    await Bun.sleep(pauseMs);
  }
  return false;
}
