/**
 * A data-level bound on how deep the reference check (src/reference/check.ts) can go, so a cache layer may answer
 * "deny" without evaluating on recursive models too, wherever the tuples themselves are shallow.
 *
 * The graph (src/changes/depth-graph.ts): one node per (tenant, object), one edge per tuple naming an object or a
 * userset as its subject, each node with a height that bounds the longest path from it. (A node is found by a
 * 64-bit fingerprint of the pair, src/changes/node-index.ts; two pairs sharing one would share a node, which only
 * merges paths: the longest path can only grow, so everything below holds of the graph kept.) Objects of a type
 * the model never names as a subject get no node: each of their edges counts on its target, and a tuple naming one
 * as its subject (allowed by another model over the same store) is left out, as no evaluation under this model
 * follows it (src/changes/depth-graph.ts says why both keep the bound). Like every count here, this relies on the
 * feed delivering each delete only after the add of the same tuple.
 *
 * Why the longest path bounds the evaluator's depth. A check starts at depth 0; computed usersets stay at the same
 * depth on the same object; the only steps one level deeper are a userset hop and a tuple-to-userset hop, and each
 * follows a tuple read on the object being resolved (`byObject(tenant, object, …)`) to that tuple's subject object
 * in its subject tenant: exactly an edge of this graph leaving the current node. So the chain of resolve() calls
 * leading to any call at depth k walks k edges, each starting where the previous one ended. The evaluator only
 * refuses to revisit the same (tenant, object, relation), so a walk may come back to an object under another
 * relation: if the object graph has a cycle, walks are unbounded for our purposes and the bound is Infinity. In an
 * acyclic graph every walk is a path (its objects are distinct), so k ≤ the longest path L; the evaluator fails
 * only when some call has depth ≥ maxDepth, hence never when L < maxDepth. Conditions and expiry only remove hops
 * (a tuple whose condition fails or that has expired is not followed), so keeping such edges keeps the bound an
 * upper bound; the store's own expiry deletes arrive as changes and remove the edge then. Contextual tuples are
 * not in the graph: the bound says nothing about checks that carry them (layers bypass those anyway). The bound
 * also counts a final hop to a leaf subject (`doc:1#viewer@user:anne` is an edge to user:anne) that the
 * evaluator never takes, so it may exceed the true depth by one; never the other way.
 *
 * Upkeep: the graph keeps its heights exact at every add and delete, in work proportional to the heights that
 * change (never a pass over the graph), and knows its longest chain in O(1). The bound follows a lower longest
 * chain (a "recompute", now O(1)) lazily when asked, amortized over changes or rate limited in time, only so that
 * epochs (below) are not closed at every delete; a user's check never pays for a pass over the graph.
 *
 * Revisions: a layer asks about a check pinned to revision r, and the graph at r may differ from the current one.
 * Within an epoch heights only rise, so the epoch's bound (the largest height seen since it began) bounds the graph
 * at every revision from the epoch's start to the last revision applied. A recompute that lowers the bound closes
 * the epoch (kept, with its bound, for older questions) and starts a new one at the current revision. Only the
 * last few epochs are kept; questions older than those, newer than the last change applied, or asked before the
 * bound is seeded get "not safe".
 *
 * Seeding: the bound subscribes to the change feed from revision 0 (`subscribe(bound, { after: 0 })`): the feed
 * replays every change ever written to it alone, then joins it to the live fan-out with no gap, so the bound holds
 * from revision 0. When the changelog no longer reaches back to 0 the feed says so (`onReset`), and a snapshot of
 * the tenants named in `tenants` is read at the feed's revision instead (the bound then holds from there on; changes
 * the feed delivers meanwhile wait in a buffer); that is sound only when those are every tenant holding tuples, which
 * the caller promises by naming them. Without them the bound stays unknown. A later feed reset empties the graph and
 * re-seeds from a snapshot in the background (close() waits for it).
 */

import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";
import { DepthGraph } from "./depth-graph.js";
import type { ChangeListener, SubscribeOptions, Unsubscribe } from "./feed.js";

/** Where the bound follows changes: a ChangeFeed, which replays the changelog from revision 0 to it first. */
export interface DepthBoundSource {
  /** Every change up to this revision has been delivered to every listener in the live fan-out. */
  readonly watermark: Revision;
  subscribe(listener: ChangeListener, options?: SubscribeOptions): Unsubscribe;
}

