// The log-server role on the peer fabric: one handler per log-server RPC, each decoding the wire
// request into the domain type, asking the record store and answering with the store's answer as
// is (branded numbers are numbers on the wire). The store's CairnErrors (closed, unavailable) travel
// to the caller with their codes; a request whose caller gave up is not waited for (waitForTail).
import { defineRpc, type FabricServer } from "../net/index.ts";
import type { LogServerApi } from "./protocol.ts";
import {
  LOGSERVER_RPC_SPECS,
  decodeGetDigestRequest,
  decodeGetLogletInfoRequest,
  decodeGetRecordsRequest,
  decodeSealRequest,
  decodeStoreRequest,
  decodeTrimRequest,
  decodeWaitForTailRequest,
  toWire,
} from "./rpc.ts";

/** The log-server RPC definitions, shared by handlers and callers (defineRpc once per method). */
export const LOGSERVER_RPCS = {
  store: defineRpc(LOGSERVER_RPC_SPECS.store),
  seal: defineRpc(LOGSERVER_RPC_SPECS.seal),
  getLogletInfo: defineRpc(LOGSERVER_RPC_SPECS.getLogletInfo),
  getRecords: defineRpc(LOGSERVER_RPC_SPECS.getRecords),
  trim: defineRpc(LOGSERVER_RPC_SPECS.trim),
  waitForTail: defineRpc(LOGSERVER_RPC_SPECS.waitForTail),
  getDigest: defineRpc(LOGSERVER_RPC_SPECS.getDigest),
} as const;

/** Serves `server` (the node's record store) to peers. */
export function registerLogServerRpcs(fabric: FabricServer, server: LogServerApi): void {
  const r = LOGSERVER_RPCS;
  fabric
    .register(r.store, async (w) => toWire(await server.store(decodeStoreRequest(w))))
    .register(r.seal, async (w) => toWire(await server.seal(decodeSealRequest(w))))
    .register(r.getLogletInfo, async (w) => toWire(await server.getLogletInfo(decodeGetLogletInfoRequest(w))))
    .register(r.getRecords, async (w) => toWire(await server.getRecords(decodeGetRecordsRequest(w))))
    .register(r.trim, async (w) => toWire(await server.trim(decodeTrimRequest(w))))
    .register(r.waitForTail, async (w, ctx) => toWire(await server.waitForTail(decodeWaitForTailRequest(w), ctx.deadline)))
    .register(r.getDigest, async (w) => toWire(await server.getDigest(decodeGetDigestRequest(w))));
}
