// Regression for 1db1a21 (chaos membership nemesis, seed 7): a metadata member that applied its own
// removal together with later entries in one Ready crashed (exit 70, "undefined is not an object
// (evaluating 'this.driver.sm')"), and crash-looped at every restart replaying that Ready. Here the
// race is forced, not waited for: a real Raft driver over real storage proposes, in one turn of the
// event loop, the nodes configuration that makes this node standby and a later write, so both are
// committed and applied in one Ready; the node's real membership reacts to the first by stopping the
// driver (reconcile), and must let the second pass. A failure while handling the Ready is fatal, so
// the driver's fatal hook records it.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { asRaftId, bootstrapPersistedState } from "../../src/raft/index.ts";
import { MetadataMembership } from "../../src/metadata/membership.ts";
import { KEYS, type NodesConfiguration } from "../../src/metadata/nodes-config.ts";
import { NONE } from "../../src/metadata/kv.ts";
import { RaftDriver } from "../../src/metadata/raft-driver.ts";
import { MetadataRaftStorage } from "../../src/metadata/raft-storage.ts";
import type { MetadataServerContext, MetadataServerDeps } from "../../src/metadata/server-context.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { tempDir } from "../helpers/cairn-process.ts";
import { eventually } from "../helpers/cluster.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function nodesConfig(state: "member" | "standby", storageId: string): NodesConfiguration {
  return {
    clusterName: "regression",
    fingerprint: "f",
    nextNodeId: 2,
    nodes: [
      {
        id: 1,
        name: "n1",
        generation: 1,
        incarnation: "x",
        roles: ["metadata-server"],
        fabricAddress: "unused",
        adminAddress: "",
        metadataServer: { state, storageId: state === "member" ? storageId : null },
      },
    ],
  } as NodesConfiguration;
}

describe("regression: a removed member's crash loop", () => {
  test("applying its own removal and a later entry in one Ready stops the driver without a crash", async () => {
    const id = asRaftId(1);
    const storage = MetadataRaftStorage.open(join(tempDir(), "raft.sqlite"));
    cleanups.push(() => storage.close());
    storage.initialize({ storageId: "s1", createdAtMs: 1, nodeId: 1 }, bootstrapPersistedState([id]));
    const fatal: unknown[] = [];
    const driver = new RaftDriver(
      id,
      storage,
      { send: async () => [], snapshotChunk: async () => Promise.reject(new Error("no snapshots here")) } as unknown as ConstructorParameters<typeof RaftDriver>[2],
      { tickIntervalMs: 5, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, snapshotIntervalEntries: 1000, snapshotKeepEntries: 100 },
      silentLogger(),
      7,
      (e) => fatal.push(e),
    );
    let current: RaftDriver | undefined = driver;
    cleanups.push(() => driver.stop());
    const configsSeen: number[] = [];
    // The node's wiring (node.ts → MetadataServer): every nodes configuration its replica applies goes
    // to membership.reconcile, which stops the driver when this node is now standby.
    const deps = {
      log: silentLogger(),
      nowMs: () => Date.now(),
      randomBytes: (n: number) => crypto.getRandomValues(new Uint8Array(n)),
      requestTimeoutMs: 5_000,
      self: () => ({ name: "n1", generation: 1, incarnation: "x", roles: ["metadata-server"], fabricAddress: "unused", adminAddress: "", autoJoin: true }),
      onNodesConfig: (config: NodesConfiguration, version: number) => {
        configsSeen.push(version);
        void membership.reconcile(config, version, () => undefined);
      },
    } as unknown as MetadataServerDeps;
    const ctx: MetadataServerContext = {
      deps,
      storage,
      integrity: () => ({ ok: true }) as unknown as ReturnType<MetadataServerContext["integrity"]>,
      driver: () => current,
      startDriver: () => {
        throw new Error("not in this test");
      },
      stopDriver: () => {
        current?.stop();
        current = undefined;
      },
      newRequestId: () => crypto.randomUUID(),
    };
    const membership = new MetadataMembership(ctx);
    membership.follow(driver, 1);
    driver.start();
    await eventually("leadership", async () => (driver.leader === driver.id ? true : undefined), 10_000);

    await driver.propose({ t: "kv", id: "member", cmd: { op: "put", key: KEYS.nodesConfig, value: nodesConfig("member", "s1"), precondition: NONE } }, 5_000);
    expect(membership.state).toBe("member");

    // One turn: the removal (this node standby) and a write after it, committed in one Ready.
    const removal = driver.propose({ t: "kv", id: "standby", cmd: { op: "put", key: KEYS.nodesConfig, value: nodesConfig("standby", "s1"), precondition: NONE } }, 5_000);
    const later = driver.propose({ t: "kv", id: "later", cmd: { op: "put", key: "after-removal", value: 1, precondition: NONE } }, 5_000);
    await Promise.allSettled([removal, later]);
    await eventually("the removal to be applied", async () => (current === undefined ? true : undefined), 10_000);

    expect(fatal.map((e) => String(e))).toEqual([]);
    expect(membership.state).toBe("standby");
    expect(driver.sm.kv.get("after-removal")?.value).toBe(1); // the later entry was applied too
    expect(configsSeen.length).toBe(2);
  }, 30_000);
});
