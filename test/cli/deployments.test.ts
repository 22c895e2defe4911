// `cairn ctl deployments register|list|remove` and `cairn ctl services list` against a real node and
// the real SDK fixture (HTTP/1.1 endpoint registered with --http1.1 and a header): tables, --json,
// and the exit code of a refusal (an unreachable endpoint, a deployment still in use).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EXIT } from "../../src/cli/exit-codes.ts";
import { runCairn, startNode, type NodeProcess } from "../helpers/cairn-process.ts";
import { startSdkEndpoint, type SdkEndpoint } from "../helpers/sdk-endpoint.ts";

let node: NodeProcess;
let endpoint: SdkEndpoint;
let ctl: (...args: string[]) => ReturnType<typeof runCairn>;

beforeAll(async () => {
  [node, endpoint] = await Promise.all([startNode({ name: "ctl-deploy" }), startSdkEndpoint("http1")]);
  const p = await fetch(`${node.addresses.admin}/v1/cluster/provision`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  expect(p.status).toBe(200);
  ctl = (...args: string[]) => runCairn(["ctl", "--address", node.addresses.admin, ...args]);
}, 120_000);

afterAll(async () => {
  await Promise.all([node?.stop(), endpoint?.stop()]);
}, 60_000);

describe("cairn ctl deployments and services", () => {
  let id = "";

  test("register over HTTP/1.1 with a header prints the services; again says it was already registered", async () => {
    const r = await ctl("deployments", "register", endpoint.uri, "--http1.1", "--header", "x-team=blue");
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(EXIT.OK);
    const m = /^Registered deployment (dp_[a-z2-7]{26}) \(restate-sdk-typescript\/[^,]+, protocol V5-V7\):/.exec(r.stdout);
    expect(m).not.toBeNull();
    id = m![1]!;
    expect(r.stdout).toMatch(/Counter\s+VirtualObject\s+1\s+dp_\S+\s+yes\s+add \(exclusive\), get \(shared\), reset \(exclusive\)/);
    const again = await ctl("--json", "deployments", "register", endpoint.uri, "--http1.1", "--header", "x-team=blue");
    expect(again.exitCode).toBe(EXIT.OK);
    expect((JSON.parse(again.stdout) as { id: string }).id).toBe(id);
  });

  test("list shows the transport and the services; --json is the API's body", async () => {
    const r = await ctl("deployments", "list");
    expect(r.exitCode).toBe(EXIT.OK);
    expect(r.stdout).toMatch(new RegExp(`${id}\\s+${endpoint.uri.replace(/\./g, "\\.")}\\s+HTTP/1\\.1\\s+RequestResponse`));
    expect(r.stdout).toContain("Greeter@1");
    const json = JSON.parse((await ctl("--json", "deployments", "list")).stdout) as { deployments: Array<{ id: string; additional_headers: Record<string, string> }> };
    expect(json.deployments.map((d) => [d.id, d.additional_headers])).toEqual([[id, { "x-team": "blue" }]]);
    const services = await ctl("services", "list");
    expect(services.exitCode).toBe(EXIT.OK);
    expect(services.stdout).toMatch(/Signup\s+Workflow\s+1\s+dp_\S+\s+yes\s+run \(workflow\), confirm \(shared\), stage \(shared\)/);
  });

  test("refusals exit 5 with the code and hint: unreachable endpoint, deployment in use; --force removes", async () => {
    const bad = await ctl("deployments", "register", "http://127.0.0.1:1");
    expect(bad.exitCode).toBe(EXIT.REFUSED);
    expect(bad.stderr).toContain("CAIRN-DEPLOY-0002");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const inUse = await ctl("deployments", "remove", id);
    expect(inUse.exitCode).toBe(EXIT.REFUSED);
    expect(inUse.stderr).toContain("CAIRN-DEPLOY-0009");
    const forced = await ctl("deployments", "remove", id, "--force");
    expect(forced.exitCode).toBe(EXIT.OK);
    expect(forced.stdout).toContain(`Removed deployment ${id}; unregistered`);
    expect((await ctl("services", "list")).stdout).toBe("(no services)\n");
    expect((await ctl("deployments", "list")).stdout).toBe("(no deployments)\n");
  });

  test("a malformed --header is a usage error", async () => {
    const r = await ctl("deployments", "register", endpoint.uri, "--header", "novalue");
    expect(r.exitCode).toBe(EXIT.USAGE);
  });
});
