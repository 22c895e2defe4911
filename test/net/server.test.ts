import { afterEach, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { Type } from "@sinclair/typebox";
import { CairnError } from "../../src/observability/errors.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { defineRpc, type FabricClient, type FabricServer } from "../../src/net/index.ts";
import { Echo, Sleep } from "./fixtures/rpcs.ts";
import { CLUSTER, TRANSPORTS, newClient, rejection, sender, startServer } from "./helpers.ts";

const Unregistered = defineRpc({ service: "test", method: "nobody-serves-this", request: Type.Object({}), response: Type.Object({}) });
/** Same path as Echo but a request shape the server's schema refuses. */
const EchoWrongShape = defineRpc({ service: "test", method: "echo", request: Type.Object({ text: Type.Integer() }), response: Type.Object({}) });

describe.each(TRANSPORTS)("fabric server on %s", (transport) => {
  let server: FabricServer | undefined;
  let client: FabricClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.stop();
    client = undefined;
    server = undefined;
  });

  test("a typed call round-trips text and binary payloads and names the sender", async () => {
    server = await startServer(transport);
    client = newClient({ identity: () => sender({ nodeId: "N7", generation: 3 }) });
    const payload = new Uint8Array(70_000).map((_, i) => i % 251);
    const res = await client.call(server.url, Echo, { text: "héllo", payload });
    expect(res.text).toBe("héllo");
    expect(res.payload).toEqual(payload);
    expect(res.from).toBe("N7");
    expect(res.generation).toBe(3);
    const noPayload = await client.call(server.url, Echo, { text: "" });
    expect(noPayload.payload).toBeUndefined();
  });

  test("many concurrent calls on one session all answer correctly", async () => {
    server = await startServer(transport);
    client = newClient();
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => client!.call(server!.url, Echo, { text: `m${i}`, payload: new Uint8Array([i & 255]) })));
    results.forEach((r, i) => {
      expect(r.text).toBe(`m${i}`);
      expect(r.payload).toEqual(new Uint8Array([i & 255]));
    });
  });

  test("a request that fails the method's schema is refused with NET_BAD_REQUEST (400)", async () => {
    server = await startServer(transport);
    client = newClient();
    const e = await rejection(client.call(server.url, EchoWrongShape, { text: 5 }));
    expect(e).toBeInstanceOf(CairnError);
    expect(e.code).toBe("CAIRN-NET-0008");
    expect((e as CairnError).status).toBe(400);
    expect(e.message).toContain("/text");
  });

  test("an unknown method is refused with NET_UNKNOWN_METHOD (404)", async () => {
    server = await startServer(transport);
    client = newClient();
    const e = await rejection(client.call(server.url, Unregistered, {}));
    expect(e.code).toBe("CAIRN-NET-0004");
    expect((e as CairnError).status).toBe(404);
  });

  test("an oversized body is refused with NET_REQUEST_TOO_LARGE (413) by the receiver", async () => {
    server = await startServer(transport, { options: { maxRequestBytes: 64 * 1024 } });
    client = newClient({ options: { maxRequestBytes: 8 * 1024 * 1024 } });
    const e = await rejection(client.call(server.url, Echo, { text: "big", payload: new Uint8Array(4 * 1024 * 1024) }));
    expect(e.code).toBe("CAIRN-NET-0009");
    expect((e as CairnError).status).toBe(413);
    // The session survives the refusal.
    expect((await client.call(server.url, Echo, { text: "small" })).text).toBe("small");
  });

  test("an oversized body without content-length is cut off while streaming", async () => {
    server = await startServer(transport, { options: { maxRequestBytes: 64 * 1024 } });
    const { status, body } = await rawRequest(server.url, "/rpc/test/echo", fencing(), Buffer.alloc(1024 * 1024), { omitLength: true });
    expect(status).toBe(413);
    expect(JSON.parse(body).code).toBe("CAIRN-NET-0009");
  });

  test("the client refuses to send a body over its own limit", async () => {
    server = await startServer(transport);
    client = newClient({ options: { maxRequestBytes: 1024 } });
    const e = await rejection(client.call(server.url, Echo, { text: "x".repeat(2000) }));
    expect(e.code).toBe("CAIRN-NET-0009");
  });

  test("a request from another cluster is refused with NET_CLUSTER_MISMATCH (403)", async () => {
    server = await startServer(transport);
    client = newClient({ identity: () => sender({ clusterName: "other-cluster" }) });
    const e = await rejection(client.call(server.url, Echo, { text: "x" }));
    expect(e.code).toBe("CAIRN-NET-0001");
    expect((e as CairnError).status).toBe(403);
  });

  test("fingerprints must match once both sides are provisioned, and are ignored before", async () => {
    server = await startServer(transport);
    client = newClient({ identity: () => sender({ fingerprint: "fp-other" }) });
    expect((await rejection(client.call(server.url, Echo, { text: "x" }))).code).toBe("CAIRN-NET-0001");
    await client.close();
    client = newClient({ identity: () => sender({ fingerprint: null, nodeId: null }) });
    expect((await client.call(server.url, Echo, { text: "unprovisioned sender" })).from).toBeNull();
    await client.close();
    await server.stop();
    server = await startServer(transport, { identity: () => ({ clusterName: CLUSTER, fingerprint: null }) });
    client = newClient({ identity: () => sender({ fingerprint: "fp-anything" }) });
    expect((await client.call(server.url, Echo, { text: "unprovisioned receiver" })).text).toBe("unprovisioned receiver");
  });

  test("requests without fencing headers are refused with NET_MISSING_HEADERS (400)", async () => {
    server = await startServer(transport);
    const { status, body } = await rawRequest(server.url, "/rpc/test/echo", {}, Buffer.from("{}"));
    expect(status).toBe(400);
    expect(JSON.parse(body)).toMatchObject({ code: "CAIRN-NET-0003", status: 400 });
    const bad = await rawRequest(server.url, "/rpc/test/echo", { ...fencing(), "x-cairn-generation": "-1" }, Buffer.from("{}"));
    expect(JSON.parse(bad.body).code).toBe("CAIRN-NET-0003");
  });

  test("a request from an older generation of a node is refused with NET_STALE_GENERATION", async () => {
    const seen: string[] = [];
    server = await startServer(transport, { onNewerGeneration: (node, gen, prev) => seen.push(`${node}:${prev}->${gen}`) });
    let generation = 5;
    client = newClient({ identity: () => sender({ nodeId: "N2", generation }) });
    await client.call(server.url, Echo, { text: "gen 5" });
    generation = 6;
    await client.call(server.url, Echo, { text: "gen 6" });
    generation = 5;
    const e = await rejection(client.call(server.url, Echo, { text: "stale" }));
    expect(e.code).toBe("CAIRN-NET-0002");
    expect(e.details).toMatchObject({ node: "N2", generation: 5, highestGeneration: 6 });
    expect(server.highestGeneration("N2")).toBe(6);
    expect(seen).toEqual(["N2:undefined->5", "N2:5->6"]);
  });

  test("a handler that never answers makes the call fail with NET_DEADLINE_EXCEEDED, and the handler sees the deadline", async () => {
    let handlerAborted: Promise<unknown> | undefined;
    const Hang = defineRpc({ service: "test", method: "hang", request: Type.Object({}), response: Type.Object({}) });
    server = await startServer(transport);
    server.register(Hang, (_req, ctx) => {
      handlerAborted = new Promise((resolve) => ctx.deadline.addEventListener("abort", () => resolve(ctx.deadline.reason), { once: true }));
      return new Promise(() => {});
    });
    client = newClient();
    const e = await rejection(client.call(server.url, Hang, {}, { deadlineMs: 300 }));
    expect(e.code).toBe("CAIRN-NET-0005");
    expect(await handlerAborted).toBeInstanceOf(CairnError);
    // The session is still fine afterwards.
    expect((await client.call(server.url, Sleep, { delayMs: 1 })).slept).toBe(1);
  });

  test("the server answers NET_DEADLINE_EXCEEDED itself when the caller's budget runs out there", async () => {
    server = await startServer(transport);
    const { status, body } = await rawRequest(server.url, "/rpc/test/sleep", { ...fencing(), "x-cairn-deadline-ms": "100" }, Buffer.from(frameOf({ delayMs: -1 })));
    expect(status).toBe(504);
    expect(JSON.parse(body).code).toBe("CAIRN-NET-0005");
  });

  test("a handler failure reaches the caller as the same CairnError code, and a crash as NET_HANDLER_FAILED", async () => {
    const Fail = defineRpc({ service: "test", method: "fail", request: Type.Object({ kind: Type.String() }), response: Type.Object({ ok: Type.Boolean() }) });
    server = await startServer(transport);
    server.register(Fail, (req) => {
      if (req.kind === "cairn") throw new CairnError("NODE_NOT_READY", "still starting", { waitingFor: "metadata" });
      if (req.kind === "shape") return { ok: "yes" } as never;
      throw new TypeError("boom");
    });
    client = newClient();
    const cairn = await rejection(client.call(server.url, Fail, { kind: "cairn" }));
    expect(cairn.code).toBe("CAIRN-NODE-0004");
    expect(cairn.message).toBe("still starting");
    expect(cairn.details).toMatchObject({ waitingFor: "metadata", peer: server.url });
    expect((await rejection(client.call(server.url, Fail, { kind: "crash" }))).code).toBe("CAIRN-NET-0012");
    // A response that does not match its own schema is a handler bug too; it is not sent.
    expect((await rejection(client.call(server.url, Fail, { kind: "shape" }))).code).toBe("CAIRN-NET-0012");
  });

  test("a body that is not a valid frame is refused with NET_BAD_REQUEST (400)", async () => {
    server = await startServer(transport);
    const { status, body } = await rawRequest(server.url, "/rpc/test/echo", fencing(), Buffer.from("definitely not a frame"));
    expect(status).toBe(400);
    expect(JSON.parse(body).code).toBe("CAIRN-NET-0008");
  });

  test("callers that give up at any point of a request (stream resets) never crash the server", async () => {
    server = await startServer(transport);
    client = newClient();
    const sizes = [0, 100, 70_000, 400_000];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) {
      const controller = new AbortController();
      const payload = new Uint8Array(sizes[i % sizes.length] ?? 0);
      const call = i % 3 === 0 ? client.call(server.url, Sleep, { delayMs: i % 5 }, { signal: controller.signal }) : client.call(server.url, Echo, { text: `${i}`, payload }, { signal: controller.signal, deadlineMs: 1 + (i % 9) });
      calls.push(call.catch(() => {}));
      // Abort at different moments: synchronously, after a microtask, after a macrotask.
      if (i % 4 === 1) controller.abort();
      else if (i % 4 === 2) queueMicrotask(() => controller.abort());
      else if (i % 4 === 3) setTimeout(() => controller.abort(), i % 3);
    }
    await Promise.all(calls);
    expect((await client.call(server.url, Echo, { text: "still serving" })).text).toBe("still serving");
  });

  test("GET /fabric/health answers without fencing headers", async () => {
    server = await startServer(transport);
    const { status, body } = await rawRequest(server.url, "/fabric/health", {}, undefined, { method: "GET" });
    expect(status).toBe(200);
    expect(JSON.parse(body)).toEqual({ status: "ok", clusterName: CLUSTER, provisioned: true });
  });

  test("stopping the server sends GOAWAY: calls in flight complete, later calls reconnect to the new server", async () => {
    server = await startServer(transport);
    const port = server.address.port;
    client = newClient();
    const inFlight = Array.from({ length: 16 }, () => client!.call(server!.url, Sleep, { delayMs: 400 }));
    await Bun.sleep(100);
    const stopping = server.stop();
    const results = await Promise.all(inFlight);
    expect(results.every((r) => r.slept === 400)).toBe(true);
    await stopping;
    server = await startServer(transport, { port });
    const again = await client.call(server.url, Echo, { text: "after restart" }, { deadlineMs: 10_000 }).catch(async (e: CairnError) => {
      // A call made while the old connection was being torn down may fail fast; the next one connects.
      expect(e.code).toBe("CAIRN-NET-0006");
      await Bun.sleep(300);
      return client!.call(server!.url, Echo, { text: "after restart" });
    });
    expect(again.text).toBe("after restart");
  });

  test("metrics count server requests and client calls by outcome", async () => {
    const serverRegistry = createRegistry({ defaultMetrics: false });
    const clientRegistry = createRegistry({ defaultMetrics: false });
    server = await startServer(transport, { registry: serverRegistry });
    client = newClient({ registry: clientRegistry });
    await client.call(server.url, Echo, { text: "a" });
    await rejection(client.call(server.url, Unregistered, {}));
    const serverText = await serverRegistry.metrics();
    expect(serverText).toContain('cairn_fabric_server_requests_total{service="test",method="echo",outcome="ok"} 1');
    expect(serverText).toContain('cairn_fabric_server_requests_total{service="unknown",method="unknown",outcome="CAIRN-NET-0004"} 1');
    const clientText = await clientRegistry.metrics();
    expect(clientText).toContain('cairn_fabric_client_calls_total{service="test",method="echo",outcome="ok"} 1');
    expect(clientText).toContain('cairn_fabric_client_calls_total{service="test",method="nobody-serves-this",outcome="CAIRN-NET-0004"} 1');
    expect(clientText).toContain("cairn_fabric_client_sessions_connected 1");
    expect(clientText).toContain('cairn_fabric_client_in_flight{peer="' + server.url + '"} 0');
  });
});

