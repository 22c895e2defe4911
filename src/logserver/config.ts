// The `log-server` configuration section: how this node's record store writes (fsync or not) and the
// bounds of its group commit, reads and trims. config/schema.ts includes it; the node maps it onto
// LogStoreOptions with `logStoreOptions`.
import { Type, type Static } from "@sinclair/typebox";
import { LOG_STORE_DEFAULTS, type LogStoreOptions } from "./store.ts";

const Bound = (description: string, dflt: number) => Type.Integer({ description, default: dflt, minimum: 1, maximum: 2 ** 31 - 1 });

export const LogServerSection = Type.Object(
  {
    sync: Type.Boolean({
      description:
        "fsync every group commit before a store is acknowledged. false is for tests and development only: a crash of the machine can lose acknowledged records (the node logs a warning at start).",
      default: LOG_STORE_DEFAULTS.sync,
    }),
    "max-batch-records": Bound("Most records one group-commit transaction writes.", LOG_STORE_DEFAULTS.maxBatchRecords),
    "max-batch-bytes": Bound("Most payload bytes one group-commit transaction writes.", LOG_STORE_DEFAULTS.maxBatchBytes),
    "max-repair-batch-bytes": Bound(
      "Most payload bytes of repair stores (re-replication copies, tail repair) in one group-commit transaction: appends queued behind a bulk copy go into the next transaction instead of waiting for all of it.",
      LOG_STORE_DEFAULTS.maxRepairBatchBytes,
    ),
    "wal-checkpoint-pages": Bound(
      "WAL pages (8 KiB) after which a commit checkpoints the WAL into the store file (SQLite's wal_autocheckpoint). The checkpoint blocks the node's event loop: smaller means shorter, more frequent stalls for the same total work.",
      LOG_STORE_DEFAULTS.walCheckpointPages,
    ),
    "checkpoint-thread": Type.Boolean({
      description:
        "Run the store's WAL checkpoints on a worker thread with its own connection, off the event loop (a checkpoint inside a commit stalls every request on the node). false: one exclusive connection that checkpoints inside commits.",
      default: LOG_STORE_DEFAULTS.checkpointOffLoop,
    }),
    "max-read-records": Bound("Most records one get-records answer carries.", LOG_STORE_DEFAULTS.maxReadRecords),
    "max-digest-offsets": Bound("Most offsets one get-digest answer covers.", LOG_STORE_DEFAULTS.maxDigestOffsets),
    "trim-chunk-records": Bound("Records deleted per background trim transaction.", LOG_STORE_DEFAULTS.trimChunkRecords),
    "wal-size-limit-bytes": Bound("Size the SQLite WAL file is truncated to after checkpoints.", LOG_STORE_DEFAULTS.walSizeLimitBytes),
    "recovery-probe-initial-delay-ms": Bound(
      "After a failed write disabled the record store: delay before the first recovery probe (a test transaction and checkpoint, fsynced); doubled after each failed probe.",
      LOG_STORE_DEFAULTS.recoveryProbeInitialDelayMs,
    ),
    "recovery-probe-max-delay-ms": Bound("Longest delay between two recovery probes of a disabled record store.", LOG_STORE_DEFAULTS.recoveryProbeMaxDelayMs),
  },
  { additionalProperties: false, description: "The record store of the log-server role (one SQLite file in the data directory)." },
);

export type LogServerConfig = Static<typeof LogServerSection>;

/** The store options a `log-server` section stands for (path, registry and logger come from the node). */
export function logStoreOptions(c: LogServerConfig): Omit<LogStoreOptions, "path" | "registry" | "logger"> {
  return {
    sync: c.sync,
    maxBatchRecords: c["max-batch-records"],
    maxBatchBytes: c["max-batch-bytes"],
    maxRepairBatchBytes: c["max-repair-batch-bytes"],
    walCheckpointPages: c["wal-checkpoint-pages"],
    checkpointOffLoop: c["checkpoint-thread"],
    maxReadRecords: c["max-read-records"],
    maxDigestOffsets: c["max-digest-offsets"],
    trimChunkRecords: c["trim-chunk-records"],
    walSizeLimitBytes: c["wal-size-limit-bytes"],
    recoveryProbeInitialDelayMs: c["recovery-probe-initial-delay-ms"],
    recoveryProbeMaxDelayMs: Math.max(c["recovery-probe-max-delay-ms"], c["recovery-probe-initial-delay-ms"]),
  };
}
