// The model of one metadata key as the register workload uses it: a versioned value where the
// server assigns versions (previous + 1, from 0 = absent), `write` is an unconditional PUT, `cas` a PUT
// with If-Match: <version>. A refused cas (412) is kept in the history, not dropped: it says that at
// some instant the key was at `currentVersion`, which must fit the order too. Indeterminate writes and
// cas are accepted in any state (they happen, or their effect lands later, or never).
import type { Operation } from "../history.ts";
import { checkLinearizable, type CheckBounds, type LinearizabilityResult, type Model } from "./linearizable.ts";

export interface RegisterState {
  readonly version: number;
  /** JSON of the value; null when absent. */
  readonly value: string | null;
}

export type RegisterRead = { found: false } | { found: true; value: unknown; version: number };
export type RegisterOp = Operation<unknown, unknown>;

/** JSON with sorted object keys, so equal values compare equal. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function versionOf(output: unknown): number | undefined {
  if (output === null || typeof output !== "object") return undefined;
  const v = (output as { version?: unknown }).version;
  return typeof v === "number" ? v : undefined;
}

export const registerModel: Model<RegisterState, RegisterOp> = {
  name: "versioned-cas-register",
  init: () => ({ version: 0, value: null }),
  hash: (s) => `${s.version}:${s.value ?? "-"}`,
  describeState: (s) => (s.value === null ? `absent (version ${s.version})` : `${s.value} @ version ${s.version}`),
  describeOp: (op) => {
    const out = op.status === "info" ? "?" : JSON.stringify(op.output);
    return `#${op.id} p${op.process} ${op.f}(${JSON.stringify(op.input)}) → ${op.status} ${out} [${op.call}, ${op.ret}] via ${op.node}`;
  },
  step(s, op) {
    switch (op.f) {
      case "read": {
        if (op.status !== "ok") return s; // callers drop these; harmless if kept
        const r = op.output as RegisterRead;
        if (!r.found) return s.value === null ? s : undefined;
        return s.value !== null && s.version === r.version && s.value === canonical(r.value) ? s : undefined;
      }
      case "write": {
        const value = canonical((op.input as { value: unknown }).value);
        if (op.status === "info") return { version: s.version + 1, value };
        if (op.status !== "ok") return s;
        return versionOf(op.output) === s.version + 1 ? { version: s.version + 1, value } : undefined;
      }
      case "cas": {
        const input = op.input as { expectedVersion: number; value: unknown };
        const applies = s.value !== null && s.version === input.expectedVersion;
        if (op.status === "info") return applies ? { version: s.version + 1, value: canonical(input.value) } : s;
        if (op.status === "ok") {
          return applies && versionOf(op.output) === s.version + 1 ? { version: s.version + 1, value: canonical(input.value) } : undefined;
        }
        // fail: a 412 says the key was at currentVersion (0 = absent) when the cas was applied.
        const current = (op.output as { currentVersion?: unknown } | null)?.currentVersion;
        if (typeof current !== "number") return s;
        return !applies && s.version === current && (current !== 0 || s.value === null) ? s : undefined;
      }
      default:
        throw new Error(`register model: unknown operation ${op.f}`);
    }
  },
};

/**
 * Operations that carry information for the check: ok reads, ok/info writes and cas, and cas refused
 * with a current version. Failed writes (certainly not applied) and reads without an answer are dropped.
 */
export function relevantRegisterOps(ops: readonly RegisterOp[]): RegisterOp[] {
  return ops.filter((op) => {
    if (op.f === "read") return op.status === "ok";
    if (op.f === "write") return op.status !== "fail";
    if (op.f === "cas") {
      if (op.status !== "fail") return true;
      return typeof (op.output as { currentVersion?: unknown } | null)?.currentVersion === "number";
    }
    return false;
  });
}

/** Linearizability of a register history, one part per key. */
export function checkRegisters(ops: readonly RegisterOp[], bounds: CheckBounds = {}): LinearizabilityResult<RegisterOp> {
  return checkLinearizable(registerModel, relevantRegisterOps(ops), { ...bounds, partition: (op) => op.key });
}
