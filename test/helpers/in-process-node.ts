// A node in the test's own process, on port 0 for the admin API and the fabric, with its own data
// directory: for tests that drive the admin API of a real node without spawning a process.
import { loadConfig } from "../../src/config/index.ts";
import { Node } from "../../src/node/index.ts";
import { silentLogger } from "../../src/observability/log.ts";

/** A node named `name` with its data in `baseDir`; `overrides` are further `key=value` settings. */
export function inProcessNode(name: string, baseDir: string, overrides: Array<[string, string]> = []): Node {
  const { config } = loadConfig({
    overrides: [["node-name", name], ["base-dir", baseDir], ["admin.bind-address", "127.0.0.1:0"], ["net.bind-address", "127.0.0.1:0"],
      // Port 0 and no worker unless asked for (see TEST_DEFAULT_ROLES in cairn-process.ts).
      ["ingress.bind-address", "127.0.0.1:0"], ["roles", "metadata-server,log-server,admin,ingress"], ...overrides],
  });
  return new Node({ config, logger: silentLogger() });
}
