// The admin API client cairn ctl uses: openapi-fetch over the generated OpenAPI types, so ctl is
// itself a typed client of the published spec. Failures become CtlFailure with an exit code.
import createClient from "openapi-fetch";
import type { paths } from "../../../openapi/cairn.d.ts";
import { CairnError, specByCode } from "../../observability/errors.ts";
import { EXIT, type ExitCode } from "../exit-codes.ts";

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

export function adminClient(globals: CtlGlobals): AdminClient {
  const timeoutMs = Number(globals.timeoutMs);
  const baseUrl = normalizeAddress(globals.address);
  return createClient<paths>({
    baseUrl,
    ...(globals.token ? { headers: { authorization: `Bearer ${globals.token}` } } : {}),
    fetch: (req: Request) => fetch(req, { signal: AbortSignal.timeout(timeoutMs) }),
  });
}

export function normalizeAddress(address: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `http://${address}`;
  return withScheme.replace(/\/+$/, "");
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
    const err = new CairnError("CTL_UNREACHABLE", `cannot reach ${normalizeAddress(globals.address)}: ${(e as Error).message}`);
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
