// The registry as stored in metadata (key `schema`): a cached reader for the invoker and the
// ingress (stale reads within a short TTL, a linearizable re-read on demand), and the
// compare-and-set loop every writer uses. Invariant: the document is only ever replaced by a put
// conditioned on the version it was computed from, so concurrent registrations never lose one another.
import { Value } from "@sinclair/typebox/value";
import type { MetadataApi } from "../../metadata/api.ts";
import { DOES_NOT_EXIST, matchesVersion, type Version } from "../../metadata/kv.ts";
import { CairnError, invariant, isCairnError } from "../../observability/errors.ts";
import { EMPTY_REGISTRY, SCHEMA_KEY, SchemaRegistry, type SchemaSource } from "./model.ts";

/** How long a cached registry is served without re-reading metadata. */
export const DEFAULT_SCHEMA_CACHE_TTL_MS = 1_000;
/** Attempts of the CAS loop before the writer gives up with DEPLOY_REGISTRY_CONFLICT. */
export const DEFAULT_REGISTRY_CAS_ATTEMPTS = 8;

function decode(value: unknown): SchemaRegistry {
  // The document is written only by updateRegistry; a shape that does not check is a bug or a hand edit.
  invariant(Value.Check(SchemaRegistry, value), "the `schema` metadata document has the SchemaRegistry shape");
  return value;
}

/** Read the registry and its version (version 0: the key does not exist yet). */
export async function readRegistry(api: MetadataApi, consistency: "linearizable" | "stale"): Promise<{ registry: SchemaRegistry; version: Version | null }> {
  const v = await api.get(SCHEMA_KEY, { consistency });
  if (v === undefined) return { registry: EMPTY_REGISTRY, version: null };
  return { registry: decode(v.value), version: v.version };
}

/**
 * Apply `change` to the current registry and write the result by CAS, re-reading and re-applying on
 * a conflict. `change` is pure and may throw a CairnError to refuse; returning `registry: null` means
 * "nothing to write".
 */
export async function updateRegistry<R>(
  api: MetadataApi,
  change: (reg: SchemaRegistry) => { registry: SchemaRegistry | null; result: R },
  attempts = DEFAULT_REGISTRY_CAS_ATTEMPTS,
): Promise<R> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const { registry, version } = await readRegistry(api, "linearizable");
    const { registry: next, result } = change(registry);
    if (next === null) return result;
    try {
      await api.put(SCHEMA_KEY, next, version === null ? DOES_NOT_EXIST : matchesVersion(version));
      return result;
    } catch (e) {
      if (!isCairnError(e, "METADATA_VERSION_MISMATCH") && !isCairnError(e, "METADATA_EXISTS")) throw e;
    }
  }
  throw new CairnError("DEPLOY_REGISTRY_CONFLICT", `the schema registry changed under this request ${attempts} times in a row`, { attempts });
}

export interface SchemaCacheOptions {
  ttlMs?: number;
  /** Milliseconds, monotonic enough for a TTL (production: Date.now). */
  nowMs: () => number;
}

/** A SchemaSource over metadata: stale reads cached for `ttlMs`, `get(true)` re-reads linearizably. */
export class SchemaCache implements SchemaSource {
  private cached: { registry: SchemaRegistry; atMs: number } | undefined;
  private inflight: Promise<SchemaRegistry> | undefined;
  private readonly ttlMs: number;

  constructor(
    private readonly metadata: () => MetadataApi | undefined,
    private readonly options: SchemaCacheOptions,
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_SCHEMA_CACHE_TTL_MS;
  }

  async get(refresh = false): Promise<SchemaRegistry> {
    const now = this.options.nowMs();
    if (!refresh && this.cached !== undefined && now - this.cached.atMs < this.ttlMs) return this.cached.registry;
    // Concurrent stale readers share one read; a refresh always starts its own linearizable one.
    if (!refresh && this.inflight !== undefined) return this.inflight;
    const read = this.read(refresh ? "linearizable" : "stale");
    if (!refresh) this.inflight = read;
    try {
      return await read;
    } finally {
      if (this.inflight === read) this.inflight = undefined;
    }
  }

  /** Forget the cached copy (a writer on this node just changed the registry). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async read(consistency: "linearizable" | "stale"): Promise<SchemaRegistry> {
    const api = this.metadata();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster is not provisioned yet");
    const atMs = this.options.nowMs();
    const { registry } = await readRegistry(api, consistency);
    if (this.cached === undefined || atMs >= this.cached.atMs) this.cached = { registry, atMs };
    return registry;
  }
}
