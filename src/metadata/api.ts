// What every node offers over the metadata store, whichever store is behind it (the replicated
// metadata cluster through the metadata client, or the local single-node store). The admin API and
// `cairn ctl` use only this. Failures are CairnErrors from the METADATA catalogue.
import { CairnError } from "../observability/errors.ts";
import type { KvResult, Precondition, Version, VersionedValue } from "./kv.ts";

export type Consistency = "linearizable" | "stale";

export interface MetadataApi {
  get(key: string, options?: { consistency?: Consistency }): Promise<VersionedValue | undefined>;
  list(prefix?: string, options?: { consistency?: Consistency }): Promise<Array<{ key: string; version: Version }>>;
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
