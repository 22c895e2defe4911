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
    throw new CtlFailure(EXIT.UNREACHABLE, err.toDisplay(), err.toProblem());
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
    code === "CAIRN-CLUSTER-0001" ? EXIT.NOT_PROVISIONED : status >= 400 && status < 500 ? EXIT.REFUSED : EXIT.FAILURE;
  const hint = String(problem.hint ?? specByCode(code)?.hint ?? "");
  throw new CtlFailure(exitCode, `error ${code}: ${String(problem.detail ?? problem.title)}\n  hint: ${hint}`, problem);
}
