// Text layout shared by the ctl commands.

/** Rows as aligned columns (the first row is the header). */
export function table(rows: Array<Array<string | number>>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

/** 3723000 → "1h2m3s". */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86_400), "d"],
    [Math.floor((s % 86_400) / 3600), "h"],
    [Math.floor((s % 3600) / 60), "m"],
    [s % 60, "s"],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return first < 0 ? "0s" : parts.slice(first, first + 2).map(([n, u]) => `${n}${u}`).join("");
}
