// Public surface of the Raft core. Nothing outside src/raft reaches into its other modules.
//
// Usage (a driver, e.g. the metadata server):
//   const storage = new SqliteRaftStorage(...)            // implements RaftStorage (or MemoryStorage)
//   const node = new RaftNode({ config: { id }, storage, random })
//   on timer:    node.tick()
//   on message:  node.step(decodeMessage(bytes))
//   on request:  node.propose(data) / node.readIndex(ctx) / node.proposeConfChange(change)
//   loop:        if (node.hasReady()) { const rd = node.ready();
//                  persist rd.snapshot, rd.entries, rd.hardState (fsync if rd.mustSync);
//                  send rd.messages (encodeMessage); apply rd.snapshot then rd.committedEntries;
//                  serve rd.readStates once applied >= index; node.advance(); }
// A new cluster's founders start from bootstrapPersistedState(voters); a joining node from
// joiningPersistedState() and is added by the leader with addLearner, then addVoter.

export { RaftInvariantError, invariant } from "./assert.ts";
export { bootstrapPersistedState, joiningPersistedState } from "./bootstrap.ts";
export {
  RaftDecodeError,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  decodeSnapshotMetadata,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  encodeSnapshotMetadata,
} from "./codec.ts";
export { RAFT_CONFIG_DEFAULTS, resolveConfig } from "./config.ts";
export type { RaftConfig, RaftConfigInput, UnsafeTestingFaults } from "./config.ts";
export { applyConfChange, describeConfState, validateConfChange } from "./confchange.ts";
export type { ConfChangeRefusal } from "./confchange.ts";
export { MESSAGE_TYPES } from "./messages.ts";
export type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  MessageType,
  ReadIndexMessage,
  ReadIndexResponseMessage,
  SnapshotMessage,
  TimeoutNowMessage,
  TransferLeaderMessage,
  VoteMessage,
  VoteResponseMessage,
} from "./messages.ts";
export { RaftNode } from "./node.ts";
export type { FromPersistedStateOptions, ProgressStatus, RaftNodeOptions, RaftStatus, Ready } from "./node.ts";
export { Xoshiro128, randomBelow } from "./random.ts";
export type { Random } from "./random.ts";
export type {
  ConfChangeProposalRefusal,
  ConfChangeResult,
  ProposeRefusal,
  ProposeResult,
  ReadIndexRefusal,
  ReadIndexResult,
  TransferRefusal,
  TransferResult,
} from "./results.ts";
export { MemoryStorage, RaftStorageError } from "./storage.ts";
export type { InitialState, PersistedState, RaftStorage, RaftStorageErrorCode } from "./storage.ts";
export {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  ENTRY_OVERHEAD_BYTES,
  NO_NODE,
  asIndex,
  asRaftId,
  asTerm,
  confStateEqual,
  entrySizeBytes,
  hardStateEqual,
} from "./types.ts";
export type {
  ConfChange,
  ConfChangeEntry,
  ConfChangeType,
  ConfState,
  Entry,
  HardState,
  Index,
  RaftId,
  NormalEntry,
  ReadState,
  Role,
  Snapshot,
  SnapshotMetadata,
  SoftState,
  Term,
} from "./types.ts";
