// Typed RPC definitions: a service/method name pair with TypeBox schemas for request and response.
// One definition is shared by the handler (FabricServer.register) and the caller (FabricClient.call),
// so both sides agree on the path, the types and the validation. Validators compile on first use.
import { Kind, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { CairnError, invariant, type ErrorName } from "../observability/errors.ts";
import { decodeFrame, encodeFrame } from "./codec.ts";

const NAME_PATTERN = /^[a-z][a-z0-9-]*$/;

export interface RpcSpec<Req extends TSchema, Res extends TSchema> {
  /** Role or component answering the call, e.g. "logserver". Lower-case, digits and dashes. */
  readonly service: string;
  /** Method within the service, e.g. "store". */
  readonly method: string;
  readonly request: Req;
  readonly response: Res;
}

export interface RpcDefinition<Req extends TSchema = TSchema, Res extends TSchema = TSchema> extends RpcSpec<Req, Res> {
  /** `/rpc/<service>/<method>`. */
  readonly path: string;
  /** Encodes a request body (caller side). */
  encodeRequest(request: Static<Req>): Uint8Array;
  /** Decodes and validates a request body (handler side); throws NET_BAD_REQUEST. */
  decodeRequest(body: Uint8Array): Static<Req>;
  /** Encodes a response body (handler side). The handler's result is validated first: a wrong shape
   *  is a bug in the handler, reported as NET_HANDLER_FAILED rather than sent. */
  encodeResponse(response: Static<Res>): Uint8Array;
  /** Decodes and validates a response body (caller side); throws NET_BAD_RESPONSE. */
  decodeResponse(body: Uint8Array): Static<Res>;
}

/** Defines an RPC. Call once per method at module level and share the result between both sides. */
export function defineRpc<Req extends TSchema, Res extends TSchema>(spec: RpcSpec<Req, Res>): RpcDefinition<Req, Res> {
  invariant(NAME_PATTERN.test(spec.service), () => `RPC service name "${spec.service}" must match ${NAME_PATTERN}`);
  invariant(NAME_PATTERN.test(spec.method), () => `RPC method name "${spec.method}" must match ${NAME_PATTERN}`);
  const requestCodec = new SchemaCodec(spec.request);
  const responseCodec = new SchemaCodec(spec.response);
  const path = `/rpc/${spec.service}/${spec.method}`;
  return Object.freeze({
    service: spec.service,
    method: spec.method,
    request: spec.request,
    response: spec.response,
    path,
    encodeRequest: (request: Static<Req>) => requestCodec.encode(request),
    decodeRequest: (body: Uint8Array) => requestCodec.decode(body, "NET_BAD_REQUEST", `request of ${path}`) as Static<Req>,
    encodeResponse: (response: Static<Res>) => {
      responseCodec.check(response, "NET_HANDLER_FAILED", `response of ${path}`);
      return responseCodec.encode(response);
    },
    decodeResponse: (body: Uint8Array) => responseCodec.decode(body, "NET_BAD_RESPONSE", `response of ${path}`) as Static<Res>,
  });
}

/** Frame codec plus compiled validator for one schema. */
class SchemaCodec {
  private compiled: TypeCheck<TSchema> | undefined;
  private readonly mayHoldBinary: boolean;

  constructor(private readonly schema: TSchema) {
    this.mayHoldBinary = schemaMayHoldBinary(schema);
  }

  encode(value: unknown): Uint8Array {
    return encodeFrame(value, this.mayHoldBinary);
  }

  decode(body: Uint8Array, errorName: ErrorName, what: string): unknown {
    let value: unknown;
    try {
      value = decodeFrame(body);
    } catch (e) {
      if (e instanceof CairnError && errorName !== "NET_BAD_REQUEST") {
        throw new CairnError(errorName, `${what}: ${e.message}`, e.details, { cause: e });
      }
      throw e;
    }
    this.check(value, errorName, what);
    return value;
  }

  check(value: unknown, errorName: ErrorName, what: string): void {
    this.compiled ??= TypeCompiler.Compile(this.schema);
    if (this.compiled.Check(value)) return;
    const first = this.compiled.Errors(value).First();
    const path = first?.path || "/";
    const message = first?.message ?? "does not match the schema";
    throw new CairnError(errorName, `${what} is invalid at ${path}: ${message}`, { path, reason: message });
  }
}

/**
 * Whether values of `schema` can contain a Uint8Array. Conservative: schemas that can hold anything
 * (Any, Unknown, Unsafe, references) count as binary.
 */
export function schemaMayHoldBinary(schema: TSchema): boolean {
  const seen = new Set<unknown>();
  const visit = (s: unknown): boolean => {
    if (s === null || typeof s !== "object" || seen.has(s)) return false;
    seen.add(s);
    if (Array.isArray(s)) return s.some(visit); // tuple `items`
    const kind = (s as Record<symbol, unknown>)[Kind];
    if (kind === "Uint8Array" || kind === "Any" || kind === "Unknown" || kind === "Unsafe" || kind === "Ref" || kind === "This") {
      return true;
    }
    const node = s as Record<string, unknown>;
    for (const key of ["items", "additionalProperties", "not"] as const) {
      if (visit(node[key])) return true;
    }
    for (const key of ["anyOf", "allOf", "oneOf", "prefixItems"] as const) {
      const list = node[key];
      if (Array.isArray(list) && list.some(visit)) return true;
    }
    for (const key of ["properties", "patternProperties"] as const) {
      const map = node[key];
      if (map !== null && typeof map === "object" && Object.values(map).some(visit)) return true;
    }
    return false;
  };
  return visit(schema);
}
