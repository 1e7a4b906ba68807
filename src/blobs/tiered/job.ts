/**
 * The background tiering job of a tiered store: a pass every interval (see TieredStore.runTieringPass),
 * reporting progress as events. Closable: close() stops it between moves (a move in progress finishes) and
 * resolves once nothing of it is running. It knows the store only as something that runs a pass (TieringPasses),
 * so the store can own its job without the two files importing each other.
 */
import { EventEmitter } from "node:events";
import { NexusError } from "../../util/errors.js";
import type { TieringPassOptions, TieringPassResult, TieringProgress } from "./options.js";

/** What the job needs of the store: one tiering pass on demand. */
export interface TieringPasses {
  runTieringPass(options: TieringPassOptions): Promise<TieringPassResult>;
}

export interface TieringJobOptions {
  /** Milliseconds between the end of one pass and the start of the next (default 60 000). */
  intervalMs?: number;
  /** Run the first pass at once instead of after one interval (default true). */
  runAtStart?: boolean;
}

export interface TieringJobEvents {
  progress: [TieringProgress];
  pass: [TieringPassResult];
  /** A move failed (the pass goes on; the object stays readable where it was). */
  moveFailed: [{ key: string; error: unknown }];
  /** A whole pass failed (e.g. the tracker could not be written); the job tries again next interval. */
  passFailed: [unknown];
}

export class TieringJob extends EventEmitter<TieringJobEvents> implements AsyncDisposable {
  readonly intervalMs: number;
  readonly #store: TieringPasses;
  readonly #abort = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<TieringPassResult> | undefined;
  #closed = false;
  passes = 0;

  /** @internal Use store.startTiering(). */
  constructor(store: TieringPasses, options: TieringJobOptions = {}) {
    super();
    const { intervalMs = 60_000, runAtStart = true } = options;
    if (!Number.isFinite(intervalMs) || intervalMs < 0) {
      throw new NexusError("invalid_argument", `intervalMs must be a finite number ≥ 0, got ${intervalMs}`, {
        intervalMs,
      });
    }
    this.intervalMs = intervalMs;
    this.#store = store;
    this.#schedule(runAtStart ? 0 : intervalMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs a pass now (or waits for the one running) and returns its result. */
  runNow(): Promise<TieringPassResult> {
    if (this.#closed) return Promise.reject(new NexusError("closed", "the tiering job is closed"));
    if (this.#running !== undefined) return this.#running;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#running = this.#store
      .runTieringPass({
        signal: this.#abort.signal,
        onProgress: (p) => this.emit("progress", p),
        onMoveFailed: (key, error) => this.emit("moveFailed", { key, error }),
      })
      .then((result) => {
        this.passes++;
        this.emit("pass", result);
        return result;
      })
      .finally(() => {
        this.#running = undefined;
        if (!this.#closed) this.#schedule(this.intervalMs);
      });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    await this.#running?.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #schedule(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.runNow().catch((error) => {
        if (!this.#closed) this.emit("passFailed", error);
      });
    }, delay);
  }
}
