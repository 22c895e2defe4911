// The `file` repository backend: objects are files under one directory (a node's own, or a path
// shared by the nodes of one host or a network file system). Writes go to a temporary name first and
// are renamed into place, so a reader never sees half an object; the conditional replace holds a lock
// directory (mkdir is atomic, also between processes) while it compares and renames.
import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { CairnError } from "../observability/errors.ts";
import type { BlobStore, VersionedText } from "./blob-store.ts";
import { pacedChunks, pacedNow, type UploadPace } from "./pace.ts";

/** A lock older than this was left by a process that died while holding it: it is broken. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

export class FileBlobStore implements BlobStore {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `file:${root}`;
  }

  async putFile(key: string, localPath: string, pace?: UploadPace): Promise<void> {
    await this.io(`writing ${key}`, async () => {
      const target = this.pathOf(key);
      await mkdir(dirname(target), { recursive: true });
      const tmp = `${target}.tmp-${randomBytes(4).toString("hex")}`;
      try {
        if (pacedNow(pace)) {
          const out = await open(tmp, "w");
          try {
            for await (const chunk of pacedChunks(localPath, pace)) await out.write(chunk);
          } finally {
            await out.close();
          }
        } else await copyFile(localPath, tmp);
        await rename(tmp, target);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    });
  }

  async putText(key: string, text: string): Promise<void> {
    await this.io(`writing ${key}`, () => this.writeAtomically(key, text));
  }

  async getFile(key: string, localPath: string): Promise<boolean> {
    return this.io(`reading ${key}`, async () => {
      try {
        await copyFile(this.pathOf(key), localPath);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
        throw e;
      }
    });
  }

  async getText(key: string): Promise<VersionedText | undefined> {
    return this.io(`reading ${key}`, async () => {
      try {
        const text = await readFile(this.pathOf(key), "utf8");
        return { text, token: tokenOf(text) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
      }
    });
  }

  async putTextIf(key: string, text: string, expectedToken: string | null): Promise<boolean> {
    return this.io(`writing ${key}`, async () => {
      const target = this.pathOf(key);
      await mkdir(dirname(target), { recursive: true });
      const lock = `${target}.lock`;
      await acquire(lock);
      try {
        const current = await readFile(target, "utf8").then(tokenOf, (e: NodeJS.ErrnoException) => {
          if (e.code === "ENOENT") return null;
          throw e;
        });
        if (current !== expectedToken) return false;
        await this.writeAtomically(key, text);
        return true;
      } finally {
        await rmdir(lock).catch(() => {});
      }
    });
  }

  async list(prefix: string): Promise<string[]> {
    return this.io(`listing ${prefix}`, async () => {
      const base = this.pathOf(prefix);
      const out: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
          throw e;
        }
        for (const e of entries) {
          const p = join(dir, e.name);
          if (e.isDirectory()) {
            if (!e.name.endsWith(".lock")) await walk(p);
          } else if (!e.name.includes(".tmp-")) out.push(relative(this.root, p).split(sep).join("/"));
        }
      };
      await walk(base);
      return out.sort();
    });
  }

  async delete(key: string): Promise<void> {
    await this.io(`deleting ${key}`, async () => {
      const p = this.pathOf(key);
      await rm(p, { force: true });
      // Empty snapshot directories go with their last object.
      await rmdir(dirname(p)).catch(() => {});
    });
  }

  private async writeAtomically(key: string, text: string): Promise<void> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, text);
    await rename(tmp, target);
  }

  private pathOf(key: string): string {
    const parts = key.split("/").filter((p) => p !== "");
    if (parts.some((p) => p === "." || p === "..")) throw new CairnError("SNAPSHOT_INVALID_METADATA", `repository key ${key} leaves the repository`);
    return join(this.root, ...parts);
  }

  private async io<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (e) {
      if (e instanceof CairnError) throw e;
      throw new CairnError("SNAPSHOT_REPOSITORY_UNAVAILABLE", `snapshot repository ${this.description}: ${what} failed: ${(e as Error).message}`, {
        repository: this.description,
      });
    }
  }
}

function tokenOf(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let waitMs = 2; ; waitMs = Math.min(100, waitMs * 2)) {
    try {
      await mkdir(lock);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > STALE_LOCK_MS) await rmdir(lock).catch(() => {});
    if (Date.now() > deadline) throw new Error(`the lock ${lock} is held by another writer`);
    await Bun.sleep(waitMs);
  }
}
