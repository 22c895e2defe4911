// The seam between the fabric server and an HTTP/2 implementation. A transport binds the port, turns
// each request into Router.begin / Exchange.run / Reply, and on close sends GOAWAY, lets in-flight
// requests finish for up to the drain timeout, then cuts what is left.
import { CairnError } from "../observability/errors.ts";
import type { FabricOptions, ServerTransportKind } from "./options.ts";
import type { FabricLogger, Router } from "./router.ts";

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerTransport {
  readonly kind: ServerTransportKind;
  listen(host: string, port: number): Promise<BoundAddress>;
  close(drainTimeoutMs: number): Promise<void>;
}

export interface TransportConfig {
  readonly router: Router;
  readonly options: FabricOptions;
  readonly logger: FabricLogger;
}

/** Maps bind failures to the catalogue; anything else is passed on. */
export function bindError(e: unknown, host: string, port: number): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === "EADDRINUSE") {
    return new CairnError("NODE_PORT_IN_USE", `the fabric port ${host}:${port} is already in use`, { host, port }, { cause: e });
  }
  return e;
}
