// Public surface of bifrost (the logs layer): the replicated loglet (ids and positions: src/ids/).
export * from "./replicated/index.ts";
