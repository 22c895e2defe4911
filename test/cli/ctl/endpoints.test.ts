import { describe, expect, test } from "bun:test";
import { clusterWide, Endpoints, mayRetryElsewhere, parseAddresses } from "../../../src/cli/ctl/endpoints.ts";

describe("ctl addresses", () => {
  test("a comma- or space-separated list becomes base URLs, with a scheme, without duplicates, in order", () => {
    expect(parseAddresses("127.0.0.1:9070, http://127.0.0.1:9071/ 127.0.0.1:9070,,")).toEqual(["http://127.0.0.1:9070", "http://127.0.0.1:9071"]);
    expect(parseAddresses("  ")).toEqual([]);
  });

  test("the address that answered last is tried first; learnt addresses come after the given ones, once", () => {
    const e = new Endpoints(["http://a", "http://b"]);
    expect(e.order()).toEqual(["http://a", "http://b"]);
    e.answered("http://b");
    expect(e.order()).toEqual(["http://b", "http://a"]);
    expect(e.learn(["http://a", "c:1", "", "http://c:1"])).toEqual(["http://c:1"]);
    expect(e.order()).toEqual(["http://b", "http://a", "http://c:1"]);
    expect(e.describe()).toBe("http://a, http://b, http://c:1");
  });

  test("a read moves to the next node on any failure; a write only when it certainly never left", () => {
    const refused = Object.assign(new TypeError("Unable to connect"), { code: "ECONNREFUSED" });
    const timeout = new DOMException("timed out", "TimeoutError");
    expect(mayRetryElsewhere("GET", timeout)).toBe(true);
    expect(mayRetryElsewhere("POST", refused)).toBe(true);
    expect(mayRetryElsewhere("POST", timeout)).toBe(false);
    expect(mayRetryElsewhere("PUT", new Error("socket closed"))).toBe(false);
  });

  test("only cluster-wide reads are asked of other nodes; a node's own state is not", () => {
    for (const p of ["/v1/cluster", "/v1/cluster/status", "/v1/cluster/config", "/v1/nodes", "/v1/metadata", "/v1/metadata/app/x", "/v1/metadata-servers", "/v1/logs", "/v1/logs/2/tail"]) {
      expect(clusterWide(p)).toBe(true);
    }
    for (const p of ["/v1/node", "/v1/node/config", "/v1/metadata-server/status", "/ready", "/health", "/metrics"]) expect(clusterWide(p)).toBe(false);
  });
});

describe("ctl failover between nodes", () => {
  test("a dead address is skipped, and a cluster-wide read one node cannot answer (503) is asked of the nodes it names", async () => {
    const { failoverFetch } = await import("../../../src/cli/ctl/endpoints.ts");
    const healthy = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ keys: [], next: null }) });
    const lagging = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) =>
        new URL(req.url).pathname === "/v1/cluster/status"
          ? Response.json({ nodes: [{ adminAddress: `http://127.0.0.1:${healthy.port}`, alive: true }] })
          : Response.json({ code: "CAIRN-METADATA-0007" }, { status: 503 }),
    });
    try {
      const endpoints = new Endpoints(["http://127.0.0.1:1", `http://127.0.0.1:${lagging.port}`]);
      const discover = async (base: string, signal: AbortSignal) => {
        const s = (await (await fetch(`${base}/v1/cluster/status`, { signal })).json()) as { nodes: Array<{ adminAddress: string }> };
        return s.nodes.map((n) => n.adminAddress);
      };
      const f = failoverFetch({ endpoints, timeoutMs: 2000, discover });
      const list = await f(new Request("http://placeholder/v1/metadata?limit=5"));
      expect(list.status).toBe(200);
      expect(endpoints.order()[0]).toBe(`http://127.0.0.1:${healthy.port}`);
      // A node's own state is not asked elsewhere: the lagging node's answer stands.
      const own = await failoverFetch({ endpoints: new Endpoints([`http://127.0.0.1:${lagging.port}`]), timeoutMs: 2000, discover })(
        new Request("http://placeholder/v1/metadata-server/status"),
      );
      expect(own.status).toBe(503);
      // No address answers: the error names every one tried.
      const none = failoverFetch({ endpoints: new Endpoints(["http://127.0.0.1:1", "http://127.0.0.1:2"]), timeoutMs: 2000, discover });
      await expect(none(new Request("http://placeholder/v1/node"))).rejects.toThrow(/127\.0\.0\.1:1.*127\.0\.0\.1:2/);
    } finally {
      healthy.stop(true);
      lagging.stop(true);
    }
  });
});
