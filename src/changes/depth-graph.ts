/**
 * The tuple graph the depth bound (src/changes/depth.ts) keeps: one node per (tenant, object); every tuple whose
 * subject is an object (`doc:1#parent@folder:f`) or a userset (`folder:f#viewer@group:eng#member`) is an edge from
 * (tenant, object) to (subjectTenant, the subject's object); a wildcard subject (`user:*`) is none. Edges are a
 * multiset: two tuples between the same nodes are two edges, and deleting one keeps the other.
 *
 * Incremental upkeep: each node keeps its height h, the longest path from it, capped at `cap`, exact after every
 * add and delete. Invariant: h(A) = max(0, max over A's edges A→B of min(cap, 1 + h(B))). That system of equations
 * has one solution, the exact capped heights: a node above its exact height would need a successor above its own,
 * and following those forever ends on a cycle, whose nodes are exactly at the cap already. Adding an edge raises
 * its source if needed and pushes raises to predecessors (in-edges are kept). Deleting one re-evaluates its source
 * from its remaining out-edges (out-edges are kept too) and, when that lowers it, the predecessors that it was
 * holding up, and so on: work proportional to the heights that actually fall, never a pass over the graph. A count
 * of nodes per height, with the highest non-empty height kept as it moves, gives the longest chain in O(1): a
 * check asks for it on every question (src/changes/depth.ts), so it may not scan the counts. The full recompute
 * (Kahn's order from the sinks, O(V+E); nodes left over are on or above a cycle) remains for checking and after a
 * bulk seed.
 *
 * Memory and speed: the graph follows every write, so it is kept flat, and a tuple of a bulk load should touch as
 * few places scattered over memory as it can (at a million tuples each such read cost a few hundred ns on the 2-core
 * bench machine). A node is a fingerprint of (tenant, object) in a table of typed arrays (src/changes/node-index.ts,
 * which says why sharing a fingerprint keeps the bound an upper bound) plus a few words in typed arrays, and nothing
 * for the GC to trace (a Map of object strings per tenant was the largest part of the graph's cost at a million
 * objects). A distinct edge is seven words in typed arrays, on its target's in-list and its source's out-list
 * (doubly linked through the edges); a node's edge to a given target is found along its out-list while it has at
 * most `short` out-edges (a file's parent, a group's few members: the list was just written), and through an
 * open-addressing table of (from, to) pairs once it has more. About 85 bytes a tuple of typed arrays on the
 * peer workload at a million (more just after a doubling, whose unwritten tail is not resident) and nothing on the
 * JS heap; a Map and a Set per node (the first version) took several hundred.
 *
 * Leaves: a source seen with one out-edge and no in-edge (a file and its parent folder: nearly every node of a
 * load) is not made a node. It is an entry of the index as a leaf, with its one target in a word of its own, and
 * its height is the target's plus one (capped), which no other height depends on (nothing points at it). Each
 * node counts the leaves pointing at it (#refs), and #perHeight counts those leaves at their height, moving them
 * when their target's height moves, so the longest chain stays exact and O(1). A leaf becomes a node (`promote`,
 * its edge made an ordinary edge) the moment anything else happens to it: a second out-edge, even to the same
 * target, or an edge into it. A leaf costs 4 bytes beside its index entry where a node and its edge took 48.
 *
 * Sources of source-only types: a type the model never names as a subject (no relation's type restrictions allow
 * it, plainly or as a userset) has objects that can only ever be sources, never targets. Such an object is not
 * kept at all, not even as a leaf: each of its edges counts on its target as a leaf would (#refs, and #perHeight
 * one above the target), which is all the longest chain needs of a node nothing points at (its height is one above
 * its highest target's; counting one above every target it points at has the same maximum). A delete of its edge
 * takes the count back: the feed deletes only tuples it delivered. A file of a load then costs no index entry, no
 * hashing of its name, no leaf word (~25 B a tuple at a million). A tuple can still name such an object as its
 * subject where another model allows it (another tenant's, or an older model's tuples in a shared store): the
 * graph leaves it out, add and delete alike, since no evaluation under this graph's model follows it (every read
 * of the evaluators skips a tuple the model does not allow: src/reference/reader.ts, src/wasm-eval/graph.ts).
 */

