// The simulator's only randomness: one seeded xoshiro128** stream per purpose, all derived from the
// run's seed, so adding draws to one purpose (say, faults) does not reshuffle another (the workload).

import type { Random } from "../../src/raft/index.ts";
import { Xoshiro128 } from "../../src/raft/index.ts";

function mixSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) | 0;
  z = Math.imul(z ^ (z >>> 15), 0x2c1b3c6d);
  z = Math.imul(z ^ (z >>> 12), 0x297a2d39);
  return (z ^ (z >>> 15)) | 0;
}

export class SimRng implements Random {
  private readonly source: Xoshiro128;

  constructor(
    readonly seed: number,
    stream = 0,
  ) {
    this.source = new Xoshiro128(mixSeed(seed, stream));
  }

  /** An independent stream for another purpose. */
  fork(stream: number): SimRng {
    return new SimRng(this.seed, stream * 7919 + 13);
  }

  nextUint32(): number {
    return this.source.nextUint32();
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.source.nextUint32() / 0x1_0000_0000;
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.float() * items.length)]!;
  }

  /** Exponentially distributed with the given mean. */
  exp(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }
}
