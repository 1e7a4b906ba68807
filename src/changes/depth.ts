/**
 * A data-level bound on how deep the reference check (src/reference/check.ts) can go, so a cache layer may answer
 * "deny" without evaluating on recursive models too, wherever the tuples themselves are shallow.
 *
 * The graph: one node per (tenant, object); every tuple whose subject is an object (`doc:1#parent@folder:f`) or a
 * userset (`folder:f#viewer@group:eng#member`) is an edge from (tenant, object) to (subjectTenant, the subject's
 * object); a wildcard subject (`user:*`) is none. Edges are a multiset: two tuples between the same nodes are two
 * edges, and deleting one keeps the other.
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
 * Incremental upkeep: each node keeps a height h, an upper bound on the longest path from it, capped at CAP.
 * Invariant: for every present edge A→B, h(A) ≥ min(CAP, 1 + h(B)). Adding an edge raises its source if needed and
 * pushes raises to predecessors (in-edges are kept); deleting one removes a constraint and lowers nothing. If no
 * height reached CAP, the invariant forbids cycles (around one, h(A) ≥ len + h(A)) and bounds every path from A by
 * h(A); a cycle keeps raising heights until CAP, so it ends as Infinity. Deletes mark the graph dirty; an exact
 * recompute from scratch (Kahn's order from the sinks, O(V+E); nodes left over are on or above a cycle) lowers
 * the heights again. It runs lazily when the bound is asked for, amortized over changes or rate limited in time.
 *
 * Revisions: a layer asks about a check pinned to revision r, and the graph at r may differ from the current one.
 * Within an epoch heights only rise, so the epoch's bound (the largest height seen since it began) bounds the graph
 * at every revision from the epoch's start to the last revision applied. A recompute that lowers the bound closes
 * the epoch (kept, with its bound, for older questions) and starts a new one at the current revision. Only the
 * last few epochs are kept; questions older than those, newer than the last change applied, or asked before the
 * bound is seeded get "not safe".
 *
 * Seeding: subscribe first (so no change slips between the seed and the feed), then replay the changelog from
 * revision 0 up to the feed's watermark (every tuple ever written, so the bound holds from revision 0); changes
 * the feed delivers meanwhile wait in a buffer. When the changelog no longer reaches back to 0, a snapshot of the
 * tenants named in `tenants` is read instead (the bound then holds from the snapshot's revision on); that is sound
 * only when those are every tenant holding tuples, which the caller promises by naming them. Without them the
 * bound stays unknown. A feed reset empties the graph and re-seeds in the background (close() waits for it).
 */

import type { RelationTuple } from "../tuples/tuple.js";
import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import type { ChangeListener } from "./feed.js";

/** Where the bound follows changes (a ChangeFeed). */
export interface DepthBoundSource {
  readonly watermark: Revision;
  subscribe(listener: ChangeListener): () => void;
}

export interface TupleDepthBoundOptions {
  /** Heights are capped here; a bound reaching it is reported as Infinity (default 64, at least 2). */
  readonly cap?: number;
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
  /** Changelog page size while seeding (default 4096). */
  readonly pageSize?: number;
}

export interface TupleDepthBoundStats {
  /** Nodes (tenant, object) with at least one edge, as of the last recompute (isolated ones are dropped then). */
  readonly nodes: number;
  /** Tuples counted as edges (the multiset's size). */
  readonly edges: number;
  /** Distinct (from, to) node pairs. */
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

const SEP = "\u0000";
const MAX_CLOSED_EPOCHS = 8;
const now = (): number => globalThis.performance.now();

/** The (from, to) node keys of a tuple's edge, or undefined for a wildcard subject. */
function edgeOf(t: RelationTuple): [string, string] | undefined {
  const s = t.subject;
  if (s.kind === "wildcard") return undefined;
  const target = s.kind === "object" ? t.user : `${s.type}:${s.id}`;
  return [t.tenant + SEP + t.object, t.subjectTenant + SEP + target];
}

export class TupleDepthBound implements ChangeListener, AsyncDisposable {
  readonly #store: TupleStore;
  readonly #cap: number;
  readonly #tenants: readonly string[];
  readonly #workPerChange: number;
  readonly #intervalMs: number;
  readonly #pageSize: number;

  // The graph. Node ids index the arrays; freed ids (isolated nodes dropped at a recompute) are reused.
  readonly #ids = new Map<string, number>();
  #keys: string[] = [];
  #height: number[] = [];
  /** Successor → multiplicity. */
  #out: Map<number, number>[] = [];
  /** Predecessors with at least one edge here. */
  #in: Set<number>[] = [];
  #free: number[] = [];
  #edges = 0;
  #distinct = 0;
  readonly #stack: number[] = [];

  // The bound over revisions.
  /** The current epoch's bound: the largest height since it began (capped). */
  #epochBound = 0;
  /** The current epoch starts here; Infinity while unknown. */
  #from = Number.POSITIVE_INFINITY;
  #seen: Revision;
  #closedEpochs: Epoch[] = [];
  #dirty = false;
  #changesSinceRecompute = 0;
  #lastRecompute = now();
  #recomputes = 0;

