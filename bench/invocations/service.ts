// The SDK service both systems call in bench/invocations.ts (the npm @restatedev/restate-sdk,
// unmodified): a stateless `BenchGreeter/greet` and a virtual object `BenchCounter/add` that reads,
// adds and writes one state entry. `bun bench/invocations/service.ts --port 0` serves HTTP/2 with prior
// knowledge (what endpoint.listen() serves) on 127.0.0.1 and prints `listening <port>`.
import * as restate from "@restatedev/restate-sdk";
import http2 from "node:http2";

const args = process.argv.slice(2);
const portIndex = args.indexOf("--port");
const port = portIndex >= 0 ? Number(args[portIndex + 1]) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error("--port needs a port number (0 = any)");

const greeter = restate.service({
  name: "BenchGreeter",
  handlers: {
    greet: async (_ctx: restate.Context, name: string) => `Hello ${name}`,
  },
});

const counter = restate.object({
  name: "BenchCounter",
  handlers: {
    add: async (ctx: restate.ObjectContext, delta: number) => {
      const next = ((await ctx.get<number>("count")) ?? 0) + delta;
      ctx.set("count", next);
      return next;
    },
  },
});

const server = http2.createServer(restate.endpoint().bind(greeter).bind(counter).handler());
const bound = await new Promise<number>((resolve) => server.listen(port, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
console.log(`listening ${bound}`);
