// The trim policy, pure: which policy is in force (from the configured one, whether a snapshot
// repository exists, how many nodes and workers the cluster has), and per log whether to trim and up
// to which LSN. No clock, no I/O: the driver passes the time and the "stable since" candidates back in.
// Invariants: a trim point never exceeds the log's archived LSN (archived-lsn) or the lowest durable
// LSN of every processor of its partition (persisted-lsn), nor the tail; persisted-lsn never decides a
// trim once the cluster has, or ever had since it was switched off, more than one node; a point is
// applied only after it has been a valid point for `delayMs`, and only inside the protection window.
import { ERRORS } from "../../observability/errors.ts";
import type { StatusItem } from "../status/cluster-state.ts";

export const TRIM_POLICIES = ["auto", "archived-lsn", "persisted-lsn", "off"] as const;
export type ConfiguredTrimPolicy = (typeof TRIM_POLICIES)[number];
/** What actually runs: `off` also when the configured policy cannot run here. */
export type EffectiveTrimPolicy = "archived-lsn" | "persisted-lsn" | "off";

export interface PolicyInput {
  readonly configured: ConfiguredTrimPolicy;
  /** A snapshot repository is configured (`[snapshots] repository` other than `none`). */
  readonly repository: boolean;
  /** Nodes registered in the nodes configuration, whatever their roles. */
  readonly nodes: number;
  /** Registered nodes with the worker role. */
  readonly workers: number;
  /** persisted-lsn was switched off before (durable, sticky: it never switches back on by itself). */
  readonly persistedLsnDisabled: boolean;
  /** persisted-lsn trimmed some log (`trim/persisted-lsn-used` exists). */
  readonly persistedLsnTrimmed: boolean;
}

export interface PolicyDecision {
  readonly effective: EffectiveTrimPolicy;
  /** persisted-lsn must be switched off now (durably): a second node registered. */
  readonly disablePersistedLsn: boolean;
  /** Warnings for `cairn ctl status` and every node's log. */
  readonly warnings: readonly StatusItem[];
}

const warning = (name: keyof typeof ERRORS, message: string): StatusItem => ({ code: ERRORS[name].code, subject: "cluster", message });

/** Which policy runs, and what to warn about. */
export function resolveTrimPolicy(input: PolicyInput): PolicyDecision {
  const single = input.nodes <= 1;
  // The switch-off concerns every cluster that could have trimmed under persisted-lsn: it is sticky.
  const persistedCandidate = input.configured === "persisted-lsn" || (input.configured === "auto" && !input.repository);
  const disablePersistedLsn = persistedCandidate && !single && !input.persistedLsnDisabled;
  const disabled = input.persistedLsnDisabled || disablePersistedLsn;
  const warnings: StatusItem[] = [];
  // Under `auto`, a cluster that grew before persisted-lsn trimmed anything lost nothing by the
  // switch-off (it is logged, not shown); one the operator chose, or one that trimmed, is shown.
  if (persistedCandidate && disabled && (input.configured === "persisted-lsn" || input.persistedLsnTrimmed)) {
    warnings.push(
      warning(
        "TRIM_PERSISTED_LSN_DISABLED",
        `the persisted-lsn trim policy is off: the cluster has ${single ? "had" : `${input.nodes}`} nodes; nothing already trimmed is lost, no further trims happen under it`,
      ),
    );
  }
  if (!input.repository && input.workers > 1 && input.configured !== "off") {
    warnings.push(warning("TRIM_NO_REPOSITORY", `${input.workers} workers and no snapshot repository: logs are not trimmed automatically`));
  }
  let effective: EffectiveTrimPolicy = "off";
  switch (input.configured) {
    case "off":
      break;
    case "archived-lsn":
      if (input.repository) effective = "archived-lsn";
      else warnings.push(warning("TRIM_POLICY_UNUSABLE", "trim.policy is archived-lsn but no snapshot repository is configured: no automatic trimming"));
      break;
    case "persisted-lsn":
      if (!disabled) effective = "persisted-lsn";
      break;
    case "auto":
      effective = input.repository ? "archived-lsn" : disabled ? "off" : "persisted-lsn";
      break;
  }
  return { effective, disablePersistedLsn, warnings };
}

/** The protection window and the settling delay. */
export interface TrimWindow {
  readonly minAgeMs: number;
  readonly minRecords: number;
  readonly delayMs: number;
}

