// `cairn server`: run one node in the foreground until SIGTERM/SIGINT.
import { Command } from "commander";
import { configToToml, loadConfig, type Config } from "../config/index.ts";
import { Node } from "../node/index.ts";
import { CairnError } from "../observability/errors.ts";
import { createLogger } from "../observability/log.ts";
import { EXIT } from "./exit-codes.ts";
import { configFlags, overridesFromFlags, type ConfigFlagValues } from "./config-flags.ts";

export function serverCommand(): Command {
  const cmd = new Command("server")
    .description("Run a cairn node in the foreground (stop it with SIGTERM or Ctrl-C)")
    .option("--dump-config", "print the effective configuration as TOML and exit");
  configFlags(cmd);
  return cmd.action(async (opts: ConfigFlagValues & { dumpConfig?: boolean }) => {
    const config = loadEffectiveConfig(opts);
    if (opts.dumpConfig) {
      process.stdout.write(configToToml(config));
      return;
    }
    await runServer(config);
  });
}

export function loadEffectiveConfig(opts: ConfigFlagValues): Config {
  return loadConfig({
    configFile: opts.config ?? process.env.CAIRN_CONFIG,
    env: process.env,
    overrides: overridesFromFlags(opts),
  }).config;
}

async function runServer(config: Config): Promise<void> {
  const log = createLogger({ level: config.log.level, node: config["node-name"], format: config.log.format });
  process.on("uncaughtException", (e) => {
    // Last resort: log it so a bug is visible, then let the node go on (see bun-stack.md pitfall 8).
    log.error({ err: e }, "uncaught exception");
  });
  const node = new Node({ config, logger: log });
  let signals = 0;
  const onSignal = (signal: string) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(EXIT.FAILURE);
    }
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ timeoutMs: config["shutdown-timeout-ms"] }, "graceful shutdown took too long: exiting");
      process.exit(EXIT.FAILURE);
    }, config["shutdown-timeout-ms"]);
    timer.unref();
    node.stop(`received ${signal}`).then(
      () => process.exit(EXIT.OK),
      (e) => {
        log.error({ err: e }, "error during shutdown");
        process.exit(EXIT.FAILURE);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  if (process.env.CAIRN_EXIT_WITH_PARENT === "1") {
    // Started by a supervisor (`cairn dev`): when it dies, even by SIGKILL, this process is
    // re-parented; stop rather than linger as an orphan.
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) onSignal("parent exit");
    }, 1_000).unref();
  }
  try {
    await node.start();
  } catch (e) {
    if (e instanceof CairnError) {
      process.stderr.write(e.toDisplay() + "\n");
      process.exit(e.status < 500 || e.code === "CAIRN-NODE-0001" ? EXIT.USAGE : EXIT.FAILURE);
    }
    throw e;
  }
}
