import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CairnError, ERRORS, specByCode } from "../../src/observability/errors.ts";
import { renderErrorDocs } from "../../src/observability/errors-doc.ts";

describe("error catalogue", () => {
  test("every code is unique, well-formed and has an HTTP status, title and hint", () => {
    const codes = Object.values(ERRORS).map((s) => s.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const s of Object.values(ERRORS)) {
      expect(s.code).toMatch(/^CAIRN-[A-Z]+-\d{4}$/);
      expect(s.status).toBeGreaterThanOrEqual(400);
      expect(s.status).toBeLessThan(600);
      expect(s.title.length).toBeGreaterThan(5);
      expect(s.hint.length).toBeGreaterThan(5);
      expect(specByCode(s.code)).toBe(s);
    }
  });

  test("a CairnError renders as a problem document with its code and hint", () => {
    const e = new CairnError("CONFIG_INVALID", "key 'x' is bad", { key: "x" });
    expect(e.toProblem()).toMatchObject({
      status: 400,
      code: "CAIRN-CONFIG-0001",
      detail: "key 'x' is bad",
      hint: ERRORS.CONFIG_INVALID.hint,
      key: "x",
    });
    expect(e.toDisplay()).toStartWith("error CAIRN-CONFIG-0001: key 'x' is bad\n  hint: ");
  });

  test("docs/errors.md lists every code and is current (run `bun run docs` if this fails)", () => {
    const onDisk = readFileSync(join(import.meta.dir, "../../docs/errors.md"), "utf8");
    expect(onDisk).toBe(renderErrorDocs());
    for (const s of Object.values(ERRORS)) expect(onDisk).toContain(s.code);
  });
});
