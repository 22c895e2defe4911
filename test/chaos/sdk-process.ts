// The Restate SDK fixture (test/fixtures/sdk-services.ts) as a process of the chaos harness, without
// bun:test (test/helpers/sdk-endpoint.ts registers an afterAll through its imports): started on a port
// chosen here, tracked like the nodes (stopAll() and the exit hook stop it by PID), stopped by PID.
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./cluster.ts";
import { isRunning, REPO_ROOT, stopServer, track } from "./node-process.ts";

export interface SdkProcess {
  readonly pid: number;
  /** `http://127.0.0.1:<port>` (h2c with prior knowledge). */
  readonly uri: string;
  stop(): Promise<void>;
}

/** Starts the fixture and waits until its port accepts connections. */
export async function startSdkProcess(startTimeoutMs = 30_000): Promise<SdkProcess> {
  const port = await freePort("127.0.0.1");
  const proc: Subprocess = track(
    Bun.spawn([process.execPath, join(REPO_ROOT, "test/fixtures/sdk-services.ts"), "--port", String(port), "--mode", "h2c"], {
      stdout: "ignore",
      stderr: "ignore",
      stdin: "ignore",
    }),
  );
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (!isRunning(proc)) throw new Error(`the SDK fixture exited during start (exit ${proc.exitCode ?? proc.signalCode})`);
    if (Date.now() > deadline) {
      await stopServer(proc, "SIGKILL");
      throw new Error(`the SDK fixture did not listen on 127.0.0.1:${port} within ${startTimeoutMs} ms`);
    }
    const open = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })
      .then((s) => {
        s.end();
        return true;
      })
      .catch(() => false);
    if (open) break;
    await Bun.sleep(100);
  }
  return { pid: proc.pid, uri: `http://127.0.0.1:${port}`, stop: () => stopServer(proc, "SIGTERM", 5_000) };
}
