// The compiled tuple graph of one tenant at one revision, over raw linear memory: what the evaluator (evaluate.ts)
// walks and what the TypeScript side (src/wasm-eval/graph.ts) keeps in step with the store's changelog.
//
// Symbols are u32s from the interner (intern.ts) shared by every graph of the kernel instance: an object `type:id`
// (also a wildcard `type:*`) is one symbol; a relation name is a small dense id the TypeScript side assigns. A
// subject is the pair (object symbol, relation id), with NO_REL for a plain object or wildcard.
//
// Layout (a graph is a header; everything else is reached from it):
//   nodes    memo (object, relation) -> node record: [u32 flagged][usize objects][usize usersets][u32 edges]
//            flagged  tuples on this node the kernel does not evaluate (conditions, expiry, cross-tenant
//                     subjects): evaluation that reads the node hands the whole check to the reference
//            objects  vector of plain-object subjects (u32 each): the parents a tuple-to-userset follows
//            usersets vector of userset subjects ((u32 object, u32 relation) each): what `direct` recurses into
//            edges    evaluable tuples on the node, so it is freed when empty
//            wildcards vector of wildcard subjects (u32 each): what the Leopard index (leopard.ts) needs
//   edges    memo (object, relation, subject object, subject relation) -> 1: exact and wildcard lookups in O(1)
//   subjects memo (subject object, subject relation) -> vector of (object, relation): the reverse adjacency
//            (list objects, the Leopard index's maintenance)
// A vector is one block [u32 length][u32 capacity][entries], entries in insertion order (so in the store's read
// order: the evaluator visits usersets in the same order as the reference evaluator, which its per-check memo
// makes observable in cyclic models). Removal keeps that order (a shift), so it costs O(list length).
//
// Per-node vectors rather than one global CSR array: the graph is updated in place on every write, and a vector
// per adjacency list is CSR's contiguous layout without its rebuild.
//
// Failure model: an allocation memory.grow cannot satisfy traps; the TypeScript side then discards the graph and
// rebuilds it (or answers with the reference evaluator), so a trap never leaves a half-applied graph in use.
export * from "./intern";
import { hashU32x2 } from "./lib/hash";
import {
  memo_clear,
  memo_copy_entries,
  memo_delete2,
  memo_delete4,
  memo_free,
  memo_get2,
  memo_get4,
  memo_memory_bytes,
  memo_new,
  memo_set2,
  memo_set4,
  memo_size,
} from "./intern";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;

// Subject kinds as the TypeScript side passes them.
// @ts-ignore: decorator
@inline const KIND_OBJECT: u32 = 0;
// @ts-ignore: decorator
@inline const KIND_WILDCARD: u32 = 1;
// @ts-ignore: decorator
@inline const KIND_USERSET: u32 = 2;

// Graph header.
// @ts-ignore: decorator
@inline const G_NODES: usize = 0;
// @ts-ignore: decorator
@inline const G_EDGES: usize = 4;
// @ts-ignore: decorator
@inline const G_SUBJECTS: usize = 8;
// @ts-ignore: decorator
@inline const G_TUPLES: usize = 12;
// @ts-ignore: decorator
@inline const G_FLAGGED: usize = 16;
// @ts-ignore: decorator
@inline const G_VECTOR_BYTES: usize = 20;
// @ts-ignore: decorator
@inline const G_LEOPARD: usize = 24;
// @ts-ignore: decorator
@inline const G_FACTS: usize = 28;
// @ts-ignore: decorator
@inline const G_FACT_NODES: usize = 32;
// @ts-ignore: decorator
@inline const G_PLANS: usize = 36;
// @ts-ignore: decorator
@inline const G_HEADER: usize = 40;

// Node record.
// @ts-ignore: decorator
@inline const N_FLAGGED: usize = 0;
// @ts-ignore: decorator
@inline const N_OBJECTS: usize = 4;
// @ts-ignore: decorator
@inline const N_USERSETS: usize = 8;
// @ts-ignore: decorator
@inline const N_EDGES: usize = 12;
// @ts-ignore: decorator
@inline const N_WILDCARDS: usize = 16;
// @ts-ignore: decorator
@inline const N_SIZE: usize = 20;

// @ts-ignore: decorator
@inline const VEC_HEADER: usize = 8;

// ---------------------------------------------------------------------------------------------------------------
// Symbol types: symbol -> type id, kernel-wide (symbols are), written by the TypeScript side when it interns.
// ---------------------------------------------------------------------------------------------------------------

let symbolTypes: usize = 0;
let symbolTypesCap: u32 = 0;

/** Records the type of `count` symbols (u32 pairs symbol, type at `pairs`). */
export function symbols_set_types(pairs: usize, count: u32): void {
  for (let i: u32 = 0; i < count; i++) {
    const symbol = load<u32>(pairs + ((<usize>i) << 3));
    const type = load<u32>(pairs + ((<usize>i) << 3), 4);
    if (symbol >= symbolTypesCap) {
      let cap = max<u32>(symbolTypesCap << 1, 1024);
      while (cap <= symbol) cap <<= 1;
      const next = heap.alloc((<usize>cap) << 2);
      memory.fill(next, 0xff, (<usize>cap) << 2);
      if (symbolTypes != 0) {
        memory.copy(next, symbolTypes, (<usize>symbolTypesCap) << 2);
        heap.free(symbolTypes);
      }
      symbolTypes = next;
      symbolTypesCap = cap;
    }
    store<u32>(symbolTypes + ((<usize>symbol) << 2), type);
  }
}

