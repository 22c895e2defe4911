// The schema registry's rules, as pure functions over the `schema` document: registering a
// discovered deployment (idempotent for an unchanged endpoint; re-pointing services with a growing
// revision), removing one, and lookups. Invariants: a service name appears once in `services` and
// names a deployment that exists; revisions only grow; a service's type changes only with force.
import { invariant } from "../../observability/errors.ts";
import { CairnError } from "../../observability/errors.ts";
import type { Discovered, DiscoveredService } from "./discovery.ts";
import type { DeploymentSchema, HandlerSchema, SchemaRegistry, ServiceSchema } from "./model.ts";

export interface RegisterOptions {
  /** The normalized deployment URI (see normalizeDeploymentUri). */
  uri: string;
  additionalHeaders: Record<string, string>;
  /** Overwrite a changed deployment at the same URI, and allow changing a service's type. */
  force: boolean;
  nowMs: number;
  /** The id a new deployment gets (newDeploymentId); unused when the deployment exists. */
  id: string;
  metadata?: Record<string, string>;
}

export interface RegisterResult {
  registry: SchemaRegistry;
  /** False when a deployment with this URI already existed (unchanged, or overwritten by force). */
  created: boolean;
  /** False when nothing changed (the registry is the one passed in). */
  changed: boolean;
  deployment: DeploymentSchema;
}

/** Register a discovered endpoint; see the module header for the rules. */
export function registerDeployment(reg: SchemaRegistry, discovered: Discovered, options: RegisterOptions): RegisterResult {
  const existing = reg.deployments.find((d) => d.uri === options.uri);
  const verdict = existing === undefined ? "changed" : compare(reg, existing, discovered, options.additionalHeaders);
  if (existing !== undefined && verdict === "unchanged") {
    return { registry: reg, created: false, changed: false, deployment: existing };
  }
  // "superseded": the endpoint is as registered, but newer deployments took some of its services
  // since; registering it again moves them back (a roll-back), like registering a new URI would.
  if (existing !== undefined && verdict === "changed" && !options.force) {
    throw new CairnError(
      "DEPLOY_EXISTS_CHANGED",
      `deployment ${existing.id} at ${options.uri} is registered with other services, handlers or headers than the endpoint now has`,
      { deploymentId: existing.id, uri: options.uri },
    );
  }
  const deploymentId = existing?.id ?? options.id;
  invariant(existing !== undefined || !reg.deployments.some((d) => d.id === deploymentId), () => `deployment id ${deploymentId} is already taken`);

  const byName = new Map(reg.services.map((s) => [s.name, s]));
  if (!options.force) {
    for (const s of discovered.services) {
      const current = byName.get(s.name);
      if (current !== undefined && current.ty !== s.ty) {
        throw new CairnError(
          "DEPLOY_SERVICE_TYPE_CHANGED",
          `service '${s.name}' is a ${current.ty} (deployment ${current.deploymentId}); the endpoint declares it a ${s.ty}`,
          { service: s.name, from: current.ty, to: s.ty },
        );
      }
    }
  }

  const deployment: DeploymentSchema = {
    id: deploymentId,
    uri: options.uri,
    http: discovered.http,
    additionalHeaders: { ...options.additionalHeaders },
    protocolMode: discovered.protocolMode,
    minProtocolVersion: discovered.minProtocolVersion,
    maxProtocolVersion: discovered.maxProtocolVersion,
    sdkVersion: discovered.sdkVersion,
    services: discovered.services.map((s) => s.name),
    createdAtMs: existing?.createdAtMs ?? options.nowMs,
    metadata: { ...(existing?.metadata ?? {}), ...(options.metadata ?? {}) },
  };
  const discoveredNames = new Set(deployment.services);
  const services: ServiceSchema[] = [];
  for (const s of reg.services) {
    // A force-overwritten deployment stops serving what its new manifest dropped.
    if (existing !== undefined && s.deploymentId === existing.id && !discoveredNames.has(s.name)) continue;
    if (!discoveredNames.has(s.name)) services.push(s);
  }
  for (const s of discovered.services) {
    const current = byName.get(s.name);
    services.push({ ...s, deploymentId, revision: (current?.revision ?? 0) + 1 });
  }
  services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const deployments = existing === undefined ? [...reg.deployments, deployment] : reg.deployments.map((d) => (d.id === deploymentId ? deployment : d));
  const registry = { deployments, services };
  checkRegistry(registry);
  return { registry, created: existing === undefined, changed: true, deployment };
}

/**
 * How the endpoint compares with its registered deployment: "unchanged" (same transport, headers,
 * services, each still served by it with the same schema), "superseded" (the same, except that
 * other deployments serve some of its services now: their schemas here cannot be compared), or
 * "changed".
 */
