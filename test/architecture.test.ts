// The layering of src/, held by reading every import. One table says which top-level module may
// import which; an import outside it fails the test with file, line and the rule it breaks.
// docs/architecture.md shows the same table. A planted back-edge proves the check can fail.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const SRC = resolve(import.meta.dir, "../src");

/**
 * Module → the modules it may import (besides itself). A module is a folder directly under src/
 * (or a file there: main.ts, version.ts). Read bottom-up: the ground floor imports nothing of ours.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  // ground floor
  observability: [],
  raft: [],
  version: ["package.json"],
  ids: ["observability"],
  net: ["ids", "observability"],
  // roles, lowest first; a role never imports node/ or cli/
  logserver: ["net", "ids", "observability"],
  metadata: ["raft", "net", "ids", "observability"],
  bifrost: ["logserver", "metadata", "net", "ids", "observability"],
  snapshot: ["metadata", "net", "ids", "observability"],
  worker: ["snapshot", "bifrost", "metadata", "net", "ids", "observability"],
  // config composes the sections the roles below it own (bifrost, log-server, net); those roles
  // never import config, they are handed their own section
  config: ["bifrost", "logserver", "net", "ids", "observability"],
  ingress: ["worker", "bifrost", "metadata", "config", "net", "ids", "observability", "version"],
  admin: ["worker", "snapshot", "bifrost", "logserver", "metadata", "config", "net", "ids", "observability", "version"],
  // the node builds and orders the roles; the CLI drives nodes; main dispatches to the CLI
  node: ["admin", "ingress", "worker", "snapshot", "bifrost", "logserver", "metadata", "config", "net", "raft", "ids", "observability", "version"],
  cli: ["node", "admin", "config", "metadata", "bifrost", "net", "ids", "observability", "version", "openapi"],
  main: ["cli", "admin", "ingress", "observability", "version"],
};

export interface ImportEdge {
  file: string;
  line: number;
  from: string;
  to: string;
  specifier: string;
}

function moduleOf(pathInSrc: string): string {
  const first = pathInSrc.split(sep)[0]!;
  return first.endsWith(".ts") ? first.slice(0, -3) : first;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

// Static imports and re-exports (multi-line too), side-effect imports and dynamic import("...").
// Comments are blanked first (keeping line breaks), so an import quoted in a comment is not read.
const IMPORT = /(?:\bimport|\bexport)\s[^;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

function blankComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, " "));
}

/** Every relative import in `text` (a file at `file`, under `srcRoot`) that crosses modules. */
export function crossModuleImports(file: string, text: string, srcRoot: string = SRC): ImportEdge[] {
  const code = blankComments(text);
  const fromModule = moduleOf(relative(srcRoot, file));
  const edges: ImportEdge[] = [];
  for (const m of code.matchAll(IMPORT)) {
    const specifier = m[1] ?? m[2] ?? m[3]!;
    if (!specifier.startsWith(".")) continue; // packages and node: built-ins
    const target = relative(srcRoot, resolve(dirname(file), specifier));
    // Outside src/ only the generated client types and package.json are read (named by their path).
    const toModule = target.startsWith("..") ? target.split(sep).slice(1, 2).join(sep) : moduleOf(target);
    if (toModule === fromModule) continue;
    const line = code.slice(0, m.index).split("\n").length;
    edges.push({ file: relative(resolve(srcRoot, ".."), file), line, from: fromModule, to: toModule, specifier });
  }
  return edges;
}

/** The edges the table does not allow, as messages naming file, line and rule. */
export function violations(edges: readonly ImportEdge[], allowed: Readonly<Record<string, readonly string[]>> = ALLOWED): string[] {
  return edges
    .filter((e) => !(allowed[e.from] ?? []).includes(e.to))
    .map((e) => {
      const rule = allowed[e.from] === undefined ? `${e.from} is not in the table` : `${e.from} may import only [${allowed[e.from]!.join(", ")}]`;
      return `${e.file}:${e.line}: ${e.from} → ${e.to} ("${e.specifier}"): ${rule}`;
    });
}

