// `npm test`: type-check, build dist/cairn, then run the whole suite against the built binary.
// Many tests inject faults (kill -9, pauses, partitions through a proxy) into real processes. Run as
// root, the suite runs inside a private network namespace (`unshare --net`, loopback only), so no
// test can reach anything beyond this machine whatever it does; as another user it runs as is (it
// only ever addresses 127.0.0.0/8). CAIRN_TEST_SANDBOX=0 turns the namespace off.
// Extra arguments go to `bun test` (e.g. `npm test -- test/raft`).
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const bun = process.execPath;
const extra = Bun.argv.slice(2);

function run(cmd: string[], env: Record<string, string | undefined> = process.env): number {
  const r = Bun.spawnSync(cmd, { cwd: ROOT, env, stdio: ["inherit", "inherit", "inherit"] });
  return r.exitCode ?? 1;
}

function step(name: string, cmd: string[]): void {
  const code = run(cmd);
  if (code !== 0) {
    console.error(`npm test: ${name} failed (exit ${code})`);
    process.exit(code);
  }
}

step("type-check", [bun, "x", "tsc", "--noEmit", "-p", "."]);
step("build", [bun, "scripts/build.ts"]);

const testCmd = [bun, "test", "--timeout", "120000", ...extra];
const env = { ...process.env, CAIRN_TEST_BINARY: "dist/cairn" };

function sandboxUsable(): boolean {
  if (process.env.CAIRN_TEST_SANDBOX === "0" || process.getuid?.() !== 0) return false;
  const probe = Bun.spawnSync(["unshare", "--net", "--fork", "--", "sh", "-c", "ip link set lo up"], { stdout: "ignore", stderr: "pipe" });
  if (!probe.success) {
    console.error(`npm test: running as root but \`unshare --net\` + \`ip link set lo up\` failed (${probe.stderr.toString().trim() || `exit ${probe.exitCode}`}); running without a private network namespace`);
    return false;
  }
  return true;
}

if (sandboxUsable()) {
  console.error("npm test: running as root: the suite runs inside `unshare --net` (a private network namespace, loopback only)");
  const quoted = testCmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  process.exit(run(["unshare", "--net", "--fork", "--", "sh", "-c", `ip link set lo up && exec ${quoted}`], env));
}
process.exit(run(testCmd, env));
