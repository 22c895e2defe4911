// The simulator's in-memory log-server must answer exactly like the SQLite store, or the simulation
// proves nothing about the real one. Random request sequences go to both; every answer must match.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { SeededRandom } from "../../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset } from "../../../src/ids/index.ts";
import { LogStore } from "../../../src/logserver/index.ts";
import { useTempDirs } from "../../logserver/helpers.ts";
import { MemoryLogServer } from "./memory-server.ts";

const tempDir = useTempDirs();

const LOGLETS = [asLogletId("1_0"), asLogletId("1_1")];
const SEQUENCERS = [generationalNodeId(1, 1), generationalNodeId(2, 1)];

describe("simulator log-server conformance", () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    test(`answers like the SQLite store on a random request sequence (seed ${seed})`, async () => {
      const rnd = new SeededRandom(seed);
      const dataLoss = seed === 6;
      const sqlite = LogStore.open({ path: join(tempDir(), "s.sqlite"), sync: false, maxReadRecords: 5, maxDigestOffsets: 8, dataLoss });
      const memory = new MemoryLogServer(dataLoss, 5, 8);
      try {
        for (let i = 0; i < 400; i++) {
          const loglet = LOGLETS[rnd.int(2)]!;
          const op = rnd.int(10);
          const at = 1 + rnd.int(40);
          let a: unknown;
          let b: unknown;
          if (op < 4) {
            const count = 1 + rnd.int(4);
            const req = {
              loglet,
              sequencer: SEQUENCERS[rnd.float() < 0.9 ? 0 : 1]!,
              firstOffset: logletOffset(rnd.float() < 0.05 ? 0 : at),
              payloads: Array.from({ length: count }, (_, j) => new TextEncoder().encode(`p${at + j}`)),
              knownGlobalTail: logletOffset(1 + rnd.int(at)),
              ...(rnd.float() < 0.2 ? { repair: true } : {}),
            };
            a = await sqlite.store(req);
            b = memory.store(req);
          } else if (op === 4 && i > 250 && rnd.float() < 0.3) {
            a = await sqlite.seal({ loglet });
            b = memory.seal({ loglet });
          } else if (op === 5 && rnd.float() < 0.5) {
            const req = { loglet, upTo: logletOffset(rnd.int(45)) };
            a = await sqlite.trim(req);
            b = memory.trim(req);
          } else if (op === 6 || op === 7) {
            const req = { loglet, from: logletOffset(rnd.int(45)), to: logletOffset(rnd.int(50)), byteBudget: rnd.int(12) };
            a = await sqlite.getRecords(req);
            b = memory.getRecords(req);
          } else if (op === 8) {
            const req = { loglet, from: logletOffset(rnd.int(45)), to: logletOffset(rnd.int(50)) };
            a = await sqlite.getDigest(req);
            b = memory.getDigest(req);
          } else {
            a = await sqlite.getLogletInfo({ loglet });
            b = memory.getLogletInfo({ loglet });
          }
          expect({ step: i, answer: b }).toEqual({ step: i, answer: a });
          if (process.env.CONF_DEBUG) console.log(JSON.stringify(a, (_k, v) => (v instanceof Uint8Array ? `bytes${v.length}` : v)).slice(0, 160));
        }
      } finally {
        await sqlite.close();
      }
    });
  }
});
