// A real 3-node cluster (every role) with the real SDK fixture registered as a deployment and every
// partition led by its placed leader: the set-up of the tests of durable invocations.
import { expect } from "bun:test";
import { ALL_ROLES } from "./cairn-process.ts";
import { startCluster, type TestCluster } from "./cluster.ts";
import { partitionsSettled } from "./partitions-settled.ts";
import { startSdkEndpoint, type SdkEndpoint } from "./sdk-endpoint.ts";

export async function startInvocationCluster(): Promise<{ cluster: TestCluster; sdk: SdkEndpoint; admin: string[] }> {
  const [cluster, sdk] = await Promise.all([startCluster(3, { extraArgs: ["--roles", ALL_ROLES] }), startSdkEndpoint("h2c")]);
  const admin = cluster.nodes.map((n) => n.addresses.admin);
  const r = await fetch(`${admin[0]}/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ uri: sdk.uri }), signal: AbortSignal.timeout(30_000) });
  expect(r.status).toBe(201);
  await partitionsSettled(admin[0]!);
  return { cluster, sdk, admin };
}
