// The ingress role: serves the data-plane API on `ingress.bind-address` (HTTP/1.1 and h2c) and sends
// each request to the partition's leader through the StateRouter. It owns its port only: stopping it
// closes open connections (a write in flight then has an unknown outcome for its client).
import type { Server } from "bun";
import type { IngressConfig } from "../config/index.ts";
import { CairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import type { StateRouter } from "../worker/index.ts";
import type { InvocationClient, SchemaSource } from "../worker/invoker/model.ts";
import { createIngressApp } from "./app.ts";

export interface IngressRoleDeps {
  readonly config: IngressConfig;
  readonly router: () => StateRouter | undefined;
  readonly spec: () => Promise<unknown>;
  readonly logger: Logger;
  /** Restate's ingress API is served when both are given (see IngressDeps). */
  readonly invocations?: () => InvocationClient | undefined;
  readonly schema?: () => SchemaSource | undefined;
}

export class IngressRole {
  private server: Server<unknown> | undefined;
  private urlValue = "";

  constructor(private readonly deps: IngressRoleDeps) {}

  /** The URL clients reach the data plane at (after start). */
  get url(): string {
    return this.urlValue;
  }

  start(): void {
    const { config, logger } = this.deps;
    const address = config["bind-address"];
    const i = address.lastIndexOf(":");
    const host = address.slice(0, i);
    const port = Number(address.slice(i + 1));
    const app = createIngressApp(
      {
        router: this.deps.router,
        maxValueBytes: config["max-value-bytes"],
        maxBodyBytes: config["max-body-bytes"],
        requestTimeoutMs: config["request-timeout-ms"],
        invocations: this.deps.invocations,
        schema: this.deps.schema,
        invocationWaitMs: config["invocation-wait-ms"],
        onBug: (e) => logger.error({ err: e }, "unexpected error in data-plane handler"),
      },
      this.deps.spec,
    );
    try {
      app.listen({ hostname: host, port, maxRequestBodySize: config["max-body-bytes"] * 2 + 65_536, idleTimeout: 30, http2: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
        throw new CairnError("NODE_PORT_IN_USE", `ingress.bind-address ${address} is already in use`, { key: "ingress.bind-address" });
      }
      throw e;
    }
    if (app.server === null) throw new Error("data-plane server did not start");
    this.server = app.server;
    this.urlValue = `http://${host}:${app.server.port}`;
  }

  async stop(): Promise<void> {
    await this.server?.stop(true);
    this.server = undefined;
  }
}
