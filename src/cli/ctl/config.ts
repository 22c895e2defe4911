// `cairn ctl config`: the node's effective configuration (get) and the cluster's settings (show,
// set). `set --replication` makes the log controller move every log to it by itself; `show` prints
// how many logs are there already.
import { Command } from "commander";
import { stringify as toToml } from "smol-toml";
import type { components } from "../../../openapi/cairn.d.ts";
import { adminClient, call } from "./client.ts";
import type { CtlHelpers } from "./logs.ts";

type ClusterConfig = components["schemas"]["ClusterConfig"];

function settingsText(c: ClusterConfig): string {
  const p = c.progress;
  return (
    `replication   ${c.replication}\n` +
    `nodeset-size  ${c.nodesetSize === 0 ? "0 (automatic)" : c.nodesetSize}\n` +
    (p === null ? "progress      unknown (the logs could not be read)\n" : `progress      ${p.logsAtTarget}/${p.logs} logs at replication ${p.target}\n`)
  );
}

export function configCommand(h: CtlHelpers): Command {
  const config = new Command("config").description("The node's configuration and the cluster's settings");
  config
    .command("get")
    .description("Print the effective configuration of the node (TOML, or JSON with --json)")
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const cfg = await call(g, () => client.GET("/v1/node/config"));
        h.print(g, cfg, () => toToml(cfg as Record<string, unknown>) + "\n");
      }),
    );
  config
    .command("show")
    .description("Print the cluster's settings (replication, nodeset size) and how many logs are at them")
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/cluster/config"));
        h.print(g, r, () => settingsText(r));
      }),
    );
  config
    .command("set")
    .description("Change the cluster's settings; the log controller reconfigures every log to them by itself, a few per round")
    .option("--replication <r>", "default replication of logs and partitions (1-9; at most the live log-server nodes)")
    .option("--nodeset-size <n>", "log-servers in a new nodeset (0: automatic)")
    .action(
      h.action<{ replication?: string; nodesetSize?: string }>(async (g, _args, opts) => {
        if (opts.replication === undefined && opts.nodesetSize === undefined) h.usage("give --replication, --nodeset-size or both");
        const body = {
          ...(opts.replication !== undefined ? { replication: h.intArg("--replication", opts.replication) } : {}),
          ...(opts.nodesetSize !== undefined ? { nodesetSize: h.intArg("--nodeset-size", opts.nodesetSize) } : {}),
        };
        const client = adminClient(g);
        const r = await call(g, () => client.PATCH("/v1/cluster/config", { body }));
        h.print(g, r, () => settingsText(r) + "The log controller moves the logs to these settings by itself; `cairn ctl status` shows the progress.\n");
      }),
    );
  return config;
}