/** The type id of a symbol (ABSENT if never recorded). */
// @ts-ignore: decorator
@inline
export function symbolType(symbol: u32): u32 {
  return symbol < symbolTypesCap ? load<u32>(symbolTypes + ((<usize>symbol) << 2)) : ABSENT;
}

export function symbols_type(symbol: u32): u32 {
  return symbolType(symbol);
}

export function symbols_memory_bytes(): usize {
  return (<usize>symbolTypesCap) << 2;
}

// ---------------------------------------------------------------------------------------------------------------
// Vectors of 1- or 2-word entries.
// ---------------------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline
export function vecLength(v: usize): u32 {
  return v == 0 ? 0 : load<u32>(v);
}

/** Appends an entry; returns the (possibly moved) vector. */
export function vec_push(g: usize, v: usize, words: u32, a: u32, b: u32): usize {
  const entry: usize = (<usize>words) << 2;
  if (v == 0) {
    v = heap.alloc(VEC_HEADER + 2 * entry);
    store<u32>(v, 0);
    store<u32>(v, 2, 4);
    store<u32>(g, load<u32>(g, G_VECTOR_BYTES) + <u32>(VEC_HEADER + 2 * entry), G_VECTOR_BYTES);
  }
  const length = load<u32>(v);
  const cap = load<u32>(v, 4);
  if (length == cap) {
    const grown = cap + (cap >> 1) + 2;
    v = heap.realloc(v, VEC_HEADER + <usize>grown * entry);
    store<u32>(v, grown, 4);
    store<u32>(g, load<u32>(g, G_VECTOR_BYTES) + <u32>(<usize>(grown - cap) * entry), G_VECTOR_BYTES);
  }
  const at = v + VEC_HEADER + <usize>length * entry;
  store<u32>(at, a);
  if (words == 2) store<u32>(at, b, 4);
  store<u32>(v, length + 1);
  return v;
}

