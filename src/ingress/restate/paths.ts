// Reads a request path of Restate's ingress API into what it asks for: a handler call or send, an
// invocation's attach/output, a workflow's attach/output, an awakeable's completion, or health. Pure:
// the service's type (which decides whether `/A/b/c` is `service/handler/send` or `object/key/handler`)
// comes in from the schema, in the second step `servicePathTarget`.
// Invariants: every path segment is percent-decoded exactly once; a path that is not Restate's gets a
// typed refusal, never a guess; cairn's own names (RESERVED_NAMES) are never read as service names.
import type { ErrorName } from "../../observability/errors.ts";
import type { ServiceType } from "../../worker/invoker/model.ts";

/**
 * First path segments that belong to cairn's data plane (or Restate's own API), so no service can be
 * called by them: the deployments API refuses services with these names.
 */
export const RESERVED_NAMES: readonly string[] = ["v1", "restate", "openapi.json", "openapi-raw.json", "metrics", "health"];

export type OutputOp = "attach" | "output";

export type RestateRoute =
  | { readonly kind: "health" }
  /** `/{Svc}/…` or `/restate/call|send/{Svc}/…`: `rest` are the segments after the service name. */
  | { readonly kind: "service"; readonly service: string; readonly rest: readonly string[]; readonly mode: "call" | "send" | "from-path" }
  | { readonly kind: "invocation-id"; readonly op: OutputOp; readonly invocationId: string }
  /** `/restate/invocation/{Svc}[/{key}]/{handler}/{idempotencyKey}/{op}`: `rest` are the segments between the service and the op. */
  | { readonly kind: "invocation-idempotent"; readonly op: OutputOp; readonly service: string; readonly rest: readonly string[] }
  | { readonly kind: "workflow"; readonly op: OutputOp; readonly service: string; readonly key: string }
  | { readonly kind: "awakeable"; readonly op: "resolve" | "reject"; readonly awakeableId: string }
  /** A cairn path (`/v1/…`, `/metrics`, …) that no cairn route matched. */
  | { readonly kind: "cairn" };

export interface PathRefusal {
  readonly kind: "refused";
  readonly error: ErrorName;
  readonly message: string;
}

const SERVICE_PATH = "bad path: expected /{service}/{handler}[/send] or /{object}/{key}/{handler}[/send]";
const INVOCATION_PATH =
  "bad path: expected /restate/invocation/{invocationId}/attach|output or /restate/invocation/{service}[/{key}]/{handler}/{idempotencyKey}/attach|output";
const WORKFLOW_PATH = "bad path: expected /restate/workflow/{workflow}/{key}/attach|output";
const AWAKEABLE_PATH = "bad path: expected /restate/awakeables/{awakeableId}/resolve|reject (or /restate/a/…)";

const refuse = (error: ErrorName, message: string): PathRefusal => ({ kind: "refused", error, message });
const isOp = (s: string | undefined): s is OutputOp => s === "attach" || s === "output";

