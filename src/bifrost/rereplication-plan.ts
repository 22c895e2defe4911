// Re-replication planning, pure: which sealed segments hold fewer copies of their records than their
// log's current replication, and onto which log-servers to copy them. No I/O, no clock; the driver
// (rereplicator.ts) copies, and the controller calls both on the metadata leader.
//
// Copies of a sealed segment: every record sits on `replication` members of its nodeset, minus the
// members whose copies are gone (removed from the cluster, or back with a wiped store). The log's
// current replication is its tail segment's. A segment short of it gets whole copies on new
// log-servers (each target receives every record), so afterwards each record has at least
// (surviving copies + targets) copies, which is the segment's new replication; members whose copies
// are gone leave the nodeset in the same compare-and-set. With too few log-servers outside the
// nodeset, surviving members become targets too (a full copy fills their holes).
//
// Invariants: only sealed, non-tail segments are planned (an open segment is the sequencer's); a
// target is never a current nodeset member; the new replication never exceeds the copies the
// surviving members and the targets actually provide; at most one plan per log (logs in flight are
// skipped), and `maxPlans` bounds the whole round.
import { tailSegment, type LogsDocument, type Segment } from "./chain.ts";
import { logId, nodeId, type LogId, type NodeId } from "../ids/index.ts";
import { invariant } from "../observability/errors.ts";

export interface RereplicationInput {
  readonly doc: LogsDocument;
  /** Log-servers that may receive copies now (alive, writable), in order of preference. */
  readonly candidates: readonly NodeId[];
  /** Whether a node's copies are gone: it left the cluster, or its store came back wiped. */
  readonly lost: (id: NodeId) => boolean;
  /** Logs with a re-replication running (skipped). */
  readonly inflight: ReadonlySet<number>;
  /** Most plans to return (the free concurrency slots). */
  readonly maxPlans: number;
  /** Plan only this log (an operator's trigger). */
  readonly only?: LogId;
}

/** One segment to copy. */
export interface SegmentCopyPlan {
  readonly log: LogId;
  readonly segment: number;
  /** The nodeset the plan was made on: the chain update is conditional on it. */
  readonly expectNodeset: readonly string[];
  /** Members whose copies survive, in nodeset order: where the records are read from. */
  readonly sources: readonly NodeId[];
  /** Log-servers receiving a full copy. */
  readonly targets: readonly NodeId[];
  /** Nodeset and replication to record once every target holds every record durably. */
  readonly nodeset: readonly NodeId[];
  readonly replication: number;
  /** Records of the segment above the log's trim point. */
  readonly records: number;
}

export interface SegmentShortfall {
  readonly log: LogId;
  readonly segment: number;
  /** Copies every record has now (surviving members' share) and should have. */
  readonly copies: number;
  readonly wanted: number;
  readonly records: number;
}

export interface RereplicationPlan {
  readonly copies: SegmentCopyPlan[];
  /** Every under-replicated segment found (planned or not). */
  readonly shortfalls: SegmentShortfall[];
  /** Under-replicated records per log (logs with none are absent). */
  readonly underReplicatedRecords: Map<number, number>;
  /** Segments that need more targets than the candidates offer (waiting for log-servers). */
  readonly blocked: SegmentShortfall[];
}

/** Records of a sealed segment still above the log's trim point. */
export function liveRecords(segment: Segment, trimPoint: number): number {
  if (segment.sealedTail === undefined) return 0;
  return Math.max(0, segment.sealedTail - Math.max(segment.baseLsn, trimPoint + 1));
}

/** How many copies each record of `segment` has now, given which members lost theirs. */
export function survivingCopies(segment: Segment, lost: (id: NodeId) => boolean): number {
  const gone = segment.params.nodeset.filter((n) => lost(nodeId(n))).length;
  return Math.max(0, segment.params.replication - gone);
}

/**
 * Copies every record has once each target holds all of them: the targets, plus what the surviving
 * members that are not targets still guarantee (`have` copies among survivors, minus the survivors
 * turned into targets, which are already counted).
 */
function fullCopies(targets: readonly NodeId[], sources: readonly NodeId[], have: number): number {
  const filled = targets.filter((t) => sources.includes(t)).length;
  return targets.length + Math.max(0, have - filled);
}

export function planRereplication(input: RereplicationInput): RereplicationPlan {
  invariant(input.maxPlans >= 0, "maxPlans ≥ 0");
  const copies: SegmentCopyPlan[] = [];
  const shortfalls: SegmentShortfall[] = [];
  const blocked: SegmentShortfall[] = [];
  const underReplicatedRecords = new Map<number, number>();
  for (const log of input.doc.logs) {
    if (input.only !== undefined && log.id !== input.only) continue;
    const tail = tailSegment(log);
    if (tail === undefined) continue;
    const wanted = tail.params.replication;
    let planned = input.inflight.has(log.id);
    for (const s of log.segments) {
      if (s === tail || s.sealedTail === undefined) continue;
      const records = liveRecords(s, log.trimPoint);
      if (records === 0) continue;
      const have = survivingCopies(s, input.lost);
      if (have >= wanted) continue;
      const shortfall: SegmentShortfall = { log: logId(log.id), segment: s.index, copies: have, wanted, records };
      shortfalls.push(shortfall);
      underReplicatedRecords.set(log.id, (underReplicatedRecords.get(log.id) ?? 0) + records);
      if (planned || copies.length >= input.maxPlans) continue;
      const members = s.params.nodeset.map((n) => nodeId(n));
      const sources = members.filter((m) => !input.lost(m));
      const targets = input.candidates.filter((c) => !members.includes(c)).slice(0, wanted - have);
      // Not enough log-servers outside the nodeset: surviving members that are live get a full copy
      // too (filling the holes they have); each full holder then counts once for every record.
      const liveSources = sources.filter((m) => input.candidates.includes(m));
      const outsidersOnly = fullCopies(targets, sources, have);
      const filled = [...targets];
      while (fullCopies(filled, sources, have) < wanted && liveSources.length > 0) filled.push(liveSources.shift()!);
      // Filling pays only once it adds copies (each filled survivor first replaces the share it held).
      if (fullCopies(filled, sources, have) > outsidersOnly) targets.splice(0, targets.length, ...filled);
      const replication = fullCopies(targets, sources, have);
      if (replication <= have || sources.length === 0) {
        blocked.push(shortfall);
        continue;
      }
      planned = true;
      const nodeset = [...sources, ...targets.filter((t) => !sources.includes(t))];
      invariant(replication <= nodeset.length && replication <= wanted, "planned replication within the copies provided");
      copies.push({ log: logId(log.id), segment: s.index, expectNodeset: [...s.params.nodeset], sources, targets, nodeset, replication, records });
    }
  }
  return { copies, shortfalls, underReplicatedRecords, blocked };
}
