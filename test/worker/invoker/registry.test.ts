// The schema registry's rules as pure functions: registration (new, unchanged, re-pointed with a
// revision, overwritten by force), removal, lookups, and the refusals that keep services consistent.
import { describe, expect, test } from "bun:test";
import { CairnError } from "../../../src/observability/errors.ts";
import type { Discovered, DiscoveredService } from "../../../src/worker/invoker/discovery.ts";
import { EMPTY_REGISTRY, type SchemaRegistry } from "../../../src/worker/invoker/model.ts";
import { deploymentOf, handlerOf, newDeploymentId, registerDeployment, removeDeployment, serviceOf } from "../../../src/worker/invoker/registry.ts";

function service(name: string, ty: DiscoveredService["ty"] = "service", handlers = ["h"]): DiscoveredService {
  return {
    name,
    ty,
    public: true,
    handlers: handlers.map((h) => ({
      name: h,
      ty: ty === "service" ? null : ty === "virtual-object" ? "exclusive" : "workflow",
      inputRequired: false,
      inputContentType: "application/json",
      outputContentType: "application/json",
      setContentTypeIfEmpty: false,
    })),
  };
}

function discovered(...services: DiscoveredService[]): Discovered {
  return { http: "h2c", sdkVersion: "restate-sdk-typescript/1.17.2", protocolMode: "bidi-stream", minProtocolVersion: 5, maxProtocolVersion: 7, manifestVersion: 4, services };
}

const opts = (uri: string, id: string, extra: { force?: boolean; headers?: Record<string, string> } = {}) => ({
  uri,
  id,
  additionalHeaders: extra.headers ?? {},
  force: extra.force ?? false,
  nowMs: 1_000,
});

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof CairnError) return e.code;
    throw e;
  }
  throw new Error("not refused");
}

describe("registering deployments", () => {
  test("a new endpoint creates a deployment and revision 1 of each service", () => {
    const r = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter"), service("Counter", "virtual-object")), opts("http://a:9080", "dp_a"));
    expect(r.created).toBe(true);
    expect(r.changed).toBe(true);
    expect(r.deployment).toMatchObject({ id: "dp_a", uri: "http://a:9080", http: "h2c", services: ["Greeter", "Counter"], createdAtMs: 1_000, sdkVersion: "restate-sdk-typescript/1.17.2" });
    expect(r.registry.services.map((s) => [s.name, s.deploymentId, s.revision])).toEqual([
      ["Counter", "dp_a", 1],
      ["Greeter", "dp_a", 1],
    ]);
    expect(handlerOf(r.registry, "Counter", "h").handler.ty).toBe("exclusive");
  });

  test("the same endpoint with the same services again changes nothing (created=false)", () => {
    const first = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter")), opts("http://a:9080", "dp_a"));
    const again = registerDeployment(first.registry, discovered(service("Greeter")), opts("http://a:9080", "dp_other"));
    expect(again.created).toBe(false);
    expect(again.changed).toBe(false);
    expect(again.registry).toBe(first.registry);
    expect(again.deployment.id).toBe("dp_a");
  });

  test("a different URI with the same services is a new deployment; the services move to it with revision + 1", () => {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter"), service("Other")), opts("http://a:9080", "dp_a"));
    const v2 = registerDeployment(v1.registry, discovered(service("Greeter")), opts("http://b:9080", "dp_b"));
    expect(v2.created).toBe(true);
    expect(v2.registry.deployments.map((d) => d.id)).toEqual(["dp_a", "dp_b"]);
    expect(serviceOf(v2.registry, "Greeter")).toMatchObject({ deploymentId: "dp_b", revision: 2 });
    expect(serviceOf(v2.registry, "Other")).toMatchObject({ deploymentId: "dp_a", revision: 1 });
    const v3 = registerDeployment(v2.registry, discovered(service("Greeter")), opts("http://c:9080", "dp_c"));
    expect(serviceOf(v3.registry, "Greeter")).toMatchObject({ deploymentId: "dp_c", revision: 3 });
  });

  test("the same URI with changed services is refused unless forced; forced, it is overwritten in place", () => {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter"), service("Gone")), opts("http://a:9080", "dp_a"));
    const changed = discovered(service("Greeter", "service", ["h", "extra"]));
    expect(refusal(() => registerDeployment(v1.registry, changed, opts("http://a:9080", "dp_x")))).toBe("CAIRN-DEPLOY-0012");
    const forced = registerDeployment(v1.registry, changed, opts("http://a:9080", "dp_x", { force: true }));
    expect(forced.created).toBe(false);
    expect(forced.deployment.id).toBe("dp_a");
    expect(forced.registry.deployments.length).toBe(1);
    expect(serviceOf(forced.registry, "Greeter")).toMatchObject({ deploymentId: "dp_a", revision: 2 });
    expect(serviceOf(forced.registry, "Greeter").handlers.map((h) => h.name)).toEqual(["h", "extra"]);
    expect(refusal(() => serviceOf(forced.registry, "Gone"))).toBe("CAIRN-DEPLOY-0010");
  });

  test("registering an older deployment again moves its services back to it (a roll-back), revision + 1", () => {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter"), service("Solo")), opts("http://a:9080", "dp_a"));
    const v2 = registerDeployment(v1.registry, discovered(service("Greeter")), opts("http://b:9080", "dp_b"));
    const back = registerDeployment(v2.registry, discovered(service("Greeter"), service("Solo")), opts("http://a:9080", "dp_x"));
    expect([back.created, back.changed, back.deployment.id]).toEqual([false, true, "dp_a"]);
    expect(serviceOf(back.registry, "Greeter")).toMatchObject({ deploymentId: "dp_a", revision: 3 });
    expect(serviceOf(back.registry, "Solo")).toMatchObject({ deploymentId: "dp_a", revision: 2 });
    expect(back.registry.deployments.map((d) => d.id)).toEqual(["dp_a", "dp_b"]);
    // But not when the services it still serves changed meanwhile.
    const changedSolo = discovered(service("Greeter"), service("Solo", "service", ["h", "new"]));
    expect(refusal(() => registerDeployment(v2.registry, changedSolo, opts("http://a:9080", "dp_x")))).toBe("CAIRN-DEPLOY-0012");
  });

  test("changed additional headers count as a change of the deployment", () => {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter")), opts("http://a:9080", "dp_a", { headers: { "x-token": "1" } }));
    expect(refusal(() => registerDeployment(v1.registry, discovered(service("Greeter")), opts("http://a:9080", "dp_b", { headers: { "x-token": "2" } })))).toBe("CAIRN-DEPLOY-0012");
  });

  test("changing a service's type is refused unless forced", () => {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Thing")), opts("http://a:9080", "dp_a"));
    const asObject = discovered(service("Thing", "virtual-object"));
    expect(refusal(() => registerDeployment(v1.registry, asObject, opts("http://b:9080", "dp_b")))).toBe("CAIRN-DEPLOY-0007");
    const forced = registerDeployment(v1.registry, asObject, opts("http://b:9080", "dp_b", { force: true }));
    expect(serviceOf(forced.registry, "Thing")).toMatchObject({ ty: "virtual-object", deploymentId: "dp_b", revision: 2 });
  });
});

