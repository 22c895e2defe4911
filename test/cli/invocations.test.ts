// `cairn ctl invocations` against a real 3-node cluster running the real SDK fixture: the list as a
// table and as JSON (filters, counts), describe, kill of a waiting invocation (its caller gets 409),
// cancel of a durable sleep, purge, and the exit codes of refusals (bad id, unknown id, wrong state).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EXIT } from "../../src/cli/exit-codes.ts";
import { formatInvocationId, randomInvocationId } from "../../src/worker/invoker/ids.ts";
import { runCairn } from "../helpers/cairn-process.ts";
import { eventually, type TestCluster } from "../helpers/cluster.ts";
import { startInvocationCluster } from "../helpers/invocation-cluster.ts";
import type { SdkEndpoint } from "../helpers/sdk-endpoint.ts";

let cluster: TestCluster;
let sdk: SdkEndpoint;
let ingress: string;
let ctl: (...args: string[]) => ReturnType<typeof runCairn>;

beforeAll(async () => {
  let admin: string[];
  ({ cluster, sdk, admin } = await startInvocationCluster());
  ingress = cluster.nodes[1]!.addresses.ingress!;
  // Every node's address: ctl fails over between them as operators' scripts do.
  ctl = (...args: string[]) => runCairn(["ctl", "--address", admin.join(","), ...args]);
}, 180_000);

afterAll(async () => {
  await Promise.all([cluster?.stop(), sdk?.stop()]);
}, 60_000);

