import { describe, expect, test } from "bun:test";
import { devLineFormatter } from "../../src/cli/dev-log.ts";

const line = JSON.stringify({ level: "warn", time: "2026-12-07T02:44:59.410Z", node: "node-2", code: "CAIRN-CLUSTER-0008", msg: "single-replica setup" });

describe("cairn dev log lines", () => {
  test("on a terminal a node's JSON line becomes one readable line behind the node's name, in colour", () => {
    const coloured = devLineFormatter({ pretty: true, colour: true, nameWidth: 6 })(1, "node-2", line);
    expect(coloured).toStartWith("\x1b[33mnode-2 |\x1b[0m ");
    expect(coloured).toContain("single-replica setup");
    expect(coloured).toContain("CAIRN-CLUSTER-0008");
    expect(coloured).toEndWith("\n");
    expect(coloured.trimEnd()).not.toContain("\n");
    const plain = devLineFormatter({ pretty: true, colour: false, nameWidth: 8 })(0, "node-2", line);
    expect(plain).toStartWith("node-2   | ");
    expect(plain).toMatch(/WARN.*single-replica setup/);
    expect(plain).not.toContain("\x1b[");
  });

  test("a line that is not JSON (a crash's output) is shown as it is, behind the name", () => {
    expect(devLineFormatter({ pretty: true, colour: false, nameWidth: 6 })(0, "node-1", "panic: oops")).toBe("node-1 | panic: oops\n");
    expect(devLineFormatter({ pretty: true, colour: false, nameWidth: 6 })(0, "node-1", "{not json")).toBe("node-1 | {not json\n");
  });

  test("not on a terminal (or --json-logs) the JSON line passes unchanged", () => {
    expect(devLineFormatter({ pretty: false, colour: false, nameWidth: 6 })(2, "node-3", line)).toBe(line + "\n");
  });
});
