import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataDir, FILES } from "../../src/node/index.ts";
import { CairnError } from "../../src/observability/errors.ts";
import { tempDir } from "../helpers/cairn-process.ts";

function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CairnError) return e.code;
    throw e;
  }
  return "no error";
}

describe("data directory", () => {
  test("a second holder of the same directory is refused until the first releases it", () => {
    const path = join(tempDir(), "n1");
    const first = new DataDir(path);
    first.open();
    const second = new DataDir(path);
    expect(errorCode(() => second.open())).toBe("CAIRN-NODE-0001");
    expect(readFileSync(join(path, FILES.lock), "utf8").trim()).toBe(String(process.pid));
    first.close();
    second.open();
    second.close();
  });

  test("the lock is released when its process dies, even by SIGKILL", async () => {
    const path = join(tempDir(), "n1");
    const script = `import { DataDir } from ${JSON.stringify(join(import.meta.dir, "../../src/node/index.ts"))};
new DataDir(${JSON.stringify(path)}).open(); console.log("locked"); await Bun.sleep(60000);`;
    const file = join(tempDir(), "hold.ts");
    writeFileSync(file, script);
    const proc = Bun.spawn([process.execPath, file], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = proc.stdout.getReader();
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).toContain("locked");
      expect(errorCode(() => new DataDir(path).open())).toBe("CAIRN-NODE-0001");
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    const d = new DataDir(path);
    d.open();
    d.close();
  });

  test("the cluster marker pins the directory to its cluster", () => {
    const d = new DataDir(join(tempDir(), "n1"));
    d.open();
    const m = d.checkOrWriteMarker("alpha", "0.1.0", 1000);
    expect(m).toEqual({ clusterName: "alpha", fingerprint: null, createdAtMs: 1000, cairnVersion: "0.1.0" });
    expect(d.checkOrWriteMarker("alpha", "0.2.0", 2000).createdAtMs).toBe(1000);
    expect(errorCode(() => d.checkOrWriteMarker("beta", "0.1.0", 3000))).toBe("CAIRN-NODE-0003");
    d.pinFingerprint("fp1");
    expect(d.readMarker()?.fingerprint).toBe("fp1");
    expect(errorCode(() => d.pinFingerprint("fp2"))).toBe("CAIRN-NODE-0003");
    d.close();
  });

  test("a damaged marker is detected and named, never silently replaced", () => {
    const d = new DataDir(join(tempDir(), "n1"));
    d.open();
    writeFileSync(d.file(FILES.marker), '{"clusterName": "alp');
    let message = "";
    try {
      d.checkOrWriteMarker("alpha", "0.1.0", 1);
    } catch (e) {
      message = `${(e as CairnError).code} ${(e as Error).message}`;
    }
    expect(message).toContain("CAIRN-NODE-0007");
    expect(message).toContain(FILES.marker);
    d.close();
  });

  test("the generation grows on every start and survives reopening", () => {
    const path = join(tempDir(), "n1");
    const gens: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = new DataDir(path);
      d.open();
      gens.push(d.bumpGeneration());
      d.close();
    }
    expect(gens).toEqual([1, 2, 3]);
  });
});
