// `cairn ctl status`: one overview of the cluster from any node, also one without the metadata-server
// role: the node answering, the cluster's lifecycle state with its reasons, every node (alive,
// generation, roles, uptime, metadata-server state), the metadata service, every log, every
// partition (leader, epoch, applied/durable LSN, lag), and the warnings. On a node that is not provisioned it says so and what to run (exit 4).
import { Command } from "commander";
import type { components } from "../../../openapi/cairn.d.ts";
import { EXIT } from "../exit-codes.ts";
import { adminClient, call } from "./client.ts";
import { duration, table } from "./format.ts";
import type { CtlHelpers } from "./logs.ts";

type Schemas = components["schemas"];
type Status = Schemas["ClusterStatus"];

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19) + "Z";
}

function nodeRows(status: Status): Array<Array<string | number>> {
  return [
    ["ID", "NAME", "GEN", "ALIVE", "UPTIME", "METADATA", "ROLES"],
    ...status.nodes.map((n) => [
      n.id,
      n.name,
      n.generation,
      n.alive === null ? "?" : n.alive ? "yes" : "NO",
      n.uptimeMs === null ? "-" : duration(n.uptimeMs),
      !n.roles.includes("metadata-server")
        ? "-"
        : `${n.metadataServer.state}${n.metadataServer.raftRole ? ` (${n.metadataServer.raftRole})` : n.metadataServer.local && n.metadataServer.local !== n.metadataServer.state ? ` (${n.metadataServer.local})` : ""}`,
      n.roles.join(",") + (n.storeRecovering === true ? " [store recovering from data loss]" : n.storeWritable === false ? " [store refuses writes]" : ""),
    ]),
  ];
}

function logRows(logs: NonNullable<Status["logs"]>): Array<Array<string | number>> {
  return [
    ["LOG", "SEQUENCER", "R", "NODESET", "TAIL", "TRIM", "WRITABLE"],
    ...logs.map((l) => [
      l.id,
      l.sequencer ?? "-",
      l.replication ?? "-",
      l.nodeset.join(",") || "-",
      l.tailLsn ?? "?",
      l.trimPoint,
      l.writable ? "yes" : l.sealed ? "NO (sealed)" : "NO",
    ]),
  ];
}

function partitionRows(partitions: NonNullable<Status["partitions"]>): Array<Array<string | number>> {
  return [
    ["ID", "LEADER", "FOLLOWERS", "EPOCH", "LEADING", "APPLIED", "DURABLE", "TAIL", "LAG"],
    ...partitions.map((p) => [
      p.id,
      p.leader ?? "-",
      p.followers.join(",") || "-",
      p.epoch,
      p.stopped.length > 0 ? "STOPPED" : p.leading ? "yes" : "NO",
      p.appliedLsn ?? "?",
      p.durableLsn ?? "?",
      p.tailLsn ?? "?",
      p.lag ?? "?",
    ]),
  ];
}

const indent = (text: string) =>
  text
    .split("\n")
    .map((l) => (l === "" ? l : `  ${l}`))
    .join("\n");

/** The overview as text (everything after the node's own lines). */
export function renderClusterStatus(status: Status): string {
  const out: string[] = [];
  out.push(
    `State      ${status.state.toUpperCase()} since ${clock(status.sinceMs)} (seen by ${status.observedBy.node ?? "an unregistered node"} ${status.observedBy.name})`,
  );
  for (const r of status.reasons) out.push(`           ${r.code}  ${r.message}`);
  if (status.metadata !== null) {
    const m = status.metadata;
    out.push(
      `Metadata   leader ${m.leader ?? "unknown"}, ${m.members.length} member(s) ${m.members.join(", ")}` +
        (m.term !== null ? `, term ${m.term}, commit ${m.commitIndex ?? "?"}, applied ${m.appliedIndex ?? "?"}` : ""),
    );
  }
  if (status.nodes.length > 0) out.push("", "Nodes", indent(table(nodeRows(status))).trimEnd());
  if (status.logs !== null && status.logs.length > 0) out.push("", "Logs", indent(table(logRows(status.logs))).trimEnd());
  const r = status.replication;
  if (r !== null && r.logs > 0) {
    out.push(`  ${r.logsAtTarget}/${r.logs} logs at replication ${r.target}${r.logsAtTarget < r.logs ? " (the log controller is moving the others)" : ""}`);
  }
  if (status.partitions !== null && status.partitions.length > 0) out.push("", "Partitions", indent(table(partitionRows(status.partitions))).trimEnd());
  if (status.warnings.length > 0) {
    out.push("", "Warnings");
    for (const w of status.warnings) out.push(`  warning ${w.code}: ${w.message}`);
  }
  return out.join("\n") + "\n";
}

export function statusCommand(h: CtlHelpers): Command {
  return new Command("status")
    .description(
      "Show the cluster from any node: its state and why, nodes, metadata service, logs, partitions and warnings (and the node answering)",
    )
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const node = await call(g, () => client.GET("/v1/node"));
        const ready = await client.GET("/ready").catch(() => undefined);
        const readiness = ready?.data ?? {
          ready: false,
          state: node.lifecycle.state,
          reasons: [String((ready?.error as { detail?: string } | undefined)?.detail ?? "unknown")],
        };
        const clusterRes = await client.GET("/v1/cluster").catch(() => undefined);
        const cluster = clusterRes?.data;
        const statusRes = await client.GET("/v1/cluster/status").catch(() => undefined);
        const status = statusRes?.data ?? null;
        const notProvisioned =
          (clusterRes?.error as { code?: string } | undefined)?.code === "CAIRN-CLUSTER-0001" || status?.state === "awaiting-provisioning";
        const runsMetadata = node.roles.includes("metadata-server");
        const nodeLines = [
          `Node       ${node.name} (${node.id ?? "not registered"}, generation ${node.generation})`,
          `State      ${node.lifecycle.state}${readiness.ready ? ", ready" : `, not ready: ${readiness.reasons.join("; ")}`}`,
          `Roles      ${node.roles.join(", ")}`,
          `Admin      ${node.addresses.admin}`,
          `Data plane ${node.addresses.ingress ?? "-  (no ingress role)"}`,
          `Fabric     ${node.addresses.fabric}`,
          `Data dir   ${node.dataDir}`,
          `Version    ${node.version} (pid ${node.pid})`,
          "",
        ];
        const clusterLines = cluster
          ? [`Cluster    ${cluster.name} (fingerprint ${cluster.fingerprint}), ${cluster.numPartitions} partitions, replication ${cluster.replication}`]
          : notProvisioned
            ? [
                `Cluster    ${node.cluster.name}: NOT PROVISIONED`,
                runsMetadata
                  ? `           run: cairn ctl --address ${node.addresses.admin} provision [--num-partitions N] [--replication R]`
                  : `           run: cairn ctl --address <a node with the metadata-server role> provision [--num-partitions N] [--replication R]` +
                    `\n           (this node does not run the metadata-server role; it joins once the cluster is provisioned)`,
              ]
            : [`Cluster    ${node.cluster.name}: unknown (${String((clusterRes?.error as { detail?: string } | undefined)?.detail ?? "no answer")})`];
        const overview = status !== null && !notProvisioned ? renderClusterStatus(status) : "";
        h.print(
          g,
          { node, readiness, cluster: cluster ?? null, provisioned: cluster !== undefined, status },
          () => [...nodeLines, ...clusterLines].join("\n") + "\n" + overview,
        );
        if (notProvisioned) process.exit(EXIT.NOT_PROVISIONED);
      }),
    );
}
