// Bad input to the peer fabric of a 3-node cluster, for every RPC defined in a src/**/rpc.ts module
// (new RPCs are covered when they are defined): missing and malformed fencing headers, another
// cluster's name or fingerprint, stale generations, wrong methods, garbage, truncated and schema-less
// frames, oversized bodies; raft batches captured from the real traffic to n3 and replayed twice, in
// reverse, all at once, and again after the term moved on; hand-built stale or misaddressed raft
// messages; slow clients. Every refusal is a 4xx; replays are ignored (200) or refused; afterwards
// every node is healthy, the cluster still agrees on every key, and writes work through every node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import net from "node:net";
import { encodeFrame } from "../../src/net/index.ts";
import { RaftMessagesRpc } from "../../src/metadata/rpc.ts";
import { encodeMessage, asIndex, asRaftId, asTerm, type Message } from "../../src/raft/index.ts";
import { eventually, json, servers, startCluster, type TestCluster } from "../helpers/cluster.ts";
import type { NodeProcess } from "../helpers/cairn-process.ts";
import { freePort } from "../chaos/cluster.ts";
import { H2Recorder } from "./h2-recorder.ts";
import { expectHealthyAndWritable, h2Request, hostPort, is4xx, problemCode, rpcRoutes, type RpcRoute } from "./support.ts";

const MAX_REQUEST_BYTES = 262_144;
let cluster: TestCluster;
let recorder: H2Recorder;
let n3: NodeProcess;
/** n3's real fabric address (the recorder is what the others dial). */
let n3Fabric: string;
let recorderPort = 0;
let clusterName: string;
let fingerprint: string;
const sentinels = new Map<string, { value: unknown; version: number }>();

