/**
 * One change-stream subscription per store, fanned out to every cache, index and stream that follows writes. The
 * feed pages through the store's changelog (all tenants), hands each page of whole revisions to every listener
 * synchronously, and once caught up
 * waits for the next write: no timer, no polling. Listeners trust `watermark`: every change up to it has been
 * delivered, so a cache may reuse an answer across revisions only up to the watermark.
 *
 * When the changelog no longer reaches back to the feed's cursor (the store trimmed it), the feed cannot know
 * what changed in between: it jumps to the current revision and tells every listener to `reset`.
 *
 * A listener that starts from an older revision (an index built from a snapshot at that revision) subscribes with
 * `{ after }`: the feed first replays the changelog after that revision to that listener alone, page by page, then
 * adds it to the live fan-out at the exact revision the others have reached, so it sees every change once, in order.
 * This is the one changelog follower in the engine: every index, cache layer and stream that follows writes
 * subscribes here instead of paging the store itself.
 *
 * Owner: whoever opens the feed closes it (close() ends the loop and waits for it); a listener unsubscribes with
 * the function subscribe() returns.
 */

import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";

export interface ChangeListener {
  /** Changes of whole revisions, in revision order; `watermark` is the revision delivered up to. */
  onChanges(changes: readonly StoredChange[], watermark: Revision): void;
  /**
   * The feed lost track: changes between the old watermark and `revision` were never delivered. Everything a
   * listener derived from older revisions is unreliable; the feed continues from `revision`.
   */
  onReset(revision: Revision): void;
  /**
   * Opt-in: the listener takes a large page in several calls, each a run of consecutive changes, with the event
   * loop turning between them. A call that ends inside a revision passes as `watermark` the last revision it
   * completes (the one before, when none), so a listener trusting `watermark` never treats a half-applied
   * revision as delivered; the call that ends the revision passes it. Listeners without it get whole pages.
   */
  readonly partialRevisions?: boolean;
}

export interface ChangeFeedOptions {
  /** Deliver changes after this revision (default: the store's current revision when the feed opens). */
  readonly after?: Revision;
  /** Changes per changelog page (default 1024; a page never splits a revision). */
  readonly pageSize?: number;
}

export interface SubscribeOptions {
  /**
   * Deliver changes after this revision (default: the feed's watermark, i.e. only changes from now on). An older
   * revision is replayed from the changelog to this listener first; when the changelog no longer reaches back that
   * far the listener gets `onReset` with the feed's watermark instead.
   */
  readonly after?: Revision;
  /**
   * For a listener replayed from `after`: called once it has joined the live fan-out, synchronously at a moment
   * no page is being handed out, with the feed's watermark then. Every change up to it has reached the listener
   * and no later one has, so a caller can hand over from this listener to another one already in the fan-out
   * without a gap or a repeat (replayed() resolving is not such a moment: a page may start between the two).
   */
  readonly onJoined?: (watermark: Revision) => void;
}

export interface ChangeFeedStats {
  readonly watermark: Revision;
  /** The revision from which the feed has delivered every change without a gap (moves on a reset). */
  readonly complete: Revision;
  readonly revisions: number;
  readonly changes: number;
  readonly resets: number;
  readonly listeners: number;
  /** Time from the store waking the feed to every listener having seen the page (ms): last and worst. */
  readonly lastDispatchMs: number;
  readonly maxDispatchMs: number;
  /** Set when the loop stopped on an unexpected error (the feed then delivers nothing more). */
  readonly error?: string;
}

const now = (): number => globalThis.performance.now();
/** How long the feed delivers pages before it lets the event loop turn. */
const SLICE_MS = 10;
/**
 * Changes per call to a listener that takes partial revisions: a write of 10,000 tuples is one revision, and
 * handing it to every follower in one task held the event loop for 150-250 ms on a loaded 2-core machine.
 */
const PART = 2048;

/**
 * Where a follower gets changes: a ChangeFeed, or anything that delivers the same way (a worker's replica of the
 * store: src/wasm-eval/replica.ts).
 */
export interface ChangeSource {
  /** Every change up to this revision has been delivered to the live listeners. */
  readonly watermark: Revision;
  /** Whether the source still delivers changes. */
  readonly running: boolean;
  subscribe(listener: ChangeListener, options?: SubscribeOptions): Unsubscribe;
  /** Resolves once every change up to `revision` has been delivered, or the source stops. */
  caughtUp(revision?: Revision): Promise<void>;
}

