// `cairn ctl nodes`: every node of the cluster (list) and the removal of a stopped node that holds
// nothing it would lose (remove). The node answering checks and refuses with a CAIRN code and exit 5.
import { Command } from "commander";
import type { components } from "../../../openapi/cairn.d.ts";
import { adminClient, call } from "./client.ts";
import { table } from "./format.ts";
import type { CtlHelpers } from "./logs.ts";

type NodeList = components["schemas"]["NodeList"];

function nodeTable(r: NodeList): string {
  return table([
    ["ID", "NAME", "STATE", "GEN", "ALIVE", "METADATA", "ROLES", "ADMIN"],
    ...r.nodes.map((n) => [
      n.id,
      n.name,
      n.state,
      n.generation ?? "-",
      n.alive === null ? "-" : n.alive ? "yes" : "NO",
      n.metadataServer ?? "-",
      n.roles.join(",") || "-",
      n.adminAddress ?? "-",
    ]),
  ]);
}

export function nodesCommand(h: CtlHelpers): Command {
  const cmd = new Command("nodes").description("The cluster's nodes: list them, remove a stopped one");
  cmd
    .command("list")
    .alias("ls")
    .description("Every node: id, name, active or removed, generation, whether it answers, metadata-server state, roles, admin address")
    .action(
      h.action(async (g) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/nodes"));
        h.print(g, r, () => nodeTable(r));
      }),
    );
  cmd
    .command("remove <node>")
    .alias("rm")
    .description(
      "Remove a stopped node (N<x> or its name) for good: it is never placed again and its id is never reused. " +
        "Refused while it answers, is a metadata member, leads a partition, sequences a log or holds a log's only copy",
    )
    .action(
      h.action(async (g, [node]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.POST("/v1/nodes/{node}/remove", { params: { path: { node: node! } } }));
        h.print(g, r, () => `${node} was removed from the cluster; the log controller re-replicates the copies it held.\n` + nodeTable(r));
      }),
    );
  return cmd;
}
