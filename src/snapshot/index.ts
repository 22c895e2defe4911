// Public surface of snapshot/: the repository (file and S3 backends, layout, retention), export and
// import of partition stores, one partition snapshot end to end, and the metadata index
// `snapshots/<partition>` (the trim policy reads `oldestRetainedLsn` from it).
export { SnapshotRepository, fileChecksum, type PublishResult, type RepositoryOptions } from "./repository.ts";
export type { BlobStore, VersionedText } from "./blob-store.ts";
export { FileBlobStore } from "./file-store.ts";
export { S3BlobStore, S3_DEFAULT_PART_BYTES, type S3StoreOptions } from "./s3-store.ts";
export { SnapshotMetadata, LatestPointer, SNAPSHOT_FORMAT_VERSION, STORE_FILE, METADATA_FILE, LATEST_FILE, snapshotDirName, parseSnapshotDirName } from "./layout.ts";
export { exportStore, importStore, DEFAULT_EXPORT_OPTIONS, type ExportOptions, type ExportResult } from "./export.ts";
export { createSnapshot, newSnapshotId, type CreateSnapshotInput, type CreatedSnapshot, type SnapshotPhasesMs } from "./create.ts";
export { openRepository, type RepositorySettings } from "./open.ts";
export { paceWaitMs, pacedChunks, type UploadPace } from "./pace.ts";
export { snapshotIndexKey, SnapshotIndex, readSnapshotIndex, advanceSnapshotIndex, SNAPSHOT_INDEX_PREFIX } from "./index-key.ts";