/** Removes the first entry equal to (a[, b]), keeping order; returns the vector, 0 once empty (freed). */
export function vec_remove(g: usize, v: usize, words: u32, a: u32, b: u32): usize {
  if (v == 0) return 0;
  const entry: usize = (<usize>words) << 2;
  const length = load<u32>(v);
  const base = v + VEC_HEADER;
  for (let i: u32 = 0; i < length; i++) {
    const at = base + <usize>i * entry;
    if (load<u32>(at) != a || (words == 2 && load<u32>(at, 4) != b)) continue;
    memory.copy(at, at + entry, <usize>(length - 1 - i) * entry);
    store<u32>(v, length - 1);
    break;
  }
  if (load<u32>(v) == 0) {
    store<u32>(g, load<u32>(g, G_VECTOR_BYTES) - <u32>(VEC_HEADER + <usize>load<u32>(v, 4) * entry), G_VECTOR_BYTES);
    heap.free(v);
    return 0;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// The graph.
// ---------------------------------------------------------------------------------------------------------------

/** A new, empty graph. */
export function graph_new(seedLo: u32, seedHi: u32): usize {
  const g = heap.alloc(G_HEADER);
  memory.fill(g, 0, G_HEADER);
  store<usize>(g, memo_new(2, seedLo, seedHi), G_NODES);
  store<usize>(g, memo_new(4, seedLo ^ 0x9e3779b9, seedHi), G_EDGES);
  store<usize>(g, memo_new(2, seedLo ^ 0x85ebca6b, seedHi), G_SUBJECTS);
  store<usize>(g, factTableNew(seedLo ^ 0xc2b2ae35, seedHi), G_FACTS);
  store<usize>(g, memo_new(2, seedLo ^ 0x27d4eb2f, seedHi), G_FACT_NODES);
  store<usize>(g, planTableNew(seedLo ^ 0x165667b1, seedHi), G_PLANS);
  return g;
}

/** Frees the graph and every vector and node record it holds. */
export function graph_free(g: usize): void {
  const nodes = load<usize>(g, G_NODES);
  const subjects = load<usize>(g, G_SUBJECTS);
  freeValues(nodes, 2, true);
  freeValues(subjects, 2, false);
  factTableFree(load<usize>(g, G_FACTS));
  memo_free(load<usize>(g, G_FACT_NODES));
  planTableFree(load<usize>(g, G_PLANS));
  memo_free(nodes);
  memo_free(subjects);
  memo_free(load<usize>(g, G_EDGES));
  heap.free(g);
}

function freeValues(table: usize, arity: u32, nodeRecords: bool): void {
  const n = memo_size(table);
  if (n == 0) return;
  const keys = heap.alloc(<usize>n * arity * 4);
  const values = heap.alloc(<usize>n * 4);
  memo_copy_entries(table, keys, values);
  for (let i: u32 = 0; i < n; i++) {
    const p = <usize>load<u32>(values + ((<usize>i) << 2));
    if (nodeRecords) {
      const objects = load<usize>(p, N_OBJECTS);
      const usersets = load<usize>(p, N_USERSETS);
      const wildcards = load<usize>(p, N_WILDCARDS);
      if (objects != 0) heap.free(objects);
      if (usersets != 0) heap.free(usersets);
      if (wildcards != 0) heap.free(wildcards);
    }
    heap.free(p);
  }
  heap.free(keys);
  heap.free(values);
}

/** A node's flagged-tuple count, plain-object subject vector and userset subject vector (0 when empty). */
// @ts-ignore: decorator
@inline
export function nodeFlagged(node: usize): u32 {
  return load<u32>(node, N_FLAGGED);
}
// @ts-ignore: decorator
@inline
export function nodeObjects(node: usize): usize {
  return load<usize>(node, N_OBJECTS);
}
// @ts-ignore: decorator
@inline
export function nodeUsersets(node: usize): usize {
  return load<usize>(node, N_USERSETS);
}
// @ts-ignore: decorator
@inline
export function nodeWildcards(node: usize): usize {
  return load<usize>(node, N_WILDCARDS);
}
/** Address of a vector's first entry. */
// @ts-ignore: decorator
@inline
export function vecEntries(v: usize): usize {
  return v + VEC_HEADER;
}

/** The node record of (object, relation), or 0 when it has no tuple. */
// @ts-ignore: decorator
@inline
export function graphNode(g: usize, object: u32, relation: u32): usize {
  const p = memo_get2(load<usize>(g, G_NODES), object, relation);
  return p == ABSENT ? 0 : <usize>p;
}

/** Whether the evaluable tuple object#relation@(subject, subjectRelation) exists. */
// @ts-ignore: decorator
@inline
export function graphHasEdge(g: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): bool {
  return memo_get4(load<usize>(g, G_EDGES), object, relation, subject, subjectRelation) != ABSENT;
}

/** The reverse-adjacency vector of a subject ((object, relation) entries), 0 if none. */
// @ts-ignore: decorator
@inline
export function graphSubjectVector(g: usize, subject: u32, subjectRelation: u32): usize {
  const v = memo_get2(load<usize>(g, G_SUBJECTS), subject, subjectRelation);
  return v == ABSENT ? 0 : <usize>v;
}

function nodeFor(g: usize, object: u32, relation: u32): usize {
  const nodes = load<usize>(g, G_NODES);
  const p = memo_get2(nodes, object, relation);
  if (p != ABSENT) return <usize>p;
  const node = heap.alloc(N_SIZE);
  memory.fill(node, 0, N_SIZE);
  memo_set2(nodes, object, relation, <u32>node);
  return node;
}

function dropNodeIfEmpty(g: usize, object: u32, relation: u32, node: usize): void {
  if (load<u32>(node, N_FLAGGED) != 0 || load<u32>(node, N_EDGES) != 0) return;
  memo_delete2(load<usize>(g, G_NODES), object, relation);
  heap.free(node);
}

/**
 * Adds the tuple object#relation@subject. `kind`: 0 plain object, 1 wildcard, 2 userset (subjectRelation is
 * NO_REL unless a userset). A `flagged` tuple is only counted on its node. Returns 1 if added, 0 if it was there.
 */
export function graph_add(
  g: usize,
  object: u32,
  relation: u32,
  subject: u32,
  subjectRelation: u32,
  kind: u32,
  flagged: u32,
): i32 {
  if (flagged != 0) {
    const node = nodeFor(g, object, relation);
    store<u32>(node, load<u32>(node, N_FLAGGED) + 1, N_FLAGGED);
    store<u32>(g, load<u32>(g, G_FLAGGED) + 1, G_FLAGGED);
    return 1;
  }
  const edges = load<usize>(g, G_EDGES);
  if (memo_get4(edges, object, relation, subject, subjectRelation) != ABSENT) return 0;
  memo_set4(edges, object, relation, subject, subjectRelation, 1);
  const node = nodeFor(g, object, relation);
  store<u32>(node, load<u32>(node, N_EDGES) + 1, N_EDGES);
  if (kind == KIND_OBJECT) {
    store<usize>(node, vec_push(g, load<usize>(node, N_OBJECTS), 1, subject, 0), N_OBJECTS);
  } else if (kind == KIND_USERSET) {
    store<usize>(node, vec_push(g, load<usize>(node, N_USERSETS), 2, subject, subjectRelation), N_USERSETS);
  } else {
    store<usize>(node, vec_push(g, load<usize>(node, N_WILDCARDS), 1, subject, 0), N_WILDCARDS);
  }
  const subjects = load<usize>(g, G_SUBJECTS);
  const v = memo_get2(subjects, subject, subjectRelation);
  const grown = vec_push(g, v == ABSENT ? 0 : <usize>v, 2, object, relation);
  memo_set2(subjects, subject, subjectRelation, <u32>grown);
  store<u32>(g, load<u32>(g, G_TUPLES) + 1, G_TUPLES);
  return 1;
}

/** Removes a tuple added with the same arguments. Returns 1 if removed, 0 if it was not there. */
export function graph_remove(
  g: usize,
  object: u32,
  relation: u32,
  subject: u32,
  subjectRelation: u32,
  kind: u32,
  flagged: u32,
): i32 {
  const nodes = load<usize>(g, G_NODES);
  const p = memo_get2(nodes, object, relation);
  if (p == ABSENT) return 0;
  const node = <usize>p;
  if (flagged != 0) {
    const count = load<u32>(node, N_FLAGGED);
    if (count == 0) return 0;
    store<u32>(node, count - 1, N_FLAGGED);
    store<u32>(g, load<u32>(g, G_FLAGGED) - 1, G_FLAGGED);
    dropNodeIfEmpty(g, object, relation, node);
    return 1;
  }
  if (memo_delete4(load<usize>(g, G_EDGES), object, relation, subject, subjectRelation) == ABSENT) return 0;
  store<u32>(node, load<u32>(node, N_EDGES) - 1, N_EDGES);
  if (kind == KIND_OBJECT) {
    store<usize>(node, vec_remove(g, load<usize>(node, N_OBJECTS), 1, subject, 0), N_OBJECTS);
  } else if (kind == KIND_USERSET) {
    store<usize>(node, vec_remove(g, load<usize>(node, N_USERSETS), 2, subject, subjectRelation), N_USERSETS);
  } else {
    store<usize>(node, vec_remove(g, load<usize>(node, N_WILDCARDS), 1, subject, 0), N_WILDCARDS);
  }
  dropNodeIfEmpty(g, object, relation, node);
  const subjects = load<usize>(g, G_SUBJECTS);
  const v = memo_get2(subjects, subject, subjectRelation);
  if (v != ABSENT) {
    const shrunk = vec_remove(g, <usize>v, 2, object, relation);
    if (shrunk == 0) memo_delete2(subjects, subject, subjectRelation);
    else if (shrunk != <usize>v) memo_set2(subjects, subject, subjectRelation, <u32>shrunk);
  }
  store<u32>(g, load<u32>(g, G_TUPLES) - 1, G_TUPLES);
  return 1;
}

/** Attaches a Leopard index (leopard.ts) for the evaluator to consult; the caller owns (and frees) it. */
export function graph_set_leopard(g: usize, lp: usize): void {
  store<usize>(g, lp, G_LEOPARD);
}

// @ts-ignore: decorator
@inline
export function graphLeopard(g: usize): usize {
  return load<usize>(g, G_LEOPARD);
}

// @ts-ignore: decorator
@inline
export function graphNodes(g: usize): usize {
  return load<usize>(g, G_NODES);
}

// ---------------------------------------------------------------------------------------------------------------
// Subproblem facts: (node, subject) -> TRUE/FALSE with the depth it was computed at, kept across checks and
// batches at the graph's revision (only for "union-only" relations, whose answers are path-independent facts: see
// evaluate.ts).
//
// Invalidation is per node: a change bumps the epoch of every node whose answer it can affect (the TypeScript
// side walks the reverse edges), and a fact counts only while its stamp equals base + its node's epoch, where
// `base` is a table-wide generation (forgetting everything is base + 1: O(1)). Both only grow, so a fact that
// stopped counting never counts again; before either could reach 2^21 the table is wiped once.
//
// The table is 4-way set-associative: a fact lives in one bucket of four 16-byte slots (one cache line), chosen
// by hashing its key. It grows by doubling up to the fact limit (eval_set_fact_limit); at the limit a new fact
// replaces one in its bucket, CLOCK-style: a slot whose reference bit is clear (not read since the hand last
// passed) goes first, and passing a slot clears its bit, so facts in use survive and nothing is dropped
// wholesale. Slot: [u32 object (ABSENT = empty)][u32 subject][u32 relation << 16 | subjectRelation & 0xffff]
// [u32 stamp << 10 | referenced << 9 | depth << 1 | outcome] (relation ids < 0xffff and depth < 256: the
// evaluator keeps no fact otherwise).
// Header: [usize slots][u32 bucket mask][u32 held][u32 fill bound][u32 base][u32 hand][u32 0][u64 seed].
// ---------------------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline const F_SLOTS: usize = 0;
// @ts-ignore: decorator
@inline const F_MASK: usize = 4;
// @ts-ignore: decorator
@inline const F_HELD: usize = 8;
// @ts-ignore: decorator
@inline const F_GROW_AT: usize = 12;
// @ts-ignore: decorator
@inline const F_BASE: usize = 16;
// @ts-ignore: decorator
@inline const F_HAND: usize = 20;
// @ts-ignore: decorator
@inline const F_SEED: usize = 24;
// @ts-ignore: decorator
@inline const F_HEADER: usize = 32;
// @ts-ignore: decorator
@inline const WAYS: u32 = 4;
// @ts-ignore: decorator
@inline const BUCKET_BYTES: usize = 64;
// @ts-ignore: decorator
@inline const FIRST_BUCKETS: u32 = 64;
// Stamps are 22 bits: base and node epochs each stay below 2^21, so their sum never wraps.
// @ts-ignore: decorator
@inline const STAMP_HALF: u32 = 1 << 21;
// @ts-ignore: decorator
@inline const REFERENCED: u32 = 1 << 9;

// Facts a table may hold (kernel-wide; a power of two, at least one bucket), set through eval_set_fact_limit.
let factCapacity: u32 = 1 << 18;

/** Sets the most facts a table holds: the largest power of two ≤ limit (at least 4; 0 is the caller's "off"). */
export function graphSetFactCapacity(limit: u32): void {
  let cap: u32 = WAYS;
  while (cap <= limit >> 1) cap <<= 1;
  factCapacity = cap;
}

function factTableNew(seedLo: u32, seedHi: u32): usize {
  const t = heap.alloc(F_HEADER);
  memory.fill(t, 0, F_HEADER);
  store<u64>(t, ((<u64>seedHi) << 32) | (<u64>seedLo), F_SEED);
  return t;
}

function factTableFree(t: usize): void {
  const slots = load<usize>(t, F_SLOTS);
  if (slots != 0) heap.free(slots);
  heap.free(t);
}

/** Bucket count of a table (0 before its first fact). */
// @ts-ignore: decorator
@inline
function factBuckets(t: usize): u32 {
  return load<usize>(t, F_SLOTS) == 0 ? 0 : load<u32>(t, F_MASK) + 1;
}

// @ts-ignore: decorator
@inline
function factKeyWord(relation: u32, subjectRelation: u32): u32 {
  return (relation << 16) | (subjectRelation & 0xffff);
}

// @ts-ignore: decorator
@inline
function factBucket(t: usize, object: u32, subject: u32, keyWord: u32): usize {
  const seed = load<u64>(t, F_SEED);
  const h = <u32>hashU32x2(object, keyWord, hashU32x2(subject, 0, seed));
  return load<usize>(t, F_SLOTS) + <usize>(h & load<u32>(t, F_MASK)) * BUCKET_BYTES;
}

// @ts-ignore: decorator
@inline
function nodeEpoch(g: usize, object: u32, relation: u32): u32 {
  const epochs = load<usize>(g, G_FACT_NODES);
  if (memo_size(epochs) == 0) return 0;
  const e = memo_get2(epochs, object, relation);
  return e == ABSENT ? 0 : e;
}

// @ts-ignore: decorator
@inline
export function graphFacts(g: usize): usize {
  return load<usize>(g, G_FACTS);
}

/** The live fact (depth << 1 | outcome) for node and subject, or ABSENT; marks it referenced. */
export function graphFact(g: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): u32 {
  const t = load<usize>(g, G_FACTS);
  if (load<usize>(t, F_SLOTS) == 0) return ABSENT;
  const keyWord = factKeyWord(relation, subjectRelation);
  const bucket = factBucket(t, object, subject, keyWord);
  for (let w: u32 = 0; w < WAYS; w++) {
    const s = bucket + ((<usize>w) << 4);
    if (load<u32>(s) != object || load<u32>(s, 4) != subject || load<u32>(s, 8) != keyWord) continue;
    const v = load<u32>(s, 12);
    if (v >>> 10 != load<u32>(t, F_BASE) + nodeEpoch(g, object, relation)) return ABSENT;
    if ((v & REFERENCED) == 0) store<u32>(s, v | REFERENCED, 12);
    return v & 0x1ff;
  }
  return ABSENT;
}

/** Records a fact (value = depth << 1 | outcome, depth < 256) under the node's current epoch. */
export function graphSetFact(
  g: usize,
  object: u32,
  relation: u32,
  subject: u32,
  subjectRelation: u32,
  value: u32,
): void {
  const t = load<usize>(g, G_FACTS);
  const buckets = factBuckets(t);
  if (buckets == 0 || (buckets << 2) > factCapacity) {
    factTableResize(t, min<u32>(FIRST_BUCKETS, factCapacity >> 2), false);
  } else if (load<u32>(t, F_HELD) >= load<u32>(t, F_GROW_AT) && (buckets << 2) < factCapacity) {
    factTableResize(t, buckets << 1, true);
  }
  const base = load<u32>(t, F_BASE);
  const stamped = ((base + nodeEpoch(g, object, relation)) << 10) | value;
  factPut(t, object, relation, subject, subjectRelation, stamped, base);
}

/** Puts a stamped fact into its bucket: its own slot, else a free or outdated one, else the CLOCK victim. */
function factPut(t: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32, v: u32, base: u32): void {
  const keyWord = factKeyWord(relation, subjectRelation);
  const bucket = factBucket(t, object, subject, keyWord);
  let free: usize = 0;
  for (let w: u32 = 0; w < WAYS; w++) {
    const s = bucket + ((<usize>w) << 4);
    const o = load<u32>(s);
    if (o == object && load<u32>(s, 4) == subject && load<u32>(s, 8) == keyWord) {
      store<u32>(s, v, 12);
      return;
    }
    // Empty, or stamped before the current base (so below base + any epoch): outdated for sure.
    if (free == 0 && (o == ABSENT || load<u32>(s, 12) >>> 10 < base)) free = s;
  }
  if (free != 0) {
    store<u32>(t, load<u32>(t, F_HELD) + 1, F_HELD);
  } else {
    // CLOCK within the bucket: from the hand, the first slot not referenced since it was last passed.
    const hand = load<u32>(t, F_HAND);
    store<u32>(t, hand + 1, F_HAND);
    for (let i: u32 = 0; i < WAYS; i++) {
      const s = bucket + ((<usize>((hand + i) & (WAYS - 1))) << 4);
      const sv = load<u32>(s, 12);
      if ((sv & REFERENCED) == 0) {
        free = s;
        break;
      }
      store<u32>(s, sv & ~REFERENCED, 12);
    }
    if (free == 0) free = bucket + ((<usize>(hand & (WAYS - 1))) << 4);
  }
  store<u32>(free, object);
  store<u32>(free, subject, 4);
  store<u32>(free, keyWord, 8);
  store<u32>(free, v, 12);
}

/**
 * Moves the table to `buckets` buckets, keeping the facts that still count for sure (stamped at or after the
 * base) when `keep`; a fact whose new bucket is full is dropped (it is a cache). Allocates first: a trap leaves
 * the table as it was.
 */
function factTableResize(t: usize, buckets: u32, keep: bool): void {
  const bytes = <usize>buckets * BUCKET_BYTES;
  const next = heap.alloc(bytes);
  memory.fill(next, 0xff, bytes);
  const old = load<usize>(t, F_SLOTS);
  const oldBuckets = factBuckets(t);
  const base = load<u32>(t, F_BASE);
  store<usize>(t, next, F_SLOTS);
  store<u32>(t, buckets - 1, F_MASK);
  store<u32>(t, 0, F_HELD);
  store<u32>(t, buckets * 3, F_GROW_AT); // 3/4 of the slots
  if (old == 0) return;
  if (keep) {
    const end = old + <usize>oldBuckets * BUCKET_BYTES;
    for (let s = old; s < end; s += 16) {
      const object = load<u32>(s);
      const v = load<u32>(s, 12);
      if (object == ABSENT || v >>> 10 < base) continue;
      const keyWord = load<u32>(s, 8);
      const subject = load<u32>(s, 4);
      const bucket = factBucket(t, object, subject, keyWord);
      for (let w: u32 = 0; w < WAYS; w++) {
        const d = bucket + ((<usize>w) << 4);
        if (load<u32>(d) != ABSENT) continue;
        store<u64>(d, load<u64>(s));
        store<u64>(d, load<u64>(s, 8), 8);
        store<u32>(t, load<u32>(t, F_HELD) + 1, F_HELD);
        break;
      }
    }
  }
  heap.free(old);
}

/** Empties the table for real: every slot free, base 0 (and the caller resets the node epochs). */
function factTableWipe(t: usize): void {
  const slots = load<usize>(t, F_SLOTS);
  if (slots != 0) memory.fill(slots, 0xff, <usize>factBuckets(t) * BUCKET_BYTES);
  store<u32>(t, 0, F_BASE);
  store<u32>(t, 0, F_HELD);
}

/** Invalidates every fact about node (object, relation). */
export function graph_invalidate(g: usize, object: u32, relation: u32): void {
  const epochs = load<usize>(g, G_FACT_NODES);
  const e = memo_get2(epochs, object, relation);
  const epoch: u32 = e == ABSENT ? 0 : e;
  if (epoch + 1 >= STAMP_HALF) {
    graphWipeFacts(g);
    return;
  }
  memo_set2(epochs, object, relation, epoch + 1);
}

/** Resets the node epochs, so everything stamped with them goes too: the facts and the plans. */
function graphWipeFacts(g: usize): void {
  memo_clear(load<usize>(g, G_FACT_NODES));
  factTableWipe(load<usize>(g, G_FACTS));
  planTableWipe(load<usize>(g, G_PLANS));
}

/** Forgets every fact in O(1) (benches measuring cold checks; answers never need it). */
export function graph_clear_facts(g: usize): void {
  const t = load<usize>(g, G_FACTS);
  const base = load<u32>(t, F_BASE);
  if (base + 1 >= STAMP_HALF) {
    graphWipeFacts(g);
    return;
  }
  store<u32>(t, base + 1, F_BASE);
  store<u32>(t, 0, F_HELD);
}

/** Facts held: slots filled since the last clear (a fact invalidated by a write counts until replaced). */
export function graph_facts(g: usize): u32 {
  return load<u32>(load<usize>(g, G_FACTS), F_HELD);
}

/** Bytes of the fact table (header and slots). */
function factTableBytes(t: usize): usize {
  return F_HEADER + <usize>factBuckets(t) * BUCKET_BYTES;
}

// ---------------------------------------------------------------------------------------------------------------
// Object plans: (object, relation) -> the node's rewrite with this graph's structure read in (which of its object's
// relations have tuples, the parents its tuple-to-usersets follow, small edge lists inline): what every subject's
// check of the node would otherwise look up again. Built and replayed by evaluate.ts; kept across checks and
// batches, stamped and invalidated with the same node epochs as the facts (a plan reads only nodes of its own
// object below it, and the TypeScript side bumps the epoch of every node above a change).
//
// Same 4-way set-associative table and CLOCK replacement as the facts, up to the plan limit. Slot: [u32 object
// (ABSENT = empty)][u32 relation][u32 stamp << 1 | referenced][u32 plan] where plan is PLAN_SEEN (asked once: a
// plan is built at the second question), PLAN_NONE (too large to keep) or the address of a heap block the table
// owns (freed when its slot is reused, evicted or the graph freed).
// Header: [usize slots][u32 bucket mask][u32 held][u32 fill bound][u32 base][u32 hand][u64 seed][u32 plan bytes].
// ---------------------------------------------------------------------------------------------------------------

export const PLAN_SEEN: u32 = 0;
export const PLAN_NONE: u32 = 1;
// @ts-ignore: decorator
@inline const P_BYTES: usize = 32;
// @ts-ignore: decorator
@inline const P_HEADER: usize = 40;

// Plans a table may hold (kernel-wide; a power of two ≥ 4; 0 = no plans), set through eval_set_plan_limit.
let planCapacity: u32 = 1 << 15;

export function graphSetPlanCapacity(limit: u32): void {
  if (limit == 0) {
    planCapacity = 0;
    return;
  }
  let cap: u32 = WAYS;
  while (cap <= limit >> 1) cap <<= 1;
  planCapacity = cap;
}

// @ts-ignore: decorator
@inline
export function graphPlansOn(): bool {
  return planCapacity != 0;
}

function planTableNew(seedLo: u32, seedHi: u32): usize {
  const t = heap.alloc(P_HEADER);
  memory.fill(t, 0, P_HEADER);
  store<u64>(t, ((<u64>seedHi) << 32) | (<u64>seedLo), F_SEED);
  return t;
}

// @ts-ignore: decorator
@inline
function planBucket(t: usize, object: u32, relation: u32): usize {
  const h = <u32>hashU32x2(object, relation, load<u64>(t, F_SEED));
  return load<usize>(t, F_SLOTS) + <usize>(h & load<u32>(t, F_MASK)) * BUCKET_BYTES;
}

// During a check a plan being replayed may lose its slot (to a plan built deeper in the same check): plans
// released then are freed when the check ends (graphEndPlanUse), never under a replay.
let deferring: bool = false;
let pending: usize = 0;
let pendingLen: u32 = 0;
let pendingCap: u32 = 0;

/** Frees the plan a slot owns, if any (later, while a check runs). */
function planRelease(t: usize, s: usize): void {
  if (load<u32>(s) == ABSENT) return;
  const p = load<u32>(s, 12);
  if (p <= PLAN_NONE) return;
  store<u32>(t, load<u32>(t, P_BYTES) - load<u32>(<usize>p), P_BYTES);
  if (!deferring) {
    heap.free(<usize>p);
    return;
  }
  if (pendingLen == pendingCap) {
    const cap = pendingCap == 0 ? 64 : pendingCap << 1;
    pending = pending == 0 ? heap.alloc((<usize>cap) << 2) : heap.realloc(pending, (<usize>cap) << 2);
    pendingCap = cap;
  }
  store<u32>(pending + ((<usize>pendingLen) << 2), p);
  pendingLen++;
}

/** A check starts replaying plans: releases wait until graphEndPlanUse. */
export function graphBeginPlanUse(): void {
  deferring = true;
}

/** The check is over: frees the plans released meanwhile. */
export function graphEndPlanUse(): void {
  deferring = false;
  for (let i: u32 = 0; i < pendingLen; i++) heap.free(<usize>load<u32>(pending + ((<usize>i) << 2)));
  pendingLen = 0;
}

function planTableFree(t: usize): void {
  planTableWipe(t);
  const slots = load<usize>(t, F_SLOTS);
  if (slots != 0) heap.free(slots);
  heap.free(t);
}

/** Frees every plan and empties every slot. */
function planTableWipe(t: usize): void {
  const slots = load<usize>(t, F_SLOTS);
  if (slots != 0) {
    const end = slots + <usize>factBuckets(t) * BUCKET_BYTES;
    for (let s = slots; s < end; s += 16) planRelease(t, s);
    memory.fill(slots, 0xff, end - slots);
  }
  store<u32>(t, 0, F_BASE);
  store<u32>(t, 0, F_HELD);
}

/** The node's live plan entry (PLAN_SEEN, PLAN_NONE or a plan address), or ABSENT; marks it referenced. */
export function graphPlan(g: usize, object: u32, relation: u32): u32 {
  const t = load<usize>(g, G_PLANS);
  if (load<usize>(t, F_SLOTS) == 0) return ABSENT;
  const bucket = planBucket(t, object, relation);
  for (let w: u32 = 0; w < WAYS; w++) {
    const s = bucket + ((<usize>w) << 4);
    if (load<u32>(s) != object || load<u32>(s, 4) != relation) continue;
    const v = load<u32>(s, 8);
    if (v >>> 1 != load<u32>(t, F_BASE) + nodeEpoch(g, object, relation)) return ABSENT;
    if ((v & 1) == 0) store<u32>(s, v | 1, 8);
    return load<u32>(s, 12);
  }
  return ABSENT;
}

/** Records the node's plan entry (the table takes ownership of a plan address) under its current epoch. */
export function graphSetPlan(g: usize, object: u32, relation: u32, plan: u32): void {
  const t = load<usize>(g, G_PLANS);
  const buckets = factBuckets(t);
  if (buckets == 0 || (buckets << 2) > planCapacity) {
    planTableResize(t, min<u32>(FIRST_BUCKETS, planCapacity >> 2));
  } else if (load<u32>(t, F_HELD) >= load<u32>(t, F_GROW_AT) && (buckets << 2) < planCapacity) {
    planTableResize(t, buckets << 1);
  }
  const base = load<u32>(t, F_BASE);
  const stamp = base + nodeEpoch(g, object, relation);
  const bucket = planBucket(t, object, relation);
  let slot: usize = 0;
  for (let w: u32 = 0; w < WAYS; w++) {
    const s = bucket + ((<usize>w) << 4);
    const o = load<u32>(s);
    if (o == object && load<u32>(s, 4) == relation) {
      slot = s;
      break;
    }
    if (slot == 0 && (o == ABSENT || load<u32>(s, 8) >>> 1 < base)) slot = s;
  }
  if (slot == 0) {
    const hand = load<u32>(t, F_HAND);
    store<u32>(t, hand + 1, F_HAND);
    for (let i: u32 = 0; i < WAYS; i++) {
      const s = bucket + ((<usize>((hand + i) & (WAYS - 1))) << 4);
      const v = load<u32>(s, 8);
      if ((v & 1) == 0) {
        slot = s;
        break;
      }
      store<u32>(s, v & ~1, 8);
    }
    if (slot == 0) slot = bucket + ((<usize>(hand & (WAYS - 1))) << 4);
  } else if (load<u32>(slot) == ABSENT || load<u32>(slot, 8) >>> 1 < base) {
    store<u32>(t, load<u32>(t, F_HELD) + 1, F_HELD);
  }
  if (load<u32>(slot) != ABSENT && load<u32>(slot, 12) != plan) planRelease(t, slot);
  if (plan > PLAN_NONE) store<u32>(t, load<u32>(t, P_BYTES) + load<u32>(<usize>plan), P_BYTES);
  store<u32>(slot, object);
  store<u32>(slot, relation, 4);
  store<u32>(slot, stamp << 1, 8);
  store<u32>(slot, plan, 12);
}

/** Moves the table to `buckets` buckets, keeping the plans that still count for sure; drops (frees) the rest. */
function planTableResize(t: usize, buckets: u32): void {
  const bytes = <usize>buckets * BUCKET_BYTES;
  const next = heap.alloc(bytes);
  memory.fill(next, 0xff, bytes);
  const old = load<usize>(t, F_SLOTS);
  const oldBuckets = factBuckets(t);
  const base = load<u32>(t, F_BASE);
  store<usize>(t, next, F_SLOTS);
  store<u32>(t, buckets - 1, F_MASK);
  store<u32>(t, 0, F_HELD);
  store<u32>(t, buckets * 3, F_GROW_AT);
  if (old == 0) return;
  const end = old + <usize>oldBuckets * BUCKET_BYTES;
  for (let s = old; s < end; s += 16) {
    const object = load<u32>(s);
    if (object == ABSENT) continue;
    let moved = false;
    if (load<u32>(s, 8) >>> 1 >= base && (buckets << 2) <= planCapacity) {
      const bucket = planBucket(t, object, load<u32>(s, 4));
      for (let w: u32 = 0; w < WAYS; w++) {
        const d = bucket + ((<usize>w) << 4);
        if (load<u32>(d) != ABSENT) continue;
        store<u64>(d, load<u64>(s));
        store<u64>(d, load<u64>(s, 8), 8);
        store<u32>(t, load<u32>(t, F_HELD) + 1, F_HELD);
        moved = true;
        break;
      }
    }
    if (!moved) planRelease(t, s);
  }
  heap.free(old);
}

/** Forgets every plan (freeing each as its slot is reused): benches measuring cold checks. */
export function graph_clear_plans(g: usize): void {
  const t = load<usize>(g, G_PLANS);
  const base = load<u32>(t, F_BASE);
  if (base + 1 >= STAMP_HALF) {
    planTableWipe(t);
    return;
  }
  store<u32>(t, base + 1, F_BASE);
  store<u32>(t, 0, F_HELD);
}

/** Plans and markers held (slots filled since the last clear). */
export function graph_plans(g: usize): u32 {
  return load<u32>(load<usize>(g, G_PLANS), F_HELD);
}

function planTableBytes(t: usize): usize {
  return P_HEADER + <usize>factBuckets(t) * BUCKET_BYTES + load<u32>(t, P_BYTES);
}

/** Evaluable tuples held. */
export function graph_tuples(g: usize): u32 {
  return load<u32>(g, G_TUPLES);
}

/** Tuples counted as flagged (routed to the reference evaluator when read). */
export function graph_flagged(g: usize): u32 {
  return load<u32>(g, G_FLAGGED);
}

/** Flagged tuples on one node (0 when the node has none or does not exist). */
export function graph_node_flagged(g: usize, object: u32, relation: u32): u32 {
  const node = graphNode(g, object, relation);
  return node == 0 ? 0 : load<u32>(node, N_FLAGGED);
}

/** Length of one of a node's lists: `which` 0 objects, 1 usersets. */
export function graph_node_length(g: usize, object: u32, relation: u32, which: u32): u32 {
  const node = graphNode(g, object, relation);
  if (node == 0) return 0;
  return vecLength(load<usize>(node + (which == 0 ? N_OBJECTS : N_USERSETS)));
}

/** Address of a node list's first entry (valid until the next write), 0 if empty. */
export function graph_node_entries(g: usize, object: u32, relation: u32, which: u32): usize {
  const node = graphNode(g, object, relation);
  if (node == 0) return 0;
  const v = load<usize>(node + (which == 0 ? N_OBJECTS : N_USERSETS));
  return v == 0 ? 0 : v + VEC_HEADER;
}

export function graph_has_edge(g: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): bool {
  return graphHasEdge(g, object, relation, subject, subjectRelation);
}

/** Length of a subject's reverse adjacency ((object, relation) pairs). */
export function graph_subject_length(g: usize, subject: u32, subjectRelation: u32): u32 {
  return vecLength(graphSubjectVector(g, subject, subjectRelation));
}

/** Address of a subject's first (object, relation) pair (valid until the next write), 0 if none. */
export function graph_subject_entries(g: usize, subject: u32, subjectRelation: u32): usize {
  const v = graphSubjectVector(g, subject, subjectRelation);
  return v == 0 ? 0 : v + VEC_HEADER;
}

/** Bytes the graph holds in linear memory (header, tables, node records, vectors; not the shared interner). */
export function graph_memory_bytes(g: usize): usize {
  const nodes = load<usize>(g, G_NODES);
  return (
    G_HEADER +
    memo_memory_bytes(nodes) +
    memo_memory_bytes(load<usize>(g, G_EDGES)) +
    memo_memory_bytes(load<usize>(g, G_SUBJECTS)) +
    factTableBytes(load<usize>(g, G_FACTS)) +
    memo_memory_bytes(load<usize>(g, G_FACT_NODES)) +
    planTableBytes(load<usize>(g, G_PLANS)) +
    <usize>memo_size(nodes) * N_SIZE +
    load<u32>(g, G_VECTOR_BYTES)
  );
}
