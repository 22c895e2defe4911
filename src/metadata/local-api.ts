// MetadataApi over the local single-node store. Reads are always current (one copy, one process).
import type { MetadataApi } from "./api.ts";
import { checkKey, checkValue, kvFailure, listOptions, type MetadataListOptions, type MetadataListPage } from "./api.ts";
import type { Precondition, Version, VersionedValue } from "./kv.ts";
import type { LocalMetadataStore } from "./local-store.ts";

export class LocalMetadataApi implements MetadataApi {
  constructor(private readonly store: LocalMetadataStore) {}

  async get(key: string): Promise<VersionedValue | undefined> {
    checkKey(key);
    return this.store.get(key);
  }

  async list(options: MetadataListOptions = {}): Promise<MetadataListPage> {
    const o = listOptions(options);
    // The local store is small by design (one node, before migration): a sorted scan is enough.
    const all = this.store.list(o.prefix).filter((e) => o.after === undefined || e.key > o.after);
    const keys = all.slice(0, o.limit);
    return { keys, next: all.length > o.limit ? keys[keys.length - 1]!.key : null };
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
