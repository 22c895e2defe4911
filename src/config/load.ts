// Builds the effective configuration from its sources, in increasing precedence:
// built-in defaults < TOML file (--config) < environment (CAIRN_*) < command-line flags.
// Every rejected value is reported with its key, the value, what was expected and a stable code.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { Value, ValueErrorType } from "@sinclair/typebox/value";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";
import { CairnError } from "../observability/errors.ts";
import { ConfigSchema, defaultConfig, type Config } from "./schema.ts";

/** Environment variables that start with CAIRN_ but are not configuration keys. */
export const NON_CONFIG_ENV = new Set(["CAIRN_ADDRESS", "CAIRN_TOKEN", "CAIRN_CONFIG", "CAIRN_EXIT_WITH_PARENT", "CAIRN_TEST_BINARY", "CAIRN_TEST_FAILPOINT"]);

export interface ConfigSources {
  /** Path of a TOML file, if any. */
  configFile?: string;
  /** Environment to read CAIRN_* variables from. */
  env?: Record<string, string | undefined>;
  /** Flag overrides as dotted kebab-case keys (`net.bind-address`) and raw string values. */
  overrides?: ReadonlyArray<readonly [key: string, value: string]>;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** Find the schema of a dotted key, or undefined if no such key exists. */
export function schemaAt(path: readonly string[]): TSchema | undefined {
  let s: TSchema = ConfigSchema;
  for (const part of path) {
    const props = s.properties as Record<string, TSchema> | undefined;
    const next = props?.[part];
    if (s.type !== "object" || next === undefined) return undefined;
    s = next;
  }
  return s;
}

/** Every leaf key of the schema, dotted (`net.bind-address`). */
export function leafKeys(schema: TSchema = ConfigSchema, prefix = ""): string[] {
  if (schema.type === "object" && schema.properties) {
    return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([k, sub]) =>
      leafKeys(sub, prefix ? `${prefix}.${k}` : k),
    );
  }
  return [prefix];
}

/** Turn a raw string (from env or a flag) into the type the key's schema wants. */
function coerce(key: string, raw: string, schema: TSchema, source: string): unknown {
  const bad = (expected: string) =>
    new CairnError(
      source.startsWith("env") ? "CONFIG_ENV_INVALID" : "CONFIG_INVALID",
      `${source}: key '${key}' has value ${JSON.stringify(raw)}, expected ${expected}`,
      { key, value: raw },
    );
  if (schema.type === "integer" || schema.type === "number") {
    if (!/^-?\d+(\.\d+)?$/.test(raw.trim())) throw bad(schema.type === "integer" ? "an integer" : "a number");
    return Number(raw.trim());
  }
  if (schema.type === "boolean") {
    if (raw === "true") return true;
    if (raw === "false") return false;
    throw bad("true or false");
  }
  if (schema.type === "array") {
    return raw.trim() === "" ? [] : raw.split(",").map((s) => s.trim());
  }
  if (schema.type === "object") throw bad("a single value, not a section");
  return raw;
}

function setPath(target: Json, path: readonly string[], value: unknown): void {
  let cur = target;
  for (const part of path.slice(0, -1)) {
    const next = cur[part];
    if (!isObject(next)) cur[part] = {};
    cur = cur[part] as Json;
  }
  cur[path[path.length - 1]!] = value;
}

function overridesToObject(
  pairs: ReadonlyArray<readonly [string, string]>,
  source: (key: string) => string,
  unknownCode: "CONFIG_UNKNOWN_KEY" | "CONFIG_ENV_INVALID",
): Json {
  const out: Json = {};
  for (const [key, raw] of pairs) {
    const path = key.split(".");
    const schema = schemaAt(path);
    if (schema === undefined || schema.type === "object") {
      throw new CairnError(unknownCode, `${source(key)}: '${key}' is not a configuration key`, { key });
    }
    setPath(out, path, coerce(key, raw, schema, source(key)));
  }
  return out;
}

/** CAIRN_NET__BIND_ADDRESS → net.bind-address; CAIRN_NODE_NAME → node-name. */
export function envKeyToPath(name: string): string {
  return name
    .slice("CAIRN_".length)
    .toLowerCase()
    .split("__")
    .map((part) => part.replaceAll("_", "-"))
    .join(".");
}

export function pathToEnvKey(key: string): string {
  return "CAIRN_" + key.split(".").map((p) => p.replaceAll("-", "_").toUpperCase()).join("__");
}

function readTomlFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CairnError("CONFIG_FILE_UNREADABLE", `cannot read config file ${path}: ${(e as Error).message}`, { path });
  }
  try {
    return parseToml(text) as Json;
  } catch (e) {
    throw new CairnError("CONFIG_FILE_UNREADABLE", `config file ${path} is not valid TOML: ${(e as Error).message}`, {
      path,
    });
  }
}

/** Validate against the schema; the first problem becomes a CairnError naming key, value and expectation. */
function validate(candidate: unknown, sourceOf: (key: string) => string): asserts candidate is Config {
  const first = Value.Errors(ConfigSchema, candidate).First();
  if (first === undefined) return;
  const key = first.path.replace(/^\//, "").split("/").filter(Boolean).join(".");
  if (first.type === ValueErrorType.ObjectAdditionalProperties) {
    const parent = key.split(".").slice(0, -1);
    const allowed = Object.keys((schemaAt(parent)?.properties as object) ?? {});
    throw new CairnError(
      "CONFIG_UNKNOWN_KEY",
      `${sourceOf(key)}: unknown key '${key}'; known keys ${parent.length ? `in [${parent.join(".")}]` : "at the top level"}: ${allowed.join(", ")}`,
      { key },
    );
  }
  const schema = first.schema as TSchema;
  const expected = describeSchema(schema);
  throw new CairnError(
    "CONFIG_INVALID",
    `${sourceOf(key)}: key '${key}' has value ${JSON.stringify(first.value)}, expected ${expected} (${first.message})`,
    { key, value: first.value },
  );
}

function describeSchema(s: TSchema): string {
  if (s.anyOf) return `one of ${(s.anyOf as TSchema[]).map((x) => JSON.stringify(x.const)).join(", ")}`;
  const bits: string[] = [String(s.type ?? "a value")];
  if (s.minimum !== undefined) bits.push(`>= ${s.minimum}`);
  if (s.maximum !== undefined) bits.push(`<= ${s.maximum}`);
  if (s.pattern !== undefined) bits.push(`matching ${s.pattern}`);
  if (s.items?.anyOf) bits.push(`of ${(s.items.anyOf as TSchema[]).map((x) => JSON.stringify(x.const)).join(", ")}`);
  return bits.join(" ");
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/** Combinations the schema alone cannot express. */
function checkConflicts(config: Config): void {
  for (const [key, addr] of [
    ["admin.bind-address", config.admin["bind-address"]],
    ["ingress.bind-address", config.ingress["bind-address"]],
    ["net.bind-address", config.net["bind-address"]],
  ] as const) {
    if (portOf(addr) > 65535) {
      throw new CairnError("CONFIG_INVALID", `key '${key}' has port ${portOf(addr)}, expected 0..65535`, { key });
    }
  }
  const bound = [
    ["admin.bind-address", config.admin["bind-address"]],
    ["net.bind-address", config.net["bind-address"]],
    ...(config.roles.includes("ingress") ? [["ingress.bind-address", config.ingress["bind-address"]] as const] : []),
  ] as const;
  for (let i = 0; i < bound.length; i++) {
    for (let j = i + 1; j < bound.length; j++) {
      const [ka, a] = bound[i]!;
      const [kb, b] = bound[j]!;
      if (portOf(a) !== 0 && portOf(a) === portOf(b)) {
        throw new CairnError("CONFIG_CONFLICT", `keys '${ka}' and '${kb}' both use port ${portOf(a)}; give each its own port`, {
          keys: [ka, kb],
        });
      }
    }
  }
  if (config.net["heartbeat-timeout-ms"] <= config.net["heartbeat-interval-ms"]) {
    throw new CairnError(
      "CONFIG_CONFLICT",
      `'net.heartbeat-timeout-ms' (${config.net["heartbeat-timeout-ms"]}) must be larger than 'net.heartbeat-interval-ms' (${config.net["heartbeat-interval-ms"]})`,
      { keys: ["net.heartbeat-timeout-ms", "net.heartbeat-interval-ms"] },
    );
  }
  const hostOf = (address: string) => address.slice(0, address.lastIndexOf(":"));
  if (!isLoopback(hostOf(config.admin["bind-address"])) && config.admin.token === "") {
    throw new CairnError(
      "CONFIG_CONFLICT",
      `'admin.bind-address' ${config.admin["bind-address"]} is reachable from other machines, so 'admin.token' must be set (or bind to 127.0.0.1)`,
      { keys: ["admin.bind-address", "admin.token"] },
    );
  }
  if (!isLoopback(hostOf(config.net["bind-address"])) && config.net["cluster-secret"] === "") {
    throw new CairnError(
      "CONFIG_CONFLICT",
      `'net.bind-address' ${config.net["bind-address"]} is reachable from other machines, so 'net.cluster-secret' must be set (or bind to 127.0.0.1)`,
      { keys: ["net.bind-address", "net.cluster-secret"] },
    );
  }
  const ms = config["metadata-server"];
  if (ms["heartbeat-interval-ticks"] >= ms["election-timeout-ticks"]) {
    throw new CairnError(
      "CONFIG_CONFLICT",
      `'metadata-server.heartbeat-interval-ticks' (${ms["heartbeat-interval-ticks"]}) must be smaller than 'metadata-server.election-timeout-ticks' (${ms["election-timeout-ticks"]})`,
      { keys: ["metadata-server.heartbeat-interval-ticks", "metadata-server.election-timeout-ticks"] },
    );
  }
  const snap = config.snapshots;
  if (snap.repository === "s3" && (snap["s3-endpoint"] === "" || snap["s3-bucket"] === "")) {
    throw new CairnError("CONFIG_CONFLICT", `'snapshots.repository' is "s3", so 'snapshots.s3-endpoint' and 'snapshots.s3-bucket' must be set`, {
      keys: ["snapshots.repository", "snapshots.s3-endpoint", "snapshots.s3-bucket"],
    });
  }
  if (snap["retry-backoff-max-ms"] < snap["retry-backoff-initial-ms"]) {
    throw new CairnError("CONFIG_CONFLICT", `'snapshots.retry-backoff-max-ms' must be at least 'snapshots.retry-backoff-initial-ms'`, {
      keys: ["snapshots.retry-backoff-max-ms", "snapshots.retry-backoff-initial-ms"],
    });
  }
  if (config.net["reconnect-backoff-max-ms"] < config.net["reconnect-backoff-initial-ms"]) {
    throw new CairnError(
      "CONFIG_CONFLICT",
      `'net.reconnect-backoff-max-ms' must be at least 'net.reconnect-backoff-initial-ms'`,
      { keys: ["net.reconnect-backoff-max-ms", "net.reconnect-backoff-initial-ms"] },
    );
  }
}

/** Fill in values whose default depends on others (node name, data directory). */
function derive(config: Config, cwd: string): Config {
  const nodeName = config["node-name"] || sanitizeHostname(hostname());
  const baseDir = config["base-dir"] ? resolve(cwd, config["base-dir"]) : join(resolve(cwd, "cairn-data"), nodeName);
  return { ...config, "node-name": nodeName, "base-dir": baseDir };
}

function sanitizeHostname(h: string): string {
  const s = h.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return s.slice(0, 64) || "node";
}

export interface LoadedConfig {
  config: Config;
  /** Which source set each key that is not a default (`file`, `env CAIRN_X`, `flag`). */
  origins: Map<string, string>;
}

export function loadConfig(sources: ConfigSources = {}, cwd = process.cwd()): LoadedConfig {
  const origins = new Map<string, string>();
  const fileLayer = sources.configFile ? readTomlFile(sources.configFile) : {};
  for (const k of leafKeysOf(fileLayer)) origins.set(k, `config file ${sources.configFile}`);

  const envPairs: Array<[string, string]> = [];
  const envNames = new Map<string, string>();
  for (const [name, value] of Object.entries(sources.env ?? {})) {
    if (!name.startsWith("CAIRN_") || NON_CONFIG_ENV.has(name) || value === undefined) continue;
    const key = envKeyToPath(name);
    envPairs.push([key, value]);
    envNames.set(key, name);
  }
  const envLayer = overridesToObject(envPairs, (k) => `environment variable ${envNames.get(k) ?? k}`, "CONFIG_ENV_INVALID");
  for (const [k] of envPairs) origins.set(k, `environment variable ${envNames.get(k)}`);

  const flagLayer = overridesToObject(sources.overrides ?? [], (k) => `flag for '${k}'`, "CONFIG_UNKNOWN_KEY");
  for (const [k] of sources.overrides ?? []) origins.set(k, "command-line flag");

  const merged = deepMerge(deepMerge(deepMerge(defaultConfig() as unknown as Json, fileLayer), envLayer), flagLayer);
  const sourceOf = (key: string) => origins.get(key) ?? (key.includes(".") ? origins.get(key.split(".")[0]!) : undefined) ?? "configuration";
  validate(merged, sourceOf);
  checkConflicts(merged);
  return { config: derive(merged, cwd), origins };
}

function leafKeysOf(obj: Json, prefix = ""): string[] {
  return Object.entries(obj).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return isObject(v) ? leafKeysOf(v, key) : [key];
  });
}

/** The effective configuration as TOML (what --dump-config prints). */
export function configToToml(config: Config): string {
  return stringifyToml(config as unknown as Json) + "\n";
}
