// LogServerTransport over the peer fabric: each log-server RPC goes to the node's fabric address
// (looked up per call, since addresses change when nodes restart) with the driver's AbortSignal as
// its deadline. Calls to this node's own log-server skip the network. Answers are validated by the
// RPC definition and branded by `decodeLogServerResponse`.
import type { FabricClient } from "../net/index.ts";
import { CairnError } from "../observability/errors.ts";
import type { LogServerApi, LogServerRpcName, LogServerRpcs } from "../logserver/protocol.ts";
import { decodeLogServerResponse, toWire } from "../logserver/rpc.ts";
import { LOGSERVER_RPCS } from "../logserver/service.ts";
import type { NodeId } from "../ids/index.ts";
import { withTimeout, type LogServerTransport } from "./replicated/transport.ts";

export interface FabricTransportConfig {
  readonly client: FabricClient;
  /** The fabric address (`host:port`) of a node, or undefined when it is not known. */
  readonly addressOf: (node: NodeId) => string | undefined;
  /** This node and its record store, when it runs the log-server role. */
  readonly self?: () => { id: NodeId | undefined; server: LogServerApi | undefined };
  /** Budget of a call when the caller's signal carries none shorter (waitForTail waits long). */
  readonly maxCallMs?: number;
}

export function fabricLogServerTransport(config: FabricTransportConfig): LogServerTransport {
  const maxCallMs = config.maxCallMs ?? 60_000;
  const send = <K extends LogServerRpcName>(rpc: K) =>
    async (to: NodeId, request: LogServerRpcs[K]["request"], signal: AbortSignal, timeoutMs?: number): Promise<LogServerRpcs[K]["response"]> => {
      signal.throwIfAborted();
      const self = config.self?.();
      if (self?.server !== undefined && self.id === to) {
        const server = self.server;
        // Same dispatch as the fabric handler (logserver/service.ts), without the network.
        switch (rpc) {
          case "waitForTail":
            return (await server.waitForTail(request as LogServerRpcs["waitForTail"]["request"], withTimeout(signal, timeoutMs))) as LogServerRpcs[K]["response"];
          default: {
            const method = server[rpc] as (r: unknown) => Promise<LogServerRpcs[K]["response"]>;
            return await method.call(server, request);
          }
        }
      }
      const address = config.addressOf(to);
      if (address === undefined) throw new CairnError("NET_UNREACHABLE", `no fabric address known for log-server ${to}`, { node: to });
      const definition = LOGSERVER_RPCS[rpc];
      // The definition's request type is the wire form of this RPC's domain request.
      const wire = await config.client.call(address, definition as never, toWire(request) as never, { signal, deadlineMs: Math.min(maxCallMs, timeoutMs ?? maxCallMs) });
      const decode = decodeLogServerResponse[rpc] as (w: unknown) => LogServerRpcs[K]["response"];
      return decode(wire);
    };
  return {
    store: send("store"),
    seal: send("seal"),
    getLogletInfo: send("getLogletInfo"),
    getRecords: send("getRecords"),
    trim: send("trim"),
    waitForTail: send("waitForTail"),
    getDigest: send("getDigest"),
  };
}
