// MetadataApi over the local single-node store. Reads are always current (one copy, one process).
import type { MetadataApi } from "./api.ts";
import { checkKey, checkValue, kvFailure } from "./api.ts";
import type { Precondition, Version, VersionedValue } from "./kv.ts";
import type { LocalMetadataStore } from "./local-store.ts";

export class LocalMetadataApi implements MetadataApi {
  constructor(private readonly store: LocalMetadataStore) {}

  async get(key: string): Promise<VersionedValue | undefined> {
    checkKey(key);
    return this.store.get(key);
  }

  async list(prefix = ""): Promise<Array<{ key: string; version: Version }>> {
    return this.store.list(prefix);
  }

  async put(key: string, value: unknown, precondition: Precondition): Promise<Version> {
    checkKey(key);
    checkValue(key, value);
    const r = this.store.apply({ op: "put", key, value, precondition });
    if (!r.ok) throw kvFailure(key, "put", r);
    return r.version;
  }

  async delete(key: string, precondition: Precondition): Promise<Version> {
    checkKey(key);
    const r = this.store.apply({ op: "delete", key, precondition });
    if (!r.ok) throw kvFailure(key, "delete", r);
    return r.version;
  }
}
