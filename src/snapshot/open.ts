// Builds the repository a node's `[snapshots]` section names (the node passes the section's values:
// snapshot/ does not read the configuration). `none` gives no repository.
import { join } from "node:path";
import { FileBlobStore } from "./file-store.ts";
import { SnapshotRepository } from "./repository.ts";
import { S3BlobStore } from "./s3-store.ts";

export interface RepositorySettings {
  readonly repository: "none" | "file" | "s3";
  readonly path: string;
  readonly s3Endpoint: string;
  readonly s3Bucket: string;
  readonly s3Prefix: string;
  readonly s3Region: string;
  readonly s3AccessKeyId: string;
  readonly s3SecretAccessKey: string;
  readonly numRetained: number;
  readonly requestTimeoutMs: number;
  /** S3: files smaller than this are one PUT, larger ones multipart in parts of this size. */
  readonly s3PartSizeBytes?: number;
}

export function openRepository(settings: RepositorySettings, dataDir: string, env: Record<string, string | undefined> = process.env): SnapshotRepository | undefined {
  const options = { numRetained: settings.numRetained };
  switch (settings.repository) {
    case "none":
      return undefined;
    case "file":
      return new SnapshotRepository(new FileBlobStore(settings.path === "" ? join(dataDir, "snapshots") : settings.path), options);
    case "s3":
      return new SnapshotRepository(
        new S3BlobStore({
          endpoint: settings.s3Endpoint,
          bucket: settings.s3Bucket,
          prefix: settings.s3Prefix,
          region: settings.s3Region,
          accessKeyId: settings.s3AccessKeyId || env.AWS_ACCESS_KEY_ID || "",
          secretAccessKey: settings.s3SecretAccessKey || env.AWS_SECRET_ACCESS_KEY || "",
          requestTimeoutMs: settings.requestTimeoutMs,
          ...(settings.s3PartSizeBytes === undefined ? {} : { partSizeBytes: settings.s3PartSizeBytes }),
        }),
        options,
      );
  }
}
