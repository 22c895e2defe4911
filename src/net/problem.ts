// Turns a peer's problem+json answer back into the CairnError it was made from: same catalogue entry,
// same message and extension fields. Codes this version does not know, and bodies that are not
// problems at all, become NET_REMOTE_ERROR carrying what was received.
import { CairnError, ERRORS, type ErrorName } from "../observability/errors.ts";

const NAME_BY_CODE = new Map<string, ErrorName>(Object.entries(ERRORS).map(([name, spec]) => [spec.code, name as ErrorName]));
const STANDARD_FIELDS = new Set(["type", "title", "status", "code", "detail", "hint"]);
const EXCERPT_CHARS = 200;

export function problemToError(status: number, body: Uint8Array, peer: string): CairnError {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  let problem: unknown;
  try {
    problem = JSON.parse(text);
  } catch {
    problem = undefined;
  }
  return problemValueToError(status, problem, peer, text);
}

/**
 * The same for a problem that arrived as a value inside an answer (one per item of a batch call).
 * `text` is what to quote when it is not a problem this version knows.
 */
export function problemValueToError(status: number, problem: unknown, peer: string, text = JSON.stringify(problem) ?? ""): CairnError {
  if (problem !== null && typeof problem === "object" && !Array.isArray(problem)) {
    const fields = problem as Record<string, unknown>;
    const name = typeof fields.code === "string" ? NAME_BY_CODE.get(fields.code) : undefined;
    if (name !== undefined) {
      const details: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(fields)) if (!STANDARD_FIELDS.has(k)) details[k] = v;
      details.peer = peer;
      const detail = typeof fields.detail === "string" ? fields.detail : ERRORS[name].title;
      return new CairnError(name, detail, details);
    }
  }
  const code = problem !== null && typeof problem === "object" ? (problem as Record<string, unknown>).code : undefined;
  return new CairnError("NET_REMOTE_ERROR", `${peer} answered HTTP ${status}${typeof code === "string" ? ` with unknown code ${code}` : ""}`, {
    peer,
    status,
    remoteCode: typeof code === "string" ? code : null,
    bodyExcerpt: text.slice(0, EXCERPT_CHARS),
  });
}
