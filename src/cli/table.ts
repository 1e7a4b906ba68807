/**
 * Plain-text tables for the terminal: columns sized to their widest cell, numbers right-aligned, no colour codes
 * (so the output reads the same in a pipe, a CI log and a README).
 */

export type Align = "left" | "right";

export interface Column {
  readonly title: string;
  readonly align?: Align;
}

/** Renders rows under a header rule. Cells are strings; wide text is never truncated. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (columns[i]!.align === "right" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [
    line(columns.map((c) => c.title)),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(columns.map((_, i) => r[i] ?? ""))),
  ].join("\n");
}

/** A duration in milliseconds, to a precision that suits its size. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  return `${(ms * 1000).toFixed(0)} µs`;
}

/** An integer with thousands separators (1,234,567). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Operations per second, compact (12.3K/s, 1.20M/s). */
export function formatRate(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)}K/s`;
  return `${opsPerSec.toFixed(0)}/s`;
}