export interface LogTrimInput {
  readonly log: number;
  /** When the log's first (oldest remaining) segment was created; null: it has no segment. */
  readonly createdAtMs: number | null;
  readonly trimPoint: number;
  /** First LSN not yet written; null: not found in time. */
  readonly tailLsn: number | null;
  /** The partition's archived LSN (its oldest retained snapshot); null: nothing archived. */
  readonly archivedLsn: number | null;
  /** The durable LSN of every processor of the partition; null: one of them did not answer. */
  readonly durableLsns: readonly number[] | null;
}

/** A candidate trim point and since when it has been a valid one (Unix ms). */
export interface Candidate {
  readonly point: number;
  readonly sinceMs: number;
}

export type LogTrimDecision =
  | { readonly log: number; readonly action: "trim"; readonly upTo: number }
  | { readonly log: number; readonly action: "wait"; readonly reason: "young" | "few-records" | "settling" }
  | { readonly log: number; readonly action: "none"; readonly reason: "policy-off" | "no-bound" | "nothing-new" };

export interface TrimRoundInput {
  readonly effective: EffectiveTrimPolicy;
  readonly window: TrimWindow;
  readonly nowMs: number;
  readonly logs: readonly LogTrimInput[];
  /** The candidates the previous round returned. */
  readonly candidates: ReadonlyMap<number, Candidate>;
}

export interface TrimRound {
  readonly decisions: readonly LogTrimDecision[];
  /** The candidates to pass to the next round (a log without one is absent). */
  readonly candidates: ReadonlyMap<number, Candidate>;
}

/** The highest LSN the policy allows trimming to right now (undefined: none). */
export function trimBound(effective: EffectiveTrimPolicy, l: LogTrimInput): number | undefined {
  let bound: number | undefined;
  if (effective === "archived-lsn") bound = l.archivedLsn ?? undefined;
  else if (effective === "persisted-lsn" && l.durableLsns !== null && l.durableLsns.length > 0) bound = Math.min(...l.durableLsns);
  if (bound === undefined || l.tailLsn === null) return undefined;
  return Math.min(bound, l.tailLsn - 1);
}

/**
 * One round over every log. A candidate is the bound seen at `sinceMs`; it is applied once it is
 * `delayMs` old (and still below the current bound), then the current bound becomes the next
 * candidate. Replacing the candidate only when it ages out (not whenever the bound moves) lets a
 * log under steady writes trim at all: its bound moves every round, but each applied point has
 * stayed valid for the whole delay.
 */
export function decideTrims(input: TrimRoundInput): TrimRound {
  const decisions: LogTrimDecision[] = [];
  const next = new Map<number, Candidate>();
  const { window: w, nowMs } = input;
  for (const l of input.logs) {
    if (input.effective === "off") {
      decisions.push({ log: l.log, action: "none", reason: "policy-off" });
      continue;
    }
    const bound = trimBound(input.effective, l);
    if (bound === undefined) {
      decisions.push({ log: l.log, action: "none", reason: "no-bound" });
      continue;
    }
    if (bound <= l.trimPoint) {
      decisions.push({ log: l.log, action: "none", reason: "nothing-new" });
      continue;
    }
    const previous = input.candidates.get(l.log);
    // A candidate above the bound is no longer valid (a snapshot index moved back, a processor
    // restarted from an older durable point): start over from the current bound. The delay runs
    // while the window is closed too: it is about the point, the window about the log.
    const candidate = previous === undefined || previous.point > bound || previous.point <= l.trimPoint ? { point: bound, sinceMs: nowMs } : previous;
    // tailLsn is known here (trimBound needs it).
    const heldRecords = l.tailLsn! - 1 - l.trimPoint;
    const closed = l.createdAtMs === null || nowMs - l.createdAtMs < w.minAgeMs ? "young" : heldRecords < w.minRecords ? "few-records" : undefined;
    if (closed !== undefined) {
      decisions.push({ log: l.log, action: "wait", reason: closed });
      next.set(l.log, candidate);
      continue;
    }
    if (nowMs - candidate.sinceMs >= w.delayMs) {
      decisions.push({ log: l.log, action: "trim", upTo: candidate.point });
      if (bound > candidate.point) next.set(l.log, { point: bound, sinceMs: nowMs });
    } else {
      decisions.push({ log: l.log, action: "wait", reason: "settling" });
      next.set(l.log, candidate);
    }
  }
  return { decisions, candidates: next };
}
