// `cairn dev`: a local cluster for trying cairn out. Starts N nodes on 127.0.0.1 (one process
// each, ports offset per node): the first, provisions the cluster through it, then the others,
// which join the metadata cluster by themselves. Prints the URLs once every node is a metadata
// member, and stops them all (by PID) on Ctrl-C; children also stop by themselves if this process
// dies. Each node's log lines go to <base-dir>/<node>/cairn.log as JSON and to standard error:
// readable, coloured and behind the node's name on a terminal, JSON otherwise or with --json-logs
// (dev-log.ts). --single-node is the explicit single-replica setup: one node, replication 1.
import { Command } from "commander";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { DataDir, autoReplication, type Addresses } from "../node/index.ts";
import { devLineFormatter } from "./dev-log.ts";
import { EXIT } from "./exit-codes.ts";
import { selfCommand } from "./self.ts";

interface DevOptions {
  nodes: string;
  baseDir: string;
  adminPort: string;
  fabricPort: string;
  ingressPort: string;
  clusterName: string;
  readyTimeoutMs: string;
  numPartitions: string;
  replication?: string;
  json?: boolean;
  jsonLogs?: boolean;
  singleNode?: boolean;
}

interface DevNode {
  name: string;
  dir: string;
  proc: Subprocess;
  addresses?: Addresses;
}

function portFor(base: number, i: number): number {
  return base === 0 ? 0 : base + i;
}

function parseIntFlag(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`error: --${name} must be an integer between ${min} and ${max}, got '${v}'\n`);
    process.exit(EXIT.USAGE);
  }
  return n;
}

async function waitReady(node: DevNode, deadlineMs: number): Promise<void> {
  while (Date.now() < deadlineMs) {
    if (node.proc.exitCode !== null || node.proc.signalCode !== null) {
      throw new Error(`${node.name} exited during start-up (code ${node.proc.exitCode ?? node.proc.signalCode}); see ${join(node.dir, "cairn.log")}`);
    }
    const published = readAddressesQuietly(node.dir);
    if (published?.pid === node.proc.pid) node.addresses = published;
    if (node.addresses !== undefined) {
      try {
        const res = await fetch(`${node.addresses.admin}/ready`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        // Not listening yet.
      }
    }
    await Bun.sleep(50);
  }
  throw new Error(`${node.name} did not become ready in time; see ${join(node.dir, "cairn.log")}`);
}

/** Copy a child's output line by line: to its log file as is, to our stderr as `format` shows it. */
async function pump(stream: ReadableStream<Uint8Array>, format: (line: string) => string, logFd: number): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    writeSync(logFd, chunk);
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      process.stderr.write(format(pending.slice(0, nl)));
      pending = pending.slice(nl + 1);
    }
  }
  if (pending) process.stderr.write(format(pending));
}

