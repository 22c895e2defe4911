// What the metadata benchmark needs from a 3-member cluster under test (cairn or etcd): find the
// leader, write and read one key on a chosen member, kill -9 a member and restart it.

export interface BenchNode {
  name: string;
  /** Current process id (changes when the node is restarted). */
  pid: number;
  /** Base URL of the HTTP/1.1 API the load generator talks to. */
  url: string;
  /** The system's own id of this member, learned from its status. */
  id?: string;
}

export type ReadMode = "linearizable" | "stale";

export interface Roles {
  leader: BenchNode;
  leaderId: string;
  followers: BenchNode[];
}

export interface Cluster {
  readonly system: "cairn" | "etcd";
  readonly nodes: BenchNode[];
  /** Who leads now (every member agreeing); throws when there is no agreed leader. */
  roles(signal?: AbortSignal): Promise<Roles>;
  /** Until every member answers, all agree on a leader and none lags behind (bounded). */
  waitHealthy(timeoutMs: number): Promise<void>;
  /** The leader id this member reports, or null when it knows none (or does not answer). */
  leaderSeenBy(node: BenchNode, signal: AbortSignal): Promise<string | null>;
  put(node: BenchNode, key: string, value: string, signal: AbortSignal): Promise<void>;
  /** Reads and discards the body (throughput runs). */
  get(node: BenchNode, key: string, mode: ReadMode, signal: AbortSignal): Promise<void>;
  /** Reads and returns the stored value as text, or undefined when absent. */
  read(node: BenchNode, key: string, signal: AbortSignal): Promise<string | undefined>;
  killHard(node: BenchNode): void;
  restart(node: BenchNode): Promise<void>;
  /** Until the restarted member follows the leader and has caught up (bounded). */
  waitRejoined(node: BenchNode, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function httpFail(res: Response, what: string): Promise<never> {
  let body = "";
  try {
    body = (await res.text()).slice(0, 200);
  } catch {
    // Body lost with the connection.
  }
  throw new Error(`${what}: HTTP ${res.status} ${body}`);
}
