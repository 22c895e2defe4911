// The fault proxy on plain TCP: forwarding, per-direction blackholes that hold bytes until healed,
// resets of open and new connections, delays, and telling which process opened a connection.
import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { FaultProxy, DROP, RESET, PASS } from "./net/fault-proxy.ts";
import { childPids, nodeNameOfPid, pidOwningInode, socketInode } from "./net/socket-owner.ts";
import { Rng } from "./rng.ts";
import { stopProcess, track } from "../helpers/cairn-process.ts";

const servers: net.Server[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.close();
  for (const s of servers) s.close();
});

/** An echo server on 127.0.0.12 that also records what it received. */
async function echoServer(): Promise<{ port: number; received: () => string }> {
  let received = "";
  const server = net.createServer((s) => {
    s.on("data", (d) => {
      received += d.toString();
      s.write(d);
    });
    s.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.12", r));
  return { port: (server.address() as net.AddressInfo).port, received: () => received };
}

/** A proxy for destination "b" where connections from 127.0.0.11 count as source "a". */
async function proxyTo(port: number): Promise<{ proxy: FaultProxy; address: { host: string; port: number } }> {
  const proxy = new FaultProxy(new Rng(1), (s) => (s.remoteAddress === "127.0.0.11" ? "a" : null));
  proxies.push(proxy);
  const addr = await proxy.listen("b", "127.0.0.12");
  proxy.setTarget("b", "127.0.0.12", port);
  const [host, p] = addr.split(":");
  return { proxy, address: { host: host!, port: Number(p) } };
}

interface Client {
  socket: net.Socket;
  got: () => string;
  events: string[];
}

async function connectFromA(address: { host: string; port: number }): Promise<Client> {
  let got = "";
  const events: string[] = [];
  const socket = net.connect({ ...address, localAddress: "127.0.0.11" });
  socket.on("data", (d) => (got += d.toString()));
  socket.on("error", (e) => events.push(`error:${(e as NodeJS.ErrnoException).code}`));
  socket.on("close", () => events.push("close"));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return { socket, got: () => got, events };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

describe("fault proxy", () => {
  test("refuse: open connections are reset and new ones refused by the kernel; accept listens again on the same address", async () => {
    const echo = await echoServer();
    const { proxy, address } = await proxyTo(echo.port);
    const before = await connectFromA(address);
    expect(await proxy.refuse("b")).toBe(1);
    await until("the open connection to close", () => before.events.includes("close"));
    const refused = await connectFromA(address).then(
      () => "connected",
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(refused).toBe("ECONNREFUSED");
    expect(proxy.refused()).toEqual(["b"]);
    await proxy.accept("b");
    expect(proxy.refused()).toEqual([]);
    const after = await connectFromA(address);
    after.socket.write("again");
    await until("the echo", () => after.got() === "again");
    after.socket.destroy();
  });

  test("forwards both directions", async () => {
    const echo = await echoServer();
    const { address } = await proxyTo(echo.port);
    const c = await connectFromA(address);
    c.socket.write("hello");
    await until("echo", () => c.got() === "hello");
    c.socket.destroy();
  });

  test("a blackholed direction holds the bytes, and delivers them in order once healed", async () => {
    const echo = await echoServer();
    const { proxy, address } = await proxyTo(echo.port);
    const c = await connectFromA(address);
    proxy.setLink("a", "b", DROP);
    c.socket.write("one ");
    c.socket.write("two");
    await Bun.sleep(150);
    expect(echo.received()).toBe("");
    expect(c.events).toEqual([]);
    proxy.heal();
    await until("held bytes", () => c.got() === "one two");
    c.socket.destroy();
  });

  test("a one-way cut lets requests through but holds the answers", async () => {
    const echo = await echoServer();
    const { proxy, address } = await proxyTo(echo.port);
    const c = await connectFromA(address);
    proxy.setLink("b", "a", DROP);
    c.socket.write("ping");
    await until("request delivered", () => echo.received() === "ping");
    await Bun.sleep(100);
    expect(c.got()).toBe("");
    proxy.setLink("b", "a", PASS);
    await until("answer delivered", () => c.got() === "ping");
    c.socket.destroy();
  });

  test("reset mode resets open connections and refuses new ones; resetConnections is one-shot", async () => {
    const echo = await echoServer();
    const { proxy, address } = await proxyTo(echo.port);
    const c = await connectFromA(address);
    proxy.setLink("a", "b", RESET);
    await until("reset", () => c.events.includes("close"));
    expect(c.events[0]).toBe("error:ECONNRESET");
    const d = await connectFromA(address).catch(() => null);
    if (d !== null) await until("new connection reset", () => d.events.includes("close"));
    proxy.heal();
    const e = await connectFromA(address);
    e.socket.write("x");
    await until("works again", () => e.got() === "x");
    expect(proxy.resetConnections("a", "b")).toBe(1);
    await until("one-shot reset", () => e.events.includes("close"));
    const f = await connectFromA(address);
    f.socket.write("y");
    await until("works after one-shot", () => f.got() === "y");
    f.socket.destroy();
  });

  test("delay holds each chunk for at least the delay, in order", async () => {
    const echo = await echoServer();
    const { proxy, address } = await proxyTo(echo.port);
    const c = await connectFromA(address);
    proxy.setLink("a", "b", { kind: "delay", ms: 200, jitterMs: 50 });
    const t0 = performance.now();
    for (const ch of "abcdef") c.socket.write(ch);
    await until("delayed echo", () => c.got() === "abcdef");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(180);
    c.socket.destroy();
  });

  test("a destination that goes away resets the client", async () => {
    const echo = await echoServer();
    const { proxy, address } = await proxyTo(echo.port);
    proxy.setTarget("b", "127.0.0.12", 1); // nothing listens on port 1
    const c = await connectFromA(address);
    await until("refused upstream becomes a reset", () => c.events.includes("close"));
  });
});

describe("socket owner", () => {
  test("finds the process that opened a loopback connection, and its --node-name", async () => {
    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => accepted.push(s));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.13", r));
    const port = (server.address() as net.AddressInfo).port;
    const child = Bun.spawn(
      [process.execPath, "-e", `require("node:net").connect(${port}, "127.0.0.13"); setTimeout(() => {}, 30000)`, "--node-name", "n7"],
      { stdout: "ignore", stderr: "ignore" },
    );
    track(child);
    try {
      await until("child connects", () => accepted.length > 0, 15_000);
      const s = accepted[0]!;
      const inode = socketInode(s.remoteAddress!, s.remotePort!, s.localAddress!, s.localPort!);
      expect(inode).toBeDefined();
      expect(childPids(process.pid)).toContain(child.pid);
      expect(pidOwningInode(inode!, [process.pid, child.pid])).toBe(child.pid);
      expect(nodeNameOfPid(child.pid)).toBe("n7");
    } finally {
      await stopProcess(child, "SIGKILL");
    }
  });
});
