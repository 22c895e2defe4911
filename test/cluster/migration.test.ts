// Migration from the local metadata store to the replicated server, with the process killed in the
// middle of it (test failpoints), then finished by a normal start: every key keeps its version.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runCairn, startNode, tempDir } from "../helpers/cairn-process.ts";
import { json } from "../helpers/cluster.ts";

const FAST = ["--set", "metadata-server.tick-interval-ms=50"];

describe("local → replicated metadata migration", () => {
  test("a crash after bootstrap and after import still ends with every key and version, and a sealed local store", async () => {
    const dataDir = join(tempDir(), "m1");
    const local = await startNode({ name: "m1", dataDir, args: ["--set", "metadata-server.type=local"] });
    const a = local.addresses.admin;
    expect((await json(`${a}/v1/cluster/provision`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      await json(`${a}/v1/metadata/app%2Fcounter`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ i }) });
    }
    await json(`${a}/v1/metadata/gone`, { method: "PUT", headers: { "content-type": "application/json" }, body: "1" });
    await json(`${a}/v1/metadata/gone`, { method: "DELETE" });
    const before = (await json<{ keys: Array<{ key: string; version: number }> }>(`${a}/v1/metadata`)).body.keys;
    expect(before.find((k) => k.key === "app/counter")?.version).toBe(3);
    const cluster = (await json<{ fingerprint: string }>(`${a}/v1/cluster`)).body;
    await local.stop();

    // Killed right after bootstrapping the replicated server, then right after the import.
    for (const failpoint of ["migration-after-bootstrap", "migration-after-import"]) {
      const r = await runCairn(
        ["server", "--node-name", "m1", "--base-dir", dataDir, "--admin-address", "127.0.0.1:0", "--fabric-address", "127.0.0.1:0", ...FAST],
        { env: { CAIRN_TEST_FAILPOINT: failpoint } },
      );
      expect(r.exitCode, `${failpoint}: ${r.stdout}${r.stderr}`).not.toBe(0);
      expect(r.stdout).toContain("migrating the local metadata store");
    }

    const migrated = await startNode({ name: "m1", dataDir, args: FAST });
    const b = migrated.addresses.admin;
    expect(migrated.log()).toContain("migration done");
    const after = (await json<{ keys: Array<{ key: string; version: number }> }>(`${b}/v1/metadata`)).body.keys;
    // Registration on this start bumps nodes_config once more; every other key is exactly as before.
    expect(after.filter((k) => k.key !== "nodes_config")).toEqual(before.filter((k) => k.key !== "nodes_config"));
    expect(after.find((k) => k.key === "nodes_config")!.version).toBeGreaterThanOrEqual(before.find((k) => k.key === "nodes_config")!.version);
    expect((await json<{ value: unknown }>(`${b}/v1/metadata/app%2Fcounter`)).body.value).toEqual({ i: 2 });
    expect((await json<{ fingerprint: string }>(`${b}/v1/cluster`)).body.fingerprint).toBe(cluster.fingerprint);
    const status = (await json<{ state: string; raft: { voters: string[] } }>(`${b}/v1/metadata-server/status`)).body;
    expect(status.state).toBe("member");
    expect(status.raft.voters).toEqual(["N1"]);
    // A deleted key keeps its history: re-creating it continues the version sequence.
    const recreated = await json<{ version: number }>(`${b}/v1/metadata/gone`, { method: "PUT", headers: { "content-type": "application/json" }, body: "2" });
    expect(recreated.body.version).toBe(2);
    await migrated.stop();

    // The sealed local store is never used again.
    const sealed = await runCairn(["server", "--node-name", "m1", "--base-dir", dataDir, "--admin-address", "127.0.0.1:0", "--fabric-address", "127.0.0.1:0", "--set", "metadata-server.type=local"]);
    expect(sealed.exitCode).not.toBe(0);
    expect(sealed.stderr).toContain("CAIRN-METADATA-0014");
  });
});
