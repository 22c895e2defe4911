// Public surface of bifrost (the logs layer) for the modules above it (the node, the admin API and
// the cluster controller): the Bifrost facade and its node role, segment chains, placement, node
// liveness, and the replicated loglet. Ids and positions come from src/ids/.
export { Bifrost, bifrostOptions, type BifrostOptions, type LogReadEntry, type LogReadResult, type LogTail, type Placer, type ReconfigureRequest } from "./bifrost.ts";
export { BifrostSection, type BifrostConfig } from "./config.ts";
export { BifrostRole, type BifrostRoleDeps } from "./role.ts";
export * from "./chain.ts";
export { desiredNodesetSize, type Candidate } from "./placement.ts";
export {
  ANSWERED,
  LivenessTracker,
  NodeDirectory,
  REFUSED,
  SILENT,
  connectionRefused,
  type KnownNode,
  type Liveness,
  type ProbeResult,
} from "./nodes.ts";
export { BIFROST_RPCS, type BifrostPeers } from "./rpc.ts";
export * from "./replicated/index.ts";
export { planRereplication, liveRecords, survivingCopies, type RereplicationInput, type RereplicationPlan, type SegmentCopyPlan, type SegmentShortfall } from "./rereplication-plan.ts";
export type { RereplicationProgress } from "./rereplicator.ts";
