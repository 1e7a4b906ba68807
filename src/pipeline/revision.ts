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
 * quantized revision, so a minimize_latency read costs no store call once its window has been resolved, and a
 * memo of the consistency tokens it has already accepted, so a read presenting one of those (read-your-writes
 * with the last write's token, the common case) costs none either: an accepted token names a revision the store
 * had reached, and revisions only grow, so it stays acceptable; the read then uses max(its revision, the
 * window's), exactly what the store calls would give.
 */
import {
  type Consistency,
  isTokenConsistency,
  KnownRevision,
  revisionFor,
  tokenRevision,
  windowStart,
} from "../request/consistency.js";
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

/** How many accepted tokens the memo keeps (a server's readers present a few recent tokens at a time). */
const MAX_ACCEPTED_TOKENS = 4096;

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
  /** Tokens already accepted (issued by this store, for a revision it had reached) → their revision. */
  readonly #tokens = new Map<string, Revision>();

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
    if (window <= 0 || windowStart(now, window) !== this.#windowStart) return undefined;
    if (consistency === undefined || consistency === "minimize_latency") {
      this.#requests++;
      this.#windowHits++;
      return Math.max(this.#windowRevision, this.known.latest);
    }
    const token = this.#acceptedToken(consistency);
    if (token === undefined) return undefined;
    this.#requests++;
    this.#explicit++;
    return Math.max(token, this.#windowRevision, this.known.latest);
  }

  /**
   * Counts a read whose revision the caller took from an earlier peek of the same consistency (a batch's requests
   * sharing one), as that peek counted it.
   */
  countPeek(consistency: Consistency | undefined): void {
    this.#requests++;
    if (consistency === undefined || consistency === "minimize_latency") this.#windowHits++;
    else this.#explicit++;
  }

  /** The memoized window's revision if `now` falls in it (not counted: see countShortcut). */
  peekWindow(now: number): Revision | undefined {
    const window = this.quantizationWindowMs;
    return window > 0 && windowStart(now, window) === this.#windowStart
      ? Math.max(this.#windowRevision, this.known.latest)
      : undefined;
  }

  /**
   * Counts `reads` (0 or 1) reads answered through peekWindow (`quantized`: a minimize_latency read) or peekToken
   * (a token read). A count rather than a call per read: the caller runs the same code whether it answered.
   */
  countShortcut(quantized: boolean, reads: number): void {
    this.#requests += reads;
    if (quantized) this.#windowHits += reads;
    else this.#explicit += reads;
  }

  /**
   * peek's revision for a read presenting an already accepted token, in the memoized window; undefined otherwise
   * (not counted: see countShortcut).
   */
  peekToken(consistency: Consistency, now: number): Revision | undefined {
    const window = this.peekWindow(now);
    if (window === undefined) return undefined;
    const token = this.#acceptedToken(consistency);
    return token === undefined ? undefined : Math.max(token, window);
  }

  /** The revision a read with `consistency` at instant `now` uses. @throws NexusError like the engine's. */
  async revisionFor(consistency: Consistency | undefined, now = this.#clock()): Promise<Revision> {
    this.#requests++;
    const window = this.quantizationWindowMs;
    if (window > 0 && (consistency === undefined || consistency === "minimize_latency")) {
      return Math.max(await this.#quantized(now, true), this.known.latest);
    }
    this.#explicit++;
    if (window > 0 && isTokenConsistency(consistency)) {
      // max(the token's revision, the window's), as revisionFor reads it, with the window through the memo.
      const token = await tokenRevision(consistency, this.#store);
      this.#accept(consistency, token);
      return Math.max(token, await this.#quantized(now, false), this.known.latest);
    }
    return revisionFor(consistency, {
      store: this.#store,
      now,
      quantizationWindowMs: window,
      known: this.known.latest,
    });
  }

  /**
   * Readies the reads that follow a write of this engine's, so the first of them peeks its revision instead of
   * awaiting the store (an awaited first check paid for everything queued behind it): `token` (just issued by this
   * store, for `revision`, which it has reached: what tokenRevision would verify) is accepted, and the memo of the
   * window of `now` is filled as revisionFor would fill it. Counts no request.
   */
  async prime(token: string, revision: Revision, now = this.#clock()): Promise<void> {
    this.#accept({ atLeastAsFresh: token }, revision);
    if (this.quantizationWindowMs > 0) await this.#quantized(now, false);
  }

  /** The quantized revision of `now`'s window, from the memo or the store (then memoized). */
  async #quantized(now: number, counted: boolean): Promise<Revision> {
    const window = this.quantizationWindowMs;
    const start = windowStart(now, window);
    if (start === this.#windowStart) {
      if (counted) this.#windowHits++;
      return this.#windowRevision;
    }
    if (counted) this.#windowLookups++;
    const revision = await revisionFor("minimize_latency", {
      store: this.#store,
      now,
      quantizationWindowMs: window,
    });
    // Memoize only once the window has begun strictly before now: a commit stamped exactly at the window's first
    // millisecond could otherwise still be on its way.
    if (now > start && (Number.isNaN(this.#windowStart) || start > this.#windowStart)) {
      this.#windowStart = start;
      this.#windowRevision = revision;
    }
    return revision;
  }

  /** The revision of an `{ atLeastAsFresh }` whose token was accepted before (no other field), else undefined. */
  #acceptedToken(consistency: Consistency): Revision | undefined {
    if (typeof consistency !== "object" || consistency === null) return undefined;
    const given = (consistency as { atLeastAsFresh?: unknown }).atLeastAsFresh;
    if (typeof given !== "string") return undefined;
    const revision = this.#tokens.get(given);
    if (revision === undefined) return undefined;
    // Any other field is refused by revisionFor: leave it to that path.
    for (const field in consistency) if (field !== "atLeastAsFresh") return undefined;
    return revision;
  }

  /** Remembers a token tokenRevision just accepted (bounded: a full memo starts over). */
  #accept(consistency: object, revision: Revision): void {
    const given = (consistency as { atLeastAsFresh?: unknown }).atLeastAsFresh;
    if (typeof given !== "string" || this.#tokens.has(given)) return;
    if (this.#tokens.size >= MAX_ACCEPTED_TOKENS) this.#tokens.clear();
    this.#tokens.set(given, revision);
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
