// Vocabulary of the Raft core: branded numeric ids (so a term is never passed where an index is
// expected), entries, hard state, configuration and snapshots. Every value here is plain data and
// JSON-friendly except the `Uint8Array` payloads.

import { invariant } from "./assert.ts";

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A Raft term. 0 means "no term yet". */
export type Term = Brand<number, "Term">;
/** A log position. Entries start at 1; 0 is the empty-log position. */
export type Index = Brand<number, "Index">;
/**
 * A member of one Raft group, as the pure core numbers it. 0 (`NO_NODE`) means "nobody". The core
 * imports nothing of cairn's, so this is not the cluster's node id (src/ids/node.ts): the metadata
 * driver maps a node `N<n>` to the Raft id n at its edge (src/metadata/).
 */
export type RaftId = Brand<number, "RaftId">;

function checkNatural(value: number, what: string): void {
  invariant(Number.isSafeInteger(value) && value >= 0, () => `${what} must be a natural number, got ${value}`);
}

export function asTerm(value: number): Term {
  checkNatural(value, "term");
  return value as Term;
}
export function asIndex(value: number): Index {
  checkNatural(value, "index");
  return value as Index;
}
export function asRaftId(value: number): RaftId {
  checkNatural(value, "raft id");
  return value as RaftId;
}

export const NO_NODE = 0 as RaftId;
export const ZERO_TERM = 0 as Term;
export const ZERO_INDEX = 0 as Index;

/** The durable per-node state that must be fsynced before any message depending on it is sent. */
export interface HardState {
  readonly term: Term;
  /** Who this node voted for in `term` (NO_NODE if nobody). */
  readonly vote: RaftId;
  readonly commit: Index;
}

export const EMPTY_HARD_STATE: HardState = { term: ZERO_TERM, vote: NO_NODE, commit: ZERO_INDEX };

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Cluster membership. Both lists are sorted ascending and disjoint. */
export interface ConfState {
  readonly voters: readonly RaftId[];
  readonly learners: readonly RaftId[];
}

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };

export function confStateEqual(a: ConfState, b: ConfState): boolean {
  return sameIds(a.voters, b.voters) && sameIds(a.learners, b.learners);
}

function sameIds(a: readonly RaftId[], b: readonly RaftId[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One membership change. Only one server changes at a time:
 * - `addLearner`: a new non-voting member that receives the log.
 * - `addVoter`: a new voter, or the promotion of an existing learner.
 * - `removeNode`: removes a voter or a learner (the leader may remove itself).
 */
export type ConfChangeType = "addVoter" | "addLearner" | "removeNode";

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: RaftId;
  /** Opaque to Raft (the metadata server may put the new member's address here). */
  readonly context: Uint8Array;
}

export interface NormalEntry {
  readonly kind: "normal";
  readonly term: Term;
  readonly index: Index;
  /** Opaque command; an empty payload is the no-op a new leader appends. */
  readonly data: Uint8Array;
}

export interface ConfChangeEntry {
  readonly kind: "confChange";
  readonly term: Term;
  readonly index: Index;
  readonly change: ConfChange;
}

export type Entry = NormalEntry | ConfChangeEntry;

/** Approximate in-memory/wire size of an entry, used for every byte bound in the core. */
export const ENTRY_OVERHEAD_BYTES = 24;

export function entrySizeBytes(entry: Entry): number {
  return entry.kind === "normal"
    ? entry.data.byteLength + ENTRY_OVERHEAD_BYTES
    : entry.change.context.byteLength + ENTRY_OVERHEAD_BYTES;
}

export interface SnapshotMetadata {
  /** The last log index the snapshot covers. */
  readonly index: Index;
  readonly term: Term;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** State machine image, opaque to Raft. */
  readonly data: Uint8Array;
}

export const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: ZERO_INDEX, term: ZERO_TERM, confState: EMPTY_CONF_STATE },
  data: new Uint8Array(0),
};

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state the driver may want to observe (not persisted). */
export interface SoftState {
  readonly leader: RaftId;
  readonly role: Role;
}

/** A linearizable read point: serve the read identified by `ctx` once applied index >= `index`. */
export interface ReadState {
  readonly index: Index;
  readonly ctx: string;
}
