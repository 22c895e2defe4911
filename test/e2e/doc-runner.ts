// Runs the console sessions of a Markdown document as a test, so that a walkthrough and the binary
// can never disagree silently. A ```console block holds commands (lines starting with `$ `) each
// followed by its expected output. In expected output `…` matches any text within a line and a line
// that is only `…` matches any number of lines (also none). Commands run with bash in a scratch
// directory with `cairn` on the PATH; a command ending in `&` runs in the background (its output goes
// to a file, its PID is tracked and stopped at the end). The document's default ports (admin 9070–
// 9072, data plane 8080–8082, fabric 5122–5124) are replaced by free ones, in commands and in
// expected output alike, so the walkthrough can run beside anything else.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Whether a process lives (a zombie does not count). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

export interface DocStep {
  /** 1-based line of the command in the document. */
  readonly line: number;
  readonly command: string;
  readonly expected: string[];
}

/** Every command of the document's console blocks, with the output it is documented to print. */
export function parseConsoleBlocks(markdown: string): DocStep[] {
  const steps: DocStep[] = [];
  const lines = markdown.split("\n");
  let inBlock = false;
  let current: { line: number; command: string; expected: string[] } | undefined;
  for (const [i, raw] of lines.entries()) {
    if (!inBlock) {
      if (raw.trim() === "```console") inBlock = true;
      continue;
    }
    if (raw.trim() === "```") {
      if (current) steps.push(current);
      current = undefined;
      inBlock = false;
      continue;
    }
    if (raw.startsWith("$ ")) {
      if (current) steps.push(current);
      current = { line: i + 1, command: raw.slice(2), expected: [] };
      continue;
    }
    // A command continued on the next line (trailing backslash).
    if (current && current.expected.length === 0 && current.command.endsWith("\\")) {
      current.command = `${current.command.slice(0, -1)}${raw.trimStart()}`;
      continue;
    }
    if (current === undefined) throw new Error(`line ${i + 1}: output before any command in a console block`);
    current.expected.push(raw);
  }
  if (inBlock) throw new Error("a console block is not closed");
  return steps;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Whether `actual` lines match the `expected` pattern lines (see the header for `…`). */
export function outputMatches(expected: readonly string[], actual: readonly string[]): boolean {
  const trimEnd = (xs: readonly string[]) => {
    const out = xs.map((x) => x.replace(/\s+$/, ""));
    while (out.length > 0 && out[out.length - 1] === "") out.pop();
    return out;
  };
  const exp = trimEnd(expected);
  const act = trimEnd(actual);
  const patterns = exp.map((e) => (e.trim() === "…" ? null : new RegExp(`^${e.split("…").map(escapeRegExp).join(".*")}$`)));
  // Classic glob matching over lines: a `…` line may absorb any number of actual lines.
  const memo = new Map<string, boolean>();
  const match = (p: number, a: number): boolean => {
    const key = `${p}:${a}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    if (p === patterns.length) r = a === act.length;
    else if (patterns[p] === null) r = match(p + 1, a) || (a < act.length && match(p, a + 1));
    else r = a < act.length && patterns[p]!.test(act[a]!) && match(p + 1, a + 1);
    memo.set(key, r);
    return r;
  };
  return match(0, 0);
}

/** The document's default ports. */
export const DOC_PORTS = [9070, 9071, 9072, 8080, 8081, 8082, 5122, 5123, 5124] as const;

/** Replaces every documented port (after a colon) by its stand-in. */
export function remapPorts(text: string, ports: ReadonlyMap<number, number>): string {
  return text.replace(/:(\d{4})\b/g, (whole, p: string) => {
    const to = ports.get(Number(p));
    return to === undefined ? whole : `:${to}`;
  });
}

export interface StepResult {
  readonly exitCode: number;
  readonly output: string;
}

/** Runs commands in one scratch directory; background ones are tracked and stopped by PID. */
export class DocShell {
  private readonly background: number[] = [];
  private count = 0;

  constructor(
    readonly dir: string,
    private readonly env: Record<string, string>,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  async run(command: string, timeoutMs: number): Promise<StepResult> {
    const trimmed = command.trim();
    if (trimmed.endsWith("&")) {
      const logPath = join(this.dir, `background-${++this.count}.log`);
      writeFileSync(logPath, "");
      // exec: the PID tracked is the command's own, not a shell's.
      const proc = Bun.spawn(["bash", "-c", `exec ${trimmed.slice(0, -1).trim()} >>'${logPath}' 2>&1`], { cwd: this.dir, env: this.env, stdio: ["ignore", "ignore", "ignore"] });
      this.background.push(proc.pid);
      return { exitCode: 0, output: "" };
    }
    const proc = Bun.spawn(["bash", "-c", command], { cwd: this.dir, env: this.env, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const exitCode = await proc.exited;
    clearTimeout(timer);
    return { exitCode, output: out + err };
  }

  /** Stops every background process still alive (SIGTERM, then SIGKILL after a grace period). */
  async stopAll(graceMs = 10_000): Promise<void> {
    for (const pid of this.background) if (pidAlive(pid)) process.kill(pid, "SIGTERM");
    const deadline = performance.now() + graceMs;
    while (this.background.some(pidAlive) && performance.now() < deadline) await Bun.sleep(50);
    for (const pid of this.background) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
  }
}
