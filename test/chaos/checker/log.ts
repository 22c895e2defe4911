// A log checker for append/read histories (bifrost's promise, DESIGN §5): acknowledged LSNs are
// unique and follow real time (an append acknowledged before another was invoked has the lower LSN);
// every read returns records in strictly increasing, contiguous LSN order, with gaps only where it
// reports a trim gap; each record is the payload appended at that LSN (never a payload no append
// carried, never one whose append certainly failed, never the same payload twice, never two payloads
// at one LSN across reads); a final full read returns every acknowledged append exactly once at its
// acknowledged LSN, unless a reported trim gap covers it. Payloads are unique per append.
import type { Operation } from "../history.ts";
import { partitionPoint } from "./search.ts";

export interface LogRecord {
  readonly lsn: number;
  readonly payload: string;
}

export interface TrimGap {
  /** First and last LSN of the gap, both included. */
  readonly from: number;
  readonly to: number;
}

export interface LogReadInput {
  readonly from: number;
  /** A full scan after the final heal: must hold every acknowledged append. */
  readonly final?: boolean;
}

export interface LogReadOutput {
  readonly records: readonly LogRecord[];
  readonly trimGaps?: readonly TrimGap[];
  /** The log's tail (next LSN to be assigned) as the reader saw it, when the API reports it. */
  readonly tail?: number;
}

export type LogAnomalyKind =
  | "duplicate-lsn"
  | "ack-order"
  | "out-of-order"
  | "gap"
  | "phantom"
  | "failed-append-visible"
  | "wrong-lsn"
  | "duplicate"
  | "divergent"
  | "lost"
  | "stale-tail";

export interface LogAnomaly {
  readonly kind: LogAnomalyKind;
  readonly detail: string;
  readonly opIds: readonly number[];
}

export interface LogResult {
  readonly valid: boolean;
  readonly anomalies: readonly LogAnomaly[];
  readonly appends: number;
  readonly acknowledged: number;
  readonly reads: number;
  readonly finalReads: number;
}

const MAX_ANOMALIES = 200;

function inGap(lsn: number, gaps: readonly TrimGap[]): boolean {
  return gaps.some((g) => lsn >= g.from && lsn <= g.to);
}

export interface LogCheckOptions {
  /** Records this history appended; others (another writer of the same log) count only for order and contiguity. */
  readonly isOurs?: (payload: string) => boolean;
}

