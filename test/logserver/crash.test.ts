// A log-server killed with SIGKILL in the middle of a stream of stores loses nothing it reported
// as stored: every store a child process acknowledged (printed after its promise resolved, i.e.
// after the group commit was fsynced) is present when the file is reopened.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { asLogletId, logletOffset } from "../../src/ids/index.ts";
import { LogStore } from "../../src/logserver/index.ts";
import { useTempDirs } from "./helpers.ts";

const tempDir = useTempDirs();

const WRITER = join(import.meta.dir, "fixtures/crash-writer.ts");

async function runAndKill(path: string, minAcks: number): Promise<Array<[string, number, number]>> {
  const child = Bun.spawn([process.execPath, WRITER, path], { stdout: "pipe", stderr: "pipe" });
  const acks: Array<[string, number, number]> = [];
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    const reader = child.stdout.getReader();
    const deadline = Date.now() + 30_000;
    while (acks.length < minAcks && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const m = /^ack (\S+) (\d+) (\d+)$/.exec(line);
        if (m) acks.push([m[1]!, Number(m[2]), Number(m[3])]);
      }
    }
    // Kill mid-stream: 32 stores are in flight at any moment.
    child.kill("SIGKILL");
    // Lines already in the pipe were acknowledged before the kill too.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
    }
    for (const line of buffer.split("\n")) {
      const m = /^ack (\S+) (\d+) (\d+)$/.exec(line);
      if (m) acks.push([m[1]!, Number(m[2]), Number(m[3])]);
    }
  } finally {
    child.kill("SIGKILL");
    await child.exited;
  }
  if (acks.length < minAcks) throw new Error(`writer acknowledged only ${acks.length} stores: ${await new Response(child.stderr).text()}`);
  return acks;
}

describe("log store crash safety", () => {
  test("every store acknowledged before SIGKILL is present after reopening, three times over", async () => {
    const path = join(tempDir(), "crash.sqlite");
    const all: Array<[string, number, number]> = [];
    for (let round = 0; round < 3; round++) {
      all.push(...(await runAndKill(path, 400 + round * 100)));
      const store = LogStore.open({ path }); // quick_check runs here: the file must be intact
      try {
        for (const [loglet, first, count] of all) {
          const read = await store.getRecords({
            loglet: asLogletId(loglet),
            from: logletOffset(first),
            to: logletOffset(first + count - 1),
            byteBudget: 1 << 20,
          });
          const got: string[] = read.entries.flatMap((e) => (e.kind === "data" ? [`${e.offset}=${new TextDecoder().decode(e.payload).split(";")[0]}`] : []));
          const want: string[] = Array.from({ length: count }, (_, j) => `${first + j}=${loglet}@${first + j}`);
          expect(got).toEqual(want);
        }
      } finally {
        await store.close();
      }
    }
    expect(all.length).toBeGreaterThanOrEqual(1500);
  }, 120_000);
});
