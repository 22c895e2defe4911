// Wire schemas of the log-server RPCs (TypeBox), one request and one response per method, in the
// shape `defineRpc({service, method, request, response})` of the peer fabric takes. Wiring is
// mechanical: `defineRpc(LOGSERVER_RPC_SPECS.store)` on both sides, the handler calls
// `LogServerApi.store(decodeStoreRequest(wire))` and returns the answer as is (branded numbers are
// numbers on the wire). Payloads travel as binary `Type.Uint8Array()` fields.
//
// Invariant: every domain type in protocol.ts has exactly one schema here, and decoding brands
// values only after the schema has bounded them (ids by pattern, offsets by range).
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import {
  MAX_LOGLET_OFFSET,
  asLogletId,
  generationalNodeId,
  logletOffset,
  nodeId,
  type GenerationalNodeId,
  type LogId,
  type LogletId,
  type LogletOffset,
  type Lsn,
  type NodeId,
  type SegmentIndex,
} from "../ids/index.ts";
import type {
  GetDigestRequest,
  GetDigestResponse,
  GetLogletInfoRequest,
  GetRecordsRequest,
  GetRecordsResponse,
  LogletInfo,
  SealRequest,
  SealResponse,
  StoreRequest,
  StoreResponse,
  TrimRequest,
  TrimResponse,
  WaitForTailRequest,
  WaitForTailResponse,
} from "./protocol.ts";
import { MAX_STORE_RECORDS } from "./rules.ts";

export const LOGSERVER_SERVICE = "logserver";

