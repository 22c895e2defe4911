// An in-memory log-server for the loglet simulator: the same acceptance rules as the SQLite store
// (src/logserver/rules.ts) over Maps, applied synchronously. Durability (group commit, crash, data
// loss) is modelled by the simulator around it; this class is the durable state. A conformance
// test checks it answers like the SQLite store.
//
// Invariant checked on every store: a record, once written at an offset, is never written again
// with a different payload (offsets are immutable).
import {
  logletOffset,
  type LogletId,
  type LogletOffset,
} from "../../../src/ids/index.ts";
import {
  EMPTY_LOGLET_STATE,
  LOG_STORE_DEFAULTS,
  applySeal,
  applyTrim,
  decideStore,
  type DigestEntry,
  type GetDigestRequest,
  type GetDigestResponse,
  type GetLogletInfoRequest,
  type GetRecordsRequest,
  type GetRecordsResponse,
  type LogletInfo,
  type LogletState,
  type ReadEntry,
  type SealRequest,
  type SealResponse,
  type StoreRequest,
  type StoreResponse,
  type TrimRequest,
  type TrimResponse,
} from "../../../src/logserver/index.ts";
import { invariant } from "../../../src/observability/errors.ts";

interface Loglet {
  state: LogletState;
  readonly records: Map<number, Uint8Array>;
}

export class MemoryLogServer {
  private readonly loglets = new Map<LogletId, Loglet>();

  constructor(
    /** A server that lost its data: non-authoritative, takes only repair stores. */
    readonly dataLoss = false,
    private readonly maxReadRecords: number = LOG_STORE_DEFAULTS.maxReadRecords,
    private readonly maxDigestOffsets: number = LOG_STORE_DEFAULTS.maxDigestOffsets,
  ) {}

  private get(loglet: LogletId): Loglet {
    let l = this.loglets.get(loglet);
    if (!l) {
      l = { state: EMPTY_LOGLET_STATE, records: new Map() };
      this.loglets.set(loglet, l);
    }
    return l;
  }

  private peek(loglet: LogletId): Loglet {
    return this.loglets.get(loglet) ?? { state: EMPTY_LOGLET_STATE, records: new Map() };
  }

  store(request: StoreRequest): StoreResponse {
    const l = this.get(request.loglet);
    const d = decideStore(l.state, request, { acceptsNormalStores: !this.dataLoss });
    if (d.status === "stored") {
      l.state = d.state;
      if (d.write) {
        for (let o = d.write.from; o <= d.write.to; o++) {
          const payload = request.payloads[o - request.firstOffset]!;
          const existing = l.records.get(o);
          if (existing) {
            invariant(sameBytes(existing, payload), `offset ${o} of ${request.loglet} rewritten with a different payload`);
          } else {
            l.records.set(o, payload);
          }
        }
      }
    }
    return { status: d.status, ...header(l.state) };
  }

  seal(request: SealRequest): SealResponse {
    const l = this.get(request.loglet);
    l.state = applySeal(l.state);
    return { ...header(l.state), authoritative: !this.dataLoss };
  }

  trim(request: TrimRequest): TrimResponse {
    const l = this.get(request.loglet);
    l.state = applyTrim(l.state, request.upTo);
    for (const o of [...l.records.keys()]) if (o <= l.state.trimPoint) l.records.delete(o);
    return { trimPoint: l.state.trimPoint };
  }

  getLogletInfo(request: GetLogletInfoRequest): LogletInfo {
    const s = this.peek(request.loglet).state;
    return { ...header(s), trimPoint: s.trimPoint, sequencer: s.sequencer, authoritative: !this.dataLoss };
  }

  getRecords(request: GetRecordsRequest): GetRecordsResponse {
    const l = this.peek(request.loglet);
    const s = l.state;
    const from = Math.max(1, request.from);
    const to = Math.min(request.to, s.localTail - 1);
    const entries: ReadEntry[] = [];
    if (from > to) return { entries, nextOffset: logletOffset(from), ...header(s) };
    let cursor = from;
    if (cursor <= s.trimPoint) {
      const gapTo = Math.min(s.trimPoint, to);
      entries.push({ kind: "trim-gap", from: logletOffset(cursor), to: logletOffset(gapTo) });
      cursor = gapTo + 1;
    }
    let next = to + 1;
    let bytes = 0;
    let count = 0;
    for (let o = cursor; o <= to; o++) {
      const p = l.records.get(o);
      if (!p) continue;
      if (count > 0 && (bytes + p.byteLength > request.byteBudget || count >= this.maxReadRecords)) {
        next = o;
        break;
      }
      entries.push({ kind: "data", offset: logletOffset(o), payload: p });
      bytes += p.byteLength;
      count++;
    }
    return { entries, nextOffset: logletOffset(next), ...header(s) };
  }

  getDigest(request: GetDigestRequest): GetDigestResponse {
    const l = this.peek(request.loglet);
    const s = l.state;
    const from = Math.max(1, request.from);
    const coveredTo = Math.min(request.to, from + this.maxDigestOffsets - 1);
    const scanTo = Math.min(coveredTo, s.localTail - 1);
    const entries: DigestEntry[] = [];
    let cursor = from;
    if (cursor <= scanTo && cursor <= s.trimPoint) {
      const gapTo = Math.min(s.trimPoint, scanTo);
      entries.push({ from: logletOffset(cursor), to: logletOffset(gapTo), status: "trimmed" });
      cursor = gapTo + 1;
    }
    let runFrom = -1;
    for (let o = cursor; o <= scanTo + 1; o++) {
      const has = o <= scanTo && l.records.has(o);
      if (has && runFrom < 0) runFrom = o;
      if (!has && runFrom >= 0) {
        entries.push({ from: logletOffset(runFrom), to: logletOffset(o - 1), status: "exists" });
        runFrom = -1;
      }
    }
    return { entries, nextOffset: logletOffset(Math.max(from, coveredTo + 1)), authoritative: !this.dataLoss, ...header(s) };
  }

  /** What the simulator's checker inspects: the payload held at an offset, if any. */
  recordAt(loglet: LogletId, offset: number): Uint8Array | undefined {
    return this.loglets.get(loglet)?.records.get(offset);
  }

  stateOf(loglet: LogletId): LogletState {
    return this.peek(loglet).state;
  }
}

function header(s: LogletState): { localTail: LogletOffset; sealed: boolean; knownGlobalTail: LogletOffset } {
  return { localTail: s.localTail, sealed: s.sealed, knownGlobalTail: s.knownGlobalTail };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