function compare(reg: SchemaRegistry, d: DeploymentSchema, discovered: Discovered, headers: Record<string, string>): "unchanged" | "superseded" | "changed" {
  if (d.http !== discovered.http || d.protocolMode !== discovered.protocolMode) return "changed";
  if (d.minProtocolVersion !== discovered.minProtocolVersion || d.maxProtocolVersion !== discovered.maxProtocolVersion) return "changed";
  if (canonical(d.additionalHeaders) !== canonical(headers)) return "changed";
  if (canonical([...d.services].sort()) !== canonical(discovered.services.map((s) => s.name).sort())) return "changed";
  let superseded = false;
  for (const s of discovered.services) {
    const current = reg.services.find((c) => c.name === s.name);
    if (current === undefined || current.deploymentId !== d.id) superseded = true;
    else if (!sameService(current, s)) return "changed";
  }
  return superseded ? "superseded" : "unchanged";
}

function sameService(current: ServiceSchema, discovered: DiscoveredService): boolean {
  const { deploymentId: _d, revision: _r, ...rest } = current;
  return canonical(rest) === canonical(discovered);
}

/** JSON with sorted object keys, so equal schemas compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

export interface RemoveResult {
  registry: SchemaRegistry;
  removed: DeploymentSchema;
  /** Services unregistered with it (only with force). */
  removedServices: string[];
}

/** Remove a deployment; refused while it serves the latest revision of a service, unless force. */
export function removeDeployment(reg: SchemaRegistry, id: string, options: { force: boolean }): RemoveResult {
  const removed = deploymentOf(reg, id);
  const serving = reg.services.filter((s) => s.deploymentId === id).map((s) => s.name);
  if (serving.length > 0 && !options.force) {
    throw new CairnError("DEPLOY_IN_USE", `deployment ${id} serves the latest revision of ${serving.join(", ")}`, { deploymentId: id, services: serving });
  }
  const registry = { deployments: reg.deployments.filter((d) => d.id !== id), services: reg.services.filter((s) => s.deploymentId !== id) };
  checkRegistry(registry);
  return { registry, removed, removedServices: serving };
}

export function deploymentOf(reg: SchemaRegistry, id: string): DeploymentSchema {
  const d = reg.deployments.find((x) => x.id === id);
  if (d === undefined) throw new CairnError("DEPLOY_NOT_FOUND", `no deployment '${id.slice(0, 100)}'`, { deploymentId: id.slice(0, 100) });
  return d;
}

export function serviceOf(reg: SchemaRegistry, name: string): ServiceSchema {
  const s = reg.services.find((x) => x.name === name);
  if (s === undefined) throw new CairnError("DEPLOY_SERVICE_NOT_FOUND", `no service '${name.slice(0, 100)}' is registered`, { service: name.slice(0, 100) });
  return s;
}

export function handlerOf(reg: SchemaRegistry, service: string, handler: string): { service: ServiceSchema; handler: HandlerSchema; deployment: DeploymentSchema } {
  const s = serviceOf(reg, service);
  const h = s.handlers.find((x) => x.name === handler);
  if (h === undefined) {
    throw new CairnError("DEPLOY_SERVICE_NOT_FOUND", `service '${service}' has no handler '${handler.slice(0, 100)}'`, { service, handler: handler.slice(0, 100) });
  }
  return { service: s, handler: h, deployment: deploymentOf(reg, s.deploymentId) };
}

/** The services a deployment serves the latest revision of. */
export function servicesOfDeployment(reg: SchemaRegistry, id: string): ServiceSchema[] {
  return reg.services.filter((s) => s.deploymentId === id);
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** `dp_` + 26 base32 characters of 16 random bytes (the caller draws the bytes). */
export function newDeploymentId(random16: Uint8Array): string {
  invariant(random16.length === 16, "a deployment id takes 16 random bytes");
  let bits = 0;
  let value = 0;
  let out = "dp_";
  for (const byte of random16) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The registry's invariants (a violation is a bug in these functions or a hand-edited document). */
export function checkRegistry(reg: SchemaRegistry): void {
  const ids = new Set(reg.deployments.map((d) => d.id));
  invariant(ids.size === reg.deployments.length, "deployment ids are unique");
  const names = new Set<string>();
  for (const s of reg.services) {
    invariant(!names.has(s.name), () => `service ${s.name} is registered once`);
    names.add(s.name);
    invariant(ids.has(s.deploymentId), () => `service ${s.name} names deployment ${s.deploymentId}, which exists`);
  }
}
