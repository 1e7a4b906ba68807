/**
 * The tuple graph the depth bound (src/changes/depth.ts) keeps: one node per (tenant, object); every tuple whose
 * subject is an object (`doc:1#parent@folder:f`) or a userset (`folder:f#viewer@group:eng#member`) is an edge from
 * (tenant, object) to (subjectTenant, the subject's object); a wildcard subject (`user:*`) is none. Edges are a
 * multiset: two tuples between the same nodes are two edges, and deleting one keeps the other.
 *
 * Incremental upkeep: each node keeps a height h, an upper bound on the longest path from it, capped at `cap`.
 * Invariant: for every present edge A→B, h(A) ≥ min(cap, 1 + h(B)). Adding an edge raises its source if needed and
 * pushes raises to predecessors (in-edges are kept); deleting one removes a constraint and lowers nothing. If no
 * height reached the cap, the invariant forbids cycles (around one, h(A) ≥ len + h(A)) and bounds every path from
 * A by h(A); a cycle keeps raising heights until the cap, so it ends as Infinity. Deletes mark the graph dirty; an
 * exact recompute from scratch (Kahn's order from the sinks, O(V+E); nodes left over are on or above a cycle)
 * lowers the heights again. When to recompute is the bound's decision.
 */

import type { RelationTuple } from "../tuples/tuple.js";

const SEP = "\u0000";

/** The (from, to) node keys of a tuple's edge, or undefined for a wildcard subject. */
function edgeOf(t: RelationTuple): [string, string] | undefined {
  const s = t.subject;
  if (s.kind === "wildcard") return undefined;
  const target = s.kind === "object" ? t.user : `${s.type}:${s.id}`;
  return [t.tenant + SEP + t.object, t.subjectTenant + SEP + target];
}

export class DepthGraph {
  // Node ids index the arrays; freed ids (isolated nodes dropped at a recompute) are reused.
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
  /** The largest height assigned since the last recompute or clear (capped). */
  #peak = 0;
  /** Edges added or removed since the last recompute. */
  #changes = 0;
  /** An edge was removed since the last recompute (heights may be above the exact ones). */
  #dirty = false;

  /** @param cap heights stop here; a height at the cap means "unbounded". */
  constructor(readonly cap: number) {}

  /** Nodes with at least one edge as of the last recompute (isolated ones are dropped then). */
  get nodes(): number {
    return this.#ids.size;
  }
  /** Tuples counted as edges (the multiset's size). */
  get edges(): number {
    return this.#edges;
  }
  /** Distinct (from, to) node pairs. */
  get distinctEdges(): number {
    return this.#distinct;
  }
  get peak(): number {
    return this.#peak;
  }
  get changes(): number {
    return this.#changes;
  }
  get dirty(): boolean {
    return this.#dirty;
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

  /** Adds the tuple's edge (none for a wildcard subject), raising heights as needed. */
  addTuple(t: RelationTuple): void {
    const edge = edgeOf(t);
    if (edge === undefined) return;
    this.#changes++;
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

  /** Removes one copy of the tuple's edge; heights stay (upper bounds still) until a recompute. */
  removeTuple(t: RelationTuple): void {
    const edge = edgeOf(t);
    if (edge === undefined) return;
    this.#changes++;
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
    const cap = this.cap;
    const height = this.#height;
    const stack = this.#stack;
    const first = to < cap ? to : cap;
    if (first <= height[start]!) return;
    height[start] = first;
    if (first > this.#peak) this.#peak = first;
    stack.push(start);
    while (stack.length > 0) {
      const x = stack.pop()!;
      const next = height[x]! + 1;
      const h = next < cap ? next : cap;
      for (const p of this.#in[x]!) {
        if (h > height[p]!) {
          height[p] = h;
          if (h > this.#peak) this.#peak = h;
          stack.push(p);
        }
      }
    }
  }

  /**
   * Exact heights (capped) in O(V+E): nodes are taken from the sinks up, each once all its successors are done;
   * those never taken are on or above a cycle and get the cap. Drops isolated nodes. Returns the largest height.
   */
  recompute(): number {
    const cap = this.cap;
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
    this.#dirty = false;
    this.#changes = 0;
    this.#peak = max;
    return max;
  }

  clear(): void {
    this.#ids.clear();
    this.#keys = [];
    this.#height = [];
    this.#out = [];
    this.#in = [];
    this.#free = [];
    this.#edges = 0;
    this.#distinct = 0;
    this.#peak = 0;
    this.#changes = 0;
    this.#dirty = false;
  }
}