export function checkLog(ops: readonly Operation[], options: LogCheckOptions = {}): LogResult {
  const isOurs = options.isOurs ?? (() => true);
  const anomalies: LogAnomaly[] = [];
  const report = (kind: LogAnomalyKind, detail: string, opIds: number[]): void => {
    if (anomalies.length < MAX_ANOMALIES) anomalies.push({ kind, detail, opIds });
  };
  const appends = ops.filter((o) => o.f === "append");
  const reads = ops.filter((o) => o.f === "read" && o.status === "ok");

  const appendsByPayload = new Map<string, Operation[]>();
  for (const a of appends) {
    const p = (a.input as { payload: string }).payload;
    let list = appendsByPayload.get(p);
    if (list === undefined) appendsByPayload.set(p, (list = []));
    list.push(a);
  }
  const acked = appends.filter((a) => a.status === "ok");
  const lsnOf = (a: Operation): number => (a.output as { lsn: number }).lsn;

  // 1. Acknowledged LSNs are unique.
  const ackByLsn = new Map<number, Operation>();
  for (const a of acked) {
    const other = ackByLsn.get(lsnOf(a));
    if (other !== undefined) report("duplicate-lsn", `appends #${other.id} and #${a.id} were both acknowledged at LSN ${lsnOf(a)}`, [other.id, a.id]);
    else ackByLsn.set(lsnOf(a), a);
  }

  // 2. Real-time order: sort by completion; any append invoked after an earlier one completed must
  //    have a higher LSN than the highest LSN acknowledged by then.
  const byRet = [...acked].sort((a, b) => a.ret - b.ret);
  const byCall = [...acked].sort((a, b) => a.call - b.call);
  let j = 0;
  let maxDone: Operation | undefined;
  for (const b of byCall) {
    while (j < byRet.length && byRet[j]!.ret < b.call) {
      const done = byRet[j++]!;
      if (maxDone === undefined || lsnOf(done) > lsnOf(maxDone)) maxDone = done;
    }
    if (maxDone !== undefined && lsnOf(b) <= lsnOf(maxDone)) {
      report("ack-order", `append #${b.id} (LSN ${lsnOf(b)}) was invoked after append #${maxDone.id} (LSN ${lsnOf(maxDone)}) was acknowledged`, [maxDone.id, b.id]);
    }
  }

  // The acknowledged append with the highest LSN among those acknowledged strictly before `t`.
  const rets = byRet.map((a) => a.ret);
  const prefixMax: Operation[] = [];
  for (const a of byRet) prefixMax.push(prefixMax.length === 0 || lsnOf(a) > lsnOf(prefixMax.at(-1)!) ? a : prefixMax.at(-1)!);
  const highestAckedBefore = (t: number): Operation | undefined => {
    const n = partitionPoint(rets.length, (i) => rets[i]! < t);
    return n === 0 ? undefined : prefixMax[n - 1];
  };

  // 3. Each read on its own.
  const payloadAt = new Map<number, { payload: string; readId: number }>();
  const lsnOfPayload = new Map<string, { lsn: number; readId: number }>();
  for (const r of reads) {
    const input = r.input as LogReadInput;
    const out = r.output as LogReadOutput;
    const gaps = out.trimGaps ?? [];
    let expected = input.from;
    const inRead = new Set<string>();
    for (const rec of out.records) {
      if (rec.lsn < expected) {
        report("out-of-order", `read #${r.id} returned LSN ${rec.lsn} after LSN ${expected - 1}`, [r.id]);
      } else {
        for (let l = expected; l < rec.lsn; l++) {
          if (!inGap(l, gaps)) {
            report("gap", `read #${r.id} skipped LSN ${l} (records ${expected - 1} → ${rec.lsn}) without a trim gap`, [r.id]);
            break;
          }
        }
        expected = rec.lsn + 1;
      }
      const prior = payloadAt.get(rec.lsn);
      if (prior !== undefined && prior.payload !== rec.payload) {
        report("divergent", `LSN ${rec.lsn} holds ${prior.payload} in read #${prior.readId} but ${rec.payload} in read #${r.id}`, [prior.readId, r.id]);
      } else if (prior === undefined) payloadAt.set(rec.lsn, { payload: rec.payload, readId: r.id });
      if (!isOurs(rec.payload)) continue;
      if (inRead.has(rec.payload)) report("duplicate", `read #${r.id} returned payload ${rec.payload} twice`, [r.id]);
      inRead.add(rec.payload);

      // The appends of this payload invoked before the read returned (no array per record: a long
      // run reads millions of records).
      let first: Operation | undefined;
      let ack: Operation | undefined;
      let allFailed = true;
      for (const a of appendsByPayload.get(rec.payload) ?? []) {
        if (a.call > r.ret) continue;
        first ??= a;
        if (a.status !== "fail") allFailed = false;
        if (a.status === "ok") ack ??= a;
      }
      if (first === undefined) {
        report("phantom", `read #${r.id} returned ${rec.payload} at LSN ${rec.lsn}, which no append invoked before the read carried`, [r.id]);
      } else if (allFailed) {
        report("failed-append-visible", `read #${r.id} returned ${rec.payload}, whose append #${first.id} failed definitely`, [r.id, first.id]);
      } else {
        if (ack !== undefined && lsnOf(ack) !== rec.lsn) {
          report("wrong-lsn", `read #${r.id} returned ${rec.payload} at LSN ${rec.lsn}, but append #${ack.id} was acknowledged at LSN ${lsnOf(ack)}`, [r.id, ack.id]);
        }
      }
      const at = lsnOfPayload.get(rec.payload);
      if (at !== undefined && at.lsn !== rec.lsn) {
        report("duplicate", `payload ${rec.payload} is at LSN ${at.lsn} in read #${at.readId} and at LSN ${rec.lsn} in read #${r.id}`, [at.readId, r.id]);
      } else if (at === undefined) lsnOfPayload.set(rec.payload, { lsn: rec.lsn, readId: r.id });
    }
    // A read invoked after an append was acknowledged must not report a tail at or below its LSN:
    // the highest LSN acknowledged before the read began (a prefix maximum over acknowledgements in
    // completion order, found by binary search) is below the tail.
    if (out.tail !== undefined) {
      const a = highestAckedBefore(r.call);
      if (a !== undefined && lsnOf(a) >= out.tail) {
        report("stale-tail", `read #${r.id} reports tail ${out.tail}, but append #${a.id} was acknowledged at LSN ${lsnOf(a)} before the read`, [a.id, r.id]);
      }
    }
  }

  // 4. Final full reads hold every acknowledged append exactly once, at its LSN.
  const finals = reads.filter((r) => (r.input as LogReadInput).final === true);
  for (const f of finals) {
    const out = f.output as LogReadOutput;
    const gaps = out.trimGaps ?? [];
    const byLsn = new Map<number, string>();
    for (const rec of out.records) byLsn.set(rec.lsn, rec.payload);
    let lost = 0;
    for (const a of acked) {
      if (a.ret > f.call) continue; // acknowledged only after the final read began
      const p = (a.input as { payload: string }).payload;
      if (inGap(lsnOf(a), gaps)) continue;
      if (byLsn.get(lsnOf(a)) !== p) {
        if (lost++ < 10) report("lost", `final read #${f.id} lacks append #${a.id} (${p}) at LSN ${lsnOf(a)}`, [a.id, f.id]);
      }
    }
  }

  return {
    valid: anomalies.length === 0,
    anomalies,
    appends: appends.length,
    acknowledged: acked.length,
    reads: reads.length,
    finalReads: finals.length,
  };
}