import type { RelationTuple } from "../tuples/tuple.js";
import { NodeIndex } from "./node-index.js";

const NONE = -1;
/** #live: a free id, a live node, a live node whose out-edges are found through the edge table. */
const FREE = 0;
const LIVE = 1;
const BIG = 2;
/** Out-edges a node's list is searched along before they go into the table. */
const SHORT = 8;

/** The subject's node key (an object `type:id`) of a tuple, or undefined for a wildcard subject. */
function targetOf(t: RelationTuple): string | undefined {
  const s = t.subject;
  if (s.kind === "wildcard") return undefined;
  return s.kind === "object" ? t.user : `${s.type}:${s.id}`;
}

/**
 * First sizes, one per array: the seven edge arrays double from 16 to 22, the five node arrays from 24 to 28, so no
 * two of them double at the same count (on a load nodes and edges run neck and neck; at 500,000 the next array's
 * turn comes some 30,000 later), nor with the power-of-two hash tables. At a million each doubling is a few MB
 * copied into new buffers: all twelve in one task took 60-150 ms, and set off a full GC there.
 */
const EDGES_FIRST = 16;
const NODES_FIRST = 24;
const LEAVES_FIRST = 20;

const grow = (a: Int32Array, size: number, first: number, fill?: number): Int32Array<ArrayBuffer> => {
  // 2×: growth by 1.5× allocated and copied three times the final size over a load, and at a million tuples that
  // churn of buffers (about 200 MB) set off an extra full GC of the whole heap (~300 ms in one task) and took
  // 1.5 s of adds against 1.0 s; the tail of a doubled array is not resident until written (RSS came out lower).
  const next = new Int32Array(Math.max(size, a.length * 2, first));
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
  // --- nodes (ids index the arrays; the id of a node dropped by a delete is reused) ---
  /** (tenant, object) → node id; ids below its `slots` index the arrays below. */
  readonly #index = new NodeIndex();
  /**
   * The last source and the last target looked up or made, by tenant and object: consecutive tuples share a
   * subject (a folder's files, a group's members) or an object (a file's parent and viewer), and with one slot for
   * both the source and the target of each tuple evicted each other (a load missed the repeat every time).
   */
  #srcObject: string | undefined;
  #srcTenant: string | undefined;
  #srcId = 0;
  #dstObject: string | undefined;
  #dstTenant: string | undefined;
  #dstId = 0;
  /** Every node array holds the ids below this (they grow at different counts: #growNodes). */
  #nodeRoom = 0;
  /** FREE, LIVE or BIG per id. */
  #live: Int32Array<ArrayBuffer> = new Int32Array(0);
  #height: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Distinct successors. */
  #outs: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** First in-edge (an edge index), NONE when none. */
  #inHead: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** First out-edge (an edge index), NONE when none: a delete re-evaluates its source from these. */
  #outHead: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Live nodes per height (0..cap): the longest chain is the highest non-empty one. */
  #perHeight: Int32Array<ArrayBuffer>;
  /** The highest non-empty height of #perHeight (0 when empty), kept by #move. */
  #top = 0;
  /** Leaves pointing at each node (whose height is the node's plus one, capped). */
  #refs: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Per leaf l: its one target, a node. */
  #leafTarget: Int32Array<ArrayBuffer> = new Int32Array(0);

  // --- distinct edges (a freed edge index is reused) ---
  #from: Int32Array<ArrayBuffer> = new Int32Array(0);
  #to: Int32Array<ArrayBuffer> = new Int32Array(0);
  /** Multiplicity: tuples between the two nodes. */
  #count: Int32Array<ArrayBuffer> = new Int32Array(0);
  #inNext: Int32Array<ArrayBuffer> = new Int32Array(0);
  #inPrev: Int32Array<ArrayBuffer> = new Int32Array(0);
  #outNext: Int32Array<ArrayBuffer> = new Int32Array(0);
  #outPrev: Int32Array<ArrayBuffer> = new Int32Array(0);
  #edgeSlots = 0;
  /** Every edge array holds the indices below this (they grow at different counts: #growEdges). */
  #edgeRoom = 0;
  #freeEdges: number[] = [];
  /**
   * The edges of nodes with more than #short out-edges (marked BIG), by (from, to): open addressing, linear
   * probing, edge index + 1, 0 when empty. Kept at most half full.
   */
  #table = new Int32Array(1024);
  #mask = 1023;
  #tableSize = 0;

  #edges = 0;
  #distinct = 0;
  readonly #stack: number[] = [];
  /** The largest height assigned since the last recompute or clear (capped). */
  #peak = 0;
  /** Edges added or removed since the last recompute. */
  #changes = 0;

  readonly #short: number;
  /** Object types never named as a subject: their objects' edges count on their targets only (see the header). */
  readonly #sourceOnly: ReadonlySet<string>;

  /**
   * @param cap heights stop here; a height at the cap means "unbounded".
   * @param short out-edges a node's list is searched along before they go into the edge table (tests lower it).
   * @param sourceOnly object types no tuple may name as a subject under the model (src/model/tuple-rules.ts).
   */
  constructor(
    readonly cap: number,
    short = SHORT,
    sourceOnly: ReadonlySet<string> = new Set(),
  ) {
    this.#perHeight = new Int32Array(cap + 1);
    this.#short = short;
    this.#sourceOnly = sourceOnly;
  }

  /** Nodes with at least one edge (a node left without any by a delete is dropped at once). */
  get nodes(): number {
    return this.#index.size;
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
  /** The exact longest chain now (capped): the largest height of any node. O(1). */
  get longest(): number {
    return this.#top;
  }
  /** The longest chain fell below the peak since the last recompute (deletes lowered it). O(1). */
  get dirty(): boolean {
    return this.#top < this.#peak;
  }

  /** Bytes of the typed arrays: all the graph holds but for a few words. */
  get memoryBytes(): number {
    return (
      this.#live.byteLength * 6 +
      this.#from.byteLength * 7 +
      this.#leafTarget.byteLength +
      this.#table.byteLength +
      this.#index.memoryBytes
    );
  }

  /** The remembered id of (tenant, object) as a last source or target, else NONE. */
  #recall(tenant: string, object: string): number {
    // Every field read and both tenants compared on every call: a read only a rare call reaches (the source's
    // tenant and id, reached when an object is the source of two tuples in a row: one tuple in a hundred on the
    // peer load) had no type feedback when V8 first optimized this, and the first such call deoptimized it with
    // #node and addTuple, which a load's first write then ran unoptimized again until they were re-optimized.
    const dstId = this.#dstId;
    const srcId = this.#srcId;
    const dstTenant = tenant === this.#dstTenant;
    const srcTenant = tenant === this.#srcTenant;
    if (object === this.#dstObject && dstTenant) return dstId;
    if (object === this.#srcObject && srcTenant) return srcId;
    return NONE;
  }

  #lookup(tenant: string, object: string): number {
    const known = this.#recall(tenant, object);
    return known !== NONE ? known : this.#index.find(tenant, object);
  }

  /**
   * The node of (tenant, object), made when new, a leaf made a node; remembered as the last target or the last
   * source. A source new to the graph is made a leaf instead, pointing at `leafTarget`: then NONE is returned.
   */
  #node(tenant: string, object: string, target: boolean, leafTarget: number): number {
    let id = this.#recall(tenant, object);
    if (id === NONE) {
      id = this.#index.add(tenant, object, !target);
      if (this.#index.isNew) {
        if (!target) {
          this.#makeLeaf(id, leafTarget);
          return NONE;
        }
        this.#make(id);
      } else if (id < NONE) {
        id = this.#promote(tenant, object, id);
      }
    }
    if (target) {
      this.#dstObject = object;
      this.#dstTenant = tenant;
      this.#dstId = id;
    } else {
      this.#srcObject = object;
      this.#srcTenant = tenant;
      this.#srcId = id;
    }
    return id;
  }

  #make(id: number): void {
    if (id >= this.#nodeRoom) this.#growNodes(id + 1);
    this.#live[id] = LIVE;
    this.#height[id] = 0;
    this.#outs[id] = 0;
    this.#inHead[id] = NONE;
    this.#outHead[id] = NONE;
    this.#refs[id] = 0;
    this.#perHeight[0] = this.#perHeight[0]! + 1;
  }

  /** Leaf `id` (-2 - l) with its one edge, to node `target`. */
  #makeLeaf(id: number, target: number): void {
    const l = -2 - id;
    if (l >= this.#leafTarget.length) this.#leafTarget = grow(this.#leafTarget, l + 1, LEAVES_FIRST);
    this.#leafTarget[l] = target;
    this.#refs[target] = this.#refs[target]! + 1;
    this.#move(NONE, this.#above(target), 1);
  }

  /** A leaf's height: its target's plus one, capped. */
  #above(target: number): number {
    const h = this.#height[target]! + 1;
    return h < this.cap ? h : this.cap;
  }

  /**
   * Leaf `id` of (tenant, object) made a node, its edge an ordinary edge of count 1 (the node then at the leaf's
   * height, as the leaf was); returns the node's id.
   */
  #promote(tenant: string, object: string, id: number): number {
    const target = this.#leafTarget[-2 - id]!;
    const node = this.#index.promote(tenant, object, id);
    this.#make(node);
    this.#refs[target] = this.#refs[target]! - 1;
    this.#move(this.#above(target), NONE, 1);
    this.#newEdge(node, target);
    this.#outs[node] = 1;
    this.#raise(node, this.#height[target]! + 1);
    return node;
  }

  /** Forgets the last nodes looked up (their ids may be freed or reused). */
  #forget(): void {
    this.#srcObject = undefined;
    this.#srcTenant = undefined;
    this.#dstObject = undefined;
    this.#dstTenant = undefined;
  }

  /**
   * The edge index of (a, b), or NONE: through the table when a has many out-edges, else along a's out-list (a
   * file's one parent, a group's few members). At a million edges a probe of the table is a cache miss for every
   * tuple (a few hundred ns on this machine), where the short out-list was just written.
   */
  #findEdge(a: number, b: number): number {
    if (this.#live[a] === BIG) return this.#tableFind(a, b);
    const to = this.#to;
    const outNext = this.#outNext;
    for (let e = this.#outHead[a]!; e !== NONE; e = outNext[e]!) if (to[e] === b) return e;
    return NONE;
  }

  #tableFind(a: number, b: number): number {
    const table = this.#table;
    const mask = this.#mask;
    const from = this.#from;
    const to = this.#to;
    for (let i = pairHash(a, b) & mask; ; i = (i + 1) & mask) {
      const slot = table[i]!;
      if (slot === 0) return NONE;
      const e = slot - 1;
      if (from[e] === a && to[e] === b) return e;
    }
  }

  #tableInsert(e: number): void {
    if ((this.#tableSize + 1) * 2 > this.#table.length) this.#rehash(this.#table.length * 2);
    const table = this.#table;
    const mask = this.#mask;
    let i = pairHash(this.#from[e]!, this.#to[e]!) & mask;
    while (table[i] !== 0) {
      // A rehash just above placed every live edge of a node in the table, `e` among them: an edge entered twice
      // would keep a stale entry after its delete, and a re-add would take the freed edge for a live one.
      if (table[i] === e + 1) return;
      i = (i + 1) & mask;
    }
    table[i] = e + 1;
    this.#tableSize++;
  }

  /** Removes edge `e` from the table (backward-shift deletion: no tombstones). */
  #tableDelete(e: number): void {
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
    this.#tableSize--;
  }

  /** Grows whichever node arrays are shorter than `size` (each has its turn: NODES_FIRST). */
  #growNodes(size: number): void {
    if (this.#live.length < size) this.#live = grow(this.#live, size, NODES_FIRST);
    if (this.#height.length < size) this.#height = grow(this.#height, size, NODES_FIRST + 1);
    if (this.#outs.length < size) this.#outs = grow(this.#outs, size, NODES_FIRST + 2);
    if (this.#inHead.length < size) this.#inHead = grow(this.#inHead, size, NODES_FIRST + 3, NONE);
    if (this.#outHead.length < size) this.#outHead = grow(this.#outHead, size, NODES_FIRST + 4, NONE);
    if (this.#refs.length < size) this.#refs = grow(this.#refs, size, NODES_FIRST + 5);
    this.#nodeRoom = Math.min(
      this.#live.length,
      this.#height.length,
      this.#outs.length,
      this.#inHead.length,
      this.#outHead.length,
      this.#refs.length,
    );
  }

  /** Grows whichever edge arrays are shorter than `size` (each has its turn: EDGES_FIRST). */
  #growEdges(size: number): void {
    if (this.#from.length < size) this.#from = grow(this.#from, size, EDGES_FIRST);
    if (this.#to.length < size) this.#to = grow(this.#to, size, EDGES_FIRST + 1);
    if (this.#count.length < size) this.#count = grow(this.#count, size, EDGES_FIRST + 2);
    if (this.#inNext.length < size) this.#inNext = grow(this.#inNext, size, EDGES_FIRST + 3);
    if (this.#inPrev.length < size) this.#inPrev = grow(this.#inPrev, size, EDGES_FIRST + 4);
    if (this.#outNext.length < size) this.#outNext = grow(this.#outNext, size, EDGES_FIRST + 5);
    if (this.#outPrev.length < size) this.#outPrev = grow(this.#outPrev, size, EDGES_FIRST + 6);
    this.#edgeRoom = Math.min(
      this.#from.length,
      this.#to.length,
      this.#count.length,
      this.#inNext.length,
      this.#inPrev.length,
      this.#outNext.length,
      this.#outPrev.length,
    );
  }

  /** Makes edge (a, b), linked into b's in-list and a's out-list. */
  #newEdge(a: number, b: number): number {
    let e = this.#freeEdges.pop();
    if (e === undefined) {
      e = this.#edgeSlots++;
      if (e >= this.#edgeRoom) this.#growEdges(e + 1);
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
    // First in a's out-list.
    const out = this.#outHead[a]!;
    this.#outPrev[e] = NONE;
    this.#outNext[e] = out;
    if (out !== NONE) this.#outPrev[out] = e;
    this.#outHead[a] = e;
    return e;
  }

  #rehash(size: number): void {
    const table = new Int32Array(size);
    const mask = size - 1;
    const from = this.#from;
    const to = this.#to;
    const count = this.#count;
    const live = this.#live;
    // Every live edge of a node with its edges in the table, in index order (a freed edge has count 0):
    // sequential reads, where walking the nodes' lists jumped around a million-edge array.
    let entries = 0;
    for (let e = 0; e < this.#edgeSlots; e++) {
      if (count[e] === 0 || live[from[e]!] !== BIG) continue;
      let i = pairHash(from[e]!, to[e]!) & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = e + 1;
      entries++;
    }
    this.#table = table;
    this.#mask = mask;
    this.#tableSize = entries;
  }

  /** Adds the tuple's edge (none for a wildcard subject), raising heights as needed. */
  addTuple(t: RelationTuple): void {
    const target = targetOf(t);
    if (target === undefined) return;
    const sourceOnly = this.#sourceOnly;
    // A tuple the model does not allow, which no evaluation follows (see the header).
    if (sourceOnly.size !== 0 && sourceOnly.has(t.subject.type)) return;
    this.#changes++;
    this.#edges++;
    // The target first: a node always (it has an in-edge now), so a source that is the same object finds it so.
    const b = this.#node(t.subjectTenant, target, true, NONE);
    if (sourceOnly.size !== 0 && sourceOnly.has(t.objectType)) {
      // Counted on its target alone, as a leaf of it (see the header).
      this.#distinct++;
      this.#refs[b] = this.#refs[b]! + 1;
      this.#move(NONE, this.#above(b), 1);
      this.#notePeak();
      return;
    }
    const a = this.#node(t.tenant, t.object, false, b);
    if (a === NONE) {
      // A new source, made a leaf of b.
      this.#distinct++;
      this.#notePeak();
      return;
    }
    // A source just made a node has no edge yet: nothing to look for.
    const found = this.#outs[a] === 0 ? NONE : this.#findEdge(a, b);
    if (found !== NONE) {
      this.#count[found] = this.#count[found]! + 1;
      this.#notePeak();
      return;
    }
    const e = this.#newEdge(a, b);
    const outs = this.#outs[a]! + 1;
    this.#outs[a] = outs;
    this.#distinct++;
    if (this.#live[a] === BIG) this.#tableInsert(e);
    else if (outs > this.#short) {
      // Past a short list: a's edges go into the table, and stay there while a lives. The table grows first, so
      // no rehash runs between marking a and entering its edges (it would enter them itself).
      let size = this.#table.length;
      while ((this.#tableSize + outs) * 2 > size) size *= 2;
      if (size !== this.#table.length) this.#rehash(size);
      this.#live[a] = BIG;
      for (let f = this.#outHead[a]!; f !== NONE; f = this.#outNext[f]!) this.#tableInsert(f);
    }
    this.#raise(a, this.#height[b]! + 1);
    this.#notePeak();
  }

  /**
   * The peak is at least every height now. Heights only rise within an add, so the top once it is done is at
   * least every height the add assigned, leaves' included. Stored on every call: a store only a new peak reached
   * had no type feedback when addTuple was first optimized, and the first new peak deoptimized it.
   */
  #notePeak(): void {
    const top = this.#top;
    const peak = this.#peak;
    this.#peak = top > peak ? top : peak;
  }

  /** Removes one copy of the tuple's edge, lowering the heights that depended on it. */
  removeTuple(t: RelationTuple): void {
    const target = targetOf(t);
    if (target === undefined) return;
    const sourceOnly = this.#sourceOnly;
    if (sourceOnly.size !== 0 && sourceOnly.has(t.subject.type)) return; // never added
    this.#changes++;
    if (sourceOnly.size !== 0 && sourceOnly.has(t.objectType)) {
      // The count its add put on the target (the feed deletes only tuples it delivered, so the add happened).
      const b = this.#lookup(t.subjectTenant, target);
      if (b < 0 || this.#refs[b] === 0) return;
      this.#edges--;
      this.#distinct--;
      this.#refs[b] = this.#refs[b]! - 1;
      this.#move(this.#above(b), NONE, 1);
      this.#dropIfIsolated(b, t.subjectTenant, target);
      return;
    }
    const a = this.#lookup(t.tenant, t.object);
    if (a === NONE) return;
    const b = this.#lookup(t.subjectTenant, target);
    // No node (none, or a leaf): nothing points at it, so the tuple's edge is not held.
    if (b < 0) return;
    if (a < NONE) {
      // A leaf: its one edge, when that is the tuple's, goes with it.
      if (this.#leafTarget[-2 - a] !== b) return;
      this.#edges--;
      this.#distinct--;
      this.#refs[b] = this.#refs[b]! - 1;
      this.#move(this.#above(b), NONE, 1);
      this.#forget();
      this.#index.delete(t.tenant, t.object, a);
      this.#dropIfIsolated(b, t.subjectTenant, target);
      return;
    }
    const e = this.#findEdge(a, b);
    if (e === NONE) return;
    this.#edges--;
    if (this.#count[e]! > 1) {
      this.#count[e] = this.#count[e]! - 1;
      return;
    }
    if (this.#live[a] === BIG) this.#tableDelete(e);
    const prev = this.#inPrev[e]!;
    const next = this.#inNext[e]!;
    if (prev === NONE) this.#inHead[b] = next;
    else this.#inNext[prev] = next;
    if (next !== NONE) this.#inPrev[next] = prev;
    const outPrev = this.#outPrev[e]!;
    const outNext = this.#outNext[e]!;
    if (outPrev === NONE) this.#outHead[a] = outNext;
    else this.#outNext[outPrev] = outNext;
    if (outNext !== NONE) this.#outPrev[outNext] = outPrev;
    this.#count[e] = 0;
    this.#freeEdges.push(e);
    this.#outs[a] = this.#outs[a]! - 1;
    this.#distinct--;
    // Only when the edge was what held a up (h(a) = 1 + h(b)) can a fall.
    const via = this.#height[b]! + 1;
    if (this.#height[a] === (via < this.cap ? via : this.cap)) this.#lower(a);
    this.#dropIfIsolated(a, t.tenant, t.object);
    if (b !== a) this.#dropIfIsolated(b, t.subjectTenant, target);
  }

  /** Frees a node left without edges (its height is 0: no out-edge), nor leaves. */
  #dropIfIsolated(id: number, tenant: string, object: string): void {
    if (this.#outHead[id] !== NONE || this.#inHead[id] !== NONE || this.#refs[id] !== 0) return;
    this.#forget();
    this.#setHeight(id, 0);
    this.#move(0, NONE, 1);
    this.#live[id] = FREE;
    this.#index.delete(tenant, object, id);
  }

  /** Sets node `id`'s height, moving it and the leaves pointing at it in #perHeight. */
  #setHeight(id: number, h: number): void {
    const old = this.#height[id]!;
    this.#height[id] = h;
    this.#move(old, h, 1);
    const refs = this.#refs[id]!;
    if (refs !== 0) {
      const cap = this.cap;
      this.#move(old + 1 < cap ? old + 1 : cap, h + 1 < cap ? h + 1 : cap, refs);
    }
  }

  /**
   * Moves `n` heights from `from` to `to` in #perHeight (NONE: none, for a height that comes or goes), keeping
   * #top the highest non-empty one.
   */
  #move(from: number, to: number, n: number): void {
    if (from === to) return;
    const per = this.#perHeight;
    if (from !== NONE) per[from] = per[from]! - n;
    if (to !== NONE) {
      per[to] = per[to]! + n;
      if (to > this.#top) this.#top = to;
    }
    if (from === this.#top && per[from] === 0) {
      // The last height at the top fell: the next non-empty one lies below it (at `to` at the highest).
      let top = from;
      while (top > 0 && per[top] === 0) top--;
      this.#top = top;
    }
  }

  /**
   * Re-evaluates `start` from its out-edges and, each time a node falls, the predecessors whose height it was
   * holding up (those exactly one above its old height; the others have another reason for theirs). Every node
   * off the stack keeps its equation, so the heights are exact once the stack is empty.
   */
  #lower(start: number): void {
    const cap = this.cap;
    const height = this.#height;
    const stack = this.#stack;
    const outNext = this.#outNext;
    const to = this.#to;
    const inNext = this.#inNext;
    const from = this.#from;
    stack.push(start);
    while (stack.length > 0) {
      const x = stack.pop()!;
      // The scan stops at the first edge that still holds x at its height (no edge can hold it higher: heights
      // are exact before the delete, so 1 + h(successor) <= h(x)). Scanning on to the end re-read every out-edge
      // of a node at each delete of one: deleting a group's 80,000 members took 4.8 s in this loop alone.
      const old = height[x]!;
      let h = 0;
      for (let e = this.#outHead[x]!; e !== NONE && h < old; e = outNext[e]!) {
        const via = height[to[e]!]! + 1;
        if (via > h) h = via < cap ? via : cap;
      }
      if (h >= old) continue;
      this.#setHeight(x, h);
      const above = old + 1 < cap ? old + 1 : cap;
      for (let e = this.#inHead[x]!; e !== NONE; e = inNext[e]!) {
        const p = from[e]!;
        if (height[p] === above) stack.push(p);
      }
    }
  }

  /** Raises h(start) to `to` (capped) and restores the invariant on every predecessor. */
  #raise(start: number, to: number): void {
    const cap = this.cap;
    const height = this.#height;
    const stack = this.#stack;
    const first = to < cap ? to : cap;
    if (first <= height[start]!) return;
    this.#setHeight(start, first);
    // Nothing points at it (a file of a load, raised by its new parent edge): no predecessor to raise.
    if (this.#inHead[start] === NONE) return;
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
          this.#setHeight(p, h);
          stack.push(p);
        }
      }
    }
  }

  /**
   * The exact longest chain, in O(1): the heights are kept exact, so this only restarts the peak and the
   * count of changes from here (what a recompute did when deletes lowered nothing by themselves).
   */
  settle(): number {
    this.#peak = this.longest;
    this.#changes = 0;
    return this.#peak;
  }

  /**
   * Exact heights (capped) in O(V+E): nodes are taken from the sinks up, each once all its successors are done;
   * those never taken are on or above a cycle and get the cap. Drops isolated nodes. Returns the largest height.
   */
  recompute(): number {
    const cap = this.cap;
    const height = this.#height;
    const live = this.#live;
    const n = this.#index.slots;
    const remaining = new Int32Array(n);
    const ready: number[] = [];
    // No live node is isolated: addTuple makes a node with its edge, removeTuple drops one left without any.
    for (let id = 0; id < n; id++) {
      if (live[id] === FREE) continue;
      const outs = this.#outs[id]!;
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
    const per = this.#perHeight;
    const refs = this.#refs;
    per.fill(0);
    for (let id = 0; id < n; id++) {
      if (live[id] === FREE) continue;
      if (remaining[id]! > 0) {
        height[id] = cap;
        max = cap;
      }
      const h = height[id]!;
      per[h] = per[h]! + 1;
      if (refs[id]! > 0) {
        // The leaves pointing at it, one above it.
        const above = h + 1 < cap ? h + 1 : cap;
        per[above] = per[above]! + refs[id]!;
        if (above > max) max = above;
      }
    }
    this.#top = max;
    this.#changes = 0;
    this.#peak = max;
    return max;
  }

  clear(): void {
    this.#index.clear();
    this.#forget();
    this.#live = new Int32Array(0);
    this.#nodeRoom = 0;
    this.#height = new Int32Array(0);
    this.#outs = new Int32Array(0);
    this.#inHead = new Int32Array(0);
    this.#outHead = new Int32Array(0);
    this.#refs = new Int32Array(0);
    this.#leafTarget = new Int32Array(0);
    this.#perHeight.fill(0);
    this.#top = 0;
    this.#from = new Int32Array(0);
    this.#edgeRoom = 0;
    this.#to = new Int32Array(0);
    this.#count = new Int32Array(0);
    this.#inNext = new Int32Array(0);
    this.#inPrev = new Int32Array(0);
    this.#outNext = new Int32Array(0);
    this.#outPrev = new Int32Array(0);
    this.#edgeSlots = 0;
    this.#freeEdges = [];
    this.#table = new Int32Array(1024);
    this.#mask = 1023;
    this.#tableSize = 0;
    this.#edges = 0;
    this.#distinct = 0;
    this.#peak = 0;
    this.#changes = 0;
  }
}
