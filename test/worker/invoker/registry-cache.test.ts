// The registry in metadata, over a real local metadata store (SQLite): concurrent writers both land
// through the CAS loop, a writer that keeps losing gives up with DEPLOY_REGISTRY_CONFLICT, and the
// cache serves stale copies within its TTL and re-reads on demand (time from a test clock).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LocalMetadataApi } from "../../../src/metadata/local-api.ts";
import { LocalMetadataStore } from "../../../src/metadata/local-store.ts";
import type { MetadataApi } from "../../../src/metadata/api.ts";
import { CairnError } from "../../../src/observability/errors.ts";
import type { Discovered } from "../../../src/worker/invoker/discovery.ts";
import { SCHEMA_KEY } from "../../../src/worker/invoker/model.ts";
import { registerDeployment } from "../../../src/worker/invoker/registry.ts";
import { readRegistry, SchemaCache, updateRegistry } from "../../../src/worker/invoker/registry-cache.ts";
import { tempDir } from "../../helpers/cairn-process.ts";

const stores: LocalMetadataStore[] = [];
afterAll(() => {
  for (const s of stores) s.close();
});

function freshApi(): MetadataApi {
  const store = LocalMetadataStore.open(join(tempDir(), "meta.sqlite"));
  stores.push(store);
  return new LocalMetadataApi(store);
}

function discovered(name: string): Discovered {
  return {
    http: "h2c",
    sdkVersion: null,
    protocolMode: "bidi-stream",
    minProtocolVersion: 5,
    maxProtocolVersion: 7,
    manifestVersion: 4,
    services: [{ name, ty: "service", public: true, handlers: [{ name: "h", ty: null, inputRequired: false, inputContentType: null, outputContentType: null, setContentTypeIfEmpty: false }] }],
  };
}

const register = (name: string, id: string) => (reg: Parameters<typeof registerDeployment>[0]) => {
  const r = registerDeployment(reg, discovered(name), { uri: `http://${name}:9080`, id, additionalHeaders: {}, force: false, nowMs: 0 });
  return { registry: r.changed ? r.registry : null, result: r };
};

describe("writing the registry by compare-and-set", () => {
  test("concurrent registrations both land (the loser re-reads and re-applies)", async () => {
    const api = freshApi();
    await Promise.all([updateRegistry(api, register("A", "dp_a")), updateRegistry(api, register("B", "dp_b")), updateRegistry(api, register("C", "dp_c"))]);
    const { registry, version } = await readRegistry(api, "linearizable");
    expect(registry.deployments.map((d) => d.id).sort()).toEqual(["dp_a", "dp_b", "dp_c"]);
    expect(registry.services.map((s) => s.name)).toEqual(["A", "B", "C"]);
    expect(version).toBe(3 as typeof version);
  });

  test("an unchanged registration writes nothing", async () => {
    const api = freshApi();
    await updateRegistry(api, register("A", "dp_a"));
    const r = await updateRegistry(api, register("A", "dp_other"));
    expect(r.created).toBe(false);
    expect((await api.get(SCHEMA_KEY))!.version).toBe(1 as never);
  });

  test("a writer that loses every race gives up with DEPLOY_REGISTRY_CONFLICT", async () => {
    const api = freshApi();
    await updateRegistry(api, register("A", "dp_a"));
    let n = 0;
    // Another writer changes the document between every read and write of this one.
    const contended: MetadataApi = {
      get: async (key, options) => {
        const v = await api.get(key, options);
        await updateRegistry(api, register(`Other${n}`, `dp_other${n++}`));
        return v;
      },
      put: (key, value, precondition) => api.put(key, value, precondition),
      list: (o) => api.list(o),
      delete: (key, p) => api.delete(key, p),
    };
    let code = "";
    try {
      await updateRegistry(contended, register("B", "dp_b"), 3);
    } catch (e) {
      code = e instanceof CairnError ? e.code : String(e);
    }
    expect(code).toBe("CAIRN-DEPLOY-0011");
    expect(n).toBe(3);
  });
});

describe("the schema cache", () => {
  test("serves its copy within the TTL, re-reads after it or on refresh", async () => {
    const api = freshApi();
    let nowMs = 0;
    const cache = new SchemaCache(() => api, { ttlMs: 1_000, nowMs: () => nowMs });
    expect((await cache.get()).services).toEqual([]);
    await updateRegistry(api, register("A", "dp_a"));
    nowMs = 999;
    expect((await cache.get()).services).toEqual([]);
    expect((await cache.get(true)).services.map((s) => s.name)).toEqual(["A"]);
    await updateRegistry(api, register("B", "dp_b"));
    nowMs = 2_000;
    expect((await cache.get()).services.map((s) => s.name)).toEqual(["A", "B"]);
    await updateRegistry(api, register("C", "dp_c"));
    cache.invalidate();
    expect((await cache.get()).services.map((s) => s.name)).toEqual(["A", "B", "C"]);
  });

  test("before provisioning it says so", async () => {
    const cache = new SchemaCache(() => undefined, { nowMs: () => 0 });
    let code = "";
    try {
      await cache.get();
    } catch (e) {
      code = e instanceof CairnError ? e.code : String(e);
    }
    expect(code).toBe("CAIRN-CLUSTER-0001");
  });
});
