/**
 * The WASM evaluator's compiled tuple graphs, one per tenant, each kept at exactly the store revision a request
 * asks for: built from a snapshot at the first revision asked, then moved forward by the changes a change feed
 * delivers (graphs only move forward; a request older than its tenant's graph is routed by the evaluator).
 *
 * Following the feed. One listener (this class) takes every page the feed delivers and queues each change for its
 * tenant's graph; the graph applies its queue up to the revision a request (or the engine, right after a write:
 * `follow`) asks for, in slices of about 8 ms with a return to the event loop between them, so neither a bulk
 * load nor a first build holds the loop for long. A graph built at a revision the feed has already passed first
 * catches up through a subscription of its own (`subscribe(listener, { after })`: the feed replays the changelog
 * after the build revision to it alone) and then hands over to the shared listener. When the feed loses track
 * (`onReset`), or a tenant's queue grows past what rebuilding costs (an idle graph, a huge write), the graph is
 * rebuilt from a snapshot at the next request.
 *
 * Given no feed, the graphs open one of their own over the store at the first build (closed with them).
 * Runtime-neutral: no `node:` import.
 */

import { ChangeFeed, type ChangeListener, type ChangeSource, type Unsubscribe } from "../changes/feed.js";
import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { objectList } from "../tuples/versions.js";
import { NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";
import type { CompiledProgram } from "./compile.js";
import { TupleGraph } from "./graph.js";
import type { EvaluateKernel } from "./kernel.js";
import type { Symbols } from "./symbols.js";

/** Counters the graphs add to (the evaluator's stats). */
export interface GraphCounters {
  graphBuilds: number;
  changesApplied: number;
}

/**
 * How long a build or an advance applies tuples before it returns to the event loop. By time, not by count: 4,096
 * tuples took 9-32 ms on a loaded 2-core machine, and the feed's own slices run in the same loop turns.
 */
const SLICE_MS = 8;
/** Tuples applied between looks at the clock. */
const CLOCK_EVERY = 256;
const now = (): number => globalThis.performance.now();
/** A graph's revision while a revision's changes are half applied (no request's revision equals it). */
const MID_REVISION = -1;
/** Changelog page size of a feed the graphs open themselves. */
const FEED_PAGE = 4096;
/** A tenant's queue may always hold this many changes; beyond it and beyond its graph's size, it is rebuilt. */
const QUEUE_MIN = 1 << 16;
/**
 * A graph's Leopard index waiting for its rebuild (a bulk load defers it; a relation clean again after a cycle or
 * an impure tuple needs it) is rebuilt off the request path, and questions walk meanwhile (assembly/leopard.ts
 * leopard_decide never rebuilds): at the end of the run that left it pending when the graph is this small (a scan
 * of a few thousand nodes, well under a slice), else as a task of its own once no run has ended for
 * LEOPARD_QUIET_MS (writes settled: a bulk load is not rebuilt after every batch), or LEOPARD_MAX_DEFER_MS after
 * it was first put off (a steady stream of writes would otherwise put it off for as long as the stream lasts). The
 * first check after a load of 100k tuples ran the ~4 ms rebuild inside it.
 */
const LEOPARD_INLINE_TUPLES = 8192;
const LEOPARD_QUIET_MS = 20;
const LEOPARD_MAX_DEFER_MS = 200;

interface TenantState {
  graph: TupleGraph | undefined;
  pending: Promise<void> | undefined;
  /** The tenant's changes delivered but not applied yet, in revision order, from `head` on. */
  queue: StoredChange[];
  head: number;
  /** Every change of the tenant up to this revision is applied or queued (the shared listener's watermark adds). */
  seen: Revision;
  /** Changes after the graph's build revision arrive (false before a build and after a failure). */
  following: boolean;
  /** The graph's own subscription while it catches up with the feed; undefined once the shared listener has it. */
  catchUp: { readonly stop: () => void; readonly done: Promise<void> } | undefined;
  /** Changes were missed (a feed reset, an overflowing queue): rebuild at the next request. */
  lost: boolean;
  /** The timer of the graph's pending Leopard rebuild, and when the last run that left it pending ended. */
  leopardTimer: ReturnType<typeof setTimeout> | undefined;
  runEnded: number;
  /** When the timer now armed was first armed (the rebuild is put off at most LEOPARD_MAX_DEFER_MS from then). */
  leopardSince: number;
}

export class TenantGraphs implements ChangeListener {
  readonly #store: TupleStore;
  readonly #kernel: EvaluateKernel;
  readonly #compiled: CompiledProgram;
  readonly #symbols: Symbols;
  readonly #counters: GraphCounters;
  readonly #tenants = new Map<string, TenantState>();
  #source: ChangeSource | undefined;
  /** The source being opened or subscribed to (once). */
  #opening: Promise<ChangeSource> | undefined;
  #ownFeed: ChangeFeed | undefined;
  #unsubscribe: Unsubscribe | undefined;
  /** The shared listener has been delivered every change up to here. */
  #seen: Revision = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(
    store: TupleStore,
    kernel: EvaluateKernel,
    compiled: CompiledProgram,
    symbols: Symbols,
    counters: GraphCounters,
    source?: ChangeSource,
  ) {
    this.#store = store;
    this.#kernel = kernel;
    this.#compiled = compiled;
    this.#symbols = symbols;
    this.#counters = counters;
    this.#source = source;
  }

  /** Every tenant graph held now. */
  *graphs(): IterableIterator<TupleGraph> {
    for (const state of this.#tenants.values()) if (state.graph !== undefined) yield state.graph;
  }

  /**
   * The change source the graphs follow, subscribed to (opening a feed over the store from `after` when none was
   * given). Other followers of the same changes (the worker pool's replicas) subscribe to it too.
   */
  source(after: Revision): Promise<ChangeSource> {
    this.#opening ??= (async () => {
      let source = this.#source;
      if (source === undefined) {
        const feed = await ChangeFeed.open(this.#store, { after, pageSize: FEED_PAGE });
        this.#ownFeed = feed;
        source = feed;
        // Closed while the feed opened: close() has already run without it.
        if (this.#closed) await feed.close();
      }
      this.#source = source;
      if (this.#closed) return source;
      this.#seen = source.watermark;
      this.#unsubscribe = source.subscribe(this);
      return source;
    })();
    const opening = this.#opening;
    // A failed open (the changelog does not reach back to `after`) is retried at the next build.
    opening.catch(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    return opening;
  }

  /**
   * The tenant's graph at exactly `revision`, building or advancing it; undefined when it cannot be had. The
   * graph may move on to a later revision at the caller's next await: check `graph.revision` (or use
   * graphIfCurrent) right before evaluating.
   */
  async graphAt(tenant: string, revision: Revision): Promise<TupleGraph | undefined> {
    let state = this.#tenants.get(tenant);
    if (state === undefined) {
      state = {
        graph: undefined,
        pending: undefined,
        queue: objectList(),
        head: 0,
        seen: Number.NEGATIVE_INFINITY,
        following: false,
        catchUp: undefined,
        lost: false,
        leopardTimer: undefined,
        // Doubles from the start (NaN is one; both are set from the clock before they are read): a field that
        // held a small integer and then a clock reading changes the state's hidden class, and the shared listener,
        // optimized on the first, was deoptimized ("wrong map") in a load's second write.
        runEnded: Number.NaN,
        leopardSince: Number.NaN,
      };
      this.#tenants.set(tenant, state);
    }
    for (;;) {
      const graph = state.graph;
      if (graph !== undefined && graph.revision === revision) return graph;
      if (graph !== undefined && graph.revision > revision) return undefined;
      if (state.pending !== undefined) {
        await state.pending;
        continue;
      }
      const s = state;
      let failed = false;
      s.pending = this.#advance(s, tenant, revision)
        .catch(() => {
          failed = true;
        })
        .finally(() => {
          s.pending = undefined;
        });
      await s.pending;
      if (failed || this.#closed) return undefined;
      if (s.graph === undefined) return undefined;
    }
  }

  /** The graph of `tenant` if it is at `revision` now (no waiting). */
  graphIfCurrent(tenant: string, revision: Revision): TupleGraph | undefined {
    const graph = this.#tenants.get(tenant)?.graph;
    return graph !== undefined && graph.revision === revision ? graph : undefined;
  }

  /** The revision of the tenant's graph, undefined before it is built. */
  graphRevision(tenant: string): Revision | undefined {
    return this.#tenants.get(tenant)?.graph?.revision;
  }

  /** Frees every graph and stops following (closing the feed the graphs opened themselves). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const state of this.#tenants.values()) {
      this.#unfollow(state);
      if (state.leopardTimer !== undefined) clearTimeout(state.leopardTimer);
      state.leopardTimer = undefined;
      state.graph?.dispose();
    }
    this.#tenants.clear();
    await this.#ownFeed?.close();
  }

  // --- the shared listener ---

  onChanges(changes: readonly StoredChange[], watermark: Revision): void {
    // By runs of one tenant (a page's changes mostly share one): its state looked up once a run, and the run queued
    // by a method of its own. A load's first write queues nothing (its tenant's graph is built from a snapshot), so
    // one loop that both skipped and queued was optimized on skips alone, and the second write's first queued
    // change deoptimized it mid-page.
    const count = changes.length;
    let start = 0;
    while (start < count) {
      const tenant = changes[start]!.tuple.tenant;
      let end = start + 1;
      while (end < count && changes[end]!.tuple.tenant === tenant) end++;
      const state = this.#tenants.get(tenant);
      if (state?.following && state.catchUp === undefined) {
        this.#queueRun(state, changes, start, end);
      }
      start = end;
    }
    if (watermark > this.#seen) this.#seen = watermark;
  }

  /** Queues changes[start, end), all of the state's tenant, past what the state has seen. */
  #queueRun(state: TenantState, changes: readonly StoredChange[], start: number, end: number): void {
    const seen = state.seen;
    const queue = state.queue;
    const before = queue.length;
    for (let i = start; i < end; i++) {
      const change = changes[i]!;
      if (change.revision > seen) queue.push(change);
    }
    if (queue.length > before) this.#bound(state);
  }

  onReset(revision: Revision): void {
    // Changes before `revision` never reached the graphs that follow through this listener.
    for (const state of this.#tenants.values()) {
      if (state.following && state.catchUp === undefined) this.#lose(state);
    }
    this.#seen = revision;
  }

  // --- internals ---

  /** How far the tenant's queue is complete. */
  #seenOf(state: TenantState): Revision {
    return state.catchUp !== undefined ? state.seen : Math.max(state.seen, this.#seen);
  }

  /** A queue longer than its graph (and than QUEUE_MIN) costs more to apply than a rebuild: drop it. */
  #bound(state: TenantState): void {
    const queued = state.queue.length - state.head;
    if (queued > QUEUE_MIN && queued > (state.graph?.tuples ?? 0)) this.#lose(state);
  }

  #lose(state: TenantState): void {
    state.lost = true;
    state.queue = objectList();
    state.head = 0;
  }

  /**
   * From here on, queue the tenant's changes after `from`: through the shared listener when the feed has not
   * passed `from`, else through a subscription of the graph's own that the feed replays from `from` and that hands
   * over to the shared listener once it has joined the live fan-out.
   */
  #follow(state: TenantState, tenant: string, source: ChangeSource, from: Revision): void {
    this.#unfollow(state);
    state.following = true;
    state.lost = false;
    state.seen = from;
    if (from >= this.#seen) return;
    let active = true;
    const listener: ChangeListener = {
      onChanges: (changes, watermark) => {
        if (!active) return;
        for (let i = 0; i < changes.length; i++) {
          if (changes[i]!.tuple.tenant === tenant) state.queue.push(changes[i]!);
        }
        state.seen = watermark;
        this.#bound(state);
      },
      onReset: () => {
        if (active) this.#lose(state);
      },
    };
    let stop = (): void => {};
    const unsubscribe = source.subscribe(listener, {
      after: from,
      // In the live fan-out now, at a moment no page is being handed out: every change up to `watermark` has
      // reached `listener` and none after it, so the shared listener takes the tenant's changes from here. (At
      // replayed() a page could already be under way, skipped by the shared listener while catchUp was set.)
      onJoined: (watermark) => {
        if (!active) return;
        stop();
        if (watermark > state.seen) state.seen = watermark;
      },
    });
    stop = (): void => {
      if (!active) return;
      active = false;
      unsubscribe();
      if (state.catchUp?.stop === stop) state.catchUp = undefined;
    };
    // The replay settles after onJoined has run; one that ended otherwise (a reset: the state is lost; the feed
    // closing) leaves nothing to follow.
    const done = unsubscribe.replayed().then(
      () => stop(),
      () => {
        if (!active) return;
        stop();
        this.#lose(state);
      },
    );
    state.catchUp = { stop, done };
  }

  #unfollow(state: TenantState): void {
    state.catchUp?.stop();
    state.catchUp = undefined;
    state.following = false;
    state.queue = objectList();
    state.head = 0;
  }

  async #advance(state: TenantState, tenant: string, revision: Revision): Promise<void> {
    if (state.graph !== undefined && state.lost) {
      state.graph.dispose();
      state.graph = undefined;
    }
    const graph = state.graph;
    if (graph === undefined) {
      state.graph = await this.#build(state, tenant, revision);
      this.#settleLeopard(state);
      return;
    }
    if (this.#seenOf(state) < revision) {
      const source = await this.source(revision);
      await state.catchUp?.done;
      await source.caughtUp(revision);
      if (this.#closed || graph.disposed) return;
      if (state.lost) return; // the next round rebuilds it
      if (this.#seenOf(state) < revision) {
        throw new NexusError("unavailable", `the change feed stopped before revision ${revision}`);
      }
    }
    try {
      let slice = now();
      // No evaluation runs on the graph within one synchronous slice: its walks share what they invalidated.
      graph.beginBatch();
      while (state.head < state.queue.length) {
        const queue = state.queue;
        // The next run of up to CLOCK_EVERY changes at or before `revision`, applied in one go (its writes' strings
        // interned in one call).
        const start = state.head;
        const limit = Math.min(queue.length, start + CLOCK_EVERY);
        let end = start;
        while (end < limit && queue[end]!.revision <= revision) end++;
        if (end === start) break;
        graph.applyMany(queue, start, end);
        state.head = end;
        this.#counters.changesApplied += end - start;
        if (end === limit && now() - slice > SLICE_MS) {
          // A write of many tuples is one revision: apply it in slices, back to the event loop between them.
          // Meanwhile the graph is between revisions, so it answers none (MID_REVISION): requests wait for this
          // advance in graphAt.
          graph.revision = MID_REVISION;
          graph.endBatch();
          await yieldToLoop();
          graph.beginBatch();
          slice = now();
          if (this.#closed || graph.disposed) return;
          if (state.lost) return;
        }
      }
    } catch (error) {
      // A trap (memory could not grow) mid-update: the graph is no longer a revision's; drop it.
      graph.dispose();
      state.graph = undefined;
      this.#unfollow(state);
      throw error;
    } finally {
      graph.endBatch();
    }
    if (state.head === state.queue.length) {
      state.queue = objectList();
      state.head = 0;
    } else if (state.head > 4096 && state.head * 2 > state.queue.length) {
      state.queue = state.queue.slice(state.head);
      state.head = 0;
    }
    // Every change up to `revision` is applied (revisions without a change to this tenant included).
    graph.revision = revision;
    this.#settleLeopard(state);
  }

  /** After a run: the graph's pending Leopard rebuild done now if it is small, else scheduled (LEOPARD_QUIET_MS). */
  #settleLeopard(state: TenantState): void {
    const graph = state.graph;
    if (graph === undefined || !graph.leopardPending) return;
    if (graph.tuples <= LEOPARD_INLINE_TUPLES) {
      graph.rebuildLeopard();
      return;
    }
    state.runEnded = now();
    if (state.leopardTimer !== undefined) return;
    state.leopardSince = state.runEnded;
    this.#armLeopard(state, LEOPARD_QUIET_MS);
  }

  /**
   * The timer of a pending Leopard rebuild. It serves whichever graph the tenant has when it fires: a graph dropped
   * and built again meanwhile (lost changes) was left pending by a build that found this timer armed.
   */
  #armLeopard(state: TenantState, delay: number): void {
    const timer = setTimeout(() => {
      state.leopardTimer = undefined;
      const graph = state.graph;
      if (this.#closed || graph === undefined || graph.disposed || !graph.leopardPending) return;
      // A run under way: the graph may be between revisions.
      if (state.pending !== undefined) return this.#armLeopard(state, LEOPARD_QUIET_MS);
      const at = now();
      const quiet = at - state.runEnded;
      // A run ended just now: wait for quiet, but not past LEOPARD_MAX_DEFER_MS.
      if (quiet < LEOPARD_QUIET_MS && at - state.leopardSince < LEOPARD_MAX_DEFER_MS) {
        return this.#armLeopard(state, Math.max(1, LEOPARD_QUIET_MS - quiet));
      }
      graph.rebuildLeopard();
    }, delay);
    // Never what keeps a process alive (Node's timers have unref; others do not need it).
    (timer as { unref?: () => void }).unref?.();
    state.leopardTimer = timer;
  }

  async #build(state: TenantState, tenant: string, revision: Revision): Promise<TupleGraph | undefined> {
    let source: ChangeSource;
    try {
      source = await this.source(revision);
    } catch (error) {
      if (error instanceof NexusError && error.code === "invalid_token") return undefined;
      throw error;
    }
    if (this.#closed) return undefined;
    // Before the snapshot is read: every change after `revision` is queued while the build runs.
    this.#follow(state, tenant, source, revision);
    let snapshot: Awaited<ReturnType<TupleStore["snapshot"]>>;
    try {
      snapshot = await this.#store.snapshot(revision);
    } catch (error) {
      this.#unfollow(state);
      if (error instanceof NexusError && error.code === "invalid_token") return undefined;
      throw error;
    }
    try {
      const tuples = await snapshot.read({ tenant });
      if (this.#closed) return undefined;
      const graph = new TupleGraph(this.#kernel, this.#compiled, this.#symbols, tenant, revision);
      // A bulk load: the Leopard index is built once, after it (#settleLeopard), not edge by edge.
      graph.deferLeopard();
      try {
        // In slices: a million tuples applied in one go held the event loop for seconds.
        let slice = now();
        for (let i = 0; i < tuples.length; i += CLOCK_EVERY) {
          const end = Math.min(tuples.length, i + CLOCK_EVERY);
          graph.writeMany(tuples, i, end);
          if (end < tuples.length && now() - slice > SLICE_MS) {
            await yieldToLoop();
            slice = now();
            if (this.#closed) {
              graph.dispose();
              return undefined;
            }
          }
        }
      } catch (error) {
        graph.dispose();
        throw error;
      }
      this.#counters.graphBuilds++;
      return graph;
    } catch (error) {
      this.#unfollow(state);
      throw error;
    } finally {
      snapshot.release();
    }
  }
}