beforeAll(async () => {
  cluster = await startCluster(2, { replication: 2, extraArgs: ["--set", `net.max-request-bytes=${MAX_REQUEST_BYTES}`] });
  const port = await freePort("127.0.0.1");
  n3Fabric = `127.0.0.1:${port}`;
  recorder = new H2Recorder(n3Fabric);
  recorder.recording = (path) => path === RaftMessagesRpc.path;
  recorderPort = await recorder.listen("127.0.0.1");
  n3 = await cluster.start("n3", ["--fabric-address", n3Fabric, "--set", `net.advertised-address=127.0.0.1:${recorderPort}`]);
  await eventually(
    "3 metadata members",
    async () => {
      const s = await servers(cluster.nodes[0]!.addresses.admin);
      return s.filter((x) => x.state === "member" && x.status?.state === "member").length === 3 ? s : undefined;
    },
    60_000,
  );
  const info = await json<{ name: string; fingerprint: string }>(`${cluster.nodes[0]!.addresses.admin}/v1/cluster`);
  clusterName = info.body.name;
  fingerprint = info.body.fingerprint;
  // Traffic to capture: writes through every node (appends with entries reach n3 as a follower).
  for (let i = 0; i < 30; i++) {
    const n = cluster.nodes[i % 3]!;
    const key = `badinput/fabric-${i % 10}`;
    const r = await json<{ version: number }>(`${n.addresses.admin}/v1/metadata/${encodeURIComponent(key)}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ i }),
    });
    expect(r.status).toBe(200);
    sentinels.set(key, { value: { i }, version: r.body.version });
  }
  await eventually("captured raft batches", async () => (recorder.captured.length >= 20 ? true : undefined), 30_000);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await recorder?.close();
});

function goodHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    "content-type": "application/x-cairn-frame",
    "x-cairn-cluster": clusterName,
    "x-cairn-fingerprint": fingerprint,
    "x-cairn-node": "",
    "x-cairn-generation": "0",
    "x-cairn-deadline-ms": "5000",
    ...extra,
  };
}

function without(headers: Record<string, string>, name: string): Record<string, string> {
  const { [name]: _gone, ...rest } = headers;
  return rest;
}

/**
 * Every key name, and the versions of the keys this test owns (the controllers' own keys, such as
 * `logs` and `nodes_config`, may move on by themselves while the cluster settles).
 */
async function dataSnapshot(): Promise<string> {
  const r = await json<{ keys: Array<{ key: string; version: number }> }>(`${cluster.nodes[0]!.addresses.admin}/v1/metadata?prefix=&consistency=linearizable`);
  expect(r.status).toBe(200);
  return r.body.keys.map((k) => (k.key.startsWith("badinput/") ? `${k.key}@${k.version}` : k.key)).join("\n");
}

/** Every key written so far reads back the same from every node, and every node takes writes. */
async function expectConsistent(label: string): Promise<void> {
  for (const n of cluster.nodes) {
    expect(n.proc.exitCode, `${label}: ${n.dataDir} exited`).toBeNull();
    await expectHealthyAndWritable(n.addresses.admin, `badinput/after-${label}`);
  }
  for (const [key, want] of sentinels) {
    for (const n of cluster.nodes) {
      const r = await json<{ value: unknown; version: number }>(`${n.addresses.admin}/v1/metadata/${encodeURIComponent(key)}?consistency=linearizable`);
      expect(r.status, `${label}: ${key} via ${n.dataDir}`).toBe(200);
      expect({ value: r.body.value, version: r.body.version }, `${label}: ${key} via ${n.dataDir}`).toEqual(want);
    }
  }
  // The replicas converge on one applied index.
  await eventually(
    `${label}: replicas converge`,
    async () => {
      const applied = await Promise.all(
        cluster.nodes.map(async (n) => (await json<{ raft: { appliedIndex: number; commitIndex: number } | null }>(`${n.addresses.admin}/v1/metadata-server/status`)).body.raft?.appliedIndex),
      );
      return applied.every((a) => a !== undefined && a === applied[0]) ? applied : undefined;
    },
    30_000,
  );
  for (const n of cluster.nodes) expect(n.log()).not.toMatch(/InvariantViolation|invariant violated|uncaught exception/i);
}

describe("fabric bad input on every RPC route", () => {
  let routes: RpcRoute[] = [];
  beforeAll(async () => {
    routes = await rpcRoutes();
  });

  test("the RPC modules are found (metadata-server routes at least)", () => {
    const paths = routes.map((r) => r.path);
    for (const m of ["raft", "get", "list", "write", "join", "remove", "status"]) expect(paths).toContain(`/rpc/metadata-server/${m}`);
  });

  test("refusals: fencing, methods, frames, sizes — all 4xx with a catalogue code, nothing changed", async () => {
    const before = await dataSnapshot();
    const validFrame = encodeFrame({});
    const failures: string[] = [];
    const hugeFrame = encodeFrame({ pad: "x".repeat(MAX_REQUEST_BYTES + 10) });
    const absurdCount = Buffer.from(validFrame);
    absurdCount.writeUInt32BE(0x7fff_ffff, absurdCount.length - 4);
    for (const route of routes) {
      const cases: Array<{ name: string; method?: string; headers: Record<string, string>; body?: Uint8Array; expect?: string }> = [
        { name: "no fencing headers", headers: { "content-type": "application/x-cairn-frame" }, body: validFrame, expect: "CAIRN-NET-0003" },
        { name: "another cluster", headers: goodHeaders({ "x-cairn-cluster": "someone-elses-cluster" }), body: validFrame, expect: "CAIRN-NET-0001" },
        { name: "another fingerprint", headers: goodHeaders({ "x-cairn-fingerprint": "ffffffffffffffff" }), body: validFrame, expect: "CAIRN-NET-0001" },
        { name: "empty cluster name", headers: goodHeaders({ "x-cairn-cluster": "" }), body: validFrame },
        { name: "malformed node id", headers: goodHeaders({ "x-cairn-node": "X1" }), body: validFrame },
        { name: "generation not a number", headers: goodHeaders({ "x-cairn-generation": "abc" }), body: validFrame },
        { name: "negative deadline", headers: goodHeaders({ "x-cairn-deadline-ms": "-5" }), body: validFrame },
        { name: "no deadline", headers: without(goodHeaders(), "x-cairn-deadline-ms"), body: validFrame },
        { name: "GET", method: "GET", headers: goodHeaders() },
        { name: "random bytes", headers: goodHeaders(), body: crypto.getRandomValues(new Uint8Array(64)) },
        { name: "empty body", headers: goodHeaders(), body: new Uint8Array(0) },
        { name: "truncated frame", headers: goodHeaders(), body: validFrame.subarray(0, validFrame.length - 3) },
        { name: "a JSON array instead of an object", headers: goodHeaders(), body: encodeFrame([1, 2, 3]) },
        { name: "absurd blob count", headers: goodHeaders(), body: absurdCount },
        { name: "body over net.max-request-bytes", headers: goodHeaders(), body: hugeFrame },
      ];
      for (const c of cases) {
        const r = await h2Request(n3Fabric, c.method ?? "POST", route.path, c.headers, c.body);
        const code = problemCode(r.body);
        if (!is4xx(r.status)) failures.push(`${route.path} ${c.name}: HTTP ${r.status} ${r.error ?? r.body.toString().slice(0, 160)}`);
        else if (code === undefined || !/^CAIRN-NET-[0-9]{4}$/.test(code)) failures.push(`${route.path} ${c.name}: HTTP ${r.status} without a code: ${r.body.toString().slice(0, 160)}`);
        else if (c.expect !== undefined && code !== c.expect) failures.push(`${route.path} ${c.name}: ${code}, expected ${c.expect}`);
      }
    }
    // Oversized headers: refused (a 4xx, or the stream or session reset), never served.
    for (const [label, extra] of [
      ["a 100 KB header", { "x-big": "y".repeat(100_000) }],
      ["2 000 headers", Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x-h${i}`, "v"]))],
    ] as const) {
      const r = await h2Request(n3Fabric, "POST", "/rpc/metadata-server/status", goodHeaders(extra), encodeFrame({}));
      if (r.status !== 0 && !is4xx(r.status)) failures.push(`${label}: HTTP ${r.status}`);
    }
    const unknown = await h2Request(n3Fabric, "POST", "/rpc/no-such-service/nothing", goodHeaders(), encodeFrame({}));
    if (unknown.status !== 404) failures.push(`unknown RPC: HTTP ${unknown.status}`);
    expect(failures).toEqual([]);
    expect(await dataSnapshot()).toBe(before);
    await expectConsistent("refusals");
  }, 120_000);

  test("an older generation of a node already heard from is refused (NET_STALE_GENERATION)", async () => {
    const status = "/rpc/metadata-server/status";
    const first = await h2Request(n3Fabric, "POST", status, goodHeaders({ "x-cairn-node": "N77", "x-cairn-generation": "5" }), encodeFrame({}));
    expect(first.status).toBe(200);
    const older = await h2Request(n3Fabric, "POST", status, goodHeaders({ "x-cairn-node": "N77", "x-cairn-generation": "4" }), encodeFrame({}));
    expect(older.status).toBe(409);
    expect(problemCode(older.body)).toBe("CAIRN-NET-0002");
    // A real member's previous incarnation (generation 0 is older than any started process).
    const leaderSender = recorder.captured[0]!.headers["x-cairn-node"]!;
    const stale = await h2Request(n3Fabric, "POST", status, goodHeaders({ "x-cairn-node": leaderSender, "x-cairn-generation": "0" }), encodeFrame({}));
    expect(stale.status).toBe(409);
    await expectConsistent("stale-generation");
  }, 60_000);
});

