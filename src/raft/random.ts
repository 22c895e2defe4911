// Randomness for the core comes only from a `Random` handed to the constructor, so a seeded source
// makes a node fully deterministic. `Xoshiro128` is a small seeded generator (xoshiro128**, seeded
// through splitmix32) that the simulator uses and that production can seed from a strong source.

export interface Random {
  /** A uniformly distributed integer in [0, 2^32). */
  nextUint32(): number;
}

/** A uniformly distributed integer in [0, bound). `bound` must be in [1, 2^32]. */
export function randomBelow(random: Random, bound: number): number {
  // Multiply-shift keeps the bias below 2^-32 per draw without a rejection loop.
  return Math.floor((random.nextUint32() / 0x1_0000_0000) * bound);
}

function splitmix32(state: number): [next: number, output: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

export class Xoshiro128 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed | 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, value] = splitmix32(s);
      s = next;
      out.push(value);
    }
    this.a = out[0]!;
    this.b = out[1]!;
    this.c = out[2]!;
    this.d = out[3]!;
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
