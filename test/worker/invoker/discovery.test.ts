// Discovery against the real Restate SDK (test/fixtures/sdk-services.ts) over h2c and HTTP/1.1, and
// the ways a URI can fail to be an SDK endpoint: nothing listening, another HTTP server, a manifest
// cairn must refuse (served by a small server of our own that answers with a manifest content type).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http from "node:http";
import { discover, parseManifest } from "../../../src/worker/invoker/discovery.ts";
import { CairnError } from "../../../src/observability/errors.ts";
import { startSdkEndpoint, type SdkEndpoint } from "../../helpers/sdk-endpoint.ts";

let h2c: SdkEndpoint;
let http1: SdkEndpoint;

beforeAll(async () => {
  [h2c, http1] = await Promise.all([startSdkEndpoint("h2c"), startSdkEndpoint("http1")]);
});

afterAll(async () => {
  await Promise.all([h2c?.stop(), http1?.stop()]);
});

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string; hint: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CairnError) return { code: e.code, message: e.message, hint: e.hint };
    throw e;
  }
  throw new Error("expected a CairnError");
}

/** A plain HTTP/1.1 server answering every request with `answer`; closed by the caller. */
async function serve(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ uri: string; close(): Promise<void> }> {
  const server = http.createServer(answer);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    uri: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("discovery of a real SDK endpoint", () => {
  test("over h2c: every service, its handler types, content types, protocol range and SDK version", async () => {
    const d = await discover(h2c.uri, { timeoutMs: 10_000 });
    expect(d.http).toBe("h2c");
    expect(d.protocolMode).toBe("bidi-stream");
    expect(d.manifestVersion).toBe(4);
    expect([d.minProtocolVersion, d.maxProtocolVersion]).toEqual([5, 7]);
    expect(d.sdkVersion).toMatch(/^restate-sdk-typescript\/1\.17\./);
    const byName = Object.fromEntries(d.services.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(["Caller", "Counter", "Greeter", "Runner", "Signup", "Waiter"]);
    expect(byName.Greeter!.ty).toBe("service");
    expect(byName.Greeter!.public).toBe(true);
    expect(byName.Greeter!.handlers.map((h) => [h.name, h.ty])).toEqual([["greet", null], ["refuse", null]]);
    expect(byName.Counter!.ty).toBe("virtual-object");
    expect(byName.Counter!.handlers.map((h) => [h.name, h.ty])).toEqual([["add", "exclusive"], ["get", "shared"], ["reset", "exclusive"]]);
    expect(byName.Signup!.ty).toBe("workflow");
    expect(byName.Signup!.handlers.map((h) => [h.name, h.ty])).toEqual([["run", "workflow"], ["confirm", "shared"], ["stage", "shared"]]);
    const greet = byName.Greeter!.handlers[0]!;
    expect(greet).toMatchObject({ inputRequired: false, inputContentType: "application/json", outputContentType: "application/json", setContentTypeIfEmpty: false });
  });

  test("over HTTP/1.1: found by falling back from h2c, or asked for; request-response mode", async () => {
    const fallback = await discover(http1.uri, { timeoutMs: 10_000 });
    expect(fallback.http).toBe("http1.1");
    expect(fallback.protocolMode).toBe("request-response");
    expect(fallback.services.map((s) => s.name).sort()).toEqual(["Caller", "Counter", "Greeter", "Runner", "Signup", "Waiter"]);
    const asked = await discover(`${http1.uri}/`, { timeoutMs: 10_000, useHttp11: true });
    expect(asked.http).toBe("http1.1");
    expect(asked.services).toEqual(fallback.services);
  });

  test("a path prefix is kept (the SDK matches the last segment, discover)", async () => {
    const d = await discover(`${h2c.uri}/prefix/x/`, { timeoutMs: 10_000 });
    expect(d.services.length).toBe(6);
  });
});

describe("discovery failures are DEPLOY errors with a hint", () => {
  test("nothing listening: unreachable", async () => {
    const closed = await serve(() => {});
    await closed.close();
    const e = await codeOf(discover(closed.uri, { timeoutMs: 10_000 }));
    expect(e.code).toBe("CAIRN-DEPLOY-0002");
    expect(e.message).toContain("ECONNREFUSED");
    expect(e.hint).toContain("running");
  });

  test("an endpoint that never answers: unreachable after the deadline", async () => {
    const silent = await serve(() => {});
    try {
      const e = await codeOf(discover(silent.uri, { timeoutMs: 300, useHttp11: true }));
      expect(e.code).toBe("CAIRN-DEPLOY-0002");
      expect(e.message).toContain("no answer in time");
    } finally {
      await silent.close();
    }
  });

  test("an HTTP server that is not a Restate endpoint", async () => {
    const web = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>hello</html>");
    });
    try {
      const e = await codeOf(discover(web.uri, { timeoutMs: 10_000 }));
      expect(e.code).toBe("CAIRN-DEPLOY-0003");
      expect(e.message).toContain("text/html");
    } finally {
      await web.close();
    }
  });

  test("an endpoint that refuses every manifest version cairn asks for (415); the path prefix and additional headers reach it", async () => {
    let path = "";
    let token: unknown;
    const old = await serve((req, res) => {
      path = req.url ?? "";
      token = req.headers["x-token"];
      expect(req.headers.accept).toContain("application/vnd.restate.endpointmanifest.v4+json");
      res.writeHead(415, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: "Unsupported service discovery protocol version" }));
    });
    try {
      expect((await codeOf(discover(`${old.uri}/svc/v2`, { timeoutMs: 10_000, headers: { "x-token": "t1" } }))).code).toBe("CAIRN-DEPLOY-0004");
      expect(path).toBe("/svc/v2/discover");
      expect(token).toBe("t1");
    } finally {
      await old.close();
    }
  });

  test("a bad manifest names the field", async () => {
    const manifest = { protocolMode: "BIDI_STREAM", minProtocolVersion: 5, maxProtocolVersion: 7, services: [{ name: "Ok", ty: "SERVICE", handlers: [{ name: "bad-name" }] }] };
    const bad = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.restate.endpointmanifest.v3+json", "x-restate-server": "fake/1" });
      res.end(JSON.stringify(manifest));
    });
    try {
      const e = await codeOf(discover(bad.uri, { timeoutMs: 10_000, useHttp11: true }));
      expect(e.code).toBe("CAIRN-DEPLOY-0005");
      expect(e.message).toContain("services[0] (Ok).handlers[0].name");
    } finally {
      await bad.close();
    }
  });

  test("a URI that is not http(s) is refused before any request", async () => {
    expect((await codeOf(discover("ftp://127.0.0.1/x", { timeoutMs: 1000 }))).code).toBe("CAIRN-DEPLOY-0001");
    expect((await codeOf(discover("not a uri", { timeoutMs: 1000 }))).code).toBe("CAIRN-DEPLOY-0001");
    expect((await codeOf(discover("http://127.0.0.1:1/?a=b", { timeoutMs: 1000 }))).code).toBe("CAIRN-DEPLOY-0001");
    expect((await codeOf(discover("http://127.0.0.1:1", { timeoutMs: 1000, headers: { connection: "x" } }))).code).toBe("CAIRN-DEPLOY-0013");
  });
});