export interface TupleDepthBoundOptions {
  /** Heights are capped here; a bound reaching it is reported as Infinity (default 64, at least 2). */
  readonly cap?: number;
  /**
   * Object types the model never names as a subject (src/model/tuple-rules.ts sourceOnlyTypes): the graph keeps
   * no entry for their objects (src/changes/depth-graph.ts). Default none.
   */
  readonly sourceOnlyTypes?: ReadonlySet<string>;
  /**
   * Tenants to read from a snapshot when the changelog no longer reaches back to revision 0. They must be every
   * tenant that holds tuples (a tenant left out could hide a deep chain); without them the bound stays unknown.
   */
  readonly tenants?: readonly string[];
  /**
   * A lazy recompute after deletes runs once the changes since the last one, times this, reach the graph's size
   * (nodes + distinct edges): each change pays for at most this many units of recompute work (default 64).
   */
  readonly recomputeWorkPerChange?: number;
  /** ...or once this long has passed since the last recompute (default 1000 ms). */
  readonly recomputeIntervalMs?: number;
  /**
   * Checked (an integer ≥ 1) but no longer used: the change feed pages the changelog while it replays it to the
   * bound, with the feed's own page size.
   */
  readonly pageSize?: number;
}

export interface TupleDepthBoundStats {
  /**
   * Nodes (tenant, object) with at least one edge, as of the last recompute (isolated ones are dropped then); the
   * objects of source-only types are not nodes.
   */
  readonly nodes: number;
  /** Tuples counted as edges (the multiset's size; tuples the model does not allow are left out). */
  readonly edges: number;
  /** Distinct (from, to) node pairs; each tuple of a source-only object counts as one. */
  readonly distinctEdges: number;
  /** The current bound (Infinity when unknown or cyclic). */
  readonly longestChain: number;
  readonly recomputes: number;
  /** How the bound was seeded: replaying the changelog from 0, reading a snapshot, or not (unknown). */
  readonly seededFrom: "changelog" | "snapshot" | "none";
  /** The oldest revision the bound answers for (-1 when unknown). */
  readonly answersFrom: Revision;
  /** The last revision applied. */
  readonly seen: Revision;
  readonly resets: number;
  /** Why the bound is unknown, when it is. */
  readonly note?: string;
}

/** A closed epoch: its bound held for every revision in [from, to]. */
interface Epoch {
  readonly from: Revision;
  readonly to: Revision;
  readonly bound: number;
}

const MAX_CLOSED_EPOCHS = 8;
/** Tuples a snapshot seed adds between returns to the event loop. */
const SEED_SLICE = 16_384;
const now = (): number => globalThis.performance.now();
/** Why the bound is unknown when the changelog does not reach back to 0 and there is no snapshot to read. */
const noHistory = (revision: Revision): string =>
  `the changelog does not reach back to revision 0 (seeding at ${revision}) and no tenants were named to read a snapshot of`;

export class TupleDepthBound implements ChangeListener, AsyncDisposable {
  /** A large write reaches the bound in parts (the feed turns the event loop between them). */
  readonly partialRevisions = true;
  readonly #store: TupleStore;
  readonly #tenants: readonly string[];
  readonly #workPerChange: number;
  readonly #intervalMs: number;
  readonly #graph: DepthGraph;

  // The bound over revisions.
  /** The current epoch's bound: the largest height since it began (capped). */
  #epochBound = 0;
  /** The current epoch starts here; Infinity while unknown. */
  #from = Number.POSITIVE_INFINITY;
  #seen: Revision = 0;
  #closedEpochs: Epoch[] = [];
  #lastRecompute = now();
  #recomputes = 0;
  /**
   * The last part delivered ended inside a revision (after #seen): the graph holds part of it, so a recompute now
   * could lower the bound below what revision #seen needs. Recomputes wait for the revision's last part.
   */
  #midRevision = false;

