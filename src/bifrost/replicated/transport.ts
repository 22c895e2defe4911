// How drivers reach log-servers: one method per log-server RPC, each with a destination node and an
// AbortSignal that carries the deadline. The peer fabric implements it with `defineRpc` over
// `LOGSERVER_RPC_SPECS` (logserver/rpc.ts); tests use `localTransport` over in-process stores; the
// simulator does not need it (it routes the cores' requests through its fake network itself).
import { CairnError } from "../../observability/errors.ts";
import type { LogServerApi, LogServerRpcName, LogServerRpcs } from "../../logserver/protocol.ts";
import type { NodeId } from "../types.ts";
import type { CoreRequest } from "./requests.ts";

export type LogServerTransport = {
  readonly [K in LogServerRpcName]: (
    to: NodeId,
    request: LogServerRpcs[K]["request"],
    signal: AbortSignal,
  ) => Promise<LogServerRpcs[K]["response"]>;
};

/** Sends a core's request through a transport. */
export function sendCoreRequest(transport: LogServerTransport, r: CoreRequest, signal: AbortSignal): Promise<unknown> {
  // The mapped type cannot correlate `r.rpc` with `r.request`; CoreRequest guarantees they match.
  const method = transport[r.rpc] as (to: NodeId, request: unknown, signal: AbortSignal) => Promise<unknown>;
  return method(r.to, r.request, signal);
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
    waitForTail: (to, request, signal) => guard(signal, () => server(to).waitForTail(request, signal)),
    getDigest: (to, request, signal) => guard(signal, () => server(to).getDigest(request)),
  };
}