  // Seeding and life cycle.
  /** Changes delivered while a seed runs, applied after it. */
  #buffer: StoredChange[] | undefined;
  #seeding: Promise<void> | undefined;
  #generation = 0;
  #seededFrom: "changelog" | "snapshot" | "none" = "none";
  #note = "not seeded yet";
  #resets = 0;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  private constructor(store: TupleStore, seen: Revision, options: TupleDepthBoundOptions) {
    this.#store = store;
    this.#seen = seen;
    this.#cap = options.cap ?? 64;
    this.#tenants = [...(options.tenants ?? [])];
    this.#workPerChange = options.recomputeWorkPerChange ?? 64;
    this.#intervalMs = options.recomputeIntervalMs ?? 1000;
    this.#pageSize = options.pageSize ?? 4096;
  }

  /**
   * Subscribes to `source`, then seeds from the changelog (or a snapshot of `tenants`). Never throws for lack of
   * history: the bound then stays unknown (safeBelow false) and stats().note says why.
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
    // Nothing awaits between reading the watermark and subscribing: every later change reaches onChanges.
    const seedRevision = source.watermark;
    const bound = new TupleDepthBound(store, seedRevision, options);
    bound.#buffer = [];
    bound.#unsubscribe = source.subscribe(bound);
    bound.#startSeed(seedRevision);
    await bound.#seeding;
    return bound;
  }

  /**
   * An upper bound on the longest path (in edges) of the tuple graph as of the last change applied, and of every
   * revision since answersFrom: Infinity when unknown, cyclic, or at least the cap. May first run a due recompute.
   */
  longestChain(): number {
    if (!Number.isFinite(this.#from)) return Number.POSITIVE_INFINITY;
    if (this.#dirty && this.#recomputeDue()) this.recompute();
    return this.#epochBound >= this.#cap ? Number.POSITIVE_INFINITY : this.#epochBound;
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

  /** Recomputes every height exactly now (lowering the bound after deletes). No-op while unknown. */
  recompute(): void {
    if (!Number.isFinite(this.#from) || this.#buffer !== undefined) return;
    const exact = this.#recomputeHeights();
    this.#recomputes++;
    this.#dirty = false;
    this.#changesSinceRecompute = 0;
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
    const buffer = this.#buffer;
    if (buffer !== undefined) {
      for (const change of changes) buffer.push(change);
      return;
    }
    // Unknown and not seeding (no history to seed from): nothing to keep up to date.
    if (!Number.isFinite(this.#from)) return;
    for (const change of changes) this.#apply(change);
  }

  onReset(revision: Revision): void {
    if (this.#closed) return;
    // Changes before `revision` were missed: forget everything and seed again at `revision`.
    this.#resets++;
    this.#generation++;
    this.#clear();
    this.#seen = revision;
    this.#buffer = [];
    this.#note = "re-seeding after a change feed reset";
    const previous = this.#seeding;
    if (previous === undefined) this.#startSeed(revision);
    else {
      const generation = this.#generation;
      this.#seeding = previous.then(() => {
        if (generation === this.#generation && !this.#closed) {
          this.#startSeed(revision);
          return this.#seeding;
        }
      });
    }
  }

  stats(): TupleDepthBoundStats {
    const known = Number.isFinite(this.#from);
    const longestChain =
      !known || this.#epochBound >= this.#cap ? Number.POSITIVE_INFINITY : this.#epochBound;
    return {
      nodes: this.#ids.size,
      edges: this.#edges,
      distinctEdges: this.#distinct,
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

  #startSeed(revision: Revision): void {
    const generation = this.#generation;
    const seed = this.#seed(revision, generation)
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

  /** Fills the graph as of `revision`, then applies the buffered changes after it and starts answering. */
  async #seed(revision: Revision, generation: number): Promise<void> {
    const stale = (): boolean => generation !== this.#generation || this.#closed;
    let from: Revision;
    const replayed = await this.#replay(revision, stale);
    if (stale()) return;
    if (replayed) {
      from = 0;
      this.#seededFrom = "changelog";
    } else if (this.#tenants.length > 0) {
      if (stale()) return;
      const snapshot = await this.#store.snapshot(revision);
      try {
        for (const tenant of this.#tenants) {
          const tuples = await snapshot.read({ tenant });
          if (stale()) return;
          for (const t of tuples) this.#addTuple(t);
        }
      } finally {
        snapshot.release();
      }
      from = revision;
      this.#seededFrom = "snapshot";
    } else {
      if (stale()) return;
      this.#clear();
      this.#note = `the changelog does not reach back to revision 0 (seeding at ${revision}) and no tenants were named to read a snapshot of`;
      return;
    }
    if (stale()) return;
    const buffered = this.#buffer ?? [];
    this.#buffer = undefined;
    for (const change of buffered) if (change.revision > revision) this.#apply(change);
    // Heights from the seed are only an upper bound (deletes replayed); start from exact ones.
    this.#from = from;
    this.#epochBound = this.#recomputeHeights();
    this.#dirty = false;
    this.#changesSinceRecompute = 0;
    this.#lastRecompute = now();
    this.#note = "";
  }

  /** Applies every change up to `revision` from the changelog; false when it no longer reaches back to 0. */
  async #replay(revision: Revision, stale: () => boolean): Promise<boolean> {
    let cursor = 0;
    while (cursor < revision) {
      let page: StoredChange[];
      try {
        page = await this.#store.changesAfter(cursor, this.#pageSize);
      } catch (error) {
        if (error instanceof NexusError && error.details?.reason === "beyond_retention") {
          if (!stale()) this.#clear();
          return false;
        }
        throw error;
      }
      if (stale()) return true;
      if (page.length === 0) break;
      for (const change of page) {
        if (change.revision > revision) break;
        this.#apply(change);
      }
      cursor = page[page.length - 1]!.revision;
    }
    return true;
  }

  // ---- the graph ----

  #apply(change: StoredChange): void {
    if (change.op === "write") this.#addTuple(change.tuple);
    else this.#removeTuple(change.tuple);
  }

  #node(key: string): number {
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#keys.length;
      this.#ids.set(key, id);
      this.#keys[id] = key;
      this.#height[id] = 0;
      this.#out[id] = new Map();
      this.#in[id] = new Set();
    }
    return id;
  }

  #addTuple(t: RelationTuple): void {
    const edge = edgeOf(t);
    if (edge === undefined) return;
    this.#changesSinceRecompute++;
    const a = this.#node(edge[0]);
    const b = this.#node(edge[1]);
    this.#edges++;
    const out = this.#out[a]!;
    const count = out.get(b);
    if (count !== undefined) {
      out.set(b, count + 1);
      return;
    }
    out.set(b, 1);
    this.#in[b]!.add(a);
    this.#distinct++;
    this.#raise(a, this.#height[b]! + 1);
  }

  #removeTuple(t: RelationTuple): void {
    const edge = edgeOf(t);
    if (edge === undefined) return;
    this.#changesSinceRecompute++;
    const a = this.#ids.get(edge[0]);
    const b = this.#ids.get(edge[1]);
    if (a === undefined || b === undefined) return;
    const out = this.#out[a]!;
    const count = out.get(b);
    if (count === undefined) return;
    this.#edges--;
    if (count > 1) {
      out.set(b, count - 1);
      return;
    }
    out.delete(b);
    this.#in[b]!.delete(a);
    this.#distinct--;
    // Heights stay (still upper bounds); a recompute lowers them.
    this.#dirty = true;
  }

  /** Raises h(start) to `to` (capped) and restores the invariant on every predecessor. */
  #raise(start: number, to: number): void {
    const cap = this.#cap;
    const height = this.#height;
    const stack = this.#stack;
    const first = to < cap ? to : cap;
    if (first <= height[start]!) return;
    height[start] = first;
    if (first > this.#epochBound) this.#epochBound = first;
    stack.push(start);
    while (stack.length > 0) {
      const x = stack.pop()!;
      const next = height[x]! + 1;
      const h = next < cap ? next : cap;
      for (const p of this.#in[x]!) {
        if (h > height[p]!) {
          height[p] = h;
          if (h > this.#epochBound) this.#epochBound = h;
          stack.push(p);
        }
      }
    }
  }

  #recomputeDue(): boolean {
    const size = this.#ids.size + this.#distinct;
    return (
      this.#changesSinceRecompute * this.#workPerChange >= size ||
      now() - this.#lastRecompute >= this.#intervalMs
    );
  }

  /**
   * Exact heights (capped) in O(V+E): nodes are taken from the sinks up, each once all its successors are done;
   * those never taken are on or above a cycle and get the cap. Drops isolated nodes. Returns the largest height.
   */
  #recomputeHeights(): number {
    const cap = this.#cap;
    const height = this.#height;
    const n = this.#keys.length;
    const remaining = new Int32Array(n);
    const ready: number[] = [];
    for (const [key, id] of this.#ids) {
      const outs = this.#out[id]!.size;
      if (outs === 0 && this.#in[id]!.size === 0) {
        this.#ids.delete(key);
        this.#free.push(id);
        continue;
      }
      height[id] = 0;
      remaining[id] = outs;
      if (outs === 0) ready.push(id);
    }
    let max = 0;
    while (ready.length > 0) {
      const x = ready.pop()!;
      const next = height[x]! + 1;
      const h = next < cap ? next : cap;
      for (const p of this.#in[x]!) {
        if (h > height[p]!) height[p] = h;
        if (--remaining[p] === 0) ready.push(p);
      }
      if (height[x]! > max) max = height[x]!;
    }
    for (const id of this.#ids.values()) {
      if (remaining[id]! > 0) {
        height[id] = cap;
        max = cap;
      }
    }
    return max;
  }

  #clear(): void {
    this.#ids.clear();
    this.#keys = [];
    this.#height = [];
    this.#out = [];
    this.#in = [];
    this.#free = [];
    this.#edges = 0;
    this.#distinct = 0;
    this.#from = Number.POSITIVE_INFINITY;
    this.#epochBound = 0;
    this.#closedEpochs = [];
    this.#dirty = false;
    this.#changesSinceRecompute = 0;
    this.#seededFrom = "none";
  }
}
