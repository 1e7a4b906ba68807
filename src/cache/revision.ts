/**
 * Revision quantization (P0-1): the snapshot revision a check reads, chosen once per request before any cache.
 *
 * "minimize_latency" reads the state at the start of the current window (now rounded down to a multiple of the
 * window), so every read in one window names the same revision and the result cache, keyed by it, answers
 * identical checks of the window from one evaluation. Staleness bound: a write committed at time T is seen by
 * every minimize_latency read starting at or after T + window (that read's window starts after T), and at once by
 * a read presenting the write's token or asking fully_consistent. A window of 0 reads the latest revision.
 *
 * The rules are the engine's (src/engine/consistency.ts, used here for everything but the fast path); this layer
 * adds a memo of the current window's revision, so a minimize_latency read costs no store call once its window
 * has been resolved.
 */
import { type Consistency, revisionFor } from "../engine/consistency.js";
import type { Revision, TupleStore } from "../store/types.js";

export interface RevisionChooserOptions {
  readonly store: TupleStore;
  /** Epoch ms; must be the store's clock (commit times are compared with it). */
  readonly clock: () => number;
  /** Window length in ms (default 5000; 0 reads the latest revision). */
  readonly quantizationWindowMs: number;
}

export interface RevisionStats {
  readonly requests: number;
  /** minimize_latency reads answered from the memo of their window. */
  readonly windowHits: number;
  /** minimize_latency reads that asked the store for their window's revision. */
  readonly windowLookups: number;
  /** Reads not quantized: a token, fully_consistent, or any read when the window is 0. */
  readonly explicit: number;
}

export class RevisionChooser {
  readonly quantizationWindowMs: number;
  readonly #store: TupleStore;
  readonly #clock: () => number;
  #windowStart = Number.NaN;
  #windowRevision = 0;
  #requests = 0;
  #windowHits = 0;
  #windowLookups = 0;
  #explicit = 0;

  constructor(options: RevisionChooserOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.quantizationWindowMs = options.quantizationWindowMs;
  }

  /**
   * The revision when it is known without asking the store (a minimize_latency read in the memoized window),
   * else undefined: the caller then awaits revisionFor. Counted as revisionFor would count it.
   */
  peek(consistency: Consistency | undefined, now: number): Revision | undefined {
    const window = this.quantizationWindowMs;
    if (
      window > 0 &&
      (consistency === undefined || consistency === "minimize_latency") &&
      Math.floor(now / window) * window === this.#windowStart
    ) {
      this.#requests++;
      this.#windowHits++;
      return this.#windowRevision;
    }
    return undefined;
  }

  /** The memoized window's revision if `now` falls in it (not counted: see countWindowHit). */
  peekWindow(now: number): Revision | undefined {
    const window = this.quantizationWindowMs;
    return window > 0 && Math.floor(now / window) * window === this.#windowStart
      ? this.#windowRevision
      : undefined;
  }

  /** Counts a minimize_latency read answered through peekWindow. */
  countWindowHit(): void {
    this.#requests++;
    this.#windowHits++;
  }

  /** The revision a read with `consistency` at instant `now` uses. @throws NexusError like the engine's. */
  async revisionFor(consistency: Consistency | undefined, now = this.#clock()): Promise<Revision> {
    this.#requests++;
    const window = this.quantizationWindowMs;
    if (window > 0 && (consistency === undefined || consistency === "minimize_latency")) {
      const start = Math.floor(now / window) * window;
      if (start === this.#windowStart) {
        this.#windowHits++;
        return this.#windowRevision;
      }
      this.#windowLookups++;
      const revision = await revisionFor(consistency, {
        store: this.#store,
        now,
        quantizationWindowMs: window,
      });
      // Memoize only once the window has begun strictly before now: a commit stamped exactly at the window's
      // first millisecond could otherwise still be on its way.
      if (now > start && (Number.isNaN(this.#windowStart) || start > this.#windowStart)) {
        this.#windowStart = start;
        this.#windowRevision = revision;
      }
      return revision;
    }
    this.#explicit++;
    return revisionFor(consistency, { store: this.#store, now, quantizationWindowMs: window });
  }

  stats(): RevisionStats {
    return {
      requests: this.#requests,
      windowHits: this.#windowHits,
      windowLookups: this.#windowLookups,
      explicit: this.#explicit,
    };
  }
}
