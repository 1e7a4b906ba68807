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
 *
 * Memory: the graph follows every write, so it is kept flat. A node is an entry in its tenant's Map (keyed by the
 * tuple's own object string, shared with the store: no string is built for it) plus a few words in typed arrays; a
 * distinct edge is five words in typed arrays plus its slot in an open-addressing table of (from, to) pairs, and
 * the in-edges of a node are a doubly linked list through the edges. About 70 bytes a tuple on the peer workload,
 * where a Map and a Set per node (the first version) took several hundred.
 */

import type { RelationTuple } from "../tuples/tuple.js";

const NONE = -1;

/** The subject's node key (an object `type:id`) of a tuple, or undefined for a wildcard subject. */
function targetOf(t: RelationTuple): string | undefined {
  const s = t.subject;
  if (s.kind === "wildcard") return undefined;
  return s.kind === "object" ? t.user : `${s.type}:${s.id}`;
}

const grow = (a: Int32Array, size: number, fill?: number): Int32Array<ArrayBuffer> => {
  // 1.5×, not 2×: at a million nodes a doubling can leave most of a 4 MB array unused.
  const next = new Int32Array(Math.max(size, Math.ceil(a.length * 1.5), 16));
  next.set(a);
  if (fill !== undefined) next.fill(fill, a.length);
  return next;
};

/** Hash of an edge's (from, to) node ids. */
const pairHash = (a: number, b: number): number => {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
};

export class DepthGraph {
  // --- nodes (ids index the arrays; ids freed when a recompute drops an isolated node are reused) ---
  /** Tenant name → its index in #tenantNames. */
  readonly #tenantIds = new Map<string, number>();
  readonly #tenantNames: string[] = [];
  /** Per tenant: object → node id. */
  readonly #ids: Map<string, number>[] = [];
  #nodeCount = 0;
  #lastTenant: string | undefined;
  /** The last node looked up or made, by its tenant and object. */
  #lastObject: string | undefined;
  #lastObjectTenant: string | undefined;
  #lastObjectId = 0;
  #lastIds: Map<string, number> | undefined;
  /** id → its object (undefined for a free id) and tenant index, to drop it from #ids. */
  #keys: (string | undefined)[] = [];
  #tenantOf: Int32Array<ArrayBuffer> = new Int32Array(0);
  #height: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Distinct successors. */
  #outs: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** First in-edge (an edge index), NONE when none. */
  #inHead: Int32Array<ArrayBuffer> = new Int32Array(0);
  #freeNodes: number[] = [];

  // --- distinct edges (a freed edge index is reused) ---
  #from: Int32Array<ArrayBuffer> = new Int32Array(0);
  #to: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Multiplicity: tuples between the two nodes. */
  #count: Int32Array<ArrayBuffer> = new Int32Array(0);
  #inNext: Int32Array<ArrayBuffer> = new Int32Array(0);
  #inPrev: Int32Array<ArrayBuffer> = new Int32Array(0);
  #edgeSlots = 0;
  #freeEdges: number[] = [];
  /** Open addressing, linear probing: edge index + 1, 0 when empty. Kept at most half full. */
  #table = new Int32Array(1024);
  #mask = 1023;

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
    return this.#nodeCount;
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

  /** Bytes of the typed arrays (the Maps of object keys come on top: a few dozen bytes a node). */
  get memoryBytes(): number {
    return (
      this.#tenantOf.byteLength * 4 +
      this.#from.byteLength * 5 +
      this.#table.byteLength +
      this.#keys.length * 4
    );
  }

  #tenantMap(tenant: string): Map<string, number> {
    // Nearly every tuple of a write is in the tenant of the one before.
    if (tenant === this.#lastTenant) return this.#lastIds!;
    let t = this.#tenantIds.get(tenant);
    if (t === undefined) {
      t = this.#tenantNames.length;
      this.#tenantIds.set(tenant, t);
      this.#tenantNames.push(tenant);
      this.#ids.push(new Map());
    }
    this.#lastTenant = tenant;
    this.#lastIds = this.#ids[t]!;
    return this.#lastIds;
  }

