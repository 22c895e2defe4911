// Shared helpers for log-server tests: temp directories removed after the file's tests, request
// builders with deterministic payloads (so a reader can check what it got back).
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  asLogletId,
  generationalNodeId,
  logletOffset,
  type GenerationalNodeId,
  type LogletId,
} from "../../src/ids/index.ts";
import type { StoreRequest } from "../../src/logserver/index.ts";

/**
 * Call once at the top level of a test file: returns a temp-dir maker whose directories are removed
 * after that file's tests. (A hook registered in this shared module would bind to whichever test
 * file imported it first, and `exit` hooks do not run under `bun test`.)
 */
export function useTempDirs(): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), "cairn-logserver-"));
    dirs.push(d);
    return d;
  };
}

export const L1: LogletId = asLogletId("1_0");
export const L2: LogletId = asLogletId("2_0");
export const SEQ_A: GenerationalNodeId = generationalNodeId(1, 1);
export const SEQ_B: GenerationalNodeId = generationalNodeId(2, 1);

/** A payload that names its loglet and offset, padded to `size` bytes. */
export function payloadFor(loglet: string, offset: number, size = 32): Uint8Array {
  const text = new TextEncoder().encode(`${loglet}@${offset};`);
  const out = new Uint8Array(Math.max(size, text.length));
  out.set(text);
  return out;
}

export function storeReq(
  loglet: LogletId,
  first: number,
  count: number,
  opts: { sequencer?: GenerationalNodeId; size?: number; knownGlobalTail?: number; repair?: boolean } = {},
): StoreRequest {
  const payloads = Array.from({ length: count }, (_, i) => payloadFor(loglet, first + i, opts.size));
  return {
    loglet,
    sequencer: opts.sequencer ?? SEQ_A,
    firstOffset: logletOffset(first),
    payloads,
    knownGlobalTail: logletOffset(opts.knownGlobalTail ?? 1),
    ...(opts.repair ? { repair: true } : {}),
  };
}

export function decode(payload: Uint8Array): string {
  const text = new TextDecoder().decode(payload);
  return text.slice(0, text.indexOf(";"));
}
