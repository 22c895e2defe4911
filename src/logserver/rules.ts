// The log-server's decision logic for one loglet, pure: given the loglet's durable state and a
// request, what to answer and what the state becomes. The SQLite store and the simulator's in-memory
// server both apply exactly these rules, so the simulator tests the real acceptance logic.
//
// Invariants: the first sequencer that stores wins and is never replaced; a sealed loglet never
// unseals and takes only repair stores; local tail, known global tail and trim point only grow;
// the local tail is a high-water mark (one past the highest offset held), so stores into a gap
// are accepted and holes below the tail are possible (getDigest reports them).
import {
  MAX_LOGLET_OFFSET,
  OFFSET_INVALID,
  OFFSET_OLDEST,
  logletOffset,
  sameGenerationalNodeId,
  type GenerationalNodeId,
  type LogletOffset,
} from "../ids/index.ts";
import { invariant } from "../observability/errors.ts";
import type { StoreRequest, StoreStatus } from "./protocol.ts";

/** Most records one store request may carry. */
export const MAX_STORE_RECORDS = 65_536;

export interface LogletState {
  /** The first sequencer that stored into this loglet here; null until then. */
  readonly sequencer: GenerationalNodeId | null;
  readonly sealed: boolean;
  /** Last trimmed offset, inclusive; 0 = never trimmed. */
  readonly trimPoint: LogletOffset;
  /** One past the highest offset held (or trimmed). 1 when empty. */
  readonly localTail: LogletOffset;
  /** Highest committed tail a sequencer (or repairer) reported; everything below is committed. */
  readonly knownGlobalTail: LogletOffset;
}

export const EMPTY_LOGLET_STATE: LogletState = Object.freeze({
  sequencer: null,
  sealed: false,
  trimPoint: OFFSET_INVALID,
  localTail: OFFSET_OLDEST,
  knownGlobalTail: OFFSET_OLDEST,
});

export type StoreDecision =
  | {
      readonly status: "stored";
      readonly state: LogletState;
      /** Offsets to write (after skipping trimmed ones), or null when every offset was trimmed. */
      readonly write: { readonly from: LogletOffset; readonly to: LogletOffset } | null;
    }
  | { readonly status: Exclude<StoreStatus, "stored"> };

export interface ServerWriteMode {
  /** False when the server lost data or its storage failed: only repair stores are taken. */
  readonly acceptsNormalStores: boolean;
}

/** Decides a store against the loglet's current state (at commit time, in arrival order). */
export function decideStore(state: LogletState, request: StoreRequest, mode: ServerWriteMode): StoreDecision {
  const count = request.payloads.length;
  if (
    count === 0 ||
    count > MAX_STORE_RECORDS ||
    !Number.isSafeInteger(request.firstOffset) ||
    request.firstOffset < OFFSET_OLDEST ||
    request.firstOffset + count - 1 > MAX_LOGLET_OFFSET
  ) {
    return { status: "malformed" };
  }
  const repair = request.repair === true;
  if (!repair && !mode.acceptsNormalStores) return { status: "disabled" };
  if (state.sealed && !repair) return { status: "sealed" };
  if (state.sequencer !== null && !sameGenerationalNodeId(state.sequencer, request.sequencer)) {
    return { status: "fenced" };
  }
  const last = request.firstOffset + count - 1;
  const from = Math.max(request.firstOffset, state.trimPoint + 1);
  const next: LogletState = {
    sequencer: state.sequencer ?? request.sequencer,
    sealed: state.sealed,
    trimPoint: state.trimPoint,
    localTail: logletOffset(Math.max(state.localTail, last + 1)),
    knownGlobalTail: logletOffset(Math.max(state.knownGlobalTail, request.knownGlobalTail)),
  };
  checkState(next);
  return {
    status: "stored",
    state: next,
    write: from <= last ? { from: logletOffset(from), to: logletOffset(last) } : null,
  };
}

export function applySeal(state: LogletState): LogletState {
  return state.sealed ? state : { ...state, sealed: true };
}

/**
 * The trim point after trimming up to `upTo` (inclusive). Clipped below max(local tail, known
 * global tail): a server never trims what it cannot know to be committed. Never moves backwards.
 */
export function applyTrim(state: LogletState, upTo: LogletOffset): LogletState {
  const limit = Math.max(state.localTail, state.knownGlobalTail) - 1;
  const target = Math.min(upTo, limit);
  if (target <= state.trimPoint) return state;
  const next = {
    ...state,
    trimPoint: logletOffset(target),
    localTail: logletOffset(Math.max(state.localTail, target + 1)),
  };
  checkState(next);
  return next;
}

export function tailReached(state: LogletState, offset: LogletOffset): boolean {
  return state.sealed || state.localTail >= offset;
}

export function checkState(s: LogletState): void {
  invariant(s.localTail >= OFFSET_OLDEST, () => `local tail ${s.localTail} below 1`);
  invariant(s.trimPoint < s.localTail, () => `trim point ${s.trimPoint} at or beyond local tail ${s.localTail}`);
  invariant(s.knownGlobalTail >= OFFSET_OLDEST, () => `known global tail ${s.knownGlobalTail} below 1`);
}
