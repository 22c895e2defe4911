// Turns every failure of an admin request into application/problem+json with a catalogue code:
// our CairnErrors keep theirs; Elysia's validation/parse/not-found errors get CAIRN-API-* codes;
// anything else is a bug, logged, and answered with CAIRN-API-0005 (never a stack trace).
import { CairnError } from "../../observability/errors.ts";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export function problemResponse(error: CairnError): Response {
  return new Response(JSON.stringify(error.toProblem()), {
    status: error.status,
    headers: { "content-type": PROBLEM_CONTENT_TYPE },
  });
}

interface ValidationLike {
  all?: Array<{ path?: string; message?: string; summary?: string }>;
  type?: string;
  message: string;
}

/** Map an error thrown inside Elysia's pipeline to a CairnError. */
export function toCairnError(code: string | number, error: unknown, onBug: (e: unknown) => void): CairnError {
  if (error instanceof CairnError) return error;
  switch (code) {
    case "VALIDATION": {
      const v = error as ValidationLike;
      const first = v.all?.[0];
      const where = v.type ?? "request";
      const field = first?.path ? ` at '${first.path}'` : "";
      const msg = first?.summary ?? first?.message ?? "does not match the schema";
      return new CairnError("API_VALIDATION", `invalid ${where}${field}: ${msg}`, {
        errors: (v.all ?? []).slice(0, 10).map((e) => ({ path: e.path ?? "", message: e.summary ?? e.message ?? "" })),
      });
    }
    case "PARSE":
      return new CairnError("API_MALFORMED_BODY", "the request body is not valid JSON");
    case "NOT_FOUND":
      return new CairnError("API_NOT_FOUND", "no route matches this method and path");
    default:
      onBug(error);
      return new CairnError("API_INTERNAL", "internal error while handling the request");
  }
}
