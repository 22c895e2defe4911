// `cairn ctl`: the operator's tool. Talks to any node's admin API (--address or CAIRN_ADDRESS).
// Every command has --json output and exits non-zero on failure with a documented exit code.
import { Command, Option } from "commander";
import { stringify as toToml } from "smol-toml";
import { EXIT } from "../exit-codes.ts";
import { adminClient, call, CtlFailure, DEFAULT_ADDRESS, type CtlGlobals } from "./client.ts";

function globalsOf(cmd: Command): CtlGlobals {
  return cmd.optsWithGlobals() as CtlGlobals;
}

function print(globals: CtlGlobals, json: unknown, human: () => string): void {
  process.stdout.write(globals.json ? JSON.stringify(json, null, 2) + "\n" : human());
}

/** Wrap a command action: CtlFailure → message (or JSON) and its exit code. */
function action(fn: (globals: CtlGlobals, ...args: string[]) => Promise<void>) {
  return async function (this: Command, ...args: unknown[]) {
    const globals = globalsOf(this);
    try {
      await fn(globals, ...(args.filter((a) => typeof a === "string") as string[]));
    } catch (e) {
      if (!(e instanceof CtlFailure)) throw e;
      if (globals.json) process.stdout.write(JSON.stringify({ error: e.problem }, null, 2) + "\n");
      process.stderr.write(e.message + "\n");
      process.exit(e.exitCode);
    }
  };
}

export function ctlCommand(): Command {
  const ctl = new Command("ctl")
    .description("Operate a cairn cluster through any node's admin API")
    .addOption(
      new Option("-a, --address <url>", "admin API of any node").env("CAIRN_ADDRESS").default(DEFAULT_ADDRESS),
    )
    .option("--json", "print machine-readable JSON")
    .option("--timeout-ms <ms>", "deadline of each request", "10000")
    .addHelpText(
      "after",
      `\nExit codes: ${EXIT.OK} ok, ${EXIT.FAILURE} failure, ${EXIT.USAGE} usage, ${EXIT.UNREACHABLE} node unreachable, ${EXIT.NOT_PROVISIONED} not provisioned, ${EXIT.REFUSED} refused by the node.`,
    );

  ctl
    .command("status")
    .description("Show the node: identity, lifecycle, readiness, roles and addresses")
    .action(
      action(async (g) => {
        const client = adminClient(g);
        const node = await call(g, () => client.GET("/v1/node"));
        const ready = await client.GET("/ready").catch(() => undefined);
        const readiness = ready?.data ?? { ready: false, state: node.lifecycle.state, reasons: [String((ready?.error as { detail?: string } | undefined)?.detail ?? "unknown")] };
        print(g, { node, readiness }, () =>
          [
            `Node       ${node.name} (${node.id ?? "not registered"}, generation ${node.generation})`,
            `Cluster    ${node.cluster.name}${node.cluster.fingerprint ? ` (fingerprint ${node.cluster.fingerprint})` : ""}`,
            `State      ${node.lifecycle.state}${readiness.ready ? ", ready" : `, not ready: ${readiness.reasons.join("; ")}`}`,
            `Roles      ${node.roles.join(", ")}`,
            `Admin      ${node.addresses.admin}`,
            `Fabric     ${node.addresses.fabric}`,
            `Data dir   ${node.dataDir}`,
            `Version    ${node.version} (pid ${node.pid})`,
            "",
          ].join("\n"),
        );
      }),
    );

  const config = ctl.command("config").description("Configuration of a node");
  config
    .command("get")
    .description("Print the effective configuration of the node (TOML, or JSON with --json)")
    .action(
      action(async (g) => {
        const client = adminClient(g);
        const cfg = await call(g, () => client.GET("/v1/node/config"));
        print(g, cfg, () => toToml(cfg as Record<string, unknown>) + "\n");
      }),
    );
  return ctl;
}
