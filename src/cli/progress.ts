/**
 * Progress bars for the CLI's long work (writing a big tuple file, compaction, scrubs, tiering passes), drawn with
 * cli-progress 3.12 (the most used Node progress bar: one small dependency, ETA and rate, redraw throttling,
 * cursor handling) on stderr, so stdout keeps only results.
 *
 * A bar is drawn only when the stream is a terminal (and TERM is not "dumb"). Anywhere else (a pipe, a log file,
 * CI, the tests) nothing is written at all: no escape codes, no carriage returns. The result lines the commands
 * print afterwards say the same things a bar showed.
 */
import cliProgress from "cli-progress";

/** The part of a stream a bar needs (process.stderr, or a test's stand-in). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  /** Sets how much is done (and, when it changes, the total), and the short text after the bar. */
  update(done: number, total?: number, note?: string): void;
  /** Removes the bar (leaving the cursor at the start of a clean line). Idempotent. */
  stop(): void;
}

export interface ProgressOptions {
  readonly stream?: ProgressStream;
  /** "bytes" shows sizes as KiB / MiB / GiB; otherwise counts with thousands separators. */
  readonly unit?: "bytes" | "count";
  /** The environment to read TERM from (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const NONE: Progress = { update() {}, stop() {} };

/** A bar titled `label` for `total` units of work, or a no-op where the stream is not a terminal. */
export function startProgress(label: string, total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const env = options.env ?? process.env;
  if (stream.isTTY !== true || env.TERM === "dumb") return NONE;
  const show = options.unit === "bytes" ? formatBytes : (n: number) => Math.round(n).toLocaleString("en-US");
  const bar = new cliProgress.SingleBar({
    stream: stream as NodeJS.WritableStream,
    format: `${label} [{bar}] {percentage}% {value}/{total} {note} eta {eta_formatted}`,
    formatValue: (value, _options, type) =>
      type === "value" || type === "total" ? show(value) : String(value),
    barsize: 24,
    hideCursor: true,
    clearOnComplete: true,
    stopOnComplete: false,
    etaBuffer: 50,
    fps: 8,
  });
  bar.start(Math.max(total, 0), 0, { note: "" });
  let stopped = false;
  return {
    update(done, newTotal, note) {
      if (stopped) return;
      if (newTotal !== undefined && newTotal !== bar.getTotal()) bar.setTotal(newTotal);
      bar.update(done, { note: note ?? "" });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/** Runs `work` with a bar, removing the bar however the work ends. */
export async function withProgress<T>(
  label: string,
  total: number,
  options: ProgressOptions,
  work: (progress: Progress) => Promise<T>,
): Promise<T> {
  const progress = startProgress(label, total, options);
  try {
    return await work(progress);
  } finally {
    progress.stop();
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