describe("raft RPCs replayed and reordered", () => {
  async function replay(batches: ReadonlyArray<{ headers: Record<string, string>; body: Buffer }>, concurrently = false): Promise<number[]> {
    const send = (b: { headers: Record<string, string>; body: Buffer }) => h2Request(n3Fabric, "POST", RaftMessagesRpc.path, b.headers, b.body).then((r) => r.status);
    if (concurrently) return Promise.all(batches.map(send));
    const out: number[] = [];
    for (const b of batches) out.push(await send(b));
    return out;
  }

  function acceptable(statuses: number[]): string[] {
    return statuses.filter((s) => s !== 200 && !is4xx(s)).map((s) => `HTTP ${s}`);
  }

  test("captured batches sent twice, in reverse and all at once are ignored; the cluster agrees afterwards", async () => {
    const captured = recorder.captured.slice();
    expect(captured.length).toBeGreaterThanOrEqual(20);
    expect(captured.some((c) => c.body.length > 200)).toBe(true); // some carried entries
    const bad: string[] = [];
    bad.push(...acceptable(await replay(captured)));
    bad.push(...acceptable(await replay(captured)));
    bad.push(...acceptable(await replay([...captured].reverse())));
    bad.push(...acceptable(await replay(captured, true)));
    expect(bad).toEqual([]);
    await expectConsistent("replay-same-term");
  }, 120_000);

  test("after the term moved on (leader killed and restarted), the old batches are ignored", async () => {
    const captured = recorder.captured.slice(0, 200);
    const leaderIndex = await eventually("a leader", async () => {
      for (let i = 0; i < cluster.nodes.length; i++) {
        const r = await json<{ raft: { role: string } | null }>(`${cluster.nodes[i]!.addresses.admin}/v1/metadata-server/status`).catch(() => undefined);
        if (r?.body.raft?.role === "leader") return i;
      }
      return undefined;
    });
    const leader = cluster.nodes[leaderIndex]!;
    await leader.stop("SIGKILL");
    const name = ["n1", "n2", "n3"][leaderIndex]!;
    if (name === "n3") {
      await cluster.start("n3", ["--fabric-address", n3Fabric, "--set", `net.advertised-address=127.0.0.1:${recorderPort}`], leader.dataDir);
    } else {
      await cluster.start(name, [], leader.dataDir);
    }
    n3 = cluster.nodes[2]!;
    // Let the cluster recover from the kill first, so what follows measures the replay only.
    await eventually(
      "every node writes after the leader's restart",
      async () => {
        for (const n of cluster.nodes) {
          const w = await json(`${n.addresses.admin}/v1/metadata/badinput%2Frecovered`, { method: "PUT", headers: { "content-type": "application/json" }, body: "1" });
          if (w.status !== 200) return undefined;
        }
        return true;
      },
      30_000,
    );
    // The old leader's batches now carry an old term (or an old generation, if it was the sender).
    const statuses = await replay(captured);
    expect(acceptable(statuses)).toEqual([]);
    await expectConsistent("replay-after-term-change");
  }, 120_000);

  test("hand-built batches: a stale-term append with bogus entries, misaddressed and undecodable messages, an empty batch", async () => {
    const ids = await servers(cluster.nodes[0]!.addresses.admin);
    const n3Id = Number(ids.find((s) => s.name === "n3")!.node.replace(/^N/, ""));
    const leaderId = Number((ids.find((s) => s.status?.raft?.leader)?.status?.raft?.leader ?? "N1").replace(/^N/, ""));
    const bogus: Message = {
      type: "append",
      from: asRaftId(leaderId),
      to: asRaftId(n3Id),
      term: asTerm(1),
      prevIndex: asIndex(0),
      prevTerm: asTerm(0),
      entries: [{ kind: "normal", term: asTerm(1), index: asIndex(1), data: new TextEncoder().encode("not a command") }],
      commit: asIndex(1),
    };
    const misaddressed: Message = { ...bogus, to: asRaftId(999), term: asTerm(10_000) };
    const batches = [
      RaftMessagesRpc.encodeRequest({ from: leaderId, messages: [encodeMessage(bogus)] }),
      RaftMessagesRpc.encodeRequest({ from: leaderId, messages: [encodeMessage(misaddressed)] }),
      RaftMessagesRpc.encodeRequest({ from: leaderId, messages: [crypto.getRandomValues(new Uint8Array(40)), new Uint8Array(0)] }),
      RaftMessagesRpc.encodeRequest({ from: leaderId, messages: [] }),
    ];
    const statuses: number[] = [];
    for (const body of batches) statuses.push((await h2Request(n3Fabric, "POST", RaftMessagesRpc.path, goodHeaders(), body)).status);
    expect(acceptable(statuses)).toEqual([]);
    await expectConsistent("hand-built");
  }, 60_000);
});

