// HTTP/2 cleartext (prior knowledge, as Bun.serve takes it beside HTTP/1.1) on the admin port and the
// data-plane port of a real node, attacked with hand-made frames: malformed frames (bad lengths, bad
// HPACK, frames on the wrong stream, flow-control overflow, a truncated preface, an h2c upgrade over
// HTTP/1.1), huge headers (a 1 MiB value, 10 000 fields, an endless CONTINUATION run), stream floods
// (10 000 streams, 10 000 rapid resets, 1 000 streams held open) and request bodies just over 64 KiB
// (the HTTP/2 default flow-control window). Every malformed connection is ended or refused without
// a success; after every attack the process is alive and answers correct requests over HTTP/1.1 and
// HTTP/2 on that port, and writes work at the end.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ALL_ROLES, startNode, type NodeProcess } from "../helpers/cairn-process.ts";
import { eventually } from "../helpers/cluster.ts";
import { FLAG, FRAME, PREFACE, frame, headerBlock, rawH2, requestFields, requestHeaders, u32, type RawH2Result } from "./h2-frames.ts";
import { h2Request, hostPort, rawHttp } from "./support.ts";

/** Just over the 65 535-byte initial flow-control window of HTTP/2 (RFC 9113 §6.9.2). */
const JUST_OVER_64_KIB = 65_537;
const MAX_FRAME_PAYLOAD = 16_384;

let node: NodeProcess;

interface Port {
  readonly name: string;
  readonly url: () => string;
  /** A correct request and what it must answer. */
  readonly probePath: string;
}

const PORTS: readonly Port[] = [
  { name: "admin", url: () => node.addresses.admin, probePath: "/health" },
  { name: "data-plane", url: () => node.addresses.ingress!, probePath: "/v1/objects/h2c/probe/state" },
];

