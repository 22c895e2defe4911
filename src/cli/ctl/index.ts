// `cairn ctl`: the operator's tool. Talks to any node's admin API (--address or CAIRN_ADDRESS; several
// addresses, comma-separated, are tried in turn, and the other nodes are learnt from the cluster).
// Every command has --json output and exits non-zero on failure with a documented exit code.
import { Command, Option } from "commander";
import { EXIT } from "../exit-codes.ts";
import { adminClient, call, checkCluster, CtlFailure, DEFAULT_ADDRESS, type CtlGlobals } from "./client.ts";
import { configCommand } from "./config.ts";
import { nodesCommand } from "./nodes.ts";
import type { CtlHelpers } from "./logs.ts";
import { logsCommand } from "./logs.ts";
import { table } from "./format.ts";
import { statusCommand } from "./status.ts";
import { snapshotsCommand } from "./snapshots.ts";
import { deploymentsCommand, servicesCommand } from "./deployments.ts";
import { invocationsCommand } from "./invocations.ts";
/** `cairn ctl partitions list`: leader, followers, epoch, applied/durable LSN, log tail and lag. */
function partitionsCommand(h: CtlHelpers): Command {
  const cmd = new Command("partitions").description("Partitions: where their processors run and how far they are");
  cmd
    .command("list")
    .description("Every partition: leader, followers, epoch, the leader's applied and durable LSN, the log tail and the lag")
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/partitions"));
        h.print(g, r, () =>
          table([
            ["ID", "LEADER", "FOLLOWERS", "EPOCH", "LEADING", "APPLIED", "DURABLE", "TAIL", "LAG"],
            ...r.partitions.map((p) => [
              p.id,
              p.leader ?? "-",
              p.followers.join(",") || "-",
              p.epochHolder === null ? "-" : `${p.epoch} (${p.epochHolder})`,
              p.leaderApplied ? "yes" : "no",
              p.appliedLsn ?? "-",
              p.durableLsn ?? "-",
              p.tailLsn ?? "-",
              p.lag ?? "-",
            ]),
          ]),
        );
      }),
    );
  return cmd;
}

function usage(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(EXIT.USAGE);
}

function intArg(flag: string, value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) usage(`${flag} must be a whole number, got '${value}'`);
  return n;
}

function globalsOf(cmd: Command): CtlGlobals {
  return cmd.optsWithGlobals() as CtlGlobals;
}

function print(globals: CtlGlobals, json: unknown, human: () => string): void {
  process.stdout.write(globals.json ? JSON.stringify(json, null, 2) + "\n" : human());
}

