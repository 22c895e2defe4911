// docs/operations.md is a walkthrough with real commands and their real output: this test runs every
// console block of it, in order, against cairn (the compiled binary in CI), and fails when a command
// fails or prints something the document does not say (see doc-runner.ts for the matching rules).
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cairnCommand, cleanEnv, tempDir } from "../helpers/cairn-process.ts";
import { DOC_PORTS, DocShell, outputMatches, parseConsoleBlocks, remapPorts } from "./doc-runner.ts";

const DOC = resolve(import.meta.dir, "../../docs/operations.md");
/** One command may wait for the cluster (a loop in the document); none should take longer. */
const STEP_TIMEOUT_MS = 120_000;

async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

let shell: DocShell | undefined;
afterAll(async () => {
  await shell?.stopAll();
});

describe("the matching rules of the walkthrough runner", () => {
  test("`…` matches text within a line, a `…` line any number of lines; anything else must be equal", () => {
    expect(outputMatches(["a …", "…", "z"], ["a b c", "x", "y", "z"])).toBe(true);
    expect(outputMatches(["a …", "…", "z"], ["a b c", "z"])).toBe(true);
    expect(outputMatches(["{\"version\":1}"], ["{\"version\":2}"])).toBe(false);
    expect(outputMatches(["x"], ["x", "y"])).toBe(false);
    expect(outputMatches([], [""])).toBe(true);
  });

  test("documented ports are replaced after a colon only", () => {
    const m = new Map([[9070, 41000]]);
    expect(remapPorts("curl http://127.0.0.1:9070/v1 (9070)", m)).toBe("curl http://127.0.0.1:41000/v1 (9070)");
  });
});

describe("docs/operations.md", () => {
  test(
    "every command of the walkthrough runs and prints what the document says",
    async () => {
      const steps = parseConsoleBlocks(readFileSync(DOC, "utf8"));
      expect(steps.length).toBeGreaterThan(5);
      const ports = new Map<number, number>();
      for (const p of DOC_PORTS) ports.set(p, await freePort());
      const dir = tempDir("cairn-ops-doc-");
      const bin = join(dir, "bin");
      mkdirSync(bin, { recursive: true });
      const cairn = cairnCommand().map((a) => `'${a}'`).join(" ");
      writeFileSync(join(bin, "cairn"), `#!/bin/sh\nexec ${cairn} "$@"\n`);
      chmodSync(join(bin, "cairn"), 0o755);
      shell = new DocShell(join(dir, "work"), {
        ...cleanEnv(),
        PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
        // ctl's built-in default address is the first node's documented admin port.
        CAIRN_ADDRESS: `http://127.0.0.1:${ports.get(9070)}`,
      });
      for (const step of steps) {
        const command = remapPorts(step.command, ports);
        const r = await shell.run(command, STEP_TIMEOUT_MS);
        const expected = step.expected.map((l) => remapPorts(l, ports));
        const actual = r.output.split("\n");
        const where = `docs/operations.md:${step.line}: $ ${step.command}`;
        expect(r.exitCode, `${where}\nexit code ${r.exitCode}, output:\n${r.output}`).toBe(0);
        expect(outputMatches(expected, actual), `${where}\nexpected:\n${expected.join("\n")}\nactual:\n${r.output}`).toBe(true);
      }
    },
    10 * 60_000,
  );
});
