// The event trace of a run: a ring buffer of the last events (printed when a seed fails), or, when
// replaying one seed with --trace, every event written out as it happens. Lines are formatted lazily
// because most runs never print them.

export type TraceDetail = () => string;

export class Trace {
  private readonly times: number[];
  private readonly details: (TraceDetail | string)[];
  private next = 0;
  private count = 0;
  /** A running hash of every event line kind/time, for the determinism check. */
  hash = 0x811c9dc5;
  events = 0;

  constructor(
    private readonly capacity: number,
    private readonly sink: ((line: string) => void) | null = null,
  ) {
    this.times = new Array<number>(capacity);
    this.details = new Array<TraceDetail | string>(capacity);
  }

  add(time: number, detail: TraceDetail | string): void {
    this.events++;
    this.hash = Math.imul(this.hash ^ Math.floor(time * 1000), 0x01000193) >>> 0;
    if (this.sink !== null) {
      this.sink(formatLine(time, detail));
      return;
    }
    this.times[this.next] = time;
    this.details[this.next] = detail;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Mixes a value into the determinism hash (for events whose time alone says little). */
  mix(value: number): void {
    this.hash = Math.imul(this.hash ^ (value | 0), 0x01000193) >>> 0;
  }

  lines(): string[] {
    const out: string[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let k = 0; k < this.count; k++) {
      const i = (start + k) % this.capacity;
      out.push(formatLine(this.times[i]!, this.details[i]!));
    }
    return out;
  }
}

function formatLine(time: number, detail: TraceDetail | string): string {
  const d = typeof detail === "string" ? detail : detail();
  return `${time.toFixed(3).padStart(10)}ms  ${d}`;
}
