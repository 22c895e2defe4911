// Small pieces every metadata benchmark report uses: ratios and medians that tolerate missing
// figures, table formatting, and the list of anomalies (printed as they happen and at the end).
import { round } from "./load.ts";

export function ratio(a: number | null | undefined, b: number | null | undefined, digits = 2): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return round(a / b, digits);
}

export function fmt(x: number | null | undefined, suffix = ""): string {
  return x === null || x === undefined ? "–" : `${x}${suffix}`;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
}

/** The median round by throughput (the upper one of an even count), never the best. */
export function medianByThroughput<T extends { opsPerSecond: number }>(runs: T[]): T {
  if (runs.length === 0) throw new Error("no rounds to take the median of");
  const sorted = [...runs].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export class Anomalies {
  readonly list: string[] = [];

  note(text: string): void {
    this.list.push(text);
    console.error(`ANOMALY: ${text}`);
  }
}
