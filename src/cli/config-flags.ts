// Command-line flags that set configuration keys. Each named flag is sugar for one key; `--set`
// reaches every key. They are the highest-precedence configuration source.
import type { Command } from "commander";

export interface ConfigFlagValues {
  config?: string;
  nodeName?: string;
  baseDir?: string;
  clusterName?: string;
  roles?: string;
  adminAddress?: string;
  fabricAddress?: string;
  ingressAddress?: string;
  logLevel?: string;
  autoProvision?: boolean;
  set?: string[];
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function configFlags(cmd: Command): Command {
  cmd
    .option("-c, --config <file>", "TOML configuration file (also CAIRN_CONFIG)")
    .option("--node-name <name>", "node name (key node-name)")
    .option("--base-dir <dir>", "data directory (key base-dir)")
    .option("--cluster-name <name>", "cluster name (key cluster-name)")
    .option("--roles <list>", "comma-separated roles (key roles)")
    .option("--admin-address <host:port>", "admin API bind address (key admin.bind-address)")
    .option("--fabric-address <host:port>", "peer fabric bind address (key net.bind-address)")
    .option("--ingress-address <host:port>", "data-plane bind address (key ingress.bind-address)")
    .option("--log-level <level>", "log level (key log.level)")
    .option("--auto-provision", "provision the cluster at start if it is not yet, with this node as the first metadata member (key auto-provision)")
    .option("--set <key=value>", "set any configuration key; repeatable", collect, [] as string[]);
  return cmd;
}

export function overridesFromFlags(opts: ConfigFlagValues): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const named: Array<[keyof ConfigFlagValues, string]> = [
    ["nodeName", "node-name"],
    ["baseDir", "base-dir"],
    ["clusterName", "cluster-name"],
    ["roles", "roles"],
    ["adminAddress", "admin.bind-address"],
    ["fabricAddress", "net.bind-address"],
    ["ingressAddress", "ingress.bind-address"],
    ["logLevel", "log.level"],
  ];
  for (const [flag, key] of named) {
    const v = opts[flag];
    if (typeof v === "string") out.push([key, v]);
  }
  if (opts.autoProvision === true) out.push(["auto-provision", "true"]);
  for (const pair of opts.set ?? []) {
    const i = pair.indexOf("=");
    // A missing '=' is reported as an unknown key by the loader, naming exactly what was typed.
    out.push(i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)]);
  }
  return out;
}
