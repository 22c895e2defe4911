// The admin API client cairn ctl uses: openapi-fetch over the generated OpenAPI types, so ctl is
// itself a typed client of the published spec, over the failover fetch of endpoints.ts (several
// addresses, and the rest learnt from the nodes configuration). Failures become CtlFailure with an
// exit code.
import createClient from "openapi-fetch";
import type { paths } from "../../../openapi/cairn.d.ts";
import { CairnError, specByCode } from "../../observability/errors.ts";
import { EXIT, type ExitCode } from "../exit-codes.ts";
import { Endpoints, failoverFetch, normalizeAddress, parseAddresses } from "./endpoints.ts";

export { normalizeAddress };

export type AdminClient = ReturnType<typeof createClient<paths>>;

export interface CtlGlobals {
  address: string;
  /** The cluster the operator means (`--cluster`); a node of another one is refused. */
  cluster?: string;
  json?: boolean;
  timeoutMs: string;
  token?: string;
}

export const DEFAULT_ADDRESS = "http://127.0.0.1:9070";

/** A failed ctl command: what to print and which exit code to leave with. */
export class CtlFailure extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly problem: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** One set of candidate addresses per ctl run (every client of the run shares what it learnt). */
const endpointsByAddress = new Map<string, Endpoints>();

function endpointsOf(globals: CtlGlobals): Endpoints {
  let e = endpointsByAddress.get(globals.address);
  if (e === undefined) {
    const given = parseAddresses(globals.address);
    e = new Endpoints(given.length > 0 ? given : [DEFAULT_ADDRESS]);
    endpointsByAddress.set(globals.address, e);
  }
  return e;
}

export function adminClient(globals: CtlGlobals): AdminClient {
  const timeoutMs = Number(globals.timeoutMs);
  const endpoints = endpointsOf(globals);
  const headers: Record<string, string> = globals.token ? { authorization: `Bearer ${globals.token}` } : {};
  return createClient<paths>({
    // openapi-fetch needs one base; the failover fetch swaps it for each candidate in turn.
    baseUrl: endpoints.order()[0]!,
    headers,
    fetch: failoverFetch({
      endpoints,
      timeoutMs,
      discover: async (base, signal) => {
        const res = await fetch(`${base}/v1/cluster/status?tails=false`, { headers, signal });
        if (!res.ok) return [];
        const status = (await res.json()) as { nodes?: Array<{ adminAddress?: string; alive?: boolean | null }> };
        return (status.nodes ?? []).filter((n) => n.alive !== false).map((n) => n.adminAddress ?? "");
      },
    }),
  });
}

/** Run one API call; turn transport errors and problem responses into CtlFailure. */
export async function call<T>(
  globals: CtlGlobals,
  fn: () => Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await fn();
  } catch (e) {
    const err = new CairnError("CTL_UNREACHABLE", `cannot reach any node (tried ${(e as Error).message})`);
    throw new CtlFailure(EXIT.UNREACHABLE, guidance(globals, err.toProblem()), err.toProblem());
  }
  if (result.response.ok && result.data !== undefined) return result.data;
  const body = result.error;
  const problem =
    typeof body === "object" && body !== null && typeof (body as { code?: unknown }).code === "string"
      ? (body as Record<string, unknown>)
      : new CairnError("CTL_BAD_RESPONSE", `unexpected HTTP ${result.response.status} from the node`).toProblem();
  const code = String(problem.code);
  const status = result.response.status;
  const exitCode: ExitCode =
    code === "CAIRN-CLUSTER-0001"
      ? EXIT.NOT_PROVISIONED
      : code === "CAIRN-API-0006" || status === 401
        ? EXIT.UNAUTHORIZED
        : status >= 400 && status < 500
          ? EXIT.REFUSED
          : EXIT.FAILURE;
  throw new CtlFailure(exitCode, guidance(globals, problem), problem);
}

/**
 * One paragraph for the operator: what ctl found and what to run next. The situations every command
 * can meet (no node, not provisioned, wrong token, another cluster) get their own words; the rest
 * print the node's message and the catalogue's hint.
 */
export function guidance(globals: CtlGlobals, problem: Record<string, unknown>): string {
  const code = String(problem.code);
  const detail = String(problem.detail ?? problem.title ?? "");
  const where = globals.address;
  const hint = String(problem.hint ?? specByCode(code)?.hint ?? "");
  switch (code) {
    case "CAIRN-CTL-0001":
      return (
        `error ${code}: no cairn node answers at ${where} (${detail}).\n` +
        `  hint: is the node running? Start one with \`cairn server\` (or a local cluster with \`cairn dev\`), ` +
        `or point cairn ctl at a running node's admin API with --address <http://host:port> (or CAIRN_ADDRESS).`
      );
    case "CAIRN-CLUSTER-0001":
      return (
        `error ${code}: the node at ${where} runs, but its cluster is not provisioned yet (${detail}).\n` +
        `  hint: provision it once with \`cairn ctl provision\` through a node with the metadata-server role ` +
        `(\`cairn ctl --address ${where} provision [--replication R]\`), then run this command again.`
      );
    case "CAIRN-API-0006":
      return (
        `error ${code}: the node at ${where} refused the admin token (${detail}).\n` +
        `  hint: pass the admin.token of the node's configuration with --token <token> (or CAIRN_TOKEN), then run this command again.`
      );
    case "CAIRN-CTL-0003":
      return `error ${code}: ${detail}.\n  hint: ${hint}`;
    default:
      return `error ${code}: ${detail}\n  hint: ${hint}`;
  }
}

/**
 * With `--cluster`, refuses to act on a node of another cluster (exit 7): a wrong address in a script
 * must not change some other cluster.
 */
export async function checkCluster(globals: CtlGlobals): Promise<void> {
  if (globals.cluster === undefined || globals.cluster === "") return;
  const client = adminClient(globals);
  const node = await call(globals, () => client.GET("/v1/node"));
  if (node.cluster.name === globals.cluster) return;
  const err = new CairnError(
    "CTL_WRONG_CLUSTER",
    `the node at ${globals.address} (${node.name}) belongs to cluster '${node.cluster.name}', not '${globals.cluster}'`,
    { expected: globals.cluster, found: node.cluster.name },
  );
  throw new CtlFailure(EXIT.WRONG_CLUSTER, guidance(globals, err.toProblem()), err.toProblem());
}