/** What the path `pathname` (as sent: percent-encoded) asks for. */
export function parseRestatePath(pathname: string): RestateRoute | PathRefusal {
  const raw = pathname.replace(/^\/+/, "").split("/");
  const segs: string[] = [];
  for (const s of raw) {
    try {
      segs.push(decodeURIComponent(s));
    } catch {
      return refuse("INVOKE_BAD_PATH", `bad path: the segment ${JSON.stringify(s.slice(0, 64))} is not valid percent-encoded UTF-8`);
    }
  }
  const first = segs[0] ?? "";
  if (first !== "restate") {
    if (RESERVED_NAMES.includes(first)) return { kind: "cairn" };
    if (first === "" || segs.length < 2 || segs.length > 4) return refuse("INVOKE_BAD_PATH", SERVICE_PATH);
    return { kind: "service", service: first, rest: segs.slice(1), mode: "from-path" };
  }
  const [, area, ...tail] = segs;
  switch (area) {
    case "health":
      return tail.length === 0 ? { kind: "health" } : refuse("INVOKE_BAD_PATH", "bad path: expected /restate/health");
    case "call":
    case "send": {
      const [service, ...rest] = tail;
      if (service === undefined || service === "" || rest.length < 1 || rest.length > 2) {
        return refuse("INVOKE_BAD_PATH", `bad path: expected /restate/${area}/{service}/{handler} or /restate/${area}/{object}/{key}/{handler}`);
      }
      return { kind: "service", service, rest, mode: area };
    }
    case "invocation": {
      const op = tail[tail.length - 1];
      if (!isOp(op)) return refuse("INVOKE_BAD_PATH", INVOCATION_PATH);
      if (tail.length === 2) return { kind: "invocation-id", op, invocationId: tail[0]! };
      if (tail.length === 4 || tail.length === 5) return { kind: "invocation-idempotent", op, service: tail[0]!, rest: tail.slice(1, -1) };
      return refuse("INVOKE_BAD_PATH", INVOCATION_PATH);
    }
    case "attach":
    case "output":
      return tail.length === 1 ? { kind: "invocation-id", op: area, invocationId: tail[0]! } : refuse("INVOKE_BAD_PATH", `bad path: expected /restate/${area}/{invocationId}`);
    case "workflow": {
      const [service, key, op, ...more] = tail;
      if (service === undefined || key === undefined || !isOp(op) || more.length > 0) return refuse("INVOKE_BAD_PATH", WORKFLOW_PATH);
      return { kind: "workflow", op, service, key };
    }
    case "awakeables":
    case "a": {
      const [awakeableId, op, ...more] = tail;
      if (awakeableId === undefined || (op !== "resolve" && op !== "reject") || more.length > 0) return refuse("INVOKE_BAD_PATH", AWAKEABLE_PATH);
      return { kind: "awakeable", op, awakeableId };
    }
    case "scope":
      return refuse("INVOKE_UNSUPPORTED", "scoped invocations (/restate/scope/…) are not supported by cairn");
    default:
      return refuse("INVOKE_BAD_PATH", `bad path: /restate/${area ?? ""} is not part of the ingress API`);
  }
}

export interface ServicePathTarget {
  readonly key: string | null;
  readonly handler: string;
  readonly send: boolean;
}

/** Reads the segments after a service name, now that the service's type is known. */
export function servicePathTarget(ty: ServiceType, rest: readonly string[], mode: "call" | "send" | "from-path"): ServicePathTarget | PathRefusal {
  const keyed = ty !== "service";
  const explicit = mode !== "from-path";
  let segs = rest;
  let send = mode === "send";
  // `/Svc/handler/send` or `/Obj/key/handler/send`: a trailing `send` turns the call into a send.
  if (!explicit && rest.length === (keyed ? 3 : 2) && rest[rest.length - 1] === "send") {
    segs = rest.slice(0, -1);
    send = true;
  }
  if (keyed) {
    if (segs.length !== 2) return refuse("INVOKE_BAD_PATH", `bad path: ${ty} handlers need a key: /{name}/{key}/{handler}${explicit ? "" : "[/send]"}`);
    return { key: segs[0]!, handler: segs[1]!, send };
  }
  if (segs.length !== 1) return refuse("INVOKE_BAD_PATH", `bad path: a service takes no key: /{service}/{handler}${explicit ? "" : "[/send]"}`);
  return { key: null, handler: segs[0]!, send };
}

/** The (key, handler, idempotency key) of `/restate/invocation/{Svc}[/{key}]/{handler}/{idempotencyKey}/…`. */
export function idempotentTarget(ty: ServiceType, rest: readonly string[]): { key: string | null; handler: string; idempotencyKey: string } | PathRefusal {
  const keyed = ty !== "service";
  if (rest.length !== (keyed ? 3 : 2)) return refuse("INVOKE_BAD_PATH", INVOCATION_PATH);
  return keyed ? { key: rest[0]!, handler: rest[1]!, idempotencyKey: rest[2]! } : { key: null, handler: rest[0]!, idempotencyKey: rest[1]! };
}