  #lookup(tenant: string, object: string): number | undefined {
    if (tenant === this.#lastTenant) return this.#lastIds!.get(object);
    const t = this.#tenantIds.get(tenant);
    return t === undefined ? undefined : this.#ids[t]!.get(object);
  }

  #node(tenant: string, object: string): number {
    // Consecutive tuples often share a subject (a folder's files, a group's members): skip the Map for a repeat.
    if (object === this.#lastObject && tenant === this.#lastObjectTenant) return this.#lastObjectId;
    const ids = this.#tenantMap(tenant);
    let id = ids.get(object);
    if (id !== undefined) {
      this.#remember(tenant, object, id);
      return id;
    }
    id = this.#freeNodes.pop() ?? this.#keys.length;
    if (id >= this.#height.length) {
      const size = id + 1;
      this.#tenantOf = grow(this.#tenantOf, size);
      this.#height = grow(this.#height, size);
      this.#outs = grow(this.#outs, size);
      this.#inHead = grow(this.#inHead, size, NONE);
    }
    ids.set(object, id);
    this.#keys[id] = object;
    this.#tenantOf[id] = this.#tenantIds.get(tenant)!;
    this.#height[id] = 0;
    this.#outs[id] = 0;
    this.#inHead[id] = NONE;
    this.#nodeCount++;
    this.#remember(tenant, object, id);
    return id;
  }

