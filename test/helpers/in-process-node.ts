// A node in the test's own process, on port 0 for the admin API and the fabric, with its own data
// directory: for tests that drive the admin API of a real node without spawning a process.
import { loadConfig } from "../../src/config/index.ts";
import { Node } from "../../src/node/index.ts";
import { silentLogger } from "../../src/observability/log.ts";

/** A node named `name` with its data in `baseDir`; `overrides` are further `key=value` settings. */
export function inProcessNode(name: string, baseDir: string, overrides: Array<[string, string]> = []): Node {
  const { config } = loadConfig({
    overrides: [["node-name", name], ["base-dir", baseDir], ["admin.bind-address", "127.0.0.1:0"], ["net.bind-address", "127.0.0.1:0"], ...overrides],
  });
  return new Node({ config, logger: silentLogger() });
}
