// How to start another cairn process running this same code: the compiled binary re-executes
// itself; from source, the Bun runtime runs src/main.ts again.
export function selfCommand(): string[] {
  const main = Bun.main;
  const compiled = main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/");
  return compiled ? [process.execPath] : [process.execPath, main];
}
