// The metadata index of snapshots (DESIGN §4's `snapshots/<partition>`): the newest published
// snapshot of a partition and the oldest one retention kept, which the trim policy reads as the
// partition's archived LSN. Invariant: it only moves forward (by CAS on its version).
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { MetadataApi } from "../metadata/api.ts";
import { DOES_NOT_EXIST, matchesVersion } from "../metadata/kv.ts";
import { isCairnError } from "../observability/errors.ts";

export const SNAPSHOT_INDEX_PREFIX = "snapshots/";

export function snapshotIndexKey(partition: number): string {
  return `${SNAPSHOT_INDEX_PREFIX}${partition}`;
}

export const SnapshotIndex = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  latestLsn: Type.Integer({ minimum: 0 }),
  latestId: Type.String(),
  oldestRetainedLsn: Type.Integer({ minimum: 0, description: "What the repository holds from: logs may be trimmed up to it." }),
  updatedAtMs: Type.Integer({ minimum: 0 }),
});
export type SnapshotIndex = Static<typeof SnapshotIndex>;

/** The partition's index entry, undefined when none was written (or it is not one of ours). */
export async function readSnapshotIndex(api: MetadataApi, partition: number, consistency: "stale" | "linearizable" = "linearizable"): Promise<SnapshotIndex | undefined> {
  const v = await api.get(snapshotIndexKey(partition), { consistency });
  return v !== undefined && Value.Check(SnapshotIndex, v.value) ? v.value : undefined;
}

/**
 * Moves the index forward to `next` (only if its latestLsn is above the stored one; equal LSNs
 * refresh the retained bound when it grew). Retries a lost CAS race; returns what the key holds.
 */
export async function advanceSnapshotIndex(api: MetadataApi, next: SnapshotIndex, attempts = 8): Promise<SnapshotIndex> {
  for (let i = 0; ; i++) {
    const current = await api.get(snapshotIndexKey(next.partition), { consistency: "linearizable" });
    const prev = current !== undefined && Value.Check(SnapshotIndex, current.value) ? current.value : undefined;
    if (prev !== undefined && (prev.latestLsn > next.latestLsn || (prev.latestLsn === next.latestLsn && prev.oldestRetainedLsn >= next.oldestRetainedLsn))) return prev;
    try {
      await api.put(snapshotIndexKey(next.partition), next, current === undefined ? DOES_NOT_EXIST : matchesVersion(current.version));
      return next;
    } catch (e) {
      if (i + 1 >= attempts || !(isCairnError(e, "METADATA_VERSION_MISMATCH") || isCairnError(e, "METADATA_EXISTS"))) throw e;
    }
  }
}