describe("architecture", () => {
  const files = walk(SRC);
  const edges = files.flatMap((f) => crossModuleImports(f, readFileSync(f, "utf8")));

  test("every module under src/ is in the table", () => {
    const modules = new Set(readdirSync(SRC).map((n) => (n.endsWith(".ts") ? n.slice(0, -3) : n)));
    const missing = [...modules].filter((m) => ALLOWED[m] === undefined);
    expect(missing).toEqual([]);
  });

  test("every import in src/ follows the allowed directions", () => {
    expect(edges.length).toBeGreaterThan(50); // the reader really found the imports
    expect(violations(edges)).toEqual([]);
  });

  test("the table itself has no cycle between modules", () => {
    const state = new Map<string, "visiting" | "done">();
    const cycle: string[] = [];
    const visit = (m: string, path: string[]): boolean => {
      if (state.get(m) === "done") return false;
      if (state.get(m) === "visiting") {
        cycle.push(...path.slice(path.indexOf(m)), m);
        return true;
      }
      state.set(m, "visiting");
      for (const d of ALLOWED[m] ?? []) if (visit(d, [...path, m])) return true;
      state.set(m, "done");
      return false;
    };
    for (const m of Object.keys(ALLOWED)) if (visit(m, [])) break;
    expect(cycle).toEqual([]);
  });

  test("docs/architecture.md shows the same table", () => {
    const doc = readFileSync(resolve(SRC, "../docs/architecture.md"), "utf8");
    const block = /<!-- architecture-table[^>]*-->([\s\S]*?)<!-- \/architecture-table -->/.exec(doc);
    expect(block).not.toBeNull();
    const rows = block![1]!
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| module") && !l.startsWith("|---"))
      .map((l) => l.split("|").map((c) => c.trim()));
    const documented = Object.fromEntries(rows.map(([, m, deps]) => [m!, deps === "—" ? [] : deps!.split(", ").sort()]));
    const table = Object.fromEntries(Object.entries(ALLOWED).map(([m, deps]) => [m, [...deps].sort()]));
    expect(documented).toEqual(table);
  });

  test("the rules the design names hold in the table", () => {
    expect(ALLOWED.raft).toEqual([]);
    expect([...ALLOWED.net!].sort()).toEqual(["ids", "observability"]);
    expect(ALLOWED.logserver).not.toContain("bifrost");
    expect(ALLOWED.metadata).not.toContain("bifrost");
    expect(ALLOWED.metadata).not.toContain("worker");
    for (const [m, deps] of Object.entries(ALLOWED)) {
      if (m !== "main") expect(deps).not.toContain("cli");
      if (!["node", "cli", "main"].includes(m)) expect(deps).not.toContain("node");
    }
  });

  test("a planted back-edge is caught, naming file and line", () => {
    // As if src/logserver/store.ts imported bifrost on its third line, and raft imported ids.
    const planted = [
      'import { Database } from "bun:sqlite";',
      "// a comment that mentions import { x } from \"../bifrost/index.ts\" is not an import",
      'import { Bifrost } from "../bifrost/index.ts";',
      "export {",
      "  lsn,",
      '} from "../ids/index.ts";',
    ].join("\n");
    const found = violations(crossModuleImports(join(SRC, "logserver", "store.ts"), planted));
    expect(found).toEqual([
      'src/logserver/store.ts:3: logserver → bifrost ("../bifrost/index.ts"): logserver may import only [net, ids, observability]',
    ]);
    const raft = violations(crossModuleImports(join(SRC, "raft", "raft.ts"), 'export {\n  lsn,\n} from "../ids/index.ts";\nconst m = await import("../net/index.ts");'));
    expect(raft).toEqual([
      'src/raft/raft.ts:1: raft → ids ("../ids/index.ts"): raft may import only []',
      'src/raft/raft.ts:4: raft → net ("../net/index.ts"): raft may import only []',
    ]);
  });
});
