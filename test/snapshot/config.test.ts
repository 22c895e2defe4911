// The [snapshots] configuration: defaults (no repository, one retained), environment variables by
// our convention (credentials included), and contradictions refused with CAIRN-CONFIG-0004.
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { isCairnError } from "../../src/observability/errors.ts";
import { openRepository } from "../../src/snapshot/index.ts";

describe("[snapshots] configuration", () => {
  test("defaults: no repository, one snapshot retained, automatic snapshots off", () => {
    const { config } = loadConfig({ env: {} }, "/srv");
    expect(config.snapshots).toMatchObject({ repository: "none", path: "", "num-retained": 1, "auto-every-records": 0, "auto-every-seconds": 0 });
  });

  test("CAIRN_SNAPSHOTS__* variables set the section, S3 credentials included", () => {
    const { config } = loadConfig({
      env: {
        CAIRN_SNAPSHOTS__REPOSITORY: "s3",
        CAIRN_SNAPSHOTS__S3_ENDPOINT: "http://127.0.0.1:9000",
        CAIRN_SNAPSHOTS__S3_BUCKET: "b",
        CAIRN_SNAPSHOTS__S3_ACCESS_KEY_ID: "AK",
        CAIRN_SNAPSHOTS__NUM_RETAINED: "3",
      },
    });
    expect(config.snapshots).toMatchObject({ repository: "s3", "s3-bucket": "b", "s3-access-key-id": "AK", "num-retained": 3 });
  });

  test("an s3 repository without endpoint or bucket is refused with CAIRN-CONFIG-0004", () => {
    const err = (() => {
      try {
        loadConfig({ env: { CAIRN_SNAPSHOTS__REPOSITORY: "s3", CAIRN_SNAPSHOTS__S3_ENDPOINT: "http://127.0.0.1:9000" } });
      } catch (e) {
        return e;
      }
    })();
    expect(isCairnError(err, "CONFIG_CONFLICT")).toBe(true);
    expect((err as Error).message).toContain("snapshots.s3-bucket");
  });

  test("a file repository defaults to <data-dir>/snapshots; an s3 one is named by its bucket and prefix; none gives no repository", () => {
    const settings = {
      repository: "file" as const,
      path: "",
      s3Endpoint: "",
      s3Bucket: "",
      s3Prefix: "",
      s3Region: "us-east-1",
      s3AccessKeyId: "",
      s3SecretAccessKey: "",
      numRetained: 1,
      requestTimeoutMs: 1000,
    };
    expect(openRepository(settings, "/data/n1")?.description).toBe("file:/data/n1/snapshots");
    expect(openRepository({ ...settings, repository: "none" }, "/data/n1")).toBeUndefined();
    const s3 = openRepository({ ...settings, repository: "s3", s3Endpoint: "http://127.0.0.1:1", s3Bucket: "bk", s3Prefix: "/p/" }, "/d", { AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "y" });
    expect(s3?.description).toBe("s3://bk/p/");
  });
});
