#!/usr/bin/env bun
// cairn's single entry point: argv → one of the commands in cli/.
import { Command, CommanderError } from "commander";
import { openApiText } from "./admin/index.ts";
import { dataPlaneOpenApiText } from "./ingress/index.ts";
import { ctlCommand } from "./cli/ctl/index.ts";
import { devCommand } from "./cli/dev.ts";
import { EXIT } from "./cli/exit-codes.ts";
import { serverCommand } from "./cli/server.ts";
import { CairnError } from "./observability/errors.ts";
import { versionInfo } from "./version.ts";

function program(): Command {
  const p = new Command("cairn")
    .description("cairn: a durable-state cluster in one binary")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  p.addCommand(serverCommand());
  p.addCommand(devCommand());
  p.addCommand(ctlCommand());
  p.command("openapi")
    .description("Print the admin API's OpenAPI document (JSON) without starting a server")
    .option("--data-plane", "print the data-plane API's document instead")
    .action(async (opts: { dataPlane?: boolean }) => {
      process.stdout.write(opts.dataPlane ? await dataPlaneOpenApiText() : await openApiText());
    });
  p.command("version")
    .description("Print the version of this binary")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
      const v = versionInfo();
      process.stdout.write(opts.json ? JSON.stringify(v) + "\n" : `cairn ${v.version} (${v.commit}, ${v.runtime})\n`);
    });
  for (const c of p.commands) c.exitOverride();
  return p;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: "user" });
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version displays are not failures; usage errors were already printed.
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help"
        ? EXIT.OK
        : EXIT.USAGE;
    }
    if (e instanceof CairnError) {
      process.stderr.write(e.toDisplay() + "\n");
      return e.code.startsWith("CAIRN-CONFIG-") ? EXIT.USAGE : EXIT.FAILURE;
    }
    throw e;
  }
}

const code = await main(process.argv.slice(2));
if (code !== EXIT.OK) process.exit(code);
