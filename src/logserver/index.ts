// Public surface of the log-server role: the record store, the protocol it answers, its pure
// acceptance rules (shared with the simulator) and the wire schemas for the peer fabric.
export * from "./protocol.ts";
export { LogStore, LOG_STORE_DEFAULTS, type LogStoreOptions, type LogStoreStats } from "./store.ts";
export {
  EMPTY_LOGLET_STATE,
  MAX_STORE_RECORDS,
  applySeal,
  applyTrim,
  checkState,
  decideStore,
  tailReached,
  type LogletState,
  type ServerWriteMode,
  type StoreDecision,
} from "./rules.ts";
export * from "./rpc.ts";
export { LOGSERVER_RPCS, registerLogServerRpcs } from "./service.ts";
export { LogServerSection, logStoreOptions, type LogServerConfig } from "./config.ts";
export { LogServerRole, LOG_STORE_FILE } from "./role.ts";
