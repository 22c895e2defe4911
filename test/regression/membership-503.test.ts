// Regression for 354a427 (chaos membership nemesis): an applied metadata-server add or removal was
// answered 503 CAIRN-METADATA-0007 — read by clients as "not applied" — when the linearizable read of
// the server list that follows the change failed (a new metadata leader being elected). The fix
// answers 200 with the list from the node's own copy.
//
// The race is forced at the admin API, whose answer is what regressed: the real admin app, over a
// metadata service whose change is applied and whose linearizable reads fail, exactly as they do
// while the metadata cluster elects a leader. (A real cluster cannot be held in that window without
// luck: configuration changes take effect when appended, so a removal that commits leaves a quorum
// that answers reads, and a removed leader hands over at once with timeoutNow.)
import { describe, expect, test } from "bun:test";
import { createAdminApp } from "../../src/admin/api/app.ts";
import type { AdminDeps } from "../../src/admin/api/deps.ts";
import type { Consistency } from "../../src/metadata/api.ts";
import type { MetadataService, MetadataServerListEntry } from "../../src/metadata/service.ts";
import { CairnError } from "../../src/observability/errors.ts";

function entry(name: string, state: string): MetadataServerListEntry {
  return { node: `N${name.slice(1)}`, name, fabricAddress: "127.0.0.1:1", state, status: null, error: null } as MetadataServerListEntry;
}

/** A metadata service amid a leader election: changes apply; linearizable reads fail; this node's copy answers. */
function electingService(applied: string[]): MetadataService {
  const states = new Map([["n1", "member"], ["n2", "member"], ["n3", "standby"]]);
  const service: Partial<MetadataService> = {
    removeServer: async (node) => {
      states.set(node, "standby");
      applied.push(`remove ${node}`);
    },
    addServer: async (node) => {
      states.set(node, "auto-join");
      applied.push(`add ${node}`);
    },
    listServers: async (consistency: Consistency = "linearizable") => {
      if (consistency === "linearizable") throw new CairnError("METADATA_UNAVAILABLE", "no metadata leader yet (an election is under way)");
      return [...states].map(([name, state]) => entry(name, state));
    },
  };
  return service as MetadataService;
}

function app(service: MetadataService) {
  const unused = () => {
    throw new Error("not used by this test");
  };
  const deps = new Proxy(
    { token: "", maxBodyBytes: 1 << 20, metadataService: () => service, onBug: (e: unknown) => { throw e; } } as Partial<AdminDeps>,
    { get: (target, key) => (key in target ? target[key as keyof AdminDeps] : unused) },
  ) as AdminDeps;
  return createAdminApp(deps);
}

describe("regression: the membership 503", () => {
  for (const [op, node, state] of [["remove", "n2", "standby"], ["add", "n3", "auto-join"]] as const) {
    test(`an applied ${op} is answered 200 with the server list while linearizable reads fail`, async () => {
      const applied: string[] = [];
      const r = await app(electingService(applied)).handle(new Request(`http://127.0.0.1/v1/metadata-servers/${node}/${op}`, { method: "POST" }));
      const body = (await r.json()) as { servers?: MetadataServerListEntry[]; code?: string };
      expect(applied).toEqual([`${op} ${node}`]);
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(body.servers!.find((s) => s.name === node)!.state).toBe(state);
    });
  }

  test("a change that was not applied is still answered with its error (the fallback covers only the list)", async () => {
    const service = electingService([]);
    service.removeServer = async () => {
      throw new CairnError("METADATA_UNAVAILABLE", "removal refused for now; retry shortly");
    };
    const r = await app(service).handle(new Request("http://127.0.0.1/v1/metadata-servers/n2/remove", { method: "POST" }));
    expect(r.status).toBe(503);
    expect(((await r.json()) as { code: string }).code).toBe("CAIRN-METADATA-0007");
  });
});
