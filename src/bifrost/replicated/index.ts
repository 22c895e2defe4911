// Public surface of the replicated loglet: parameters and quorum math, the pure cores (sequencer,
// seal, tail recovery, reader), the transport they need and the drivers that run them.
export * from "./params.ts";
export * from "./random.ts";
export * from "./requests.ts";
export * from "./sequencer.ts";
export * from "./seal.ts";
export * from "./recovery.ts";
export * from "./reader.ts";
export * from "./copy.ts";
export * from "./transport.ts";
export * from "./driver.ts";
export { NodeRetries, PendingRequests, RETRY_DEFAULTS, type RetryOptions } from "./tracking.ts";