describe("slow clients on the fabric port", () => {
  test("connections trickling the HTTP/2 preface and streams trickling a body do not block peers", async () => {
    const { host, port } = hostPort(n3Fabric);
    const sockets: net.Socket[] = [];
    const sessions: http2.ClientHttp2Session[] = [];
    let stop = false;
    const trickles: Promise<void>[] = [];
    try {
      const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
      for (let i = 0; i < 32; i++) {
        const s = net.connect({ host, port });
        s.on("error", () => {});
        sockets.push(s);
        trickles.push(
          (async () => {
            await new Promise<void>((r) => s.once("connect", () => r()));
            for (let k = 0; k < preface.length && !stop && !s.destroyed; k++) {
              s.write(preface[k]!);
              await Bun.sleep(100);
            }
          })(),
        );
      }
      for (let i = 0; i < 8; i++) {
        const session = http2.connect(`http://${n3Fabric}`);
        session.on("error", () => {});
        sessions.push(session);
        const stream = session.request({ ":method": "POST", ":path": "/rpc/metadata-server/status", ...goodHeaders() });
        stream.on("error", () => {});
        trickles.push(
          (async () => {
            for (let k = 0; k < 50 && !stop && !stream.destroyed; k++) {
              stream.write(new Uint8Array([0]));
              await Bun.sleep(100);
            }
          })(),
        );
      }
      await Bun.sleep(300);
      const health = await h2Request(n3Fabric, "GET", "/fabric/health", {});
      expect(health.status).toBe(200);
      for (const n of cluster.nodes) await expectHealthyAndWritable(n.addresses.admin, "badinput/fabric-slow");
    } finally {
      stop = true;
      for (const s of sockets) s.destroy();
      for (const s of sessions) s.destroy();
      await Promise.all(trickles);
    }
  }, 60_000);
});
