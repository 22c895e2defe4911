// The identifiers every role shares, on the ground floor of the tree: node ids (one type), log, loglet
// and partition ids, LSNs and loglet offsets, roles and lifecycle-state names. Imports only
// observability (for invariant()) and TypeBox; every other module may import it.
export * from "./log.ts";
export * from "./node.ts";
export * from "./partition.ts";
export * from "./roles.ts";
export * from "./states.ts";
export * from "./string-enum.ts";
