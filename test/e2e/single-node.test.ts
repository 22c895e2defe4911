// The explicit single-replica setup (DESIGN §1 step 2): `cairn server --auto-provision` on one node
// warns where operators look: the node's log at provisioning and at every start, /v1/cluster/status
// and `cairn ctl status`. `cairn ctl provision` without --replication says what it picked.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runCairn, startNode, tempDir, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually, json } from "../helpers/cluster.ts";
import type { ClusterStatus } from "../../src/admin/status/schema.ts";

const started: NodeProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((n) => n.stop()));
});

const warnings = async (admin: string) =>
  eventually("the cluster running with its warnings", async () => {
    const r = await json<ClusterStatus>(`${admin}/v1/cluster/status`);
    return r.body.state === "running" ? r.body.warnings.map((w) => w.code) : undefined;
  });

describe("single-replica setup", () => {
  test("--auto-provision provisions one node at replication 1 and warns in its log, in status and in ctl status, again after a restart", async () => {
    const dataDir = join(tempDir(), "solo");
    const solo = await startNode({ name: "solo", dataDir, args: ["--auto-provision"] });
    started.push(solo);
    expect(await warnings(solo.addresses.admin)).toEqual(["CAIRN-CLUSTER-0008", "CAIRN-CLUSTER-0009"]);
    expect(solo.log()).toContain("single-replica setup");
    expect(solo.log()).toContain("CAIRN-CLUSTER-0008");

    const ctl = await runCairn(["ctl", "--address", solo.addresses.admin, "status"]);
    expect(ctl.exitCode).toBe(0);
    expect(ctl.stdout).toContain("replication 1");
    expect(ctl.stdout).toContain("warning CAIRN-CLUSTER-0008: single-replica setup");
    expect(ctl.stdout).toContain("warning CAIRN-CLUSTER-0009");

    await solo.stop();
    // The restarted node appends to the same log file: its start must add a warning of its own.
    const count = (text: string) => text.split("\n").filter((l) => l.includes("warning CAIRN-CLUSTER-0008")).length;
    const before = count(solo.log());
    expect(before).toBe(1);
    const again = await startNode({ name: "solo", dataDir });
    started.push(again);
    await eventually("the warning in the log of the restarted node", async () => (count(again.log()) === before + 1 ? true : undefined));
    expect(await warnings(again.addresses.admin)).toContain("CAIRN-CLUSTER-0008");
  });

  test("ctl provision without --replication says what the node picked, and warns of a single replica", async () => {
    const node = await startNode({ name: "fresh" });
    started.push(node);
    const before = await runCairn(["ctl", "--address", node.addresses.admin, "status"]);
    expect(before.exitCode).toBe(4);
    expect(before.stdout).toContain("NOT PROVISIONED");
    expect(before.stdout).toContain(`cairn ctl --address ${node.addresses.admin} provision`);
    const p = await runCairn(["ctl", "--address", node.addresses.admin, "provision"]);
    expect(p.exitCode).toBe(0);
    expect(p.stdout).toContain("replication 1 (picked by the node");
    expect(p.stdout).toContain("warning CAIRN-CLUSTER-0008");
    expect(node.log()).toContain("single-replica setup");
  });
});