  #remember(tenant: string, object: string, id: number): void {
    this.#lastObject = object;
    this.#lastObjectTenant = tenant;
    this.#lastObjectId = id;
  }

  /** Forgets the last node looked up (its id may be freed or reused). */
  #forget(): void {
    this.#lastObject = undefined;
    this.#lastObjectTenant = undefined;
  }

  /** The edge index of (a, b), or NONE. */
  #findEdge(a: number, b: number): number {
    const table = this.#table;
    const mask = this.#mask;
    for (let i = pairHash(a, b) & mask; ; i = (i + 1) & mask) {
      const slot = table[i]!;
      if (slot === 0) return NONE;
      const e = slot - 1;
      if (this.#from[e] === a && this.#to[e] === b) return e;
    }
  }

  #insertSlot(e: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let i = pairHash(this.#from[e]!, this.#to[e]!) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = e + 1;
  }

  /** Removes edge `e` from the table (backward-shift deletion: no tombstones). */
  #deleteSlot(e: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let i = pairHash(this.#from[e]!, this.#to[e]!) & mask;
    while (table[i] !== e + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const f = table[j]! - 1;
      const home = pairHash(this.#from[f]!, this.#to[f]!) & mask;
      // Move f into the hole at i when its home does not lie cyclically in (i, j].
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        table[i] = table[j]!;
        i = j;
      }
    }
    table[i] = 0;
  }

  #newEdge(a: number, b: number): number {
    // Before the edge is linked: a rehash walks the in-lists.
    if ((this.#distinct + 1) * 2 > this.#table.length) this.#rehash(this.#table.length * 2);
    let e = this.#freeEdges.pop();
    if (e === undefined) {
      e = this.#edgeSlots++;
      if (e >= this.#from.length) {
        const size = e + 1;
        this.#from = grow(this.#from, size);
        this.#to = grow(this.#to, size);
        this.#count = grow(this.#count, size);
        this.#inNext = grow(this.#inNext, size);
        this.#inPrev = grow(this.#inPrev, size);
      }
    }
    this.#from[e] = a;
    this.#to[e] = b;
    this.#count[e] = 1;
    // First in b's in-list.
    const head = this.#inHead[b]!;
    this.#inPrev[e] = NONE;
    this.#inNext[e] = head;
    if (head !== NONE) this.#inPrev[head] = e;
    this.#inHead[b] = e;
    this.#insertSlot(e);
    return e;
  }

  #rehash(size: number): void {
    this.#table = new Int32Array(size);
    this.#mask = size - 1;
    // Every live edge: in some node's in-list.
    for (let id = 0; id < this.#keys.length; id++) {
      if (this.#keys[id] === undefined) continue;
      for (let e = this.#inHead[id]!; e !== NONE; e = this.#inNext[e]!) this.#insertSlot(e);
    }
  }

  /** Adds the tuple's edge (none for a wildcard subject), raising heights as needed. */
  addTuple(t: RelationTuple): void {
    const target = targetOf(t);
    if (target === undefined) return;
    this.#changes++;
    const a = this.#node(t.tenant, t.object);
    const b = this.#node(t.subjectTenant, target);
    this.#edges++;
    const e = this.#findEdge(a, b);
    if (e !== NONE) {
      this.#count[e] = this.#count[e]! + 1;
      return;
    }
    this.#newEdge(a, b);
    this.#outs[a] = this.#outs[a]! + 1;
    this.#distinct++;
    this.#raise(a, this.#height[b]! + 1);
  }

  /** Removes one copy of the tuple's edge; heights stay (upper bounds still) until a recompute. */
  removeTuple(t: RelationTuple): void {
    const target = targetOf(t);
    if (target === undefined) return;
    this.#changes++;
    const a = this.#lookup(t.tenant, t.object);
    const b = this.#lookup(t.subjectTenant, target);
    if (a === undefined || b === undefined) return;
    const e = this.#findEdge(a, b);
    if (e === NONE) return;
    this.#edges--;
    if (this.#count[e]! > 1) {
      this.#count[e] = this.#count[e]! - 1;
      return;
    }
    this.#deleteSlot(e);
    const prev = this.#inPrev[e]!;
    const next = this.#inNext[e]!;
    if (prev === NONE) this.#inHead[b] = next;
    else this.#inNext[prev] = next;
    if (next !== NONE) this.#inPrev[next] = prev;
    this.#count[e] = 0;
    this.#freeEdges.push(e);
    this.#outs[a] = this.#outs[a]! - 1;
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
    const inNext = this.#inNext;
    const from = this.#from;
    while (stack.length > 0) {
      const x = stack.pop()!;
      const next = height[x]! + 1;
      const h = next < cap ? next : cap;
      for (let e = this.#inHead[x]!; e !== NONE; e = inNext[e]!) {
        const p = from[e]!;
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
    this.#forget();
    const cap = this.cap;
    const height = this.#height;
    const n = this.#keys.length;
    const remaining = new Int32Array(n);
    const ready: number[] = [];
    for (let id = 0; id < n; id++) {
      const key = this.#keys[id];
      if (key === undefined) continue;
      const outs = this.#outs[id]!;
      if (outs === 0 && this.#inHead[id] === NONE) {
        this.#ids[this.#tenantOf[id]!]!.delete(key);
        this.#keys[id] = undefined;
        this.#freeNodes.push(id);
        this.#nodeCount--;
        continue;
      }
      height[id] = 0;
      remaining[id] = outs;
      if (outs === 0) ready.push(id);
    }
    let max = 0;
    const inNext = this.#inNext;
    const from = this.#from;
    while (ready.length > 0) {
      const x = ready.pop()!;
      const next = height[x]! + 1;
      const h = next < cap ? next : cap;
      for (let e = this.#inHead[x]!; e !== NONE; e = inNext[e]!) {
        const p = from[e]!;
        if (h > height[p]!) height[p] = h;
        if (--remaining[p] === 0) ready.push(p);
      }
      if (height[x]! > max) max = height[x]!;
    }
    for (let id = 0; id < n; id++) {
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
    this.#tenantIds.clear();
    this.#tenantNames.length = 0;
    this.#ids.length = 0;
    this.#lastTenant = undefined;
    this.#lastIds = undefined;
    this.#forget();
    this.#nodeCount = 0;
    this.#keys = [];
    this.#tenantOf = new Int32Array(0);
    this.#height = new Int32Array(0);
    this.#outs = new Int32Array(0);
    this.#inHead = new Int32Array(0);
    this.#freeNodes = [];
    this.#from = new Int32Array(0);
    this.#to = new Int32Array(0);
    this.#count = new Int32Array(0);
    this.#inNext = new Int32Array(0);
    this.#inPrev = new Int32Array(0);
    this.#edgeSlots = 0;
    this.#freeEdges = [];
    this.#table = new Int32Array(1024);
    this.#mask = 1023;
    this.#edges = 0;
    this.#distinct = 0;
    this.#peak = 0;
    this.#changes = 0;
    this.#dirty = false;
  }
}