/** Wrap a command action: CtlFailure → message (or JSON) and its exit code. */
function action<O = Record<string, never>>(fn: (globals: CtlGlobals, args: string[], opts: O) => Promise<void>) {
  return async function (this: Command, ...args: unknown[]) {
    const globals = globalsOf(this);
    try {
      await checkCluster(globals);
      await fn(globals, args.filter((a) => typeof a === "string") as string[], this.opts() as O);
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
      new Option("-a, --address <urls>", "admin API of any node; several, comma-separated, are tried in turn").env("CAIRN_ADDRESS").default(DEFAULT_ADDRESS),
    )
    .addOption(new Option("--token <token>", "admin API bearer token (admin.token of the node)").env("CAIRN_TOKEN"))
    .addOption(new Option("--cluster <name>", "act only on nodes of this cluster (a node of another one is refused, exit 7)").env("CAIRN_CLUSTER"))
    .option("--json", "print machine-readable JSON")
    .option("--timeout-ms <ms>", "deadline of each request", "10000")
    .addHelpText(
      "after",
      `\nExit codes: ${EXIT.OK} ok, ${EXIT.FAILURE} failure, ${EXIT.USAGE} usage, ${EXIT.UNREACHABLE} node unreachable, ${EXIT.NOT_PROVISIONED} not provisioned, ${EXIT.REFUSED} refused by the node, ${EXIT.UNAUTHORIZED} wrong or missing admin token, ${EXIT.WRONG_CLUSTER} node of another cluster (--cluster).`,
    );

  ctl.addCommand(statusCommand({ action, print, intArg, usage }));

  ctl
    .command("provision")
    .description("Provision the cluster, with the node at --address as its first metadata member")
    .option("--num-partitions <n>", "number of partitions (fixed for the cluster's lifetime)", "8")
    .option("--replication <r>", "default replication of logs and partitions (default: what the cluster's size allows; 1 for one node)")
    .action(
      action<{ numPartitions: string; replication?: string }>(async (g, _args, opts) => {
        const numPartitions = intArg("--num-partitions", opts.numPartitions);
        const replication = opts.replication === undefined ? undefined : intArg("--replication", opts.replication);
        const client = adminClient(g);
        const cluster = await call(g, () =>
          client.POST("/v1/cluster/provision", { body: { numPartitions, ...(replication !== undefined ? { replication } : {}) } }),
        );
        const picked =
          replication === undefined
            ? ` (picked by the node: replication ${cluster.replication} is what a cluster of ${cluster.replication === 1 ? "one or two nodes" : "its size"} allows; pass --replication to choose)`
            : "";
        print(g, cluster, () =>
          `Provisioned cluster '${cluster.name}' (fingerprint ${cluster.fingerprint}): ${cluster.numPartitions} partitions, replication ${cluster.replication}${picked}.\n` +
          (cluster.replication === 1
            ? "warning CAIRN-CLUSTER-0008: single-replica setup: replication 1 keeps one copy of each record; losing this node's disk loses data and nothing is fault tolerant.\n"
            : ""),
        );
      }),
    );

  const metadata = ctl.command("metadata").description("Read and write the metadata store");
  metadata
    .command("list")
    .description("List keys and their versions, a page at a time (--all follows the pages to the end)")
    .option("--prefix <prefix>", "only keys starting with this", "")
    .option("--after <key>", "start after this key (the cursor a previous page printed)")
    .option("--limit <n>", "keys per page (1-10000)", (v) => Number(v), 1000)
    .option("--all", "print every page, one after another (never holds more than a page)")
    .option("--stale", "read this node's local copy instead of a linearizable read")
    .action(
      action<{ prefix: string; after?: string; limit: number; all?: boolean; stale?: boolean }>(async (g, _args, opts) => {
        const client = adminClient(g);
        let after = opts.after;
        let printed = 0;
        for (;;) {
          const query = { prefix: opts.prefix, limit: opts.limit, consistency: opts.stale ? ("stale" as const) : ("linearizable" as const), ...(after !== undefined ? { after } : {}) };
          const r = await call(g, () => client.GET("/v1/metadata", { params: { query } }));
          printed += r.keys.length;
          const more = r.next !== null && !opts.all ? `(more: --after ${r.next})\n` : "";
          print(g, r, () => r.keys.map((k) => `${k.key}\tv${k.version}\n`).join("") + (printed === 0 && r.next === null ? "(no keys)\n" : more));
          if (!opts.all || r.next === null) break;
          after = r.next;
        }
      }),
    );
  metadata
    .command("get <key>")
    .description("Print a key's value and version")
    .option("--stale", "read this node's local copy instead of a linearizable read")
    .action(
      action<{ stale?: boolean }>(async (g, [key], opts) => {
        const client = adminClient(g);
        const r = await call(g, () =>
          client.GET("/v1/metadata/{key}", {
            params: { path: { key: key! }, query: { consistency: opts.stale ? "stale" : "linearizable" } },
          }),
        );
        print(g, r, () => `# ${r.key} version ${r.version}\n${JSON.stringify(r.value, null, 2)}\n`);
      }),
    );
  metadata
    .command("put <key> <json>")
    .description("Write a key; the value is a JSON document ('-' reads it from standard input)")
    .option("--version <v>", "write only if the key is at this version")
    .option("--create", "write only if the key does not exist")
    .action(
      action<{ version?: string; create?: boolean }>(async (g, [key, json], opts) => {
        const text = json === "-" ? await Bun.stdin.text() : json!;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (e) {
          usage(`the value is not valid JSON: ${(e as Error).message}`);
        }
        if (opts.version !== undefined && opts.create) usage("use either --version or --create, not both");
        const headers: Record<string, string> = {};
        if (opts.version !== undefined) headers["if-match"] = String(intArg("--version", opts.version));
        if (opts.create) headers["if-none-match"] = "*";
        const client = adminClient(g);
        const r = await call(g, () => client.PUT("/v1/metadata/{key}", { params: { path: { key: key! }, header: headers }, body: value }));
        print(g, r, () => `${r.key} is now at version ${r.version}\n`);
      }),
    );
  metadata
    .command("delete <key>")
    .description("Delete a key")
    .option("--version <v>", "delete only if the key is at this version")
    .action(
      action<{ version?: string }>(async (g, [key], opts) => {
        const headers: Record<string, string> = {};
        if (opts.version !== undefined) headers["if-match"] = String(intArg("--version", opts.version));
        const client = adminClient(g);
        const r = await call(g, () => client.DELETE("/v1/metadata/{key}", { params: { path: { key: key! }, header: headers } }));
        print(g, r, () => `deleted ${r.key} (was version ${r.version})\n`);
      }),
    );

  const ms = ctl.command("metadata-server").description("The metadata cluster's servers and membership");
  const renderServers = (r: { servers: Array<{ node: string; name: string; state: string; fabricAddress: string; status: { state: string; raft: { role: string; term: number; leader: string | null; commitIndex: number; appliedIndex: number } | null } | null; error: string | null }> }) =>
    [
      ["NODE", "NAME", "STATE", "LOCAL", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "ADDRESS"].join("\t"),
      ...r.servers.map((x) =>
        [
          x.node,
          x.name,
          x.state,
          x.status?.state ?? (x.error ? "unreachable" : "-"),
          x.status?.raft?.role ?? "-",
          x.status?.raft?.term ?? "-",
          x.status?.raft?.leader ?? "-",
          x.status?.raft?.commitIndex ?? "-",
          x.status?.raft?.appliedIndex ?? "-",
          x.fabricAddress,
        ].join("\t"),
      ),
    ].join("\n") + "\n";
  ms.command("list")
    .description("Every node with the metadata-server role: its state, raft role, term, leader and indexes")
    .action(
      action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/metadata-servers"));
        print(g, r, () => renderServers(r));
      }),
    );
  ms.command("status")
    .description("The metadata server of the node at --address")
    .action(
      action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/metadata-server/status"));
        print(g, r, () => JSON.stringify(r, null, 2) + "\n");
      }),
    );
  ms.command("add <node>")
    .description("Ask a standby node (id N<x> or name) to join the metadata cluster")
    .action(
      action(async (g, [node]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.POST("/v1/metadata-servers/{node}/add", { params: { path: { node: node! } } }));
        print(g, r, () => `${node} is joining the metadata cluster.\n` + renderServers(r));
      }),
    );
  ms.command("remove <node>")
    .description("Remove a member (id N<x> or name) from the metadata cluster; it becomes standby")
    .action(
      action(async (g, [node]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.POST("/v1/metadata-servers/{node}/remove", { params: { path: { node: node! } } }));
        print(g, r, () => `${node} was removed from the metadata cluster.\n` + renderServers(r));
      }),
    );

  ctl.addCommand(logsCommand({ action, print, intArg, usage }));
  ctl.addCommand(snapshotsCommand({ action, print, intArg, usage }));
  ctl.addCommand(deploymentsCommand({ action, print, intArg, usage }));
  ctl.addCommand(servicesCommand({ action, print, intArg, usage }));
  ctl.addCommand(invocationsCommand({ action, print, intArg, usage }));
  ctl.addCommand(partitionsCommand({ action, print, intArg, usage }));

  ctl.addCommand(nodesCommand({ action, print, intArg, usage }));
  ctl.addCommand(configCommand({ action, print, intArg, usage }));
  return ctl;
}