/** Provision through the first node; an already provisioned cluster (a restarted dev cluster) is fine. */
async function provision(admin: string, numPartitions: number, replication: number): Promise<void> {
  const res = await fetch(`${admin}/v1/cluster/provision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ numPartitions, replication }),
  });
  if (res.ok || res.status === 409) return;
  throw new Error(`provisioning failed: HTTP ${res.status} ${await res.text()}`);
}

/** Wait until `count` nodes are metadata members and a leader is known. */
async function waitForMembers(admin: string, count: number, deadlineMs: number): Promise<void> {
  let last = "";
  while (Date.now() < deadlineMs) {
    try {
      const res = await fetch(`${admin}/v1/metadata-servers`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) {
        const body = (await res.json()) as { servers: Array<{ node: string; state: string; status: { raft: { leader: string | null } | null } | null }> };
        const members = body.servers.filter((s) => s.state === "member");
        last = body.servers.map((s) => `${s.node}:${s.state}`).join(", ");
        if (members.length >= count && members.some((m) => m.status?.raft?.leader)) return;
      }
    } catch {
      // Not answering yet.
    }
    await Bun.sleep(100);
  }
  throw new Error(`the metadata cluster did not reach ${count} members in time (last seen: ${last || "nothing"})`);
}

function readAddressesQuietly(dir: string): Addresses | undefined {
  try {
    return DataDir.readAddresses(dir);
  } catch {
    return undefined; // Being written right now.
  }
}

export async function stopAll(nodes: DevNode[], timeoutMs: number): Promise<void> {
  for (const n of nodes) {
    if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill("SIGTERM");
  }
  const all = Promise.all(nodes.map((n) => n.proc.exited));
  const timedOut = await Promise.race([all.then(() => false), Bun.sleep(timeoutMs).then(() => true)]);
  if (timedOut) {
    for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill("SIGKILL");
    await all;
  }
}

export function devCommand(): Command {
  return new Command("dev")
    .description("Start a local cluster of N nodes on 127.0.0.1 (one process each) and print its URLs")
    .option("-n, --nodes <n>", "number of nodes", "3")
    .option("--base-dir <dir>", "directory holding one data directory per node", "./cairn-data/dev")
    .option("--cluster-name <name>", "cluster name", "dev")
    .option("--admin-port <port>", "admin port of the first node (node i adds i; 0 = random)", "9070")
    .option("--fabric-port <port>", "fabric port of the first node (node i adds i; 0 = random)", "5122")
    .option("--ingress-port <port>", "data-plane port of the first node (node i adds i; 0 = random)", "8080")
    .option("--ready-timeout-ms <ms>", "how long to wait for every node to be ready", "60000")
    .option("--num-partitions <n>", "partitions of the new cluster", "8")
    .option("--replication <r>", "default replication (default: what the cluster's size allows: 1 for one or two nodes, 2 for three or four, 3 from five)")
    .option("--single-node", "the explicit single-replica setup: one node, replication 1 (nothing is fault tolerant)")
    .option("--json", "print the cluster's addresses as one JSON line once ready")
    .option("--json-logs", "the nodes' log lines as JSON on standard error even on a terminal")
    .action(async (opts: DevOptions, cmd: Command) => {
      if (opts.singleNode) {
        const nodesGiven = cmd.getOptionValueSource("nodes") === "cli" && opts.nodes !== "1";
        if (nodesGiven || (opts.replication !== undefined && opts.replication !== "1")) {
          process.stderr.write("error: --single-node runs one node with replication 1; leave out --nodes and --replication\n");
          process.exit(EXIT.USAGE);
        }
        opts.nodes = "1";
        opts.replication = "1";
      }
      const count = parseIntFlag("nodes", opts.nodes, 1, 9);
      const adminBase = parseIntFlag("admin-port", opts.adminPort, 0, 65535);
      const fabricBase = parseIntFlag("fabric-port", opts.fabricPort, 0, 65535);
      const ingressBase = parseIntFlag("ingress-port", opts.ingressPort, 0, 65535);
      const readyTimeoutMs = parseIntFlag("ready-timeout-ms", opts.readyTimeoutMs, 1, 3_600_000);
      const baseDir = resolve(opts.baseDir);
      const nodes: DevNode[] = [];
      let shuttingDown = false;
      const shutdown = async (code: number) => {
        if (shuttingDown) return;
        shuttingDown = true;
        await stopAll(nodes, 10_000);
        process.exit(code);
      };
      process.on("SIGINT", () => void shutdown(EXIT.OK));
      process.on("SIGTERM", () => void shutdown(EXIT.OK));

      const numPartitions = parseIntFlag("num-partitions", opts.numPartitions, 1, 65535);
      const replication = opts.replication === undefined ? autoReplication(count) : parseIntFlag("replication", opts.replication, 1, count);
      const pretty = process.stderr.isTTY === true && !opts.jsonLogs;
      const formatLine = devLineFormatter({ pretty, colour: pretty && !process.env.NO_COLOR, nameWidth: `node-${count}`.length });
      const spawnNode = (i: number, extra: string[]): DevNode => {
        const name = `node-${i + 1}`;
        const dir = join(baseDir, name);
        mkdirSync(dir, { recursive: true });
        const proc = Bun.spawn(
          [
            ...selfCommand(),
            "server",
            "--node-name", name,
            "--base-dir", dir,
            "--cluster-name", opts.clusterName,
            "--admin-address", `127.0.0.1:${portFor(adminBase, i)}`,
            "--fabric-address", `127.0.0.1:${portFor(fabricBase, i)}`,
            "--ingress-address", `127.0.0.1:${portFor(ingressBase, i)}`,
            // JSON always: the log file keeps it, and this supervisor renders it for a terminal.
            "--set", "log.format=json",
            // One repository for every node (any may lead a partition and snapshot or bootstrap it).
            "--set", "snapshots.repository=file",
            "--set", `snapshots.path=${join(baseDir, "snapshots")}`,
            ...extra,
          ],
          {
            stdout: "pipe",
            stderr: "pipe",
            stdin: "ignore",
            // The child stops by itself if this supervisor dies, even by SIGKILL: no orphans.
            env: { ...process.env, CAIRN_EXIT_WITH_PARENT: "1" },
          },
        );
        const logFd = openSync(join(dir, "cairn.log"), "a");
        const format = (line: string) => formatLine(i, name, line);
        void Promise.all([pump(proc.stdout, format, logFd), pump(proc.stderr, format, logFd)]).finally(() => closeSync(logFd));
        const node = { name, dir, proc };
        nodes.push(node);
        return node;
      };
      const deadline = Date.now() + readyTimeoutMs;
      try {
        const first = spawnNode(0, []);
        await waitReady(first, deadline);
        await provision(first.addresses!.admin, numPartitions, replication);
        const seeds = ["--set", `metadata-client.addresses=${first.addresses!.fabric}`];
        const rest = Array.from({ length: count - 1 }, (_, k) => spawnNode(k + 1, seeds));
        await Promise.all(rest.map((n) => waitReady(n, deadline)));
        await waitForMembers(first.addresses!.admin, count, deadline);
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        await shutdown(EXIT.FAILURE);
        return;
      }
      if (opts.json) {
        const out = nodes.map((n) => ({ name: n.name, dataDir: n.dir, ...n.addresses! }));
        process.stdout.write(JSON.stringify({ cluster: opts.clusterName, nodes: out }) + "\n");
      } else {
        process.stdout.write(
          `cairn dev cluster '${opts.clusterName}' is up: ${count} node(s), all metadata members; ${numPartitions} partitions, replication ${replication}\n\n`,
        );
        if (replication === 1) {
          process.stdout.write(
            `  warning CAIRN-CLUSTER-0008: single-replica setup: every record is kept once, nothing is fault tolerant${count === 1 ? "" : " (pass --replication 2 for copies)"}\n\n`,
          );
        }
        for (const n of nodes) {
          const a = n.addresses!;
          process.stdout.write(
            `  ${n.name}  pid ${n.proc.pid}\n    admin API  ${a.admin}\n    OpenAPI    ${a.admin}/openapi.json\n${a.ingress ? `    data plane ${a.ingress}  (OpenAPI ${a.ingress}/openapi.json)\n` : ""}    fabric     h2c://${a.fabric}\n    logs       ${join(n.dir, "cairn.log")}\n`,
          );
        }
        const dp = nodes[0]!.addresses!.ingress;
        process.stdout.write(
          `\nTry:  curl ${nodes[0]!.addresses!.admin}/v1/node\n` +
            (dp ? `      curl -X PUT ${dp}/v1/objects/greeter/alice/state/greeting -d hello && curl ${dp}/v1/objects/greeter/alice/state\n` : "") +
            `      CAIRN_ADDRESS=${nodes[0]!.addresses!.admin} cairn ctl snapshots create   (snapshots go to ${join(baseDir, "snapshots")})\n` +
            `Stop with Ctrl-C.\n`,
        );
      }
      // Report nodes that die while the cluster runs; the others keep going.
      for (const n of nodes) {
        void n.proc.exited.then((code) => {
          if (!shuttingDown) process.stderr.write(`warning: ${n.name} (pid ${n.proc.pid}) exited with ${code}; see ${join(n.dir, "cairn.log")}\n`);
        });
      }
    });
}
