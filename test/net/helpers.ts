// Shared set-up for the fabric tests: identities, servers and clients with fast timers, and peer
// processes that are always stopped by PID.
import { createRegistry } from "../../src/observability/metrics.ts";
import { FabricClient, FabricServer, type FabricClientConfig, type FabricServerConfig, type SenderIdentity, type ServerTransportKind } from "../../src/net/index.ts";
import { registerTestHandlers } from "./fixtures/rpcs.ts";

export const CLUSTER = "test-cluster";
export const FINGERPRINT = "fp-test";
export const TRANSPORTS: ServerTransportKind[] = ["bun", "node"];

export function sender(overrides: Partial<SenderIdentity> = {}): SenderIdentity {
  return { clusterName: CLUSTER, fingerprint: FINGERPRINT, nodeId: "N1", generation: 1, ...overrides };
}

export async function startServer(transport: ServerTransportKind, overrides: Partial<FabricServerConfig> = {}): Promise<FabricServer> {
  const server = new FabricServer({
    host: "127.0.0.1",
    port: 0,
    identity: () => ({ clusterName: CLUSTER, fingerprint: FINGERPRINT }),
    registry: createRegistry({ defaultMetrics: false }),
    logger: { warn: () => {}, error: () => {} },
    ...overrides,
    options: { serverTransport: transport, drainTimeoutMs: 5_000, ...overrides.options },
  });
  registerTestHandlers(server);
  await server.start();
  return server;
}

export function newClient(overrides: Partial<FabricClientConfig> = {}): FabricClient {
  return new FabricClient({
    identity: () => sender(),
    registry: createRegistry({ defaultMetrics: false }),
    ...overrides,
    options: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_000, requestTimeoutMs: 10_000, ...overrides.options },
  });
}

/** Resolves with the rejection of `p` (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error("expected the promise to reject");
}

export interface PeerProcess {
  readonly pid: number;
  readonly port: number;
  readonly address: string;
  /** Exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGKILL (after SIGCONT, in case it is stopped) and wait for the exit. Idempotent. */
  kill(): Promise<void>;
}

const FIXTURE = new URL("./fixtures/peer.ts", import.meta.url).pathname;

/** Starts `bun test/net/fixtures/peer.ts` on 127.0.0.1 and reads its port from stdout. */
export async function spawnPeer(args: { port?: number; transport?: ServerTransportKind } = {}): Promise<PeerProcess> {
  const proc = Bun.spawn([process.execPath, FIXTURE, "--port", String(args.port ?? 0), "--transport", args.transport ?? "bun"], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(proc.pid, "SIGCONT");
      process.kill(proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await proc.exited;
  };
  try {
    const reader = proc.stdout.getReader();
    let text = "";
    const deadline = Date.now() + 20_000;
    while (!text.includes("\n")) {
      if (Date.now() > deadline) throw new Error("peer fixture did not report its port");
      const { done, value } = await reader.read();
      if (done) throw new Error(`peer fixture exited early (code ${await proc.exited})`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const { port } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { port: number };
    const exited = proc.exited.then(() => proc.exitCode);
    return { pid: proc.pid, port, address: `127.0.0.1:${port}`, exited, kill };
  } catch (e) {
    await kill();
    throw e;
  }
}

/** Repeats `fn` until it resolves, or rethrows its last failure after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 20_000, pauseMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await Bun.sleep(pauseMs);
    }
  }
}
