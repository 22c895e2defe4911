// openapi/cairn.json and openapi/cairn.d.ts are committed build outputs: they must equal what the
// current server code produces. Regenerate both with `bun run openapi`.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { openApiText } from "../../src/admin/index.ts";

const ROOT = join(import.meta.dir, "../..");

describe("committed OpenAPI outputs", () => {
  test("openapi/cairn.json equals the document the server emits (run `bun run openapi`)", async () => {
    expect(readFileSync(join(ROOT, "openapi/cairn.json"), "utf8")).toBe(await openApiText());
  });

  test("openapi/cairn.d.ts equals openapi-typescript's output for it (run `bun run openapi`)", async () => {
    const doc = JSON.parse(await openApiText());
    const generated = astToString(await openapiTS(doc));
    const committed = readFileSync(join(ROOT, "openapi/cairn.d.ts"), "utf8");
    // The CLI prepends a banner comment; compare the declarations.
    const strip = (s: string) => s.replace(/^\/\*\*[\s\S]*?\*\/\s*/, "").trim();
    expect(strip(committed)).toBe(strip(generated));
  });

  test("every operation has an operationId, a tag, a summary and a problem response for 500", async () => {
    const doc = JSON.parse(await openApiText()) as {
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; summary?: string; responses: Record<string, { content?: Record<string, unknown> }> }>>;
    };
    const ids = new Set<string>();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.operationId, where).toBeString();
        expect(ids.has(op.operationId!), `${where} duplicate operationId`).toBe(false);
        ids.add(op.operationId!);
        expect(op.tags?.length, where).toBeGreaterThan(0);
        expect(op.summary, where).toBeString();
        expect(Object.keys(op.responses["500"]?.content ?? {}), where).toEqual(["application/problem+json"]);
      }
    }
    expect(ids.size).toBeGreaterThanOrEqual(6);
  });
});
