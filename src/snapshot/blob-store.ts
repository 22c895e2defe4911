// What a repository backend offers: objects under `/`-separated keys, whole-object reads and writes,
// listing by prefix, and one conditional replace (compare a version token, then write) for the
// pointer that must only move forward. Implemented by a directory (file-store.ts) and S3 (s3-store.ts).
import type { UploadPace } from "./pace.ts";

export interface VersionedText {
  readonly text: string;
  /** Opaque token of this version of the object (a content hash, an ETag). */
  readonly token: string;
}

export interface BlobStore {
  /** Says where the objects are, for messages (`file:/path`, `s3://bucket/prefix`). */
  readonly description: string;
  /**
   * Writes (replaces) an object from a local file; with a `pace` that limits the rate when the
   * write starts, its bytes flow at that rate (asked again for every chunk).
   */
  putFile(key: string, localPath: string, pace?: UploadPace): Promise<void>;
  putText(key: string, text: string): Promise<void>;
  /** Copies an object to a local file; false when there is no such object. */
  getFile(key: string, localPath: string): Promise<boolean>;
  getText(key: string): Promise<VersionedText | undefined>;
  /**
   * Writes `text` only if the object is still at `expectedToken` (null: only if it does not exist);
   * false when it was not. Readers see the old or the new object, never a mix.
   */
  putTextIf(key: string, text: string, expectedToken: string | null): Promise<boolean>;
  /** Every key under `prefix` (recursively). */
  list(prefix: string): Promise<string[]>;
  /** Deletes an object; deleting a missing one is not an error. */
  delete(key: string): Promise<void>;
}
