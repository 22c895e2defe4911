// The part of s3rver's API the S3 repository tests use (the package ships no types).
declare module "s3rver" {
  interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory: string;
    configureBuckets?: Array<{ name: string }>;
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
    /** `event`: S3 event notifications (ObjectCreated:Put for a PUT, :Post for a completed multipart upload). */
    on(event: "event", listener: (e: { Records: Array<{ eventName: string; s3: { object: { key: string } } }> }) => void): this;
    off(event: "event", listener: (e: { Records: Array<{ eventName: string; s3: { object: { key: string } } }> }) => void): this;
  }
}
