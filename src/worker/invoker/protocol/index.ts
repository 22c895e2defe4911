// The Restate service-protocol client: message codec, framing, version choice and the attempt transport.
export { ProtocolError } from "./errors.ts";
export * from "./messages.ts";
export * from "./framing.ts";
export * from "./negotiate.ts";
export * from "./transport.ts";
