// The `s3` repository backend: objects in an S3-compatible bucket under a prefix, through Bun's
// built-in S3 client (stores above the part size are uploaded in parts by it, smaller ones in one PUT). The conditional replace sends
// If-Match / If-None-Match with the write (stores that implement conditional writes refuse a lost
// race with 412); it also compares the ETag first, which is all a store without them gets, and is
// enough while one controller publishes each partition (the metadata index is CAS-ordered anyway).
import { S3Client } from "bun";
import { CairnError } from "../observability/errors.ts";
import type { BlobStore, VersionedText } from "./blob-store.ts";
import { pacedChunks, pacedNow, type UploadPace } from "./pace.ts";

export interface S3StoreOptions {
  readonly endpoint: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Deadline of each request to the store. */
  readonly requestTimeoutMs: number;
  /**
   * Files smaller than this are written with one PUT, larger ones by a multipart upload in parts of
   * this size (each part is a request, and the store assembles them: more work for it). Default 64 MiB.
   */
  readonly partSizeBytes?: number;
}

/** Smallest part S3 accepts (but for the last one). */
export const S3_MIN_PART_BYTES = 5 * 1024 * 1024;
export const S3_DEFAULT_PART_BYTES = 64 * 1024 * 1024;

const NOT_FOUND = new Set(["NoSuchKey", "NotFound"]);

export class S3BlobStore implements BlobStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly options: S3StoreOptions) {
    this.prefix = options.prefix === "" ? "" : `${options.prefix.replace(/^\/+|\/+$/g, "")}/`;
    this.description = `s3://${options.bucket}/${this.prefix}`;
    this.client = new S3Client({
      endpoint: options.endpoint,
      bucket: options.bucket,
      region: options.region,
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
    });
  }

  putFile(key: string, localPath: string, pace?: UploadPace): Promise<void> {
    return this.io(`writing ${key}`, async () => {
      const partSize = Math.max(S3_MIN_PART_BYTES, this.options.partSizeBytes ?? S3_DEFAULT_PART_BYTES);
      const sizeBytes = Bun.file(localPath).size;
      if (!pacedNow(pace) || sizeBytes >= partSize) {
        await this.client.write(this.keyOf(key), Bun.file(localPath), { partSize });
        return;
      }
      // One PUT whose body is read at the pace's rate (a stream with its length: not chunked).
      const chunks = pacedChunks(localPath, pace);
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await chunks.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        async cancel() {
          await chunks.return(undefined);
        },
      });
      const url = this.client.file(this.keyOf(key)).presign({ method: "PUT", expiresIn: Math.ceil(this.options.requestTimeoutMs / 1000) + 60 });
      const res = await fetch(url, { method: "PUT", body, headers: { "content-length": String(sizeBytes) }, signal: AbortSignal.timeout(this.options.requestTimeoutMs) });
      if (!res.ok) throw await failureOf(res);
      await res.arrayBuffer();
    });
  }

  putText(key: string, text: string): Promise<void> {
    return this.io(`writing ${key}`, async () => {
      await this.client.write(this.keyOf(key), text, { type: "application/json" });
    });
  }

  getFile(key: string, localPath: string): Promise<boolean> {
    return this.io(`reading ${key}`, async () => {
      try {
        await Bun.write(localPath, this.client.file(this.keyOf(key)));
        return true;
      } catch (e) {
        if (NOT_FOUND.has(codeOf(e))) return false;
        throw e;
      }
    });
  }

  getText(key: string): Promise<VersionedText | undefined> {
    return this.io(`reading ${key}`, async () => {
      // One GET gives the body and its ETag together (a stat and a read could see two versions).
      const url = this.client.file(this.keyOf(key)).presign({ method: "GET", expiresIn: 60 });
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.requestTimeoutMs) });
      if (res.status === 404) {
        const body = await res.text();
        if (body.includes("NoSuchBucket")) throw new S3Failure("NoSuchBucket", `bucket ${this.options.bucket} does not exist`);
        return undefined;
      }
      if (!res.ok) throw await failureOf(res);
      return { text: await res.text(), token: res.headers.get("etag") ?? "" };
    });
  }

  putTextIf(key: string, text: string, expectedToken: string | null): Promise<boolean> {
    return this.io(`writing ${key}`, async () => {
      const current = await this.getText(key);
      if ((current?.token ?? null) !== expectedToken) return false;
      const url = this.client.file(this.keyOf(key)).presign({ method: "PUT", expiresIn: 60, type: "application/json" });
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (expectedToken === null) headers["if-none-match"] = "*";
      else headers["if-match"] = expectedToken;
      const res = await fetch(url, { method: "PUT", body: text, headers, signal: AbortSignal.timeout(this.options.requestTimeoutMs) });
      if (res.status === 412 || res.status === 409) return false;
      if (!res.ok) throw await failureOf(res);
      return true;
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.io(`listing ${prefix}`, async () => {
      const out: string[] = [];
      let continuationToken: string | undefined;
      do {
        const page = await this.client.list({ prefix: this.keyOf(prefix), ...(continuationToken === undefined ? {} : { continuationToken }) });
        for (const c of page.contents ?? []) out.push(c.key.slice(this.prefix.length));
        continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
      } while (continuationToken !== undefined);
      return out.sort();
    });
  }

  delete(key: string): Promise<void> {
    return this.io(`deleting ${key}`, async () => {
      try {
        await this.client.delete(this.keyOf(key));
      } catch (e) {
        if (!NOT_FOUND.has(codeOf(e))) throw e;
      }
    });
  }

  private keyOf(key: string): string {
    return this.prefix + key;
  }

  private async io<T>(what: string, body: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Bun's S3 calls take no signal: the deadline is a race (an abandoned call finishes unobserved).
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new S3Failure("Timeout", `no answer within ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
    });
    try {
      return await Promise.race([body(), deadline]);
    } catch (e) {
      if (e instanceof CairnError) throw e;
      const code = codeOf(e);
      throw new CairnError(
        "SNAPSHOT_REPOSITORY_UNAVAILABLE",
        `snapshot repository ${this.description} at ${this.options.endpoint}: ${what} failed${code ? ` (${code})` : ""}: ${(e as Error).message}`,
        { repository: this.description, s3Code: code || null },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

class S3Failure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function codeOf(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : "";
}

async function failureOf(res: Response): Promise<S3Failure> {
  const body = await res.text();
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? `HTTP ${res.status}`;
  const message = /<Message>([^<]+)<\/Message>/.exec(body)?.[1] ?? res.statusText;
  return new S3Failure(code, message);
}
