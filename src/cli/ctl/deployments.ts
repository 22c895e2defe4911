// `cairn ctl deployments register|list|remove` and `cairn ctl services list`: register Restate SDK
// endpoints by discovery and show what the registry holds, through Restate's admin routes (any node
// answers). Refusals (unreachable endpoint, changed services, a deployment still in use) exit 5.
import { Command } from "commander";
import type { components } from "../../../openapi/cairn.d.ts";
import { adminClient, call, type CtlGlobals } from "./client.ts";
import { table } from "./format.ts";
import type { CtlHelpers } from "./logs.ts";

type Service = components["schemas"]["ServiceMetadata"];

/** Registration waits for the node's discovery (10 s deadline there): ctl waits at least this long. */
const REGISTER_TIMEOUT_MS = 20_000;

function headerArg(h: CtlHelpers, value: string, previous: Record<string, string>): Record<string, string> {
  const i = value.indexOf("=");
  if (i <= 0) h.usage(`--header takes name=value, got '${value}'`);
  return { ...previous, [value.slice(0, i).trim()]: value.slice(i + 1) };
}

function serviceRows(services: Service[]): string {
  if (services.length === 0) return "(no services)\n";
  return table([
    ["SERVICE", "TYPE", "REVISION", "DEPLOYMENT", "PUBLIC", "HANDLERS"],
    ...services.map((s) => [s.name, s.ty, s.revision, s.deployment_id, s.public ? "yes" : "no", s.handlers.map((x) => (x.ty === null ? x.name : `${x.name} (${x.ty.toLowerCase()})`)).join(", ")]),
  ]);
}

export function deploymentsCommand(h: CtlHelpers): Command {
  const cmd = new Command("deployments").description("Restate SDK endpoints registered by discovery");
  cmd
    .command("register <uri>")
    .description("Discover the services of an SDK endpoint and register them (h2c, or HTTP/1.1 with --http1.1)")
    .option("--http1.1", "talk HTTP/1.1 (request-response) to the endpoint instead of h2c")
    .option("--force", "overwrite a changed deployment at the same URI; allow changing a service's type")
    .option("--dry-run", "discover and check, but register nothing")
    .option("--header <name=value>", "header sent with discovery and every invocation (repeatable)", (v: string, prev: Record<string, string>) => headerArg(h, v, prev), {})
    .action(
      h.action<{ "http1.1"?: boolean; force?: boolean; dryRun?: boolean; header: Record<string, string> }>(async (g, [uri], opts) => {
        const client = adminClient({ ...g, timeoutMs: String(Math.max(Number(g.timeoutMs), REGISTER_TIMEOUT_MS)) });
        const http11 = opts["http1.1"] === true;
        let status = 0;
        const r = await call(g, async () => {
          const res = await client.POST("/deployments", {
            body: { uri: uri!, additional_headers: opts.header, use_http_11: http11, force: opts.force === true, dry_run: opts.dryRun === true },
          });
          status = res.response.status;
          return res;
        });
        const verb = opts.dryRun === true ? "Would register" : status === 201 ? "Registered" : "Already registered";
        h.print(g, r, () => `${verb} deployment ${r.id} (${r.sdk_version ?? "unknown SDK"}, protocol V${r.min_protocol_version}-V${r.max_protocol_version}):\n` + serviceRows(r.services));
      }),
    );
  cmd
    .command("list")
    .description("Every deployment: URI, transport, SDK and the services it serves the latest revision of")
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/deployments"));
        h.print(g, r, () =>
          r.deployments.length === 0
            ? "(no deployments)\n"
            : table([
                ["ID", "URI", "HTTP", "MODE", "SDK", "CREATED", "SERVICES"],
                ...r.deployments.map((d) => [
                  d.id,
                  d.uri,
                  d.http_version,
                  d.protocol_type,
                  d.sdk_version ?? "-",
                  d.created_at,
                  d.services.map((s) => `${s.name}@${s.revision}`).join(", ") || "-",
                ]),
              ]),
        );
      }),
    );
  cmd
    .command("remove <id>")
    .description("Remove a deployment (refused while it serves the latest revision of a service, unless --force)")
    .option("--force", "remove it anyway, unregistering the services it serves")
    .action(
      h.action<{ force?: boolean }>(async (g, [id], opts) => {
        const client = adminClient(g);
        const r = await call(g, () => client.DELETE("/deployments/{id}", { params: { path: { id: id! }, query: { force: opts.force === true } } }));
        h.print(g, r, () => `Removed deployment ${r.id}${r.removed_services.length > 0 ? `; unregistered ${r.removed_services.join(", ")}` : ""}.\n`);
      }),
    );
  return cmd;
}

export function servicesCommand(h: CtlHelpers): Command {
  const cmd = new Command("services").description("The services and handlers registered deployments serve");
  cmd
    .command("list")
    .description("Every registered service: type, revision, deployment and handlers")
    .action(
      h.action(async (g: CtlGlobals) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/services"));
        h.print(g, r, () => serviceRows(r.services));
      }),
    );
  return cmd;
}
