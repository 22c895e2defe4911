// The nodes `cairn ctl` may talk to: the addresses it was given (`--address a,b,c` or CAIRN_ADDRESS),
// tried in turn, plus the other nodes of the nodes configuration once one node named them. A request
// moves to the next address only when it certainly did not reach the node (a refused connection,
// an unknown host) or when it only reads; a cluster-wide read that a node cannot answer right now
// (503: starting, no metadata) is asked of the other nodes as well. Pure bookkeeping in `Endpoints`;
// `failoverFetch` does the requests.

/** `a,b c` → normalized, de-duplicated base URLs, in the order given. */
export function parseAddresses(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(/[\s,]+/)) {
    if (part === "") continue;
    const a = normalizeAddress(part);
    if (!out.includes(a)) out.push(a);
  }
  return out;
}

export function normalizeAddress(address: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `http://${address}`;
  return withScheme.replace(/\/+$/, "");
}

/** The candidate addresses: the last one that answered first, then the others in their order. */
export class Endpoints {
  private readonly list: string[];
  private preferred: string | undefined;

  constructor(given: readonly string[]) {
    this.list = [...given];
  }

  /** The addresses to try, the one that answered last first. */
  order(): string[] {
    const p = this.preferred;
    return p === undefined ? [...this.list] : [p, ...this.list.filter((a) => a !== p)];
  }

  answered(address: string): void {
    this.preferred = address;
  }

  /** Adds addresses learnt from the nodes configuration (after the given ones); returns the new ones. */
  learn(addresses: readonly string[]): string[] {
    const added: string[] = [];
    for (const raw of addresses) {
      if (raw === "") continue;
      const a = normalizeAddress(raw);
      if (!this.list.includes(a)) {
        this.list.push(a);
        added.push(a);
      }
    }
    return added;
  }

  describe(): string {
    return this.list.join(", ");
  }
}

/** Whether a failed request may be sent to another node: a read, or one that never left. */
export function mayRetryElsewhere(method: string, error: unknown): boolean {
  if (method === "GET" || method === "HEAD") return true;
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ConnectionRefused";
}

/** Reads of the cluster (any node answers the same): worth asking another node when one cannot. */
export function clusterWide(path: string): boolean {
  return /^\/v1\/(cluster(\/status|\/config)?|nodes|metadata|metadata\/.*|metadata-servers|logs(\/.*)?)$/.test(path);
}

export interface FailoverOptions {
  endpoints: Endpoints;
  timeoutMs: number;
  /** The admin addresses of the cluster's other nodes, asked of a node that answered. */
  discover(base: string, signal: AbortSignal): Promise<string[]>;
}

/** A `fetch` for openapi-fetch that tries every candidate in turn (see the header). */
export function failoverFetch(options: FailoverOptions): (req: Request) => Promise<Response> {
  let discovered = false;
  return async (req: Request) => {
    const url = new URL(req.url);
    const path = url.pathname + url.search;
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
    const errors: string[] = [];
    const tried = new Set<string>();
    const send = (base: string) =>
      fetch(new Request(base + path, { method: req.method, headers: req.headers, ...(body !== undefined ? { body } : {}) }), {
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    const tryEach = async (bases: readonly string[]): Promise<{ base: string; res: Response } | undefined> => {
      for (const base of bases) {
        if (tried.has(base)) continue;
        tried.add(base);
        try {
          const res = await send(base);
          options.endpoints.answered(base);
          return { base, res };
        } catch (e) {
          errors.push(`${base}: ${(e as Error).message}`);
          if (!mayRetryElsewhere(req.method, e)) throw new Error(errors.join("; "));
        }
      }
      return undefined;
    };
    const first = await tryEach(options.endpoints.order());
    if (first === undefined) throw new Error(errors.join("; "));
    if (first.res.status !== 503 || req.method !== "GET" || !clusterWide(url.pathname) || discovered) return first.res;
    discovered = true;
    const more = options.endpoints.learn(await options.discover(first.base, AbortSignal.timeout(options.timeoutMs)).catch(() => []));
    const second = await tryEach(more).catch(() => undefined);
    if (second !== undefined && second.res.status !== 503) return second.res;
    return first.res;
  };
}
