// The repository's layout and documents: where a partition's snapshots live
// (`<partition>/lsn_<20-digit lsn>-<id>/`, immutable once complete; `<partition>/latest.json`, only
// ever moved forward), and the schemas of `metadata.json` and `latest.json`. Pure: names and parsing.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { CairnError } from "../observability/errors.ts";

/** The format of a snapshot's store and metadata; an importer refuses a format it does not know. */
export const SNAPSHOT_FORMAT_VERSION = 1;
/** The exported partition store inside a snapshot directory (an SQLite database). */
export const STORE_FILE = "store.sqlite";
/** Written last: a snapshot directory without it is incomplete (an upload that died) and never read. */
export const METADATA_FILE = "metadata.json";
export const LATEST_FILE = "latest.json";

const LSN_DIGITS = 20;
const DIR_PATTERN = /^lsn_(\d{20})-([A-Za-z0-9_-]{1,64})$/;

export const SnapshotMetadata = Type.Object(
  {
    formatVersion: Type.Literal(SNAPSHOT_FORMAT_VERSION),
    id: Type.String(),
    cluster: Type.String({ description: "The cluster's name" }),
    clusterFingerprint: Type.String(),
    partition: Type.Integer({ minimum: 0 }),
    keyRange: Type.Object({ start: Type.String(), end: Type.String() }, { description: "Inclusive, decimal u64." }),
    lsn: Type.Integer({ minimum: 0, description: "The applied LSN the store is exactly as of." }),
    node: Type.String({ description: "The node that exported it (`N<n>`)." }),
    createdAtMs: Type.Integer({ minimum: 0 }),
    sizeBytes: Type.Integer({ minimum: 0 }),
    checksum: Type.String({ description: "`sha256:<hex>` of the store file." }),
  },
  { additionalProperties: false },
);
export type SnapshotMetadata = Static<typeof SnapshotMetadata>;

export const LatestPointer = Type.Object(
  {
    partition: Type.Integer({ minimum: 0 }),
    lsn: Type.Integer({ minimum: 0 }),
    id: Type.String(),
    path: Type.String({ description: "The snapshot's directory relative to the partition's." }),
    updatedAtMs: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type LatestPointer = Static<typeof LatestPointer>;

export function snapshotDirName(lsn: number, id: string): string {
  return `lsn_${String(lsn).padStart(LSN_DIGITS, "0")}-${id}`;
}

/** The LSN and id a snapshot directory's name holds, or undefined for a name we did not write. */
export function parseSnapshotDirName(name: string): { lsn: number; id: string } | undefined {
  const m = DIR_PATTERN.exec(name);
  if (m === null) return undefined;
  const lsn = Number(m[1]);
  return Number.isSafeInteger(lsn) ? { lsn, id: m[2]! } : undefined;
}

export const partitionPrefix = (partition: number): string => `${partition}/`;
export const latestKey = (partition: number): string => `${partition}/${LATEST_FILE}`;
export const snapshotPrefix = (partition: number, lsn: number, id: string): string => `${partition}/${snapshotDirName(lsn, id)}/`;

/** Parses a document read from the repository; a document that does not fit is CAIRN-SNAPSHOT-0008. */
export function parseDocument<T extends typeof SnapshotMetadata | typeof LatestPointer>(schema: T, text: string, where: string): Static<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CairnError("SNAPSHOT_INVALID_METADATA", `${where} is not JSON`, { object: where });
  }
  if (!Value.Check(schema, value)) {
    const first = [...Value.Errors(schema, value)][0];
    throw new CairnError("SNAPSHOT_INVALID_METADATA", `${where} does not match its schema${first ? ` at '${first.path}': ${first.message}` : ""}`, { object: where });
  }
  return value as Static<T>;
}