describe("manifest validation", () => {
  const base = { protocolMode: "REQUEST_RESPONSE", minProtocolVersion: 5, maxProtocolVersion: 6 };
  const refuse = (m: unknown) => {
    try {
      parseManifest(m);
    } catch (e) {
      if (e instanceof CairnError) return `${e.code} ${e.message}`;
      throw e;
    }
    throw new Error("the manifest was accepted");
  };

  test("defaults: object handlers are exclusive, the workflow's handler is its run; options map to ms fields", () => {
    const m = parseManifest({
      ...base,
      services: [
        { name: "Obj", ty: "VIRTUAL_OBJECT", handlers: [{ name: "a" }, { name: "b", ty: "SHARED" }], ingressPrivate: true, journalRetention: 60_000 },
        {
          name: "Flow",
          ty: "WORKFLOW",
          handlers: [{ name: "run", workflowCompletionRetention: 5_000 }, { name: "peek", ty: "SHARED" }],
          retryPolicyInitialInterval: 10,
          retryPolicyMaxInterval: 1000,
          retryPolicyMaxAttempts: 3,
          retryPolicyExponentiationFactor: 2,
          retryPolicyOnMaxAttempts: "KILL",
          inactivityTimeout: 0,
        },
      ],
    });
    expect(m.protocolMode).toBe("request-response");
    const [obj, flow] = m.services;
    expect(obj!.handlers.map((h) => h.ty)).toEqual(["exclusive", "shared"]);
    expect(obj!.public).toBe(false);
    expect(obj!.journalRetentionMs).toBe(60_000);
    expect(obj!.handlers[0]!.inputContentType).toBeNull();
    expect(flow!.handlers.map((h) => h.ty)).toEqual(["workflow", "shared"]);
    expect(flow!.handlers[0]!.workflowCompletionRetentionMs).toBe(5_000);
    expect(flow!.retryPolicy).toEqual({ initialIntervalMs: 10, maxIntervalMs: 1000, maxAttempts: 3, factor: 2, onMaxAttempts: "kill" });
    expect(flow!.inactivityTimeoutMs).toBe(0);
  });

  test("refused manifests", () => {
    const svc = (s: object) => ({ ...base, services: [{ name: "S", ty: "SERVICE", handlers: [{ name: "h" }], ...s }] });
    expect(refuse({ ...base, protocolMode: undefined, services: [] })).toContain("CAIRN-DEPLOY-0005 manifest field protocolMode is missing");
    expect(refuse({ ...base, minProtocolVersion: 7, maxProtocolVersion: 6, services: [] })).toContain("minProtocolVersion");
    expect(refuse({ ...base, minProtocolVersion: 1, maxProtocolVersion: 4, services: [] })).toStartWith("CAIRN-DEPLOY-0004");
    expect(refuse({ ...base, minProtocolVersion: 8, maxProtocolVersion: 9, services: [] })).toStartWith("CAIRN-DEPLOY-0004");
    expect(refuse({ ...base, services: [] })).toContain("services is empty");
    expect(refuse(svc({ name: "9lives" }))).toContain("services[0].name");
    expect(refuse(svc({ ty: "ACTOR" }))).toContain("services[0] (S).ty");
    expect(refuse(svc({ handlers: [{ name: "h", ty: "EXCLUSIVE" }] }))).toContain("must be absent for the handlers of a SERVICE");
    expect(refuse(svc({ ty: "VIRTUAL_OBJECT", handlers: [{ name: "h", ty: "WORKFLOW" }] }))).toContain("WORKFLOW is only for workflows");
    expect(refuse(svc({ ty: "WORKFLOW", handlers: [{ name: "a", ty: "SHARED" }] }))).toContain("exactly one WORKFLOW handler, has 0");
    expect(refuse(svc({ ty: "WORKFLOW", handlers: [{ name: "a" }, { name: "b" }] }))).toContain("exactly one WORKFLOW handler, has 2");
    expect(refuse(svc({ handlers: [{ name: "h" }, { name: "h" }] }))).toContain("'h' appears twice");
    expect(refuse({ ...base, services: [{ name: "S", ty: "SERVICE", handlers: [] }, { name: "S", ty: "SERVICE", handlers: [] }] })).toContain("'S' appears twice");
    expect(refuse(svc({ journalRetention: -1 }))).toContain("journalRetention");
    expect(refuse(svc({ retryPolicyOnMaxAttempts: "RETRY" }))).toContain("retryPolicyOnMaxAttempts");
    expect(refuse(svc({ retryPolicyExponentiationFactor: 0.5 }))).toContain("retryPolicyExponentiationFactor");
    expect(refuse(svc({ metadata: { a: 1 } }))).toContain("metadata.a");
    expect(refuse(svc({ handlers: [{ name: "h", input: "json" }] }))).toContain("input must be an object");
    expect(refuse(svc({ handlers: [{ name: "h", workflowCompletionRetention: 1 }] }))).toContain("only for WORKFLOW handlers");
    expect(refuse([])).toContain("(root) must be an object");
  });

  test("names cairn's data plane serves are reserved", () => {
    for (const name of ["v1", "restate", "openapi.json", "openapi-raw.json", "metrics", "health"]) {
      expect(refuse({ ...base, services: [{ name, ty: "SERVICE", handlers: [] }] })).toStartWith("CAIRN-DEPLOY-0006");
    }
    expect(parseManifest({ ...base, services: [{ name: "Health", ty: "SERVICE", handlers: [] }] }).services[0]!.name).toBe("Health");
  });
});