/** Removes a listener; `replayed()` resolves once the listener's replay (if any) has reached the live fan-out. */
export type Unsubscribe = (() => void) & { readonly replayed: () => Promise<void> };

export class ChangeFeed implements ChangeSource, AsyncDisposable {
  readonly store: TupleStore;
  readonly #pageSize: number;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<ChangeListener>();
  /** Listeners still replaying the changelog from an older revision; they join #listeners when caught up. */
  readonly #replaying = new Set<ChangeListener>();
  readonly #waiters = new Set<{ revision: Revision; resolve: () => void }>();
  #watermark: Revision;
  #complete: Revision;
  #loop: Promise<void> | undefined;
  #error: unknown;
  #revisions = 0;
  #changes = 0;
  #resets = 0;
  #lastDispatchMs = 0;
  #maxDispatchMs = 0;
  /** The page being handed to the listeners, while it is. */
  #dispatching: Promise<void> | undefined;
  /** When the current run of work without a turn of the event loop began. */
  #slice = now();

  private constructor(store: TupleStore, after: Revision, pageSize: number) {
    this.store = store;
    this.#watermark = after;
    this.#complete = after;
    this.#pageSize = pageSize;
  }

  /** Opens a feed and starts its loop. @throws NexusError "invalid_token" when `after` is not retained. */
  static async open(store: TupleStore, options: ChangeFeedOptions = {}): Promise<ChangeFeed> {
    const pageSize = options.pageSize ?? 1024;
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new NexusError("invalid_argument", `pageSize must be an integer ≥ 1, got ${pageSize}`);
    }
    const after = options.after ?? (await store.currentRevision());
    // Fail now, not in the loop, when the changelog does not reach back that far.
    await store.changesAfter(after, 0);
    const feed = new ChangeFeed(store, after, pageSize);
    feed.#loop = feed.#run();
    return feed;
  }

  /** Every change up to this revision has been delivered to every listener. */
  get watermark(): Revision {
    return this.#watermark;
  }

  /** The feed has delivered every change after this revision without a gap. */
  get complete(): Revision {
    return this.#complete;
  }

  /** Whether the loop still runs (false after close(), the store closing, or an unexpected error). */
  get running(): boolean {
    return (
      this.#loop !== undefined &&
      !this.#stop.signal.aborted &&
      this.#error === undefined &&
      !this.store.closed
    );
  }

  /**
   * Adds a listener; returns the function that removes it. With `after` older than the watermark, the listener is
   * first replayed the changes after `after` (asynchronously, yielding between pages) and then joins the live
   * fan-out; `replayed()` of the returned function resolves once it has.
   */
  subscribe(listener: ChangeListener, options: SubscribeOptions = {}): Unsubscribe {
    if (this.#stop.signal.aborted) throw new NexusError("closed", "the change feed is closed");
    const after = options.after ?? this.#watermark;
    let replay: Promise<void> = Promise.resolve();
    if (after < this.#watermark) {
      this.#replaying.add(listener);
      replay = this.#replay(listener, after, options.onJoined);
      // A store failure during the replay reaches whoever awaits replayed(); nobody awaiting is not an error.
      replay.catch(() => {});
    } else {
      // A listener asking for changes after a revision the feed has not delivered yet gets them in the fan-out.
      this.#listeners.add(listener);
    }
    const unsubscribe = (): void => {
      this.#replaying.delete(listener);
      this.#listeners.delete(listener);
    };
    return Object.assign(unsubscribe, { replayed: () => replay });
  }

  /**
   * Resolves once every change up to `revision` (default: the store's current one) has been delivered, or the
   * feed stops. @throws NexusError "aborted" when `signal` aborts first.
   */
  async caughtUp(revision?: Revision, signal?: AbortSignal): Promise<void> {
    const target = revision ?? (await this.store.currentRevision());
    if (this.#watermark >= target || !this.running) return;
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        revision: target,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#waiters.delete(waiter);
        reject(new NexusError("aborted", "waiting for the change feed was aborted"));
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  stats(): ChangeFeedStats {
    return {
      watermark: this.#watermark,
      complete: this.#complete,
      revisions: this.#revisions,
      changes: this.#changes,
      resets: this.#resets,
      listeners: this.#listeners.size + this.#replaying.size,
      lastDispatchMs: this.#lastDispatchMs,
      maxDispatchMs: this.#maxDispatchMs,
      ...(this.#error !== undefined ? { error: String(this.#error) } : {}),
    };
  }

  /** Ends the loop and waits for it; releases every waiter. Idempotent. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    this.#listeners.clear();
    this.#replaying.clear();
    this.#releaseWaiters(true);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    let woken = now();
    this.#slice = woken;
    while (!stop.aborted && !this.store.closed) {
      let page: StoredChange[];
      try {
        page = await this.store.changesAfter(this.#watermark, this.#pageSize);
      } catch (error) {
        if (stop.aborted || this.store.closed) break;
        if (error instanceof NexusError && error.details?.reason === "beyond_retention") {
          try {
            await this.#reset();
            continue;
          } catch (resetError) {
            if (stop.aborted || this.store.closed) break;
            this.#error = resetError;
            break;
          }
        }
        this.#error = error;
        break;
      }
      if (stop.aborted) break;
      if (page.length > 0) {
        // A backlog (a bulk load: 100k changes) is delivered page by page within one task otherwise, holding the
        // event loop for seconds: back to it between pages, and between listeners, once a slice has run for a
        // few milliseconds.
        this.#dispatching = this.#dispatch(page, woken);
        try {
          await this.#dispatching;
        } finally {
          this.#dispatching = undefined;
        }
        await this.#pause();
        continue;
      }
      this.#releaseWaiters(false);
      await this.store.waitForRevision(this.#watermark, stop);
      woken = now();
      this.#slice = woken;
    }
    this.#releaseWaiters(true);
  }

  /**
   * Hands `listener` the changes after `after` up to the feed's watermark, then moves it to the live fan-out. Each
   * page is cut at the watermark as it stands when the page arrives (a page never splits a revision), so no change
   * reaches the listener twice: what lies beyond the watermark the live loop delivers after the listener joins.
   */
  async #replay(
    listener: ChangeListener,
    after: Revision,
    onJoined: ((watermark: Revision) => void) | undefined,
  ): Promise<void> {
    let cursor = after;
    let slice = now();
    while (this.#replaying.has(listener)) {
      if (this.#stop.signal.aborted || this.store.closed) {
        this.#replaying.delete(listener);
        return;
      }
      if (cursor >= this.#watermark) break;
      let page: StoredChange[];
      try {
        page = await this.store.changesAfter(cursor, this.#pageSize);
      } catch (error) {
        if (!this.#replaying.has(listener)) return;
        if (error instanceof NexusError && error.details?.reason === "beyond_retention") {
          this.#replaying.delete(listener);
          this.#listeners.add(listener);
          listener.onReset(this.#watermark);
          return;
        }
        this.#replaying.delete(listener);
        throw error;
      }
      if (!this.#replaying.has(listener)) return;
      const watermark = this.#watermark;
      let end = page.length;
      while (end > 0 && page[end - 1]!.revision > watermark) end--;
      if (end > 0) {
        const delivered = end === page.length ? page : page.slice(0, end);
        const before = cursor;
        cursor = delivered[delivered.length - 1]!.revision;
        if (listener.partialRevisions === true && delivered.length > PART) {
          // A large revision replayed (a bulk load's write, at engine start): in parts, as the live loop does.
          for (let start = 0; start < delivered.length; start += PART) {
            const stop = Math.min(delivered.length, start + PART);
            listener.onChanges(delivered.slice(start, stop), completeThrough(delivered, stop, before));
            if (stop < delivered.length && now() - slice > SLICE_MS) {
              await yieldToLoop();
              slice = now();
              if (!this.#replaying.has(listener)) return;
            }
          }
        } else {
          listener.onChanges(delivered, cursor);
        }
      }
      if (end < page.length || page.length === 0) break;
      if (now() - slice > SLICE_MS) {
        await yieldToLoop();
        slice = now();
      }
    }
    if (!this.#replaying.delete(listener)) return;
    // Caught up with the live loop: nothing ran between the last replayed page and here, so the listener has seen
    // every change up to the feed's watermark and takes the next page with everyone else.
    this.#listeners.add(listener);
    // A page being handed out now reaches the listener too (it joined the set being iterated), but the watermark
    // moves only once every listener has it: replayed() resolves after that, so a caller reading the watermark
    // then (to hand over from its own subscription) finds it covering what the listener has seen.
    await this.#dispatching;
    if (onJoined === undefined) return;
    // A next page may have started while that settled: wait until none is in flight, then call back at once.
    while (this.#dispatching !== undefined) await this.#dispatching;
    if (this.#listeners.has(listener)) onJoined(this.#watermark);
  }

  /** Back to the event loop once the current slice has run for SLICE_MS. */
  async #pause(): Promise<void> {
    if (now() - this.#slice <= SLICE_MS) return;
    await yieldToLoop();
    this.#slice = now();
  }

  /**
   * Hands the page to every live listener; a large page lets the event loop turn between listeners (and between
   * parts of the page for a listener that takes partial revisions). The watermark moves only once every listener has the
   * page: until then a reader or a waiter sees the old one. A listener joining the fan-out meanwhile (a replay
   * reaching the old watermark) is visited too, since a Set's iteration reaches entries added during it.
   */
  async #dispatch(page: readonly StoredChange[], woken: number): Promise<void> {
    const before = this.#watermark;
    const watermark = page[page.length - 1]!.revision;
    let revision = before;
    // Indexed: a for-of allocates an iterator result per change until the loop is optimized (a load's first pages).
    for (let i = 0; i < page.length; i++) {
      if (page[i]!.revision !== revision) {
        revision = page[i]!.revision;
        this.#revisions++;
      }
    }
    this.#changes += page.length;
    // A listener removed and added again during a pause comes up again in the iteration: it has the page already.
    const delivered = new Set<ChangeListener>();
    // The parts of a large page, cut once for every listener taking parts (each took its own copies).
    let parts:
      | { readonly changes: StoredChange[]; readonly end: number; readonly watermark: Revision }[]
      | undefined;
    for (const listener of this.#listeners) {
      if (delivered.has(listener)) continue;
      delivered.add(listener);
      if (listener.partialRevisions === true && page.length > PART) {
        if (parts === undefined) {
          parts = [];
          for (let start = 0; start < page.length; start += PART) {
            const end = Math.min(page.length, start + PART);
            parts.push({
              changes: page.slice(start, end),
              end,
              watermark: completeThrough(page, end, before),
            });
          }
        }
        for (const { changes, end, watermark: through } of parts) {
          listener.onChanges(changes, through);
          if (end < page.length) {
            await this.#pause();
            if (this.#stop.signal.aborted || !this.#listeners.has(listener)) break;
          }
        }
      } else {
        listener.onChanges(page, watermark);
      }
      // A small page goes to every listener in one task, as it always did (cheap, and a reader sees every layer
      // take it at once); a large one may pause between listeners.
      if (page.length > PART) {
        await this.#pause();
        if (this.#stop.signal.aborted) return;
      }
    }
    this.#watermark = watermark;
    const took = now() - woken;
    this.#lastDispatchMs = took;
    if (took > this.#maxDispatchMs) this.#maxDispatchMs = took;
    this.#releaseWaiters(false);
  }

  async #reset(): Promise<void> {
    const current = await this.store.currentRevision();
    this.#resets++;
    this.#watermark = current;
    this.#complete = current;
    for (const listener of this.#listeners) listener.onReset(current);
  }

  #releaseWaiters(all: boolean): void {
    for (const waiter of this.#waiters) {
      if (all || waiter.revision <= this.#watermark) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }
}

/** The last revision whose changes all lie in page[0, end) (`before` when none does): a part's watermark. */
export function completeThrough(page: readonly StoredChange[], end: number, before: Revision): Revision {
  if (end === page.length) return page[end - 1]!.revision;
  const cut = page[end]!.revision;
  // The page is in revision order: binary search for where the cut revision starts. Walking back from `end` went
  // over the large revision's earlier parts again for every part, for every listener taking parts (20,480 steps
  // per listener for a 10,000-tuple write; 12 ms of a 100k-tuple load in a profile).
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (page[mid]!.revision < cut) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? page[lo - 1]!.revision : before;
}
