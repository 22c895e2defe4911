import { describe, expect, test } from "bun:test";
import { CairnError } from "../../src/observability/errors.ts";
import { checkCluster, fencingHeaders, GenerationFence, parseFencingHeaders } from "../../src/net/fencing.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as CairnError).code;
  }
  return "no error";
}

describe("fencing headers", () => {
  test("what a sender writes, a receiver reads back", () => {
    const headers = fencingHeaders({ clusterName: "c", fingerprint: null, nodeId: null, generation: 4 }, 250);
    const parsed = parseFencingHeaders((n) => headers[n]);
    expect(parsed).toEqual({ clusterName: "c", fingerprint: "", from: { node: null, generation: 4 }, deadlineMs: 250, secret: "" });
    const withSecret = fencingHeaders({ clusterName: "c", fingerprint: null, nodeId: null, generation: 4, secret: "s" }, 250);
    expect(parseFencingHeaders((n) => withSecret[n]).secret).toBe("s");
  });

  test("missing or malformed headers are NET_MISSING_HEADERS", () => {
    const good = fencingHeaders({ clusterName: "c", fingerprint: "f", nodeId: "N3", generation: 1 }, 10);
    for (const name of Object.keys(good)) {
      const without = { ...good };
      delete without[name];
      expect(codeOf(() => parseFencingHeaders((n) => without[n]))).toBe("CAIRN-NET-0003");
    }
    for (const [name, value] of [["x-cairn-node", "node3"], ["x-cairn-generation", "1.5"], ["x-cairn-deadline-ms", "-1"], ["x-cairn-cluster", ""]] as const) {
      const bad: Record<string, string> = { ...good, [name]: value };
      expect(codeOf(() => parseFencingHeaders((n) => bad[n]))).toBe("CAIRN-NET-0003");
    }
  });

  const req = (clusterName: string, fingerprint: string, secret = "") => ({ clusterName, fingerprint, from: { node: null, generation: 0 }, deadlineMs: 1, secret });
  test("cluster names must match; fingerprints only when both sides know theirs", () => {
    expect(codeOf(() => checkCluster({ clusterName: "a", fingerprint: "f" }, req("b", "f")))).toBe("CAIRN-NET-0001");
    expect(codeOf(() => checkCluster({ clusterName: "a", fingerprint: "f" }, req("a", "g")))).toBe("CAIRN-NET-0001");
    expect(codeOf(() => checkCluster({ clusterName: "a", fingerprint: "f" }, req("a", "")))).toBe("no error");
    expect(codeOf(() => checkCluster({ clusterName: "a", fingerprint: null }, req("a", "g")))).toBe("no error");
  });

  test("with a cluster secret, requests without it or with another one are refused", () => {
    const own = { clusterName: "a", fingerprint: null, secret: "s3cret" };
    expect(codeOf(() => checkCluster(own, req("a", "", "s3cret")))).toBe("no error");
    expect(codeOf(() => checkCluster(own, req("a", "", "")))).toBe("CAIRN-NET-0014");
    expect(codeOf(() => checkCluster(own, req("a", "", "s3creT")))).toBe("CAIRN-NET-0014");
  });

  test("requests from a node an operator removed are refused, whatever its generation", () => {
    const own = { clusterName: "a", fingerprint: "f", removed: (node: string) => node === "N4" };
    const from = (node: string | null) => ({ ...req("a", "f"), from: { node, generation: 9 } });
    expect(codeOf(() => checkCluster(own, from("N4")))).toBe("CAIRN-NODE-0008");
    expect(codeOf(() => checkCluster(own, from("N3")))).toBe("no error");
    expect(codeOf(() => checkCluster(own, from(null)))).toBe("no error");
  });

  test("a node's older generations are refused once a newer one was seen", () => {
    const fence = new GenerationFence();
    expect(fence.admit({ node: "N1", generation: 2 })).toEqual({ newer: true, previous: undefined });
    expect(fence.admit({ node: "N1", generation: 2 })).toEqual({ newer: false, previous: 2 });
    expect(fence.admit({ node: "N1", generation: 3 })).toEqual({ newer: true, previous: 2 });
    expect(codeOf(() => fence.admit({ node: "N1", generation: 2 }))).toBe("CAIRN-NET-0002");
    expect(fence.admit({ node: "N2", generation: 1 }).newer).toBe(true);
    expect(fence.admit({ node: null, generation: 0 }).newer).toBe(false);
  });
});
