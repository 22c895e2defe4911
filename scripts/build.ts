// Builds dist/cairn: one self-contained executable (bun build --compile) with bytecode for a fast
// start. The git commit is baked in for `cairn version`.
import { mkdirSync } from "node:fs";

const commit = (() => {
  const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { stderr: "ignore" });
  return r.success ? r.stdout.toString().trim() : "unknown";
})();

mkdirSync("dist", { recursive: true });
const cmd = [
  process.execPath,
  "build",
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  `--define`,
  `CAIRN_BUILD_COMMIT=${JSON.stringify(commit)}`,
  "src/main.ts",
  // Worker entry points must be in the binary (new Worker() finds them there by path).
  "src/metadata/quick-check-worker.ts",
  "src/snapshot/export-worker.ts",
  "src/logserver/checkpoint-worker.ts",
  "--outfile",
  "dist/cairn",
];
const r = Bun.spawnSync(cmd, { stdout: "inherit", stderr: "inherit" });
if (!r.success) process.exit(r.exitCode ?? 1);
console.log(`built dist/cairn (commit ${commit})`);