  // Seeding and life cycle.
  /** The feed is replaying the changelog from revision 0: changes build the graph, the bound is not known yet. */
  #replaying = false;
  /** Changes delivered while a snapshot seed runs, applied after it. */
  #buffer: StoredChange[] | undefined;
  #seeding: Promise<void> | undefined;
  #generation = 0;
  #seededFrom: "changelog" | "snapshot" | "none" = "none";
  #note = "not seeded yet";
  #resets = 0;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  private constructor(store: TupleStore, options: TupleDepthBoundOptions) {
    this.#store = store;
    this.#graph = new DepthGraph(options.cap ?? 64, undefined, options.sourceOnlyTypes);
    this.#tenants = [...(options.tenants ?? [])];
    this.#workPerChange = options.recomputeWorkPerChange ?? 64;
    this.#intervalMs = options.recomputeIntervalMs ?? 1000;
  }

  /**
   * Subscribes to `source` from revision 0 and waits for the replay (or, when the changelog no longer reaches
   * back that far, for a snapshot of `tenants`). Never throws for lack of history: the bound then stays unknown
   * (safeBelow false) and stats().note says why.
   * @throws NexusError "invalid_argument" for a bad option.
   */
  static async open(
    store: TupleStore,
    source: DepthBoundSource,
    options: TupleDepthBoundOptions = {},
  ): Promise<TupleDepthBound> {
    const check = (name: string, value: number | undefined, min: number, integer: boolean): void => {
      if (value === undefined) return;
      if (!(value >= min) || (integer && !Number.isInteger(value)) || !Number.isFinite(value)) {
        throw new NexusError(
          "invalid_argument",
          `depth bound ${name} must be ${integer ? "an integer" : "a number"} ≥ ${min}, got ${value}`,
        );
      }
    };
    check("cap", options.cap, 2, true);
    check("recomputeWorkPerChange", options.recomputeWorkPerChange, 0, false);
    check("recomputeIntervalMs", options.recomputeIntervalMs, 0, false);
    check("pageSize", options.pageSize, 1, true);
    const bound = new TupleDepthBound(store, options);
    bound.#replaying = true;
    const unsubscribe = source.subscribe(bound, { after: 0 });
    bound.#unsubscribe = unsubscribe;
    const generation = bound.#generation;
    const seed = unsubscribe
      .replayed()
      .then(
        () => bound.#replayed(generation, source.watermark),
        (error: unknown) => {
          if (generation !== bound.#generation) return;
          bound.#replaying = false;
          bound.#clear();
          bound.#note = `seeding failed: ${error instanceof Error ? error.message : String(error)}`;
        },
      )
      .finally(() => {
        if (bound.#seeding === seed) bound.#seeding = undefined;
      });
    bound.#seeding = seed;
    await bound.whenSeeded();
    return bound;
  }

  /**
   * An upper bound on the longest path (in edges) of the tuple graph as of the last change applied, and of every
   * revision since answersFrom: Infinity when unknown, cyclic, or at least the cap. May first run a due recompute.
   */
  longestChain(): number {
    if (!Number.isFinite(this.#from)) return Number.POSITIVE_INFINITY;
    if (this.#graph.dirty && this.#recomputeDue()) this.recompute();
    return this.#epochBound >= this.#graph.cap ? Number.POSITIVE_INFINITY : this.#epochBound;
  }

  /**
   * Whether no check pinned to `revision` (without contextual tuples) can reach depth `maxDepth` in the reference
   * evaluator, so a layer may deny without evaluating as far as depth is concerned.
   */
  safeBelow(maxDepth: number, revision: Revision): boolean {
    if (!(revision <= this.#seen)) return false;
    const current = this.longestChain();
    if (revision >= this.#from) return current < maxDepth;
    for (const epoch of this.#closedEpochs) {
      if (epoch.from <= revision && revision <= epoch.to) return epoch.bound < maxDepth;
    }
    return false;
  }

  /** Resolves once no seed is in progress (after open(), or a re-seed that a feed reset started). */
  async whenSeeded(): Promise<void> {
    while (this.#seeding !== undefined) await this.#seeding;
  }

  /** Lowers the bound to the exact longest chain now (after deletes), in O(1). No-op while unknown. */
  recompute(): void {
    if (!Number.isFinite(this.#from) || this.#buffer !== undefined || this.#midRevision) return;
    const exact = this.#graph.settle();
    this.#recomputes++;
    this.#lastRecompute = now();
    if (exact < this.#epochBound) {
      // The lower bound holds from the current revision on; older revisions keep the old one.
      this.#closedEpochs.push({ from: this.#from, to: this.#seen, bound: this.#epochBound });
      if (this.#closedEpochs.length > MAX_CLOSED_EPOCHS) this.#closedEpochs.shift();
      this.#from = this.#seen;
      this.#epochBound = exact;
    }
  }

  onChanges(changes: readonly StoredChange[], watermark: Revision): void {
    if (this.#closed) return;
    this.#seen = watermark;
    this.#midRevision = changes.length > 0 && changes[changes.length - 1]!.revision > watermark;
    const buffer = this.#buffer;
    if (buffer !== undefined) {
      for (const change of changes) buffer.push(change);
      return;
    }
    // Unknown and not seeding (no history to seed from): nothing to keep up to date.
    if (!Number.isFinite(this.#from) && !this.#replaying) return;
    // Indexed: a for-of allocates an iterator result per change until the loop is optimized (a load's first pages).
    for (let i = 0; i < changes.length; i++) this.#apply(changes[i]!);
  }

  onReset(revision: Revision): void {
    if (this.#closed) return;
    // Changes before `revision` were missed (or, during the first replay, the changelog does not reach back to
    // 0): forget everything and seed again at `revision` from a snapshot.
    if (!this.#replaying) this.#resets++;
    this.#replaying = false;
    this.#midRevision = false;
    this.#generation++;
    this.#clear();
    this.#seen = revision;
    if (this.#tenants.length === 0) {
      this.#note = noHistory(revision);
      return;
    }
    this.#buffer = [];
    this.#note = "re-seeding after a change feed reset";
    const previous = this.#seeding;
    if (previous === undefined) this.#startSnapshotSeed(revision);
    else {
      const generation = this.#generation;
      this.#seeding = previous.then(() => {
        if (generation === this.#generation && !this.#closed) {
          this.#startSnapshotSeed(revision);
          return this.#seeding;
        }
      });
    }
  }

  stats(): TupleDepthBoundStats {
    const known = Number.isFinite(this.#from);
    const longestChain =
      !known || this.#epochBound >= this.#graph.cap ? Number.POSITIVE_INFINITY : this.#epochBound;
    return {
      nodes: this.#graph.nodes,
      edges: this.#graph.edges,
      distinctEdges: this.#graph.distinctEdges,
      longestChain,
      recomputes: this.#recomputes,
      seededFrom: known ? this.#seededFrom : "none",
      answersFrom: known ? (this.#closedEpochs[0]?.from ?? this.#from) : -1,
      seen: this.#seen,
      resets: this.#resets,
      ...(known ? {} : { note: this.#note }),
    };
  }

  /** Stops following changes and waits for a seed in progress. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#generation++;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }
    await this.#seeding;
    this.#clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- seeding ----

  /**
   * The feed has replayed every change from revision 0 and joined the bound to its fan-out, which has delivered
   * everything up to `watermark`: start answering from exact heights.
   */
  #replayed(generation: number, watermark: Revision): void {
    if (generation !== this.#generation || this.#closed) return;
    this.#replaying = false;
    if (watermark > this.#seen) this.#seen = watermark;
    this.#seededFrom = "changelog";
    this.#start(0);
  }

  #startSnapshotSeed(revision: Revision): void {
    const generation = this.#generation;
    const seed = this.#seedFromSnapshot(revision, generation)
      .catch((error: unknown) => {
        if (generation !== this.#generation) return;
        this.#clear();
        this.#note = `seeding failed: ${error instanceof Error ? error.message : String(error)}`;
      })
      .finally(() => {
        if (generation === this.#generation) this.#buffer = undefined;
        if (this.#seeding === seed) this.#seeding = undefined;
      });
    this.#seeding = seed;
  }

  /** Fills the graph from a snapshot of the named tenants at `revision`, then applies the buffered changes after it. */
  async #seedFromSnapshot(revision: Revision, generation: number): Promise<void> {
    const stale = (): boolean => generation !== this.#generation || this.#closed;
    const snapshot = await this.#store.snapshot(revision);
    try {
      for (const tenant of this.#tenants) {
        const tuples = await snapshot.read({ tenant });
        if (stale()) return;
        for (let i = 0; i < tuples.length; i++) {
          this.#graph.addTuple(tuples[i]!);
          // A million tuples in one task held the event loop for a second: back to it now and then.
          if ((i + 1) % SEED_SLICE === 0) {
            await yieldToLoop();
            if (stale()) return;
          }
        }
      }
    } finally {
      snapshot.release();
    }
    if (stale()) return;
    this.#seededFrom = "snapshot";
    const buffered = this.#buffer ?? [];
    this.#buffer = undefined;
    for (const change of buffered) if (change.revision > revision) this.#apply(change);
    this.#start(revision);
  }

  /** Starts answering for revisions from `from` on, with exact heights (the seed's are only an upper bound). */
  #start(from: Revision): void {
    this.#from = from;
    // Mid-revision (part of a write applied): the heights, never lowered since the graph was cleared, bound every
    // state it passed through; the exact recompute waits for the revision's last part.
    this.#epochBound = this.#midRevision ? this.#graph.peak : this.#graph.recompute();
    this.#lastRecompute = now();
    this.#note = "";
  }

  // ---- the graph ----

  #apply(change: StoredChange): void {
    if (change.op === "write") {
      this.#graph.addTuple(change.tuple);
      if (this.#graph.peak > this.#epochBound) this.#epochBound = this.#graph.peak;
    } else this.#graph.removeTuple(change.tuple);
  }

  #recomputeDue(): boolean {
    const size = this.#graph.nodes + this.#graph.distinctEdges;
    return (
      this.#graph.changes * this.#workPerChange >= size || now() - this.#lastRecompute >= this.#intervalMs
    );
  }

  #clear(): void {
    this.#graph.clear();
    this.#from = Number.POSITIVE_INFINITY;
    this.#epochBound = 0;
    this.#closedEpochs = [];
    this.#seededFrom = "none";
  }
}