describe("removing deployments", () => {
  function twoVersions(): SchemaRegistry {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter"), service("Solo")), opts("http://a:9080", "dp_a"));
    return registerDeployment(v1.registry, discovered(service("Greeter")), opts("http://b:9080", "dp_b")).registry;
  }

  test("a deployment still serving the latest revision of a service is kept unless forced", () => {
    const reg = twoVersions();
    expect(refusal(() => removeDeployment(reg, "dp_b", { force: false }))).toBe("CAIRN-DEPLOY-0009");
    expect(refusal(() => removeDeployment(reg, "dp_a", { force: false }))).toBe("CAIRN-DEPLOY-0009");
    const forced = removeDeployment(reg, "dp_a", { force: true });
    expect(forced.removedServices).toEqual(["Solo"]);
    expect(forced.registry.deployments.map((d) => d.id)).toEqual(["dp_b"]);
    expect(forced.registry.services.map((s) => s.name)).toEqual(["Greeter"]);
  });

  test("a deployment no service points at any more is removed without force", () => {
    const v1 = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter")), opts("http://a:9080", "dp_a"));
    const v2 = registerDeployment(v1.registry, discovered(service("Greeter")), opts("http://b:9080", "dp_b"));
    const r = removeDeployment(v2.registry, "dp_a", { force: false });
    expect(r.removed.id).toBe("dp_a");
    expect(r.removedServices).toEqual([]);
    expect(serviceOf(r.registry, "Greeter").deploymentId).toBe("dp_b");
    expect(refusal(() => deploymentOf(r.registry, "dp_a"))).toBe("CAIRN-DEPLOY-0008");
    expect(refusal(() => removeDeployment(r.registry, "dp_a", { force: true }))).toBe("CAIRN-DEPLOY-0008");
  });
});

test("lookups refuse unknown services and handlers with DEPLOY codes", () => {
  const reg = registerDeployment(EMPTY_REGISTRY, discovered(service("Greeter")), opts("http://a:9080", "dp_a")).registry;
  expect(handlerOf(reg, "Greeter", "h").deployment.id).toBe("dp_a");
  expect(refusal(() => handlerOf(reg, "Greeter", "nope"))).toBe("CAIRN-DEPLOY-0010");
  expect(refusal(() => serviceOf(reg, "Nope"))).toBe("CAIRN-DEPLOY-0010");
});

test("deployment ids are dp_ and 26 base32 characters", () => {
  expect(newDeploymentId(new Uint8Array(16))).toBe(`dp_${"a".repeat(26)}`);
  expect(newDeploymentId(new Uint8Array(16).fill(255))).toMatch(/^dp_7{25}[a-z2-7]$/);
  expect(newDeploymentId(crypto.getRandomValues(new Uint8Array(16)))).toMatch(/^dp_[a-z2-7]{26}$/);
});
