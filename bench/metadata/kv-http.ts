// The one request each system needs per benchmark operation (put one key, read one key), as plain
// functions of a base URL, so the cluster drivers and the separate load-worker processes send
// exactly the same bytes. cairn: admin API PUT/GET /v1/metadata/{key}; etcd: its JSON gateway
// (/v3/kv/put, /v3/kv/range; keys and values in base64, stale = serializable); cairn-state: the
// data plane's object state (PUT/GET /v1/objects/bench/{key}/state/v; reads are always linearizable).
import type { ReadMode } from "./cluster.ts";
import { httpFail } from "./cluster.ts";

export type System = "cairn" | "etcd";

export interface KvHttp {
  put(url: string, key: string, value: string, signal: AbortSignal): Promise<void>;
  /** Reads and discards the body (throughput runs). */
  get(url: string, key: string, mode: ReadMode, signal: AbortSignal): Promise<void>;
}

/** One request; fails on a non-2xx answer, and reads the body either way (keep-alive reuse). */
async function send(url: string, init: RequestInit, what: string): Promise<void> {
  const res = await fetch(url, init);
  if (!res.ok) await httpFail(res, what);
  await res.arrayBuffer();
}

const JSON_HEADERS = { "content-type": "application/json" };

export const cairnKv: KvHttp = {
  put: (url, key, value, signal) => send(`${url}/v1/metadata/${key}`, { method: "PUT", headers: JSON_HEADERS, body: value, signal }, "put"),
  get: (url, key, mode, signal) => send(`${url}/v1/metadata/${key}?consistency=${mode}`, { signal }, "get"),
};

export const b64 = (s: string): string => Buffer.from(s).toString("base64");

// Benchmark keys repeat (reads, rewrites): encode each once. Bounded, so a run that writes millions
// of unique keys does not keep them all.
const KEY_CACHE_MAX = 100_000;
const keyCache = new Map<string, string>();
export function b64Key(key: string): string {
  let k = keyCache.get(key);
  if (k === undefined) {
    k = b64(key);
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
    keyCache.set(key, k);
  }
  return k;
}

export const etcdKv: KvHttp = {
  put: (url, key, value, signal) => send(`${url}/v3/kv/put`, { method: "POST", headers: JSON_HEADERS, body: `{"key":"${b64Key(key)}","value":"${b64(value)}"}`, signal }, "put"),
  get: (url, key, mode, signal) =>
    send(`${url}/v3/kv/range`, { method: "POST", headers: JSON_HEADERS, body: mode === "stale" ? `{"key":"${b64Key(key)}","serializable":true}` : `{"key":"${b64Key(key)}"}`, signal }, "range"),
};

export const cairnStateKv: KvHttp = {
  put: (url, key, value, signal) => send(`${url}/v1/objects/bench/${key}/state/v`, { method: "PUT", headers: JSON_HEADERS, body: value, signal }, "put state"),
  get: (url, key, _mode, signal) => send(`${url}/v1/objects/bench/${key}/state/v`, { signal }, "get state"),
};

/**
 * cairn's logs (bench/rereplication.ts): `url` is a log's base URL (`<admin>/v1/logs/<id>`), a put
 * appends the value as one record (the key is not used); there is nothing to get.
 */
export const cairnLogKv: KvHttp = {
  put: (url, _key, value, signal) => send(`${url}/records`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ records: [value] }), signal }, "append"),
  get: () => Promise.reject(new Error("cairn-log: reads are not a load of this benchmark")),
};

/** The systems a load process can drive (metadata benchmarks use the first two). */
export type LoadSystem = System | "cairn-state" | "cairn-log";

export function kvFor(system: LoadSystem): KvHttp {
  return system === "cairn" ? cairnKv : system === "cairn-state" ? cairnStateKv : system === "cairn-log" ? cairnLogKv : etcdKv;
}
