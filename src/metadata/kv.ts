// The metadata KV state machine: versioned JSON values with server-assigned versions and
// preconditions checked when a command is applied (on every replica, in log order), so every
// replica reaches the same state. Pure: no I/O, no clock.
//
// Invariants: a key's version only grows, across deletes too (a deleted key keeps a tombstone with
// its last version, so re-creating it continues the sequence and a stale matches-version can never
// succeed against a new value: no ABA); applying the same command sequence gives the same state.
import { invariant } from "../observability/errors.ts";

export type Version = number & { readonly __brand: "MetadataVersion" };
export const NO_VERSION = 0 as Version;

export function asVersion(n: number): Version {
  invariant(Number.isSafeInteger(n) && n >= 0, () => `metadata version must be a non-negative integer, got ${n}`);
  return n as Version;
}

export type Precondition =
  | { readonly kind: "none" }
  | { readonly kind: "does-not-exist" }
  | { readonly kind: "matches-version"; readonly version: Version };

export const NONE: Precondition = { kind: "none" };
export const DOES_NOT_EXIST: Precondition = { kind: "does-not-exist" };
export function matchesVersion(version: Version): Precondition {
  return { kind: "matches-version", version };
}

export interface VersionedValue {
  readonly value: unknown;
  readonly version: Version;
}

export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: unknown; readonly precondition: Precondition }
  | { readonly op: "delete"; readonly key: string; readonly precondition: Precondition };

export type KvResult =
  | { readonly ok: true; readonly version: Version }
  | {
      readonly ok: false;
      readonly reason: "exists" | "version-mismatch" | "not-found";
      /** The key's version when the command was applied (NO_VERSION if absent). */
      readonly currentVersion: Version;
    };

interface Entry {
  /** undefined = deleted (a tombstone that remembers the last version). */
  value: unknown;
  version: Version;
  live: boolean;
}

export interface KvSnapshot {
  formatVersion: 1;
  entries: Array<{ key: string; value: unknown; version: number; live: boolean }>;
}

/** The failure a precondition meets against a key at version `current` (NO_VERSION: absent), or undefined. */
export function checkPrecondition(current: Version, precondition: Precondition): KvResult | undefined {
  switch (precondition.kind) {
    case "none":
      return undefined;
    case "does-not-exist":
      return current === NO_VERSION ? undefined : { ok: false, reason: "exists", currentVersion: current };
    case "matches-version":
      return current === precondition.version
        ? undefined
        : { ok: false, reason: current === NO_VERSION ? "not-found" : "version-mismatch", currentVersion: current };
  }
}

export class KvStateMachine {
  private readonly entries = new Map<string, Entry>();

  get(key: string): VersionedValue | undefined {
    const e = this.entries.get(key);
    return e?.live ? { value: e.value, version: e.version } : undefined;
  }

  getVersion(key: string): Version {
    const e = this.entries.get(key);
    return e?.live ? e.version : NO_VERSION;
  }

  /** Live keys with their versions, sorted, optionally under a prefix. */
  list(prefix = ""): Array<{ key: string; version: Version }> {
    const out: Array<{ key: string; version: Version }> = [];
    for (const [key, e] of this.entries) {
      if (e.live && key.startsWith(prefix)) out.push({ key, version: e.version });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  get size(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.live) n++;
    return n;
  }

  /** Check a precondition against the current state without applying anything. */
  check(key: string, precondition: Precondition): KvResult | undefined {
    return checkPrecondition(this.getVersion(key), precondition);
  }

  apply(cmd: KvCommand): KvResult {
    const failed = this.check(cmd.key, cmd.precondition);
    if (failed !== undefined) return failed;
    const previous = this.entries.get(cmd.key);
    if (cmd.op === "put") {
      const version = asVersion((previous?.version ?? 0) + 1);
      this.entries.set(cmd.key, { value: cmd.value, version, live: true });
      return { ok: true, version };
    }
    if (previous === undefined || !previous.live) {
      return { ok: false, reason: "not-found", currentVersion: NO_VERSION };
    }
    this.entries.set(cmd.key, { value: undefined, version: previous.version, live: false });
    return { ok: true, version: previous.version };
  }

  /** Load a value with a given version (migration from another store keeps every version). */
  restoreEntry(key: string, value: unknown, version: Version): void {
    invariant(version > 0, () => `restored version of ${key} must be positive`);
    this.entries.set(key, { value, version, live: true });
  }

  snapshot(): KvSnapshot {
    const entries = [...this.entries].map(([key, e]) => ({ key, value: e.live ? e.value : null, version: e.version, live: e.live }));
    return { formatVersion: 1, entries };
  }

  static fromSnapshot(snapshot: KvSnapshot): KvStateMachine {
    invariant(snapshot.formatVersion === 1, () => `unknown KV snapshot format ${String(snapshot.formatVersion)}`);
    const kv = new KvStateMachine();
    for (const e of snapshot.entries) {
      kv.entries.set(e.key, { value: e.live ? e.value : undefined, version: asVersion(e.version), live: e.live });
    }
    return kv;
  }
}
