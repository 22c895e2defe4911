// The log-server protocol as domain types: what a sequencer, a sealer or a reader asks a log-server
// and what it answers. The SQLite store, the simulator's in-memory server and (later) the fabric
// handlers all implement `LogServerApi`; `rpc.ts` has the wire schemas for the same messages.
//
// Every answer carries the server's view of the loglet (local tail, sealed, known global tail) so a
// caller learns it without a separate round trip (Restate piggybacks the same header).
import type { GenerationalNodeId, LogletId, LogletOffset } from "../ids/index.ts";

/**
 * How a store ended:
 * - `stored`: durable (fsynced unless the store runs with sync off);
 * - `sealed`: the loglet is sealed here, nothing was written;
 * - `fenced`: this server accepted another sequencer for the loglet, nothing was written;
 * - `malformed`: the request breaks the protocol (empty batch, offset 0, beyond the loglet limit);
 * - `disabled`: this server does not accept normal stores (write failure, or it lost data and only
 *   takes repair stores). Try another server.
 */
export type StoreStatus = "stored" | "sealed" | "fenced" | "malformed" | "disabled";

/** The server's view of a loglet, carried in most answers. */
export interface LogletTailHeader {
  /** One past the highest offset this server holds (see README: high-water mark, not a prefix). */
  readonly localTail: LogletOffset;
  readonly sealed: boolean;
  /** The highest committed tail a sequencer told this server about (every offset below is committed). */
  readonly knownGlobalTail: LogletOffset;
}

export interface StoreRequest {
  readonly loglet: LogletId;
  readonly sequencer: GenerationalNodeId;
  readonly firstOffset: LogletOffset;
  readonly payloads: readonly Uint8Array[];
  /** The sender's committed tail: every offset below it is committed. */
  readonly knownGlobalTail: LogletOffset;
  /** A repair store (tail repair after a seal): allowed into sealed loglets and into servers that lost data. */
  readonly repair?: boolean;
}

export interface StoreResponse extends LogletTailHeader {
  readonly status: StoreStatus;
}

export interface SealRequest {
  readonly loglet: LogletId;
}

export interface SealResponse extends LogletTailHeader {
  /** False when this server lost data it once held: its local tail and digests are not evidence. */
  readonly authoritative: boolean;
}

export interface GetLogletInfoRequest {
  readonly loglet: LogletId;
}

export interface LogletInfo extends LogletTailHeader {
  /** Last trimmed offset (inclusive); 0 = never trimmed. */
  readonly trimPoint: LogletOffset;
  /** The sequencer this server accepted (the first one that stored), if any. */
  readonly sequencer: GenerationalNodeId | null;
  readonly authoritative: boolean;
}

export interface GetRecordsRequest {
  readonly loglet: LogletId;
  readonly from: LogletOffset;
  /** Inclusive; clipped to the local tail − 1. */
  readonly to: LogletOffset;
  /** Stop adding records once this many payload bytes are in the answer (at least one record is returned). */
  readonly byteBudget: number;
}

export type ReadEntry =
  | { readonly kind: "data"; readonly offset: LogletOffset; readonly payload: Uint8Array }
  /** Offsets `[from, to]` were trimmed: the reader skips them knowingly. */
  | { readonly kind: "trim-gap"; readonly from: LogletOffset; readonly to: LogletOffset };

export interface GetRecordsResponse extends LogletTailHeader {
  /** In offset order. Offsets missing between entries are holes: this server lacks them. */
  readonly entries: readonly ReadEntry[];
  /** Where the next read should start (one past the last offset this answer covers). */
  readonly nextOffset: LogletOffset;
}

export interface TrimRequest {
  readonly loglet: LogletId;
  /** Inclusive; clipped to what this server may trim (below max(local tail, known global tail)). */
  readonly upTo: LogletOffset;
}

export interface TrimResponse {
  readonly trimPoint: LogletOffset;
}

export interface WaitForTailRequest {
  readonly loglet: LogletId;
  /** Resolve once the local tail is at least this, or the loglet is sealed. */
  readonly offset: LogletOffset;
}

export interface WaitForTailResponse {
  readonly localTail: LogletOffset;
  readonly sealed: boolean;
}

export interface GetDigestRequest {
  readonly loglet: LogletId;
  readonly from: LogletOffset;
  /** Inclusive. */
  readonly to: LogletOffset;
}

export interface DigestEntry {
  readonly from: LogletOffset;
  readonly to: LogletOffset;
  readonly status: "exists" | "trimmed";
}

export interface GetDigestResponse extends LogletTailHeader {
  /** Disjoint ranges in offset order; offsets in none of them are absent on this server. */
  readonly entries: readonly DigestEntry[];
  /** One past the last offset this answer covers; `< to + 1` means ask again from here. */
  readonly nextOffset: LogletOffset;
  readonly authoritative: boolean;
}

/** What a log-server answers. Implemented by the SQLite store, the simulator and the fabric client. */
export interface LogServerApi {
  store(request: StoreRequest): Promise<StoreResponse>;
  seal(request: SealRequest): Promise<SealResponse>;
  getLogletInfo(request: GetLogletInfoRequest): Promise<LogletInfo>;
  getRecords(request: GetRecordsRequest): Promise<GetRecordsResponse>;
  trim(request: TrimRequest): Promise<TrimResponse>;
  waitForTail(request: WaitForTailRequest, signal?: AbortSignal): Promise<WaitForTailResponse>;
  getDigest(request: GetDigestRequest): Promise<GetDigestResponse>;
}

/** Request and response types by RPC name (the cores emit requests tagged with these names). */
export interface LogServerRpcs {
  store: { request: StoreRequest; response: StoreResponse };
  seal: { request: SealRequest; response: SealResponse };
  getLogletInfo: { request: GetLogletInfoRequest; response: LogletInfo };
  getRecords: { request: GetRecordsRequest; response: GetRecordsResponse };
  trim: { request: TrimRequest; response: TrimResponse };
  waitForTail: { request: WaitForTailRequest; response: WaitForTailResponse };
  getDigest: { request: GetDigestRequest; response: GetDigestResponse };
}

export type LogServerRpcName = keyof LogServerRpcs;
