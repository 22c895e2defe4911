// Starts test/fixtures/sdk-services.ts (the real Restate SDK) as a child process and stops it by PID.
import { resolve } from "node:path";

const FIXTURE = resolve(import.meta.dir, "../../../fixtures/sdk-services.ts");

export interface SdkEndpoint {
  readonly port: number;
  readonly uri: string;
  stop(): Promise<void>;
}

/** Spawns the SDK services (`h2c` or `http1`) and waits for `listening <port>` (bounded by deadlineMs). */
export async function startSdkEndpoint(mode: "h2c" | "http1", port = 0, deadlineMs = 30_000): Promise<SdkEndpoint> {
  const proc = Bun.spawn([process.execPath, FIXTURE, "--port", String(port), "--mode", mode], { stdout: "pipe", stderr: "ignore" });
  const stop = async (): Promise<void> => {
    proc.kill("SIGKILL");
    await proc.exited;
  };
  try {
    const reader = proc.stdout.getReader();
    let out = "";
    const timer = setTimeout(() => proc.kill("SIGKILL"), deadlineMs);
    try {
      while (!/listening \d+\n/.test(out)) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`the SDK fixture exited before listening (output: ${JSON.stringify(out)})`);
        out += new TextDecoder().decode(value);
      }
    } finally {
      clearTimeout(timer);
    }
    // Keep draining so the child never blocks on a full pipe.
    void (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {});
    const bound = Number(/listening (\d+)/.exec(out)![1]);
    return { port: bound, uri: `http://127.0.0.1:${bound}`, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
