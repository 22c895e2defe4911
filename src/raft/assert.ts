// Invariant checks for the Raft core. A failed invariant is a bug in the core or in its driver, never an
// expected condition: it throws `RaftInvariantError` and the process should crash. Expected failures
// (not leader, pending change, ...) are typed results instead, see `results.ts`.

export class RaftInvariantError extends Error {
  override readonly name = "RaftInvariantError";
}

/** Throws `RaftInvariantError` when `condition` is false. Cheap: keep it on in production. */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === "string" ? message : message());
  }
}

/** Marks a branch the type system proves unreachable. */
export function unreachable(value: never, what: string): never {
  throw new RaftInvariantError(`unreachable ${what}: ${JSON.stringify(value)}`);
}
