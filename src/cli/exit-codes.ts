// Exit codes of every cairn command. Scripts rely on them: they never change meaning.
export const EXIT = {
  /** The command did what was asked. */
  OK: 0,
  /** Failed for a reason not listed below (a server-side error, an I/O error). */
  FAILURE: 1,
  /** Bad command line or configuration: nothing was attempted. */
  USAGE: 2,
  /** The node could not be reached (connection refused, timeout). */
  UNREACHABLE: 3,
  /** The cluster is not provisioned yet. */
  NOT_PROVISIONED: 4,
  /** The node refused the request (HTTP 4xx: validation, precondition, conflict). */
  REFUSED: 5,
  /** The node refused the admin token (missing or wrong). */
  UNAUTHORIZED: 6,
  /** The node belongs to another cluster than `--cluster` names. */
  WRONG_CLUSTER: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
