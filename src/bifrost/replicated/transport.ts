// How drivers reach log-servers: one method per log-server RPC, each with a destination node, an
// AbortSignal that cancels it and a time budget in ms (a timer per call would be wasted: the fabric
// call keeps its own deadline). The peer fabric implements it with `defineRpc` over
// `LOGSERVER_RPC_SPECS` (logserver/rpc.ts); tests use `localTransport` over in-process stores; the
// simulator does not need it (it routes the cores' requests through its fake network itself).
import { CairnError } from "../../observability/errors.ts";
import type { LogServerApi, LogServerRpcName, LogServerRpcs } from "../../logserver/protocol.ts";
import type { NodeId } from "../../ids/index.ts";
import type { CoreRequest } from "./requests.ts";

export type LogServerTransport = {
  readonly [K in LogServerRpcName]: (
    to: NodeId,
    request: LogServerRpcs[K]["request"],
    signal: AbortSignal,
    timeoutMs?: number,
  ) => Promise<LogServerRpcs[K]["response"]>;
};

/** Sends a core's request through a transport. */
export function sendCoreRequest(transport: LogServerTransport, r: CoreRequest, signal: AbortSignal, timeoutMs: number): Promise<unknown> {
  // The mapped type cannot correlate `r.rpc` with `r.request`; CoreRequest guarantees they match.
  const method = transport[r.rpc] as (to: NodeId, request: unknown, signal: AbortSignal, timeoutMs: number) => Promise<unknown>;
  return method(r.to, r.request, signal, timeoutMs);
}

/** `signal`, also aborted after `timeoutMs` when given (for calls that wait on purpose, like waitForTail). */
export function withTimeout(signal: AbortSignal, timeoutMs: number | undefined): AbortSignal {
  return timeoutMs === undefined ? signal : AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
}

/** A transport to log-servers living in this process (tests, single-node setups). */
export function localTransport(servers: ReadonlyMap<NodeId, LogServerApi>): LogServerTransport {
  const server = (to: NodeId): LogServerApi => {
    const s = servers.get(to);
    if (!s) throw new CairnError("NET_UNREACHABLE", `no log-server ${to} in this process`, { node: to });
    return s;
  };
  const guard = async <T>(signal: AbortSignal, run: () => Promise<T>): Promise<T> => {
    signal.throwIfAborted();
    return run();
  };
  return {
    store: (to, request, signal) => guard(signal, () => server(to).store(request)),
    seal: (to, request, signal) => guard(signal, () => server(to).seal(request)),
    getLogletInfo: (to, request, signal) => guard(signal, () => server(to).getLogletInfo(request)),
    getRecords: (to, request, signal) => guard(signal, () => server(to).getRecords(request)),
    trim: (to, request, signal) => guard(signal, () => server(to).trim(request)),
    waitForTail: (to, request, signal, timeoutMs) => guard(signal, () => server(to).waitForTail(request, withTimeout(signal, timeoutMs))),
    getDigest: (to, request, signal) => guard(signal, () => server(to).getDigest(request)),
  };
}
