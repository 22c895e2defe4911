// `cairn ctl nodes …` and `cairn ctl config …` against what an operator gets wrong: a node that is not
// provisioned, an address where nothing listens, a wrong admin token, a node of another cluster. Each
// gets one paragraph saying what ctl found and what to run next, a distinct exit code, and never a
// stack trace. Real `cairn` processes on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { EXIT } from "../../src/cli/exit-codes.ts";
import { runCairn, startNode, type NodeProcess } from "../helpers/cairn-process.ts";

let bare: NodeProcess;
let guarded: NodeProcess;

beforeAll(async () => {
  // Not provisioned (no auto-provision), and one with an admin token (provisioned).
  [bare, guarded] = await Promise.all([
    startNode({ name: "bare", readyPath: "/health", args: ["--set", "auto-provision=false"] }),
    startNode({ name: "guarded", args: ["--set", "admin.token=s3cret", "--cluster-name", "blue"] }),
  ]);
  const p = await fetch(`${guarded.addresses.admin}/v1/cluster/provision`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer s3cret" },
    body: "{}",
  });
  expect(p.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await Promise.all([bare?.stop(), guarded?.stop()]);
}, 60_000);

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const COMMANDS = [
  ["nodes", "list"],
  ["nodes", "remove", "N9"],
  ["config", "show"],
  ["config", "set", "--replication", "2"],
];

function friendly(r: { stdout: string; stderr: string }, ...words: string[]): void {
  const text = r.stderr;
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toContain("Error:");
  for (const w of words) expect(text).toContain(w);
}

describe("ctl nodes/config on bad input", () => {
  test("a node that is not provisioned: what to run next, exit 4", async () => {
    for (const args of COMMANDS) {
      const r = await runCairn(["ctl", "--address", bare.addresses.admin, ...args]);
      expect(r.exitCode, args.join(" ")).toBe(EXIT.NOT_PROVISIONED);
      friendly(r, "CAIRN-CLUSTER-0001", "not provisioned", "provision");
    }
  }, 120_000);

  test("an address where nothing listens: exit 3, and how to point ctl at a node", async () => {
    const port = await closedPort();
    for (const args of COMMANDS) {
      const r = await runCairn(["ctl", "--address", `127.0.0.1:${port}`, "--timeout-ms", "3000", ...args]);
      expect(r.exitCode, args.join(" ")).toBe(EXIT.UNREACHABLE);
      friendly(r, "CAIRN-CTL-0001", "--address");
    }
  }, 120_000);

  test("a wrong or missing admin token: exit 6 and which flag takes it", async () => {
    for (const token of [["--token", "wrong"], []]) {
      for (const args of COMMANDS) {
        const r = await runCairn(["ctl", "--address", guarded.addresses.admin, ...token, ...args]);
        expect(r.exitCode, `${token.join(" ")} ${args.join(" ")}`).toBe(EXIT.UNAUTHORIZED);
        friendly(r, "CAIRN-API-0006", "--token");
      }
    }
    const ok = await runCairn(["ctl", "--address", guarded.addresses.admin, "--token", "s3cret", "nodes", "list"]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain("guarded");
  }, 120_000);

  test("a node of another cluster than --cluster names: exit 7, nothing changed", async () => {
    for (const args of COMMANDS) {
      const r = await runCairn(["ctl", "--address", guarded.addresses.admin, "--token", "s3cret", "--cluster", "green", ...args]);
      expect(r.exitCode, args.join(" ")).toBe(EXIT.WRONG_CLUSTER);
      friendly(r, "CAIRN-CTL-0003", "'blue'", "'green'");
    }
    const shown = await runCairn(["ctl", "--address", guarded.addresses.admin, "--token", "s3cret", "--cluster", "blue", "--json", "config", "show"]);
    expect(shown.exitCode).toBe(0);
    expect(JSON.parse(shown.stdout).replication).toBe(1);
  }, 120_000);

  test("a replication the live nodes cannot keep and a usage mistake are refused (exit 5, exit 2)", async () => {
    const r = await runCairn(["ctl", "--address", guarded.addresses.admin, "--token", "s3cret", "config", "set", "--replication", "2"]);
    expect(r.exitCode).toBe(EXIT.REFUSED);
    friendly(r, "CAIRN-CLUSTER-0017", "1 answer");
    const none = await runCairn(["ctl", "--address", guarded.addresses.admin, "config", "set"]);
    expect(none.exitCode).toBe(EXIT.USAGE);
    const nan = await runCairn(["ctl", "--address", guarded.addresses.admin, "config", "set", "--replication", "two"]);
    expect(nan.exitCode).toBe(EXIT.USAGE);
  }, 120_000);
});
