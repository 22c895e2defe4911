// Migration from the local metadata store to the replicated server, run at start when a node's
// data directory holds an unsealed local store but its configuration asks for the replicated one.
// Steps, each safe to repeat after a crash: (1) bootstrap a one-voter replicated server under the
// node's id, (2) import every key with its version in one entry (a no-op if already imported),
// (3) seal the local store, (4) log what was done. Nothing is deleted: the sealed store stays.
import { join } from "node:path";
import { CairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { LOCAL_STORE_FILE, LocalMetadataStore } from "./local-store.ts";
import { KEYS, type NodesConfiguration } from "./nodes-config.ts";
import type { MetadataServer } from "./server.ts";

/** Test-only failpoints: CAIRN_TEST_FAILPOINT=<name> kills the process at that step. */
function failpoint(name: string): void {
  if (process.env.CAIRN_TEST_FAILPOINT === name) process.kill(process.pid, "SIGKILL");
}

export function needsMigration(dataDir: string): boolean {
  const path = join(dataDir, LOCAL_STORE_FILE);
  if (!LocalMetadataStore.exists(path)) return false;
  const store = LocalMetadataStore.open(path);
  try {
    return !store.sealed;
  } finally {
    store.close();
  }
}

export async function migrateLocalToReplicated(dataDir: string, nodeName: string, server: MetadataServer, log: Logger, nowMs: () => number): Promise<void> {
  const path = join(dataDir, LOCAL_STORE_FILE);
  const store = LocalMetadataStore.open(path);
  try {
    if (store.sealed) return;
    const entries = store.entries();
    const nodes = store.get(KEYS.nodesConfig)?.value as NodesConfiguration | undefined;
    const me = nodes?.nodes.find((n) => n.name === nodeName);
    if (entries.length > 0 && me === undefined) {
      throw new CairnError(
        "METADATA_STORAGE_CORRUPT",
        `the local metadata store ${path} holds data but does not list node '${nodeName}'; migrate it with the node name it was created with`,
      );
    }
    log.warn({ path, keys: entries.length }, "migrating the local metadata store to the replicated metadata server");
    await server.bootstrapForImport(me?.id ?? 1);
    failpoint("migration-after-bootstrap");
    const imported = await server.importSnapshot(store.snapshot(), me?.id ?? 1);
    failpoint("migration-after-import");
    store.seal("migrated to the replicated metadata server", nowMs());
    log.warn(
      { path, keys: entries.length, imported },
      `migration done: ${entries.length} keys with their versions are in the replicated metadata server; the local store is sealed`,
    );
  } finally {
    store.close();
  }
}