const Offset = Type.Integer({ minimum: 0, maximum: MAX_LOGLET_OFFSET + 1 });
const LogletIdSchema = Type.String({ pattern: "^(0|[1-9][0-9]*)_(0|[1-9][0-9]*)$", maxLength: 24 });
const NodeIdSchema = Type.String({ pattern: "^N(0|[1-9][0-9]*)$", maxLength: 16 });
const GenerationalNodeIdSchema = Type.Object(
  { id: NodeIdSchema, generation: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);

const TailHeader = {
  localTail: Offset,
  sealed: Type.Boolean(),
  knownGlobalTail: Offset,
};

export const StoreRequestSchema = Type.Object(
  {
    loglet: LogletIdSchema,
    sequencer: GenerationalNodeIdSchema,
    firstOffset: Offset,
    payloads: Type.Array(Type.Uint8Array(), { minItems: 1, maxItems: MAX_STORE_RECORDS }),
    knownGlobalTail: Offset,
    repair: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const StoreResponseSchema = Type.Object({
  status: Type.Union([
    Type.Literal("stored"),
    Type.Literal("sealed"),
    Type.Literal("fenced"),
    Type.Literal("malformed"),
    Type.Literal("disabled"),
  ]),
  ...TailHeader,
});

export const SealRequestSchema = Type.Object({ loglet: LogletIdSchema }, { additionalProperties: false });
export const SealResponseSchema = Type.Object({ ...TailHeader, authoritative: Type.Boolean() });

export const GetLogletInfoRequestSchema = Type.Object({ loglet: LogletIdSchema }, { additionalProperties: false });
export const LogletInfoSchema = Type.Object({
  ...TailHeader,
  trimPoint: Offset,
  sequencer: Type.Union([GenerationalNodeIdSchema, Type.Null()]),
  authoritative: Type.Boolean(),
});

export const GetRecordsRequestSchema = Type.Object(
  { loglet: LogletIdSchema, from: Offset, to: Offset, byteBudget: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
export const ReadEntrySchema = Type.Union([
  Type.Object({ kind: Type.Literal("data"), offset: Offset, payload: Type.Uint8Array() }),
  Type.Object({ kind: Type.Literal("trim-gap"), from: Offset, to: Offset }),
]);
export const GetRecordsResponseSchema = Type.Object({
  ...TailHeader,
  entries: Type.Array(ReadEntrySchema),
  nextOffset: Offset,
});

export const TrimRequestSchema = Type.Object({ loglet: LogletIdSchema, upTo: Offset }, { additionalProperties: false });
export const TrimResponseSchema = Type.Object({ trimPoint: Offset });

export const WaitForTailRequestSchema = Type.Object({ loglet: LogletIdSchema, offset: Offset }, { additionalProperties: false });
export const WaitForTailResponseSchema = Type.Object({ localTail: Offset, sealed: Type.Boolean() });

export const GetDigestRequestSchema = Type.Object(
  { loglet: LogletIdSchema, from: Offset, to: Offset },
  { additionalProperties: false },
);
export const GetDigestResponseSchema = Type.Object({
  ...TailHeader,
  entries: Type.Array(
    Type.Object({ from: Offset, to: Offset, status: Type.Union([Type.Literal("exists"), Type.Literal("trimmed")]) }),
  ),
  nextOffset: Offset,
  authoritative: Type.Boolean(),
});

function rpc<Req extends TSchema, Res extends TSchema>(method: string, request: Req, response: Res) {
  return { service: LOGSERVER_SERVICE, method, request, response } as const;
}

/** One entry per RPC, ready for `defineRpc`. Method names follow the fabric's `^[a-z][a-z0-9-]*$`. */
export const LOGSERVER_RPC_SPECS = {
  store: rpc("store", StoreRequestSchema, StoreResponseSchema),
  seal: rpc("seal", SealRequestSchema, SealResponseSchema),
  getLogletInfo: rpc("get-loglet-info", GetLogletInfoRequestSchema, LogletInfoSchema),
  getRecords: rpc("get-records", GetRecordsRequestSchema, GetRecordsResponseSchema),
  trim: rpc("trim", TrimRequestSchema, TrimResponseSchema),
  waitForTail: rpc("wait-for-tail", WaitForTailRequestSchema, WaitForTailResponseSchema),
  getDigest: rpc("get-digest", GetDigestRequestSchema, GetDigestResponseSchema),
} as const;

// ---- domain → wire ------------------------------------------------------------------------------

/** The wire shape of a domain value: the same data without brands and readonly markers. */
export type Wire<T> = T extends LogletId | NodeId
  ? string
  : T extends LogletOffset | Lsn | LogId | SegmentIndex
    ? number
    : T extends Uint8Array
      ? T
      : T extends readonly (infer U)[]
        ? Wire<U>[]
        : T extends object
          ? { -readonly [K in keyof T]: Wire<T[K]> }
          : T;

/** Domain value → wire value for `encodeRequest`/`encodeResponse`. Type-level only: no copy. */
export function toWire<T>(value: T): Wire<T> {
  return value as Wire<T>;
}

// ---- wire → domain (after schema validation) --------------------------------------------------

function decodeSequencer(g: Static<typeof GenerationalNodeIdSchema>): GenerationalNodeId {
  return generationalNodeId(nodeId(g.id), g.generation);
}

export function decodeStoreRequest(w: Static<typeof StoreRequestSchema>): StoreRequest {
  return {
    loglet: asLogletId(w.loglet),
    sequencer: decodeSequencer(w.sequencer),
    firstOffset: logletOffset(w.firstOffset),
    payloads: w.payloads,
    knownGlobalTail: logletOffset(w.knownGlobalTail),
    ...(w.repair === undefined ? {} : { repair: w.repair }),
  };
}

export function decodeSealRequest(w: Static<typeof SealRequestSchema>): SealRequest {
  return { loglet: asLogletId(w.loglet) };
}

export function decodeGetLogletInfoRequest(w: Static<typeof GetLogletInfoRequestSchema>): GetLogletInfoRequest {
  return { loglet: asLogletId(w.loglet) };
}

export function decodeGetRecordsRequest(w: Static<typeof GetRecordsRequestSchema>): GetRecordsRequest {
  return { loglet: asLogletId(w.loglet), from: logletOffset(w.from), to: logletOffset(w.to), byteBudget: w.byteBudget };
}

export function decodeTrimRequest(w: Static<typeof TrimRequestSchema>): TrimRequest {
  return { loglet: asLogletId(w.loglet), upTo: logletOffset(w.upTo) };
}

export function decodeWaitForTailRequest(w: Static<typeof WaitForTailRequestSchema>): WaitForTailRequest {
  return { loglet: asLogletId(w.loglet), offset: logletOffset(w.offset) };
}

export function decodeGetDigestRequest(w: Static<typeof GetDigestRequestSchema>): GetDigestRequest {
  return { loglet: asLogletId(w.loglet), from: logletOffset(w.from), to: logletOffset(w.to) };
}

// ---- wire → domain, responses ------------------------------------------------------------------
// Responses hold only offsets, flags and payloads: once the schema has bounded every number the
// brands are a compile-time tag, so a checked cast is the whole conversion.

export const decodeLogServerResponse = {
  store: (w: Static<typeof StoreResponseSchema>) => w as unknown as StoreResponse,
  seal: (w: Static<typeof SealResponseSchema>) => w as unknown as SealResponse,
  getLogletInfo: (w: Static<typeof LogletInfoSchema>) => w as unknown as LogletInfo,
  getRecords: (w: Static<typeof GetRecordsResponseSchema>) => w as unknown as GetRecordsResponse,
  trim: (w: Static<typeof TrimResponseSchema>) => w as unknown as TrimResponse,
  waitForTail: (w: Static<typeof WaitForTailResponseSchema>) => w as unknown as WaitForTailResponse,
  getDigest: (w: Static<typeof GetDigestResponseSchema>) => w as unknown as GetDigestResponse,
} as const;
