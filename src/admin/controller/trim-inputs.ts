// What the trim policy reads and remembers in the metadata store: each partition's archived index
// (`snapshots/<p>`, written by the snapshotter), the durable record that persisted-lsn trimmed logs
// (`trim/persisted-lsn-used`: it refuses a second worker's join until snapshots cover those trims),
// and the policy's state for every node's status (`trim/state`). Malformed values count as absent.
import { Type, type Static } from "@sinclair/typebox";
import { readSnapshotIndex, snapshotIndexKey, SnapshotIndex } from "../../snapshot/index.ts";
import type { Config } from "../../config/index.ts";
import { Value } from "@sinclair/typebox/value";
import { LOGS_KEY, parseLogsDocument, type LogsDocument } from "../../bifrost/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import { CairnError } from "../../observability/errors.ts";
import type { StatusItem } from "../status/cluster-state.ts";

/** The snapshotter's per-partition index (to be unified with the one src/snapshot/ exports). */
/** The snapshot index (`snapshots/<p>`, written by the snapshotter) read as the partition's archive. */
export const ArchivedIndex = SnapshotIndex;
export type ArchivedIndex = SnapshotIndex;

export const archivedIndexKey = snapshotIndexKey;

/** The partition's archived index; undefined when nothing is archived (or the value is unreadable). */
export function readArchivedIndex(api: MetadataApi, partition: number): Promise<ArchivedIndex | undefined> {
  return readSnapshotIndex(api, partition);
}

/** The LSN up to which the policy may trim under archived-lsn: the oldest retained snapshot's. */
export const archivedLsnOf = (index: ArchivedIndex | undefined): number | null => (index === undefined ? null : index.oldestRetainedLsn);

/** Whether the node has a snapshot repository (`[snapshots] repository` other than "none"). */
export function repositoryConfigured(config: Pick<Config, "snapshots">): boolean {
  return config.snapshots.repository !== "none";
}

export const PERSISTED_LSN_USED_KEY = "trim/persisted-lsn-used";

/** Per log, the highest point persisted-lsn trimmed it to (written before that trim). */
export const PersistedLsnUsed = Type.Object({
  logs: Type.Record(Type.String({ pattern: "^[0-9]+$" }), Type.Integer({ minimum: 0 })),
  firstAtMs: Type.Integer(),
});
export type PersistedLsnUsed = Static<typeof PersistedLsnUsed>;

export async function readPersistedLsnUsed(api: MetadataApi): Promise<{ value: PersistedLsnUsed | undefined; version: number }> {
  const v = await api.get(PERSISTED_LSN_USED_KEY);
  if (v === undefined) return { value: undefined, version: 0 };
  return { value: Value.Check(PersistedLsnUsed, v.value) ? v.value : { logs: {}, firstAtMs: 0 }, version: v.version };
}

export const TRIM_STATE_KEY = "trim/state";

/** What the controller decided last: read by every node's status monitor. */
export const TrimState = Type.Object({
  policy: Type.String(),
  persistedLsnDisabled: Type.Boolean(),
  warnings: Type.Array(Type.Object({ code: Type.String(), subject: Type.String(), message: Type.String() })),
});
export type TrimState = Static<typeof TrimState>;

export async function readTrimState(api: MetadataApi, consistency: "stale" | "linearizable" = "linearizable"): Promise<{ value: TrimState | undefined; version: number }> {
  const v = await api.get(TRIM_STATE_KEY, { consistency });
  if (v === undefined) return { value: undefined, version: 0 };
  return { value: Value.Check(TrimState, v.value) ? v.value : undefined, version: v.version };
}

/** The trim warnings every node shows in its status (none when unknown). */
export async function trimWarnings(api: MetadataApi): Promise<StatusItem[]> {
  const s = await readTrimState(api, "stale").catch(() => undefined);
  return s?.value?.warnings ?? [];
}

/**
 * Logs persisted-lsn trimmed past what their latest snapshot covers: a new worker could not rebuild
 * them. A point is counted only as far as the log's trim point reached it (the record is written
 * before the trim, which may then not have happened). Pure over what was read.
 */
export function uncoveredTrims(
  used: PersistedLsnUsed | undefined,
  trimPoint: (log: number) => number,
  latestLsn: (log: number) => number | null,
): Array<{ log: number; trimmedTo: number; coveredTo: number | null }> {
  if (used === undefined) return [];
  const out: Array<{ log: number; trimmedTo: number; coveredTo: number | null }> = [];
  for (const [log, recorded] of Object.entries(used.logs)) {
    const trimmedTo = Math.min(recorded, trimPoint(Number(log)));
    const coveredTo = latestLsn(Number(log));
    if (trimmedTo > 0 && (coveredTo === null || coveredTo < trimmedTo)) out.push({ log: Number(log), trimmedTo, coveredTo });
  }
  return out.sort((a, b) => a.log - b.log);
}

/**
 * Refuses a new worker's registration while persisted-lsn trims are not covered by snapshots
 * (CAIRN-TRIM-0003). Called where a node registers for the first time.
 */
export async function checkWorkerJoin(api: MetadataApi, joiner: { name: string; roles: readonly string[] }): Promise<void> {
  if (!joiner.roles.includes("worker")) return;
  const { value } = await readPersistedLsnUsed(api);
  if (value === undefined) return;
  const latest = new Map<number, number | null>();
  const [logsV] = await Promise.all([
    api.get(LOGS_KEY),
    ...Object.keys(value.logs).map(async (log) => latest.set(Number(log), (await readArchivedIndex(api, Number(log)))?.latestLsn ?? null)),
  ]);
  // An unreadable logs document counts every recorded point as trimmed (refusing is the safe side).
  const chains = new Map((logsV === undefined ? undefined : tryParseLogs(logsV.value))?.logs.map((l) => [l.id, l.trimPoint]));
  const uncovered = uncoveredTrims(value, (log) => (chains.size === 0 ? Number.MAX_SAFE_INTEGER : (chains.get(log) ?? 0)), (log) => latest.get(log) ?? null);
  if (uncovered.length === 0) return;
  const list = uncovered.map((u) => `log ${u.log} trimmed to ${u.trimmedTo} (snapshot: ${u.coveredTo ?? "none"})`).join(", ");
  throw new CairnError(
    "TRIM_JOIN_REFUSED",
    `node ${joiner.name} may not join as a worker: the persisted-lsn trim policy trimmed logs no snapshot covers (${list}); configure a snapshot repository and take a snapshot of those partitions first`,
    { logs: uncovered },
  );
}

function tryParseLogs(value: unknown): LogsDocument | undefined {
  try {
    return parseLogsDocument(value);
  } catch {
    return undefined;
  }
}
