// Public surface of bifrost (the logs layer): the address model and the replicated loglet.
export * from "./types.ts";
export * from "./replicated/index.ts";
