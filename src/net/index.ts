// Public surface of the peer fabric (DESIGN §9): typed RPC definitions, the HTTP/2 server that serves
// them with fencing, and the client pool that calls peers with deadlines, heartbeats and reconnects.
export { defineRpc, type RpcDefinition, type RpcSpec } from "./rpc.ts";
export { encodeFrame, decodeFrame } from "./codec.ts";
export { FabricServer, type FabricServerConfig } from "./server.ts";
export { FabricClient, type FabricClientConfig, type CallOptions } from "./client.ts";
export type { PeerStatus } from "./peer.ts";
export type { RpcContext, RpcHandler, FabricLogger } from "./router.ts";
export type { BoundAddress } from "./transport.ts";
export { problemValueToError } from "./problem.ts";
export {
  HEADER_CLUSTER,
  HEADER_DEADLINE_MS,
  HEADER_SECRET,
  HEADER_FINGERPRINT,
  HEADER_GENERATION,
  HEADER_NODE,
  type ClusterIdentity,
  type PeerRef,
  type SenderIdentity,
} from "./fencing.ts";
export { DEFAULT_FABRIC_OPTIONS, configKeyOf, resolveFabricOptions, type FabricOptions, type ServerTransportKind } from "./options.ts";