beforeAll(async () => {
  node = await startNode({ name: "h2c", args: ["--roles", ALL_ROLES] });
  const p = await fetch(`${node.addresses.admin}/v1/cluster/provision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ numPartitions: 1, replication: 1 }),
  });
  expect(p.status).toBe(200);
  await eventually("the data plane to take writes", async () => {
    const r = await fetch(`${node.addresses.ingress}/v1/objects/h2c/probe/state/a`, { method: "PUT", body: "1" });
    return r.status === 200 ? true : undefined;
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

/** The process lives and the port answers a correct request over HTTP/1.1 and over HTTP/2. */
async function expectServing(port: Port, after: string): Promise<void> {
  expect(node.proc.exitCode, `${after}: the node exited`).toBeNull();
  const h1 = await fetch(`${port.url()}${port.probePath}`, { signal: AbortSignal.timeout(10_000) });
  expect(h1.status, `${after}: HTTP/1.1 ${port.probePath}`).toBe(200);
  const { host, port: p } = hostPort(port.url());
  const h2 = await h2Request(`${host}:${p}`, "GET", port.probePath, {});
  expect(h2.status, `${after}: HTTP/2 ${port.probePath} (${h2.error ?? ""})`).toBe(200);
}

/** A header block split into HEADERS + CONTINUATION frames of the largest default size. */
function splitHeaders(streamId: number, block: Buffer, endStream: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < block.length; off += MAX_FRAME_PAYLOAD) {
    const first = off === 0;
    const last = off + MAX_FRAME_PAYLOAD >= block.length;
    const flags = (last ? FLAG.END_HEADERS : 0) | (first && endStream ? FLAG.END_STREAM : 0);
    out.push(frame(first ? FRAME.HEADERS : FRAME.CONTINUATION, flags, streamId, block.subarray(off, off + MAX_FRAME_PAYLOAD)));
  }
  return out;
}

/** The server ended the connection, said GOAWAY, or reset the stream; and answered nothing. */
function expectRefused(r: RawH2Result, what: string): void {
  const refused = r.end !== "open" || r.goawayCode !== undefined || r.rstStreams > 0;
  expect(refused, `${what}: ${JSON.stringify(r)}`).toBe(true);
  expect(r.responses, `${what}: answered ${JSON.stringify(r)}`).toBe(0);
}

const MALFORMED: ReadonlyArray<readonly [string, (path: string) => Buffer[]]> = [
  ["garbage after the preface", () => [Buffer.from("x".repeat(64))]],
  ["a frame declaring 16 MiB, beyond SETTINGS_MAX_FRAME_SIZE", () => [frame(FRAME.DATA, 0, 1, new Uint8Array(100), 0xffffff)]],
  ["SETTINGS whose length is not a multiple of 6", () => [frame(FRAME.SETTINGS, 0, 0, new Uint8Array(7))]],
  ["HEADERS with an undecodable HPACK block", () => [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]))]],
  ["DATA on stream 0", () => [frame(FRAME.DATA, 0, 0, new Uint8Array(10))]],
  ["WINDOW_UPDATE of 0 on the connection", () => [frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0))]],
  ["CONTINUATION without HEADERS", (path) => [frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, headerBlock(requestFields("GET", path)))]],
  ["PING of 7 bytes", () => [frame(FRAME.PING, 0, 0, new Uint8Array(7))]],
  ["HEADERS on a server-initiated (even) stream", (path) => [requestHeaders(2, "GET", path)]],
  ["WINDOW_UPDATEs overflowing 2^31 − 1", () => [frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), frame(FRAME.WINDOW_UPDATE, 0, 0, u32(0x7fffffff))]],
];

const HUGE_HEADERS: ReadonlyArray<readonly [string, (path: string) => Buffer[]]> = [
  ["one header value of 1 MiB", (path) => splitHeaders(1, headerBlock([...requestFields("GET", path), ["x-big", "a".repeat(1 << 20)]]), true)],
  ["10 000 header fields", (path) => splitHeaders(1, headerBlock([...requestFields("GET", path), ...Array.from({ length: 10_000 }, (_, i) => [`x-h${i}`, "v"] as const)]), true)],
  [
    "HEADERS then 1 000 CONTINUATION frames of 4 KiB, never ending the block",
    (path) => {
      const junk = headerBlock([["x-c", "b".repeat(4000)]]);
      return [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, headerBlock(requestFields("GET", path))), ...Array.from({ length: 1000 }, () => frame(FRAME.CONTINUATION, 0, 1, junk))];
    },
  ],
];

for (const port of PORTS) {
  describe(`HTTP/2 cleartext on the ${port.name} port`, () => {
    const target = () => hostPort(port.url());
    const writePath = () => (port.name === "admin" ? "/v1/metadata/h2c%2Fbig" : "/v1/objects/h2c/big/state/v");

    test("a correct request over HTTP/2 by prior knowledge is answered", async () => {
      const { host, port: p } = target();
      const r = await rawH2(host, p, [requestHeaders(1, "GET", port.probePath)]);
      expect(r.responses).toBe(1);
      await expectServing(port, "a correct request");
    });

    describe("malformed frames", () => {
      for (const [label, make] of MALFORMED) {
        test(`${label}: the connection is refused, the node keeps serving`, async () => {
          const { host, port: p } = target();
          expectRefused(await rawH2(host, p, make(port.probePath)), label);
          await expectServing(port, label);
        });
      }

      test("a content-length smaller than the DATA sent: no success, and nothing (truncated or whole) is written", async () => {
        const { host, port: p } = target();
        const path = port.name === "admin" ? "/v1/metadata/h2c%2Fcl" : "/v1/objects/h2c/cl/state/v";
        const body = port.name === "admin" ? '{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}' : "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        const r = await rawH2(host, p, [
          requestHeaders(1, "PUT", path, { endStream: false, extra: [["content-type", port.name === "admin" ? "application/json" : "application/octet-stream"], ["content-length", "2"]] }),
          frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from(body)),
        ]);
        // RFC 9113 §8.1.1: a malformed request, a stream error. Whatever came back, it was no success.
        expect(r.statuses.filter((s) => s >= 200 && s < 300), JSON.stringify(r)).toEqual([]);
        expect(r.rstStreams + r.statuses.filter((s) => s >= 400).length + (r.end !== "open" ? 1 : 0), JSON.stringify(r)).toBeGreaterThan(0);
        const after = await fetch(`${port.url()}${path}`);
        expect(after.status, "the malformed write must not have stored anything").toBe(404);
        await expectServing(port, "a content-length mismatch");
      });

      test("a truncated preface, then silence: no answer, the node keeps serving", async () => {
        const { host, port: p } = target();
        const r = await rawH2(host, p, [PREFACE.subarray(0, 16)], { preface: false, quietMs: 1000 });
        expect(r.responses).toBe(0);
        await expectServing(port, "a truncated preface");
      });

      test("an h2c upgrade over HTTP/1.1 is answered as HTTP/1.1 or refused, never breaks the port", async () => {
        const { host, port: p } = target();
        const r = await rawHttp(
          host,
          p,
          `GET ${port.probePath} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
        );
        expect([0, 101, 200, 400]).toContain(r.status);
        await expectServing(port, "an h2c upgrade");
      });
    });

    describe("huge headers", () => {
      for (const [label, make] of HUGE_HEADERS) {
        test(`${label}: refused (the server stops reading or resets), the node keeps serving`, async () => {
          const { host, port: p } = target();
          expectRefused(await rawH2(host, p, make(port.probePath)), label);
          await expectServing(port, label);
        }, 30_000);
      }
    });

    describe("stream floods", () => {
      test("10 000 streams opened at once: answered or refused stream by stream, the node keeps serving", async () => {
        const { host, port: p } = target();
        const r = await rawH2(host, p, Array.from({ length: 10_000 }, (_, i) => requestHeaders(2 * i + 1, "GET", port.probePath)));
        expect(r.responses + r.rstStreams + (r.goawayCode !== undefined ? 1 : 0)).toBeGreaterThan(0);
        expect(r.responses).toBeLessThanOrEqual(10_000);
        await expectServing(port, "a stream flood");
      }, 60_000);

      test("10 000 rapid resets (HEADERS + RST_STREAM): the node keeps serving", async () => {
        const { host, port: p } = target();
        await rawH2(host, p, Array.from({ length: 10_000 }, (_, i) => Buffer.concat([requestHeaders(2 * i + 1, "GET", port.probePath), frame(FRAME.RST_STREAM, 0, 2 * i + 1, u32(8))])));
        await expectServing(port, "rapid resets");
      }, 60_000);

      test("1 000 request streams held open without their body end: the node keeps serving", async () => {
        const { host, port: p } = target();
        await rawH2(host, p, Array.from({ length: 1000 }, (_, i) => requestHeaders(2 * i + 1, "PUT", writePath(), { endStream: false, extra: [["content-type", "application/json"]] })), { quietMs: 1000 });
        await expectServing(port, "streams held open");
      }, 60_000);
    });

    describe("a request body just over 64 KiB", () => {
      test(`${JUST_OVER_64_KIB} bytes over HTTP/2 and over HTTP/1.1 are stored whole and read back`, async () => {
        const { host, port: p } = target();
        const admin = port.name === "admin";
        // Admin: a JSON document of exactly JUST_OVER_64_KIB bytes; data plane: raw bytes.
        const bytes = admin ? new TextEncoder().encode(JSON.stringify({ pad: "x".repeat(JUST_OVER_64_KIB - 10) })) : new Uint8Array(JUST_OVER_64_KIB).fill(97);
        expect(bytes.length).toBe(JUST_OVER_64_KIB);
        const headers = { "content-type": admin ? "application/json" : "application/octet-stream" };
        const viaH2 = await h2Request(`${host}:${p}`, "PUT", writePath(), headers, bytes, 20_000);
        expect(viaH2.status, `${viaH2.error ?? ""} ${viaH2.body.toString().slice(0, 200)}`).toBe(200);
        const viaH1 = await fetch(`${port.url()}${writePath()}`, { method: "PUT", headers, body: bytes, signal: AbortSignal.timeout(20_000) });
        expect(viaH1.status).toBe(200);
        const back = await h2Request(`${host}:${p}`, "GET", writePath(), {}, undefined, 20_000);
        expect(back.status).toBe(200);
        if (admin) expect((JSON.parse(back.body.toString()) as { value: { pad: string } }).value.pad.length).toBe(JUST_OVER_64_KIB - 10);
        else expect(back.body.length).toBe(JUST_OVER_64_KIB);
        await expectServing(port, "a body just over 64 KiB");
      }, 60_000);

      test(`${JUST_OVER_64_KIB} bytes sent in DATA frames without waiting for WINDOW_UPDATE: answered or reset, never hung`, async () => {
        const { host, port: p } = target();
        const data: Buffer[] = [];
        for (let off = 0; off < JUST_OVER_64_KIB; off += MAX_FRAME_PAYLOAD) {
          const n = Math.min(MAX_FRAME_PAYLOAD, JUST_OVER_64_KIB - off);
          data.push(frame(FRAME.DATA, off + n >= JUST_OVER_64_KIB ? FLAG.END_STREAM : 0, 1, new Uint8Array(n).fill(32)));
        }
        const r = await rawH2(host, p, [requestHeaders(1, "PUT", writePath(), { endStream: false, extra: [["content-type", "application/octet-stream"]] }), ...data], { quietMs: 2000 });
        expect(r.responses + r.rstStreams + (r.goawayCode !== undefined ? 1 : 0), JSON.stringify(r)).toBeGreaterThan(0);
        await expectServing(port, "DATA beyond the window");
      }, 60_000);
    });
  });
}

describe("after the campaign", () => {
  test("the node is ready and writes work on both ports", async () => {
    expect(node.proc.exitCode).toBeNull();
    expect((await fetch(`${node.addresses.admin}/ready`)).status).toBe(200);
    const m = await fetch(`${node.addresses.admin}/v1/metadata/h2c%2Fafter`, { method: "PUT", headers: { "content-type": "application/json" }, body: "1" });
    expect(m.status).toBe(200);
    const d = await fetch(`${node.addresses.ingress}/v1/objects/h2c/after/state/a`, { method: "PUT", body: "1" });
    expect(d.status).toBe(200);
  });
});
