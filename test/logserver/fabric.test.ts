// The log-server role over the peer fabric, with real processes: two nodes serve their record stores,
// this test process stores and reads records on them, and runs a replicated loglet (sequencer,
// reader, seal) across both through the fabric transport.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fabricLogServerTransport } from "../../src/bifrost/fabric-transport.ts";
import { ReplicatedLogletAppender, readLoglet, sealLoglet, type ReplicatedLogletParams } from "../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset, nodeId, type NodeId } from "../../src/ids/index.ts";
import { LOGSERVER_RPCS, decodeLogServerResponse, toWire } from "../../src/logserver/index.ts";
import { FabricClient } from "../../src/net/index.ts";
import { createRegistry } from "../../src/observability/metrics.ts";
import { json, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { decode, storeReq } from "./helpers.ts";

let cluster: TestCluster;
let client: FabricClient;
const ids: NodeId[] = [];
const fabric = new Map<NodeId, string>();
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  cluster = await startCluster(2);
  const info = await json<{ fingerprint: string; name: string }>(`${cluster.nodes[0]!.addresses.admin}/v1/cluster`);
  for (const n of cluster.nodes) {
    const node = await json<{ id: string }>(`${n.addresses.admin}/v1/node`);
    const id = nodeId(node.body.id);
    ids.push(id);
    fabric.set(id, n.addresses.fabric);
  }
  client = new FabricClient({
    identity: () => ({ clusterName: info.body.name, fingerprint: info.body.fingerprint, nodeId: null, generation: 0, secret: "" }),
    registry: createRegistry(),
  });
}, 90_000);

afterAll(async () => {
  await client?.close();
  await cluster?.stop();
});

describe("log-server over the fabric", () => {
  test("a record stored on a node through the fabric reads back from it, and its answers carry the tail", async () => {
    const loglet = asLogletId("901_0");
    const address = fabric.get(ids[1]!)!;
    const stored = decodeLogServerResponse.store(await client.call(address, LOGSERVER_RPCS.store, toWire(storeReq(loglet, 1, 5))));
    expect(stored).toMatchObject({ status: "stored", localTail: 6, sealed: false });
    const read = decodeLogServerResponse.getRecords(
      await client.call(address, LOGSERVER_RPCS.getRecords, { loglet, from: 1, to: 10, byteBudget: 1 << 20 }),
    );
    expect(read.entries.map((e) => (e.kind === "data" ? decode(e.payload) : "gap"))).toEqual([1, 2, 3, 4, 5].map((o) => `${loglet}@${o}`));
    // The other node never saw this loglet.
    const info = await client.call(fabric.get(ids[0]!)!, LOGSERVER_RPCS.getLogletInfo, { loglet });
    expect(info).toMatchObject({ localTail: 1, sealed: false, sequencer: null });
    // Fencing holds over the wire: another sequencer is refused.
    const other = await client.call(address, LOGSERVER_RPCS.store, toWire(storeReq(loglet, 6, 1, { sequencer: generationalNodeId(9, 1) })));
    expect(other.status).toBe("fenced");
  });

  test("a replicated loglet across both nodes: appends commit on r = 2, read back in order, seal stops appends", async () => {
    const transport = fabricLogServerTransport({ client, addressOf: (n) => fabric.get(n) });
    const params: ReplicatedLogletParams = { loglet: asLogletId("902_0"), sequencer: generationalNodeId(7, 1), nodeset: ids, replication: 2 };
    const appender = new ReplicatedLogletAppender(params, transport, { tickMs: 10 });
    appender.start();
    try {
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => appender.append([enc(`a${i}`), enc(`b${i}`)])));
      expect(results.map((r) => r.first)).toEqual(Array.from({ length: 40 }, (_, i) => logletOffset(2 * i + 1)));
      const entries = await readLoglet(params, transport, logletOffset(1), logletOffset(81));
      expect(entries.map((e) => (e.kind === "record" ? dec(e.payload) : "gap"))).toEqual(Array.from({ length: 40 }, (_, i) => [`a${i}`, `b${i}`]).flat());
      const sealed = await sealLoglet(params, transport);
      expect([...sealed.values()].every((r) => r.sealed)).toBe(true);
      await expect(appender.append([enc("late")])).rejects.toMatchObject({ code: "CAIRN-LOG-0001" });
    } finally {
      appender.stop();
    }
  });
});
