// Starts the real Restate SDK services of test/fixtures/sdk-services.ts as their own process (h2c or
// HTTP/1.1) and stops it by PID, also when a test fails (the process is tracked like cairn nodes).
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { stopProcess, track } from "./cairn-process.ts";

const FIXTURE = resolve(import.meta.dir, "../fixtures/sdk-services.ts");

export interface SdkEndpoint {
  proc: Subprocess;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>` */
  uri: string;
  stop(): Promise<number>;
}

export async function startSdkEndpoint(mode: "h2c" | "http1", options: { env?: Record<string, string>; startTimeoutMs?: number; port?: number } = {}): Promise<SdkEndpoint> {
  const proc = Bun.spawn([process.execPath, FIXTURE, "--port", String(options.port ?? 0), "--mode", mode], {
    env: { ...process.env, ...options.env },
    stdout: "pipe",
    stderr: "ignore",
    stdin: "ignore",
  });
  track(proc);
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  try {
    while (!/listening (\d+)/.test(seen)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`the SDK fixture (${mode}) printed no port in time: ${seen}`);
      const chunk = await Promise.race([reader.read(), Bun.sleep(remaining).then(() => ({ done: true, value: undefined }))]);
      if (chunk.done === true) {
        if (!/listening (\d+)/.test(seen)) throw new Error(`the SDK fixture (${mode}) ended before listening: ${seen}`);
        break;
      }
      seen += decoder.decode(chunk.value as Uint8Array);
    }
  } catch (e) {
    await stopProcess(proc, "SIGKILL");
    throw e;
  }
  reader.releaseLock();
  const port = Number(/listening (\d+)/.exec(seen)![1]);
  return { proc, pid: proc.pid, port, uri: `http://127.0.0.1:${port}`, stop: () => stopProcess(proc, "SIGTERM", 5_000) };
}
