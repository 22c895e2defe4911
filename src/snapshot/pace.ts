// Pacing of a file's bytes to a rate that may change while they flow: a node that becomes busy slows
// its snapshot uploads, one that becomes idle lets them run. The wait after each chunk is the part of
// the chunk's time at the current rate that reading and sending it did not already take.
// Invariant: every byte of the file is yielded once, in order; a rate of Infinity never waits.
import { open } from "node:fs/promises";
import { invariant } from "../observability/errors.ts";

/** The rate uploads may use right now (bytes per second; Infinity: no limit). Asked before each chunk. */
export type UploadPace = () => number;

/** Bytes read and sent per step of a paced upload. */
export const PACE_CHUNK_BYTES = 1 << 20;

/** How long to wait after a chunk of `bytes` that took `tookMs`, to keep to `bytesPerSecond`. */
export function paceWaitMs(bytes: number, tookMs: number, bytesPerSecond: number): number {
  if (bytesPerSecond === Number.POSITIVE_INFINITY) return 0;
  invariant(bytesPerSecond > 0, "an upload rate is positive");
  return Math.max(0, Math.ceil((bytes * 1000) / bytesPerSecond - tookMs));
}

/** The file's bytes in chunks of `chunkBytes`, each followed by the wait `pace` asks for. */
export async function* pacedChunks(path: string, pace: UploadPace, chunkBytes = PACE_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  const file = await open(path, "r");
  try {
    for (let offset = 0; ; ) {
      const started = performance.now();
      const buf = new Uint8Array(chunkBytes);
      const { bytesRead } = await file.read(buf, 0, chunkBytes, offset);
      if (bytesRead === 0) return;
      offset += bytesRead;
      yield buf.subarray(0, bytesRead);
      const waitMs = paceWaitMs(bytesRead, performance.now() - started, pace());
      if (waitMs > 0) await Bun.sleep(waitMs);
    }
  } finally {
    await file.close();
  }
}

/** Whether an upload should go paced: a pace is given and limits the rate right now. */
export function pacedNow(pace: UploadPace | undefined): pace is UploadPace {
  return pace !== undefined && Number.isFinite(pace());
}
