// What every node offers over the metadata store, whichever store is behind it (the replicated
// metadata cluster through the metadata client, or the local single-node store). The admin API and
// `cairn ctl` use only this. Failures are CairnErrors from the METADATA catalogue.
import { CairnError } from "../observability/errors.ts";
import type { KvResult, Precondition, Version, VersionedValue } from "./kv.ts";

export type Consistency = "linearizable" | "stale";

/** One page of a listing: keys in order, and the cursor of the next page (null after the last). */
export interface MetadataListPage {
  keys: Array<{ key: string; version: Version }>;
  next: string | null;
}

export interface MetadataListOptions {
  /** Only keys starting with this. */
  prefix?: string;
  /** Exclusive cursor: the `next` of the previous page. */
  after?: string;
  /** Keys per page: 1..MAX_LIST_LIMIT, default DEFAULT_LIST_LIMIT. */
  limit?: number;
  consistency?: Consistency;
}

export const DEFAULT_LIST_LIMIT = 1000;
export const MAX_LIST_LIMIT = 10_000;

export interface MetadataApi {
  get(key: string, options?: { consistency?: Consistency }): Promise<VersionedValue | undefined>;
  /** One page of keys with their versions; a listing of any size never loads more than a page. */
  list(options?: MetadataListOptions): Promise<MetadataListPage>;
  /** Resolves with the new version once the write is durable (and, when replicated, committed). */
  put(key: string, value: unknown, precondition: Precondition): Promise<Version>;
  /** Resolves with the version the key had when it was deleted. */
  delete(key: string, precondition: Precondition): Promise<Version>;
}

export const KEY_PATTERN = /^[A-Za-z0-9._\-/:]{1,256}$/;

export function checkKey(key: string): void {
  if (!KEY_PATTERN.test(key)) {
    throw new CairnError("METADATA_INVALID_KEY", `invalid metadata key ${JSON.stringify(key.slice(0, 300))}`, { key });
  }
}

export const MAX_VALUE_DEPTH = 64;

/** Refuse values nested deeper than MAX_VALUE_DEPTH (checked without recursion). */
export function checkValue(key: string, value: unknown): void {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > MAX_VALUE_DEPTH) {
      throw new CairnError("METADATA_INVALID_VALUE", `value of '${key}' is nested more than ${MAX_VALUE_DEPTH} levels deep`, { key });
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
}

/** Turn a failed KV result into the error the API reports (412 with the current version, or 404). */
export function kvFailure(key: string, op: "put" | "delete", result: Extract<KvResult, { ok: false }>): CairnError {
  // A conditional put on a missing key failed its precondition (412); deleting a missing key is 404.
  const reason = result.reason === "not-found" && op === "put" ? "version-mismatch" : result.reason;
  switch (reason) {
    case "exists":
      return new CairnError("METADATA_EXISTS", `key '${key}' already exists at version ${result.currentVersion}`, {
        key,
        currentVersion: result.currentVersion,
      });
    case "version-mismatch":
      return new CairnError("METADATA_VERSION_MISMATCH", `key '${key}' is at version ${result.currentVersion}`, {
        key,
        currentVersion: result.currentVersion,
      });
    case "not-found":
      return new CairnError("METADATA_NOT_FOUND", `no metadata key '${key}'`, { key, currentVersion: 0 });
  }
}

/** Checks and completes list options (400 CAIRN-METADATA for a bad limit or cursor). */
export function listOptions(o: MetadataListOptions): { prefix: string; after: string | undefined; limit: number; consistency: Consistency } {
  const limit = o.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new CairnError("METADATA_INVALID_LIST", `limit must be an integer in 1..${MAX_LIST_LIMIT}, got ${String(o.limit)}`);
  }
  return { prefix: o.prefix ?? "", after: o.after === "" ? undefined : o.after, limit, consistency: o.consistency ?? "linearizable" };
}