function fencing(): Record<string, string> {
  return {
    "x-cairn-cluster": CLUSTER,
    "x-cairn-fingerprint": "fp-test",
    "x-cairn-node": "N9",
    "x-cairn-generation": "1",
    "x-cairn-deadline-ms": "5000",
  };
}

function frameOf(value: unknown): Uint8Array {
  return Sleep.encodeRequest(value as never);
}

/** One raw HTTP/2 request, bypassing FabricClient. */
async function rawRequest(
  address: string,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  opts: { method?: string; omitLength?: boolean } = {},
): Promise<{ status: number; body: string }> {
  const session = http2.connect(`http://${address}`);
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const h: http2.OutgoingHttpHeaders = { ":method": opts.method ?? "POST", ":path": path, ...headers };
      if (body !== undefined && !opts.omitLength) h["content-length"] = body.byteLength;
      const stream = session.request(h, { endStream: body === undefined });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (r) => (status = Number(r[":status"])));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      stream.on("error", reject);
      if (body !== undefined) {
        // Write in pieces so an early answer can arrive mid-body.
        const piece = 16 * 1024;
        for (let i = 0; i < body.byteLength; i += piece) stream.write(body.subarray(i, i + piece));
        stream.end();
      }
    });
  } finally {
    session.destroy();
  }
}