async function invoke(path: string, input: unknown): Promise<{ status: number; id: string | null; text: string }> {
  return eventually(`POST ${path}`, async () => {
    const res = await fetch(`${ingress}/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input), signal: AbortSignal.timeout(60_000) });
    const text = await res.text();
    return res.status === 503 ? undefined : { status: res.status, id: res.headers.get("x-restate-id"), text };
  });
}

type Row = { id: string; service: string; handler: string; key: string | null; status: string };
type List = { invocations: Row[]; counts: Record<string, number>; unreachable: string[]; missingPartitions: number[] };

async function listJson(...filters: string[]): Promise<List> {
  const r = await ctl("--json", "invocations", "list", ...filters);
  expect(r.exitCode).toBe(EXIT.OK);
  return JSON.parse(r.stdout) as List;
}

/** The id of `service`'s invocation on `key` once the list shows it in `status`. */
function waitFor(service: string, key: string | null, handler: string, status: string): Promise<string> {
  return eventually(`${service} ${status}`, async () => {
    const l = await listJson("--service", service, "--status", status);
    return l.invocations.find((x) => x.key === key && x.handler === handler)?.id;
  });
}

describe("cairn ctl invocations", () => {
  let greetId = "";

  test("list prints a table with targets, statuses and counts; --json, --service, --status and --limit filter", async () => {
    const g = await invoke("Greeter/greet", "ctl");
    expect(g.status).toBe(200);
    greetId = g.id!;
    expect((await invoke("Counter/ctl-c/add", 5)).text).toBe("5");
    const full = await eventually("a complete list", async () => {
      const l = await listJson();
      return l.missingPartitions.length === 0 && l.invocations.length >= 2 ? l : undefined;
    });
    expect(full.counts.completed).toBeGreaterThanOrEqual(2);

    const r = await ctl("invocations", "list");
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(EXIT.OK);
    expect(r.stdout).toMatch(/^ID\s+TARGET\s+STATUS\s+ATTEMPTS\s+JOURNAL\s+CREATED\s+OUTCOME\n/);
    expect(r.stdout).toMatch(new RegExp(`${greetId}\\s+Greeter/greet\\s+completed\\s+1\\s+2\\s+\\S+ ago\\s+ok \\(11 bytes\\)`));
    expect(r.stdout).toMatch(/\s+Counter\/ctl-c\/add\s+completed\s/);
    expect(r.stdout).toMatch(/\ncounts: .*completed \d+/);

    const counter = await listJson("--service", "Counter");
    expect(counter.invocations.map((x) => [x.service, x.key, x.handler])).toEqual([["Counter", "ctl-c", "add"]]);
    expect((await listJson("--service", "Greeter", "--status", "suspended")).invocations).toEqual([]);
    expect((await listJson("--limit", "1")).invocations.length).toBe(1);
  });

  test("describe prints one invocation; --json is the API's body", async () => {
    const r = await ctl("invocations", "describe", greetId);
    expect(r.exitCode).toBe(EXIT.OK);
    expect(r.stdout).toMatch(new RegExp(`^id\\s+${greetId}\\n`));
    expect(r.stdout).toMatch(/\ntarget\s+Greeter\/greet\n/);
    expect(r.stdout).toMatch(/\nstatus\s+completed\n/);
    expect(r.stdout).toMatch(/\noutcome\s+ok \(11 bytes\)\n/);
    const json = JSON.parse((await ctl("--json", "invocations", "describe", greetId)).stdout) as Row;
    expect(json).toMatchObject({ id: greetId, service: "Greeter", handler: "greet", key: null, status: "completed" });
  });

  test("kill ends a waiting invocation (its caller gets 409 killed); a second kill is refused with exit 5", async () => {
    const call = invoke("Waiter/ctl-w/wait", null);
    const id = await waitFor("Waiter", "ctl-w", "wait", "suspended");
    const r = await ctl("invocations", "kill", id);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(EXIT.OK);
    expect(r.stdout).toBe(`Killed ${id} (was suspended, now completed).\n`);
    const answer = await call;
    expect(answer.status).toBe(409);
    expect(answer.text).toContain("killed");
    const again = await ctl("invocations", "kill", id);
    expect(again.exitCode).toBe(EXIT.REFUSED);
    expect(again.stderr).toContain("CAIRN-INVOKE-0060");
    expect(again.stderr).toContain("it is completed");
    expect((await ctl("invocations", "describe", id)).stdout).toMatch(/\noutcome\s+failed 409: killed\n/);
  });

  test("cancel of a durable sleep: the handler ends and its caller gets 409; purge then forgets it", async () => {
    const call = invoke("Runner/sleep", 3_600_000);
    const id = await waitFor("Runner", null, "sleep", "suspended");
    const r = await ctl("invocations", "cancel", id);
    expect(r.exitCode).toBe(EXIT.OK);
    expect(r.stdout).toStartWith(`Cancellation sent to ${id} (was suspended, now `);
    expect((await call).status).toBe(409);
    await eventually("the canceled sleep completed", async () => ((await ctl("--json", "invocations", "describe", id)).stdout.includes(`"status": "completed"`) ? true : undefined));
    const resume = await ctl("invocations", "resume", id);
    expect(resume.exitCode).toBe(EXIT.REFUSED);
    expect(resume.stderr).toContain("CAIRN-INVOKE-0060");
    const purged = await ctl("invocations", "purge", id);
    expect(purged.exitCode).toBe(EXIT.OK);
    expect(purged.stdout).toBe(`Purged ${id} (was completed, now gone).\n`);
    const gone = await ctl("invocations", "describe", id);
    expect(gone.exitCode).toBe(EXIT.REFUSED);
    expect(gone.stderr).toContain("CAIRN-INVOKE-0010");
  });

  test("refusals: malformed id, unknown id, unknown status exit 5 with their codes; a bad --limit is a usage error", async () => {
    const malformed = await ctl("invocations", "describe", "inv_bogus");
    expect([malformed.exitCode, malformed.stderr.includes("CAIRN-INVOKE-0013")]).toEqual([EXIT.REFUSED, true]);
    const unknown = await ctl("--json", "invocations", "kill", formatInvocationId(randomInvocationId(7n)));
    expect(unknown.exitCode).toBe(EXIT.REFUSED);
    expect((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code).toBe("CAIRN-INVOKE-0010");
    const status = await ctl("invocations", "list", "--status", "sleeping");
    expect([status.exitCode, status.stderr.includes("CAIRN-API-0001")]).toEqual([EXIT.REFUSED, true]);
    const limit = await ctl("invocations", "list", "--limit", "ten");
    expect(limit.exitCode).toBe(EXIT.USAGE);
    expect(limit.stderr).toContain("--limit must be a whole number");
  });
});
