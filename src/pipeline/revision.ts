/**
 * The snapshot revision a check reads, chosen once per request before any cache.
 *
 * "minimize_latency" reads max(the state at the start of the current window, the latest revision this engine
 * knows: its own acknowledged writes and what its change feed delivered). Every write the engine acknowledged is
 * therefore seen at once; quantization only bounds staleness for changes made elsewhere. Staleness bound: a
 * write committed at time T (by anyone) is seen by every minimize_latency read starting at or after T + window
 * (that read's window starts after T), and at once by a read presenting the write's token or asking
 * fully_consistent. A window of 0 reads the latest revision. Caches keep their hit rates across revisions by
 * precise invalidation (result-cache.ts), not by reading old revisions.
 *
 * The rules are the engine's (src/request/consistency.ts); this layer adds a memo of the current window's
 * quantized revision, so a minimize_latency read costs no store call once its window has been resolved.
 */
import { type Consistency, KnownRevision, revisionFor, windowStart } from "../request/consistency.js";
import type { Revision, TupleStore } from "../tuples/types.js";

export interface RevisionChooserOptions {
  readonly store: TupleStore;
  /** Epoch ms; must be the store's clock (commit times are compared with it). */
  readonly clock: () => number;
  /** Window length in ms (default 5000; 0 reads the latest revision). */
  readonly quantizationWindowMs: number;
  /** The latest revision the reader knows (its writes, its feed); minimize_latency never reads older. */
  readonly known?: KnownRevision;
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
  readonly known: KnownRevision;
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
    this.known = options.known ?? new KnownRevision();
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
      windowStart(now, window) === this.#windowStart
    ) {
      this.#requests++;
      this.#windowHits++;
      return Math.max(this.#windowRevision, this.known.latest);
    }
    return undefined;
  }

  /** The memoized window's revision if `now` falls in it (not counted: see countWindowHit). */
  peekWindow(now: number): Revision | undefined {
    const window = this.quantizationWindowMs;
    return window > 0 && windowStart(now, window) === this.#windowStart
      ? Math.max(this.#windowRevision, this.known.latest)
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
      const start = windowStart(now, window);
      if (start === this.#windowStart) {
        this.#windowHits++;
        return Math.max(this.#windowRevision, this.known.latest);
      }
      this.#windowLookups++;
      // The quantized revision alone is memoized; the known one is added on every read.
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
      return Math.max(revision, this.known.latest);
    }
    this.#explicit++;
    return revisionFor(consistency, {
      store: this.#store,
      now,
      quantizationWindowMs: window,
      known: this.known.latest,
    });
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
