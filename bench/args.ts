// Command-line options shared by the benchmarks: `--name <number>` and `--flag`. A number that is
// missing or not a non-negative number stops the benchmark with a message naming the option.
const argv = process.argv.slice(2);

export function numArg(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(argv[i + 1]);
  if (argv[i + 1] === undefined || !Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a non-negative number`);
  return v;
}

export function flagArg(name: string): boolean {
  return argv.includes(`--${name}`);
}

/** `--name <value>` where the value must be one of `choices`; null when absent. */
export function choiceArg<T extends string>(name: string, choices: readonly T[]): T | null {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return null;
  const v = argv[i + 1];
  if (!choices.includes(v as T)) throw new Error(`--${name} takes ${choices.map((c) => `"${c}"`).join(" or ")} (got ${v ?? "nothing"})`);
  return v as T;
}

/** `--name 1,2,3`: a comma-separated list of non-negative integers. */
export function listArg(name: string, fallback: number[]): number[] {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const parts = (argv[i + 1] ?? "").split(",").map((p) => p.trim());
  const v = parts.map(Number);
  if (parts.some((p) => p === "") || v.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`--${name} needs a comma-separated list of non-negative integers (got ${argv[i + 1] ?? "nothing"})`);
  return v;
}
