// The compiled tuple graph of one tenant at one revision, over raw linear memory: what the evaluator (evaluate.ts)
// walks and what the TypeScript side (src/wasm-eval/graph.ts) keeps in step with the store's changelog.
//
// Symbols are u32s from the interner (intern.ts) shared by every graph of the kernel instance: an object `type:id`
// (also a wildcard `type:*`) is one symbol; a relation name is a small dense id the TypeScript side assigns. A
// subject is the pair (object symbol, relation id), with NO_REL for a plain object or wildcard.
//
// Layout (a graph is a header; everything else is reached from it):
//   nodes    object symbol -> its node records, one per relation with a tuple, in a list. The index is paged:
//            pages of PAGE_SYMBOLS u32 heads (the object's first node record, 0 if none), each made when a symbol
//            in its range gets its first node. Symbols are dense and given in first-seen order, so a page holds
//            objects written together. Pages are small so that a graph whose objects are scattered among other
//            tenants' symbols (writes interleaved one by one) pays at most one small page a node.
//            A page is found through the directory, a plain array of page addresses for the page numbers
//            [base, base + length), or else through a memo (page number, 0) -> page. A graph whose pages are
//            dense (one tenant's objects written together: the common case) has them all in the directory: 4
//            bytes a page number in its range (at 100k tuples 50 KB, small enough to stay in cache) where the
//            memo took 40 (a 512 KB table, one cold probe per cold object). The directory covers a range only
//            while at least 1/DIR_DENSITY of its page numbers have a page, so that it never costs more than the
//            memo would; a graph whose objects are scattered (among other tenants' symbols) keeps its pages in
//            the memo, and the pages below a directory's base stay there too.
//            Finding a node: one read of the directory (or one probe of the memo), one read of the page, a walk
//            of the object's one to three records.
//            Node record: [u32 inline][u32 relation << 2 | lone | indexed][usize objects or the one object]
//            [usize next][u32 flagged][usize usersets][usize wildcards], 28 bytes (a 32-byte TLSF block), or a
//            lone record: its first three words only (12 bytes, a 16-byte block), for a node whose one tuple is a
//            plain-object subject and whose object had no node when it was made (a file's parent). It reads as a
//            record whose next, flagged, usersets and wildcards are 0, so it is always its list's last; anything
//            more added to it first replaces it with a full record. On the peer workload nearly every node is a
//            file's parent: at 1M tuples the records took 32 MB as full ones, 16 MB as lone ones (LONE_SIZE).
//            flagged  tuples on this node the kernel does not evaluate (conditions, expiry, cross-tenant
//                     subjects): evaluation that reads the node hands the whole check to the reference
//            objects  vector of plain-object subjects (u32 each): the parents a tuple-to-userset follows. A node
//                     with exactly one (a file's parent: most nodes of a tree of files) keeps it in the record
//                     itself and `inline` is 1; then [inline][relation][the object] reads as a vector of length
//                     1 (header [length][capacity], then the entry), so nodeObjects hands readers the record's
//                     own address and they read it as any vector. That saves the vector's 16-byte block and, on
//                     a cold object, the dependent cache miss of reading it after the record.
//            usersets vector of userset subjects ((u32 object, u32 relation) each): what `direct` recurses into
//            wildcards vector of wildcard subjects (u32 each): what the Leopard index (leopard.ts) needs
//            indexed  1 once the node's subjects are in `edges` (it held more than INDEX_AFTER tuples)
//            lone     1 for a lone record
//            next     the object's next node record (0 at the end)
//            The node's evaluable tuples are its three lists' lengths together (it is freed when they and
//            flagged are all 0).
//   edges    memo (object, relation, subject object, subject relation) -> 1: exact and wildcard lookups in O(1),
//            for indexed nodes only. A node of a few tuples (a file's parent, a group's handful of members: nearly
//            every node) is answered by scanning its short vectors instead: the memo cost 24 bytes a slot at
//            3/8-3/4 load, about 60 bytes a tuple, for lookups a scan of a few words answers as fast.
//   subjects memo (subject object, subject relation) -> vector of (object, relation): the reverse adjacency
//            (list objects, the Leopard index's maintenance)
//   epochs, facts, plans  the evaluator's caches kept with the graph: node epochs (graph/epochs.ts), kept facts
//            (graph/facts.ts) and object plans (graph/plans.ts), the last two over one stamped table
//            (lib/stamped-table.ts)
// A vector is one block [u32 length][u32 capacity][entries], entries in insertion order (so in the store's read
// order: the evaluator visits usersets in the same order as the reference evaluator, which its per-check memo
// makes observable in cyclic models). Removal keeps that order (a shift), so it costs O(list length); a batch of
// removals (graph_batch_begin) compacts each long list once instead.
//
// Per-node vectors rather than one global CSR array: the graph is updated in place on every write, and a vector
// per adjacency list is CSR's contiguous layout without its rebuild.
//
// Failure model: an allocation memory.grow cannot satisfy traps; the TypeScript side then discards the graph and
// rebuilds it (or answers with the reference evaluator), so a trap never leaves a half-applied graph in use.
import { bumpEpoch } from "./graph/epochs";
import { factTableNew } from "./graph/facts";
import { planTableNew } from "./graph/plans";
import { tableBytes, tableForget, tableFree, tableHeld, tableWipe } from "./lib/stamped-table";
import {
  memo_clear,
  memo_copy_entries,
  memo_delete2,
  memo_delete4,
  memo_free,
  memo_get2,
  memo_get3,
  memo_get4,
  memo_memory_bytes,
  memo_new,
  memo_set3,
  memo_size,
} from "./intern";
import { memoTouch2 } from "./tables/memo";
import { put2, put4, reserve } from "./tables/put";

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
@inline const G_EPOCHS: usize = 32;
// @ts-ignore: decorator
@inline const G_PLANS: usize = 36;
/** Node records held. */
// @ts-ignore: decorator
@inline const G_NODE_COUNT: usize = 40;
/** Pages allocated (the page memo is at G_NODES). */
// @ts-ignore: decorator
@inline const G_PAGES: usize = 44;
/** The page directory (0 until made), its first page number and its length in pages (a power of two). */
// @ts-ignore: decorator
@inline const G_DIR: usize = 48;
// @ts-ignore: decorator
@inline const G_DIR_BASE: usize = 52;
// @ts-ignore: decorator
@inline const G_DIR_LENGTH: usize = 56;
/** The lowest page number with a page (ABSENT while there is none; pages are freed only with the graph). */
// @ts-ignore: decorator
@inline const G_LOW_PAGE: usize = 60;
/** Lone node records held (counted in G_NODE_COUNT too). */
// @ts-ignore: decorator
@inline const G_LONE_COUNT: usize = 64;
// @ts-ignore: decorator
@inline const G_HEADER: usize = 68;
/** The directory covers a range of page numbers only while at least 1 in DIR_DENSITY of them has a page. */
// @ts-ignore: decorator
@inline const DIR_DENSITY: u32 = 8;
/** The directory's smallest length (in pages). */
// @ts-ignore: decorator
@inline const DIR_MIN: u32 = 64;
// 8 heads: 32 bytes, a 48-byte TLSF block.
// @ts-ignore: decorator
@inline const PAGE_BITS: u32 = 3;
// @ts-ignore: decorator
@inline const PAGE_SYMBOLS: u32 = 1 << PAGE_BITS;
// @ts-ignore: decorator
@inline const PAGE_BYTES: usize = (<usize>PAGE_SYMBOLS) << 2;

// Node record. The first three words are a lone record's whole (see LONE).
// 1 when the node's one plain-object subject is at N_OBJECTS, else 0; with the next two words, a vector of length
// 1 (N_RELATION_INDEXED takes the capacity's place, which readers of a vector never read).
// @ts-ignore: decorator
@inline const N_INLINE: usize = 0;
// u32 relation << 2 | LONE | INDEXED.
// @ts-ignore: decorator
@inline const N_RELATION_INDEXED: usize = 4;
// The plain-object subject vector, or the one object itself when N_INLINE is 1.
// @ts-ignore: decorator
@inline const N_OBJECTS: usize = 8;
// @ts-ignore: decorator
@inline const N_NEXT: usize = 12;
// @ts-ignore: decorator
@inline const N_FLAGGED: usize = 16;
// @ts-ignore: decorator
@inline const N_USERSETS: usize = 20;
// @ts-ignore: decorator
@inline const N_WILDCARDS: usize = 24;
// 28 bytes: with TLSF's 4-byte header a 32-byte block, as the 24-byte record was.
// @ts-ignore: decorator
@inline const N_SIZE: usize = 28;
// A lone record: [N_INLINE = 1][relation << 2 | LONE][the one object], 12 bytes, TLSF's smallest block (16 with its
// header, half a full record's). A node whose only tuple is one plain-object subject (a file's parent: nearly every
// node of a tree of files) is made lone when its object has no node yet; it has no next, flagged, usersets or
// wildcards words (each reads as 0 through the accessors below), so it is always the last of its object's list
// (nodes are put at the head). Anything more added to it (a second subject of any kind, a flagged tuple) first
// makes it a full record in its place (widen).
// @ts-ignore: decorator
@inline const LONE_SIZE: usize = 12;
// @ts-ignore: decorator
@inline const INDEXED: u32 = 1;
// @ts-ignore: decorator
@inline const LONE: u32 = 2;
/** A node holding more evaluable tuples than this keeps them in the edges memo too. */
// @ts-ignore: decorator
@inline const INDEX_AFTER: u32 = 16;
// @ts-ignore: decorator
@inline const NO_REL: u32 = 0xffffffff;

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
    // Room for one 1-word entry (12 bytes: TLSF's smallest block, 16 bytes with its header; room for two took a
    // 32-byte block): nearly every file's parent list and most objects' lists hold one subject. A 2-word vector
    // takes a 32-byte block with room for one or two, so it starts with two.
    const cap: u32 = words == 1 ? 1 : 2;
    v = heap.alloc(VEC_HEADER + <usize>cap * entry);
    store<u32>(v, 0);
    store<u32>(v, cap, 4);
    store<u32>(g, load<u32>(g, G_VECTOR_BYTES) + <u32>(VEC_HEADER + <usize>cap * entry), G_VECTOR_BYTES);
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
  vecDrop(v, words, a, b);
  if (load<u32>(v) == 0) {
    vecFree(g, v, words);
    return 0;
  }
  return v;
}

/** Removes the first entry equal to (a[, b]) in place, keeping order (an emptied vector is kept). */
function vecDrop(v: usize, words: u32, a: u32, b: u32): void {
  const entry: usize = (<usize>words) << 2;
  const length = load<u32>(v);
  const base = v + VEC_HEADER;
  for (let i: u32 = 0; i < length; i++) {
    const at = base + <usize>i * entry;
    if (load<u32>(at) != a || (words == 2 && load<u32>(at, 4) != b)) continue;
    memory.copy(at, at + entry, <usize>(length - 1 - i) * entry);
    store<u32>(v, length - 1);
    return;
  }
}

/** Frees a vector, taking its block off the graph's vector bytes. */
function vecFree(g: usize, v: usize, words: u32): void {
  const entry: usize = (<usize>words) << 2;
  store<u32>(g, load<u32>(g, G_VECTOR_BYTES) - <u32>(VEC_HEADER + <usize>load<u32>(v, 4) * entry), G_VECTOR_BYTES);
  heap.free(v);
}

// ---------------------------------------------------------------------------------------------------------------
// The graph.
// ---------------------------------------------------------------------------------------------------------------

/** A new, empty graph. */
export function graph_new(seedLo: u32, seedHi: u32): usize {
  const g = heap.alloc(G_HEADER);
  memory.fill(g, 0, G_HEADER);
  store<u32>(g, ABSENT, G_LOW_PAGE);
  store<usize>(g, memo_new(2, seedLo, seedHi), G_NODES);
  store<usize>(g, memo_new(4, seedLo ^ 0x9e3779b9, seedHi), G_EDGES);
  store<usize>(g, memo_new(2, seedLo ^ 0x85ebca6b, seedHi), G_SUBJECTS);
  store<usize>(g, factTableNew(seedLo ^ 0xc2b2ae35, seedHi), G_FACTS);
  store<usize>(g, memo_new(2, seedLo ^ 0x27d4eb2f, seedHi), G_EPOCHS);
  store<usize>(g, planTableNew(seedLo ^ 0x165667b1, seedHi), G_PLANS);
  return g;
}

/** Frees the graph and every vector and node record it holds. */
export function graph_free(g: usize): void {
  // An open batch's notes name this graph's vectors: forgotten, not applied.
  if (batchGraph == g) batchForget();
  const subjects = load<usize>(g, G_SUBJECTS);
  freeNodes(g);
  freeValues(subjects, 2, false);
  tableFree(load<usize>(g, G_FACTS));
  memo_free(load<usize>(g, G_EPOCHS));
  tableFree(load<usize>(g, G_PLANS));
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
  for (let i: u32 = 0; i < n; i++) heap.free(<usize>load<u32>(values + ((<usize>i) << 2)));
  heap.free(keys);
  heap.free(values);
}

/**
 * Every page, copied out of the page memo and the directory into a new block the caller frees: [u32 count n]
 * [n × (u32 page number, u32 0)][n × u32 page].
 */
function pagesOf(g: usize): usize {
  const memo = load<usize>(g, G_NODES);
  const n = load<u32>(g, G_PAGES);
  const out = heap.alloc(4 + <usize>n * 12);
  store<u32>(out, n);
  const keys = out + 4;
  const values = out + 4 + <usize>n * 8;
  let k = memo_size(memo);
  if (k > 0) memo_copy_entries(memo, keys, values);
  const dir = load<usize>(g, G_DIR);
  const base = load<u32>(g, G_DIR_BASE);
  const length = load<u32>(g, G_DIR_LENGTH);
  for (let i: u32 = 0; i < length; i++) {
    const page = load<u32>(dir + ((<usize>i) << 2));
    if (page == 0) continue;
    store<u32>(keys + ((<usize>k) << 3), base + i);
    store<u32>(keys + ((<usize>k) << 3), 0, 4);
    store<u32>(values + ((<usize>k) << 2), page);
    k++;
  }
  return out;
}

/** Frees every node record (and its vectors), every page and the page memo. */
function freeNodes(g: usize): void {
  const pages = pagesOf(g);
  const n = load<u32>(pages);
  for (let k: u32 = 0; k < n; k++) {
    const page = <usize>load<u32>(pages + 4 + <usize>n * 8 + ((<usize>k) << 2));
    for (let i: u32 = 0; i < PAGE_SYMBOLS; i++) {
      let node = load<usize>(page + ((<usize>i) << 2));
      while (node != 0) {
        const next = nodeNext(node);
        const objects: usize = load<u32>(node, N_INLINE) != 0 ? 0 : load<usize>(node, N_OBJECTS);
        const usersets = nodeUsersets(node);
        const wildcards = nodeWildcards(node);
        if (objects != 0) heap.free(objects);
        if (usersets != 0) heap.free(usersets);
        if (wildcards != 0) heap.free(wildcards);
        heap.free(node);
        node = next;
      }
    }
    heap.free(page);
  }
  heap.free(pages);
  memo_free(load<usize>(g, G_NODES));
  const dir = load<usize>(g, G_DIR);
  if (dir != 0) heap.free(dir);
}

/** The page of page number `p` (0 when it has none): from the directory when `p` is in its range, else the memo. */
// @ts-ignore: decorator
@inline
function pageOf(g: usize, p: u32): usize {
  const i = p - load<u32>(g, G_DIR_BASE);
  if (i < load<u32>(g, G_DIR_LENGTH)) return <usize>load<u32>(load<usize>(g, G_DIR) + ((<usize>i) << 2));
  const page = memo_get2(load<usize>(g, G_NODES), p, 0);
  return page == ABSENT ? 0 : <usize>page;
}

/** Address of the head slot of `object`'s node list, 0 when its page does not exist. */
// @ts-ignore: decorator
@inline
export function headSlot(g: usize, object: u32): usize {
  const page = pageOf(g, object >>> PAGE_BITS);
  return page == 0 ? 0 : page + ((<usize>(object & (PAGE_SYMBOLS - 1))) << 2);
}

/** headSlot's first read (the directory's word or the page memo's home slot), touched ahead by the evaluator. */
// @ts-ignore: decorator
@inline
export function touchHeadPage(g: usize, object: u32): u32 {
  const p = object >>> PAGE_BITS;
  const i = p - load<u32>(g, G_DIR_BASE);
  if (i < load<u32>(g, G_DIR_LENGTH)) return load<u32>(load<usize>(g, G_DIR) + ((<usize>i) << 2));
  return memoTouch2(load<usize>(g, G_NODES), p, 0);
}

/**
 * Makes the directory cover page number `p` when it would stay dense enough (at least 1 in DIR_DENSITY page
 * numbers of its range with a page, counting the one about to be made), moving the memo's pages in its new range
 * into it. O(1) when it does not; a directory is made or grown only when its range at least doubles, so moving
 * the memo's pages over costs at most the memo's size once per doubling. Allocates before it changes anything,
 * so a trap leaves the index as it was.
 */
function coverPage(g: usize, p: u32): void {
  const pages = load<u32>(g, G_PAGES) + 1;
  const limit: u64 = <u64>pages * DIR_DENSITY;
  const old = load<usize>(g, G_DIR);
  const oldLength = load<u32>(g, G_DIR_LENGTH);
  let base = load<u32>(g, G_DIR_BASE);
  let length: u32 = DIR_MIN;
  if (old == 0) {
    if (limit < <u64>DIR_MIN) return;
    // From the lowest page there is when the range stays dense enough (a graph whose first pages are the start of
    // its run), else from p's neighbourhood (pages below stay in the memo).
    const low = min<u32>(load<u32>(g, G_LOW_PAGE), p) & ~(DIR_MIN - 1);
    while (<u64>p - low >= <u64>length) length <<= 1;
    if (<u64>length <= limit) {
      base = low;
    } else {
      base = p & ~(DIR_MIN - 1);
      length = DIR_MIN;
    }
  } else {
    if (p < base) return; // below the directory: its pages stay in the memo
    length = oldLength;
    while (<u64>p - base >= <u64>length) length <<= 1;
    if (<u64>length > limit || length > (1 << 28)) return;
  }
  const dir = heap.alloc((<usize>length) << 2);
  memory.fill(dir, 0, (<usize>length) << 2);
  const memo = load<usize>(g, G_NODES);
  const n = memo_size(memo);
  const keys: usize = n == 0 ? 0 : heap.alloc(<usize>n * 12);
  if (old != 0) {
    memory.copy(dir, old, (<usize>oldLength) << 2);
    heap.free(old);
  }
  store<usize>(g, dir, G_DIR);
  store<u32>(g, base, G_DIR_BASE);
  store<u32>(g, length, G_DIR_LENGTH);
  if (n == 0) return;
  // The memo's pages now in range move over (deleting allocates nothing).
  const values = keys + <usize>n * 8;
  memo_copy_entries(memo, keys, values);
  for (let k: u32 = 0; k < n; k++) {
    const q = load<u32>(keys + ((<usize>k) << 3));
    if (q - base >= length) continue;
    store<u32>(dir + ((<usize>(q - base)) << 2), load<u32>(values + ((<usize>k) << 2)));
    memo_delete2(memo, q, 0);
  }
  heap.free(keys);
}

/** The head slot of `object`'s node list, making its page if needed. */
function headSlotFor(g: usize, object: u32): usize {
  const p = object >>> PAGE_BITS;
  let page = pageOf(g, p);
  if (page == 0) {
    if (p - load<u32>(g, G_DIR_BASE) >= load<u32>(g, G_DIR_LENGTH)) coverPage(g, p);
    const i = p - load<u32>(g, G_DIR_BASE);
    if (i < load<u32>(g, G_DIR_LENGTH)) {
      page = heap.alloc(PAGE_BYTES);
      memory.fill(page, 0, PAGE_BYTES);
      store<u32>(load<usize>(g, G_DIR) + ((<usize>i) << 2), <u32>page);
    } else {
      // Room in the memo first, then the page: a trap leaves the index as it was.
      const memo = load<usize>(g, G_NODES);
      reserve(memo, memo_size(memo) + 1);
      page = heap.alloc(PAGE_BYTES);
      memory.fill(page, 0, PAGE_BYTES);
      put2(memo, p, 0, <u32>page);
    }
    store<u32>(g, load<u32>(g, G_PAGES) + 1, G_PAGES);
    if (p < load<u32>(g, G_LOW_PAGE)) store<u32>(g, p, G_LOW_PAGE);
  }
  return page + ((<usize>(object & (PAGE_SYMBOLS - 1))) << 2);
}

/** Node records held (every (object, relation) with a tuple). */
export function graphNodeCount(g: usize): u32 {
  return load<u32>(g, G_NODE_COUNT);
}

/** Writes every node's (object, relation) as two u32s at `keys` (room for graphNodeCount pairs). */
export function graphCopyNodeKeys(g: usize, keys: usize): void {
  const pages = pagesOf(g);
  const n = load<u32>(pages);
  let at = keys;
  for (let k: u32 = 0; k < n; k++) {
    const p = load<u32>(pages + 4 + ((<usize>k) << 3));
    const page = <usize>load<u32>(pages + 4 + <usize>n * 8 + ((<usize>k) << 2));
    for (let i: u32 = 0; i < PAGE_SYMBOLS; i++) {
      let node = load<usize>(page + ((<usize>i) << 2));
      while (node != 0) {
        store<u32>(at, (p << PAGE_BITS) | i);
        store<u32>(at, load<u32>(node, N_RELATION_INDEXED) >>> 2, 4);
        at += 8;
        node = nodeNext(node);
      }
    }
  }
  heap.free(pages);
}

/** A node's flagged-tuple count, plain-object subject vector and userset subject vector (0 when empty). */
// @ts-ignore: decorator
@inline
export function nodeFlagged(node: usize): u32 {
  return nodeLone(node) ? 0 : load<u32>(node, N_FLAGGED);
}
// @ts-ignore: decorator
@inline
export function nodeObjects(node: usize): usize {
  return load<u32>(node, N_INLINE) != 0 ? node + N_INLINE : load<usize>(node, N_OBJECTS);
}
// @ts-ignore: decorator
@inline
export function nodeUsersets(node: usize): usize {
  return nodeLone(node) ? 0 : load<usize>(node, N_USERSETS);
}
// @ts-ignore: decorator
@inline
export function nodeWildcards(node: usize): usize {
  return nodeLone(node) ? 0 : load<usize>(node, N_WILDCARDS);
}
/** Whether the record is a lone one (12 bytes: no next, flagged, usersets or wildcards words). */
// @ts-ignore: decorator
@inline
function nodeLone(node: usize): bool {
  return (load<u32>(node, N_RELATION_INDEXED) & LONE) != 0;
}
/** The object's next node record, 0 at the end (a lone record is always the end). */
// @ts-ignore: decorator
@inline
function nodeNext(node: usize): usize {
  return nodeLone(node) ? 0 : load<usize>(node, N_NEXT);
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
  const slot = headSlot(g, object);
  if (slot == 0) return 0;
  let node = load<usize>(slot);
  const key = relation << 2;
  while (node != 0 && (load<u32>(node, N_RELATION_INDEXED) & ~(LONE | INDEXED)) != key) node = nodeNext(node);
  return node;
}

// @ts-ignore: decorator
@inline
function nodeIndexed(node: usize): bool {
  return (load<u32>(node, N_RELATION_INDEXED) & INDEXED) != 0;
}

/** Whether the evaluable tuple object#relation@(subject, subjectRelation) exists. */
// @ts-ignore: decorator
@inline
export function graphHasEdge(g: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): bool {
  const node = graphNode(g, object, relation);
  return node != 0 && nodeHasEdge(g, node, object, relation, subject, subjectRelation);
}

/** Whether the vector holds the entry (a[, b]). */
function vecHas(v: usize, words: u32, a: u32, b: u32): bool {
  if (v == 0) return false;
  const entry: usize = (<usize>words) << 2;
  const end = v + VEC_HEADER + <usize>load<u32>(v) * entry;
  for (let at = v + VEC_HEADER; at < end; at += entry) {
    if (load<u32>(at) == a && (words == 1 || load<u32>(at, 4) == b)) return true;
  }
  return false;
}

/**
 * Whether `node` (of object#relation) holds the evaluable subject (subject, subjectRelation): through the edges
 * memo when the node is indexed, else by a scan of its vectors (a plain object or wildcard has NO_REL; a userset
 * never does).
 */
function nodeHasEdge(g: usize, node: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): bool {
  if (nodeIndexed(node)) {
    return memo_get4(load<usize>(g, G_EDGES), object, relation, subject, subjectRelation) != ABSENT;
  }
  if (subjectRelation != NO_REL) return vecHas(nodeUsersets(node), 2, subject, subjectRelation);
  return vecHas(nodeObjects(node), 1, subject, 0) || vecHas(nodeWildcards(node), 1, subject, 0);
}

/** Puts every evaluable subject of `node` in the edges memo and marks it indexed. */
function indexNode(g: usize, node: usize, object: u32, relation: u32): void {
  const edges = load<usize>(g, G_EDGES);
  for (let which = 0; which < 3; which++) {
    const v = which == 0 ? nodeObjects(node) : which == 1 ? nodeWildcards(node) : nodeUsersets(node);
    if (v == 0) continue;
    const words: u32 = which == 2 ? 2 : 1;
    const entry: usize = (<usize>words) << 2;
    const end = v + VEC_HEADER + <usize>load<u32>(v) * entry;
    for (let at = v + VEC_HEADER; at < end; at += entry) {
      put4(edges, object, relation, load<u32>(at), words == 2 ? load<u32>(at, 4) : NO_REL, 1);
    }
  }
  store<u32>(node, load<u32>(node, N_RELATION_INDEXED) | INDEXED, N_RELATION_INDEXED);
}

/** The reverse-adjacency vector of a subject ((object, relation) entries), 0 if none. */
// @ts-ignore: decorator
@inline
export function graphSubjectVector(g: usize, subject: u32, subjectRelation: u32): usize {
  const v = memo_get2(load<usize>(g, G_SUBJECTS), subject, subjectRelation);
  return v == ABSENT ? 0 : <usize>v;
}

/**
 * A new node record for (object, relation), put at the head of its object's list: a lone record holding `subject`
 * when `lone` and the object has no node yet (a lone record has no next, so it must be the list's last), else an
 * empty full record.
 */
function newNode(g: usize, object: u32, relation: u32, lone: bool, subject: u32): usize {
  // Allocation first (the page, then the record), so a trap leaves the index as it was.
  const slot = headSlotFor(g, object);
  let node: usize;
  if (lone && load<usize>(slot) == 0) {
    node = heap.alloc(LONE_SIZE);
    store<u32>(node, 1, N_INLINE);
    store<u32>(node, (relation << 2) | LONE, N_RELATION_INDEXED);
    store<u32>(node, subject, N_OBJECTS);
    store<u32>(g, load<u32>(g, G_LONE_COUNT) + 1, G_LONE_COUNT);
  } else {
    node = heap.alloc(N_SIZE);
    memory.fill(node, 0, N_SIZE);
    store<u32>(node, relation << 2, N_RELATION_INDEXED);
    store<usize>(node, load<usize>(slot), N_NEXT);
  }
  store<usize>(slot, node);
  store<u32>(g, load<u32>(g, G_NODE_COUNT) + 1, G_NODE_COUNT);
  return node;
}

/** The node as a full record: a lone one is replaced (in its place in the list) by a full one holding its object. */
function widen(g: usize, object: u32, node: usize): usize {
  if (!nodeLone(node)) return node;
  const full = heap.alloc(N_SIZE);
  memory.fill(full, 0, N_SIZE);
  store<u32>(full, load<u32>(node, N_INLINE), N_INLINE);
  store<u32>(full, load<u32>(node, N_RELATION_INDEXED) & ~LONE, N_RELATION_INDEXED);
  store<u32>(full, load<u32>(node, N_OBJECTS), N_OBJECTS);
  // Its list's last (next 0, as `full` has): the link to it is the head slot or a full record's next.
  let at = headSlot(g, object);
  while (load<usize>(at) != node) at = load<usize>(at) + N_NEXT;
  store<usize>(at, full);
  heap.free(node);
  store<u32>(g, load<u32>(g, G_LONE_COUNT) - 1, G_LONE_COUNT);
  return full;
}

/** The node's evaluable tuples: its three subject lists' lengths. */
function nodeEdges(node: usize): u32 {
  return vecLength(nodeObjects(node)) + vecLength(nodeUsersets(node)) + vecLength(nodeWildcards(node));
}

/** Adds a plain-object subject to the node: inline when it is the first, else to its vector. */
function addObject(g: usize, node: usize, subject: u32): void {
  if (load<u32>(node, N_INLINE) != 0) {
    // The second: both go to a vector (room for three: 20 bytes, the same 32-byte block as room for two).
    const v = heap.alloc(VEC_HEADER + 12);
    store<u32>(v, 2);
    store<u32>(v, 3, 4);
    store<u32>(v, load<u32>(node, N_OBJECTS), VEC_HEADER);
    store<u32>(v, subject, VEC_HEADER + 4);
    store<u32>(g, load<u32>(g, G_VECTOR_BYTES) + <u32>(VEC_HEADER + 12), G_VECTOR_BYTES);
    store<u32>(node, 0, N_INLINE);
    store<usize>(node, v, N_OBJECTS);
  } else if (load<usize>(node, N_OBJECTS) == 0) {
    store<u32>(node, 1, N_INLINE);
    store<u32>(node, subject, N_OBJECTS);
  } else {
    store<usize>(node, vec_push(g, load<usize>(node, N_OBJECTS), 1, subject, 0), N_OBJECTS);
  }
}

/**
 * Removes a plain-object subject the node (of object#relation) holds (order kept); one left goes back inline. In a
 * batch, an entry of a long vector is only noted (see graph_batch_begin).
 */
function removeObject(g: usize, node: usize, object: u32, relation: u32, subject: u32): void {
  if (load<u32>(node, N_INLINE) != 0) {
    store<u32>(node, 0, N_INLINE);
    store<u32>(node, 0, N_OBJECTS);
    return;
  }
  const objects = load<usize>(node, N_OBJECTS);
  if (defersNode(g, node, objects)) {
    note(LIST_OBJECTS, objects, object, relation, subject, 0);
    return;
  }
  store<usize>(node, vec_remove(g, objects, 1, subject, 0), N_OBJECTS);
  settleObjects(g, node);
}

/** A node's objects vector left with one entry goes back inline (its block freed). */
function settleObjects(g: usize, node: usize): void {
  const v = load<usize>(node, N_OBJECTS);
  if (v == 0 || load<u32>(v) != 1) return;
  const last = load<u32>(v, VEC_HEADER);
  vecFree(g, v, 1);
  store<u32>(node, 1, N_INLINE);
  store<u32>(node, last, N_OBJECTS);
}

function dropNodeIfEmpty(g: usize, object: u32, relation: u32, node: usize): void {
  if (nodeFlagged(node) != 0 || nodeEdges(node) != 0) return;
  // Unlink it from its object's list (the node exists, so its page does; the records before it are full).
  let at = headSlot(g, object);
  while (load<usize>(at) != node) at = load<usize>(at) + N_NEXT;
  store<usize>(at, nodeNext(node));
  store<u32>(g, load<u32>(g, G_NODE_COUNT) - 1, G_NODE_COUNT);
  if (nodeLone(node)) store<u32>(g, load<u32>(g, G_LONE_COUNT) - 1, G_LONE_COUNT);
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
  // A batch of removals ends before anything is added: the graph is whole again before it grows.
  if (batchGraph == g) graph_batch_end(g);
  const found = graphNode(g, object, relation);
  if (flagged != 0) {
    const node = found == 0 ? newNode(g, object, relation, false, 0) : widen(g, object, found);
    store<u32>(node, load<u32>(node, N_FLAGGED) + 1, N_FLAGGED);
    store<u32>(g, load<u32>(g, G_FLAGGED) + 1, G_FLAGGED);
    return 1;
  }
  if (found != 0 && nodeHasEdge(g, found, object, relation, subject, subjectRelation)) return 0;
  // A new node of one plain object may be a lone record, which holds the subject already.
  const node = found == 0 ? newNode(g, object, relation, kind == KIND_OBJECT, subject) : widen(g, object, found);
  if (!nodeLone(node)) {
    const indexed = nodeIndexed(node);
    if (indexed) put4(load<usize>(g, G_EDGES), object, relation, subject, subjectRelation, 1);
    if (kind == KIND_OBJECT) {
      addObject(g, node, subject);
    } else if (kind == KIND_USERSET) {
      store<usize>(node, vec_push(g, load<usize>(node, N_USERSETS), 2, subject, subjectRelation), N_USERSETS);
    } else {
      store<usize>(node, vec_push(g, load<usize>(node, N_WILDCARDS), 1, subject, 0), N_WILDCARDS);
    }
    if (!indexed && nodeEdges(node) > INDEX_AFTER) indexNode(g, node, object, relation);
  }
  const subjects = load<usize>(g, G_SUBJECTS);
  const v = memo_get2(subjects, subject, subjectRelation);
  const grown = vec_push(g, v == ABSENT ? 0 : <usize>v, 2, object, relation);
  // A second probe only when the vector is new or moved (a subject's list grows in place most of the time).
  if (grown != <usize>v) put2(subjects, subject, subjectRelation, <u32>grown);
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
  const node = graphNode(g, object, relation);
  if (node == 0) return 0;
  if (flagged != 0) {
    const count = nodeFlagged(node);
    if (count == 0) return 0;
    store<u32>(node, count - 1, N_FLAGGED);
    store<u32>(g, load<u32>(g, G_FLAGGED) - 1, G_FLAGGED);
    dropNodeIfEmpty(g, object, relation, node);
    return 1;
  }
  if (nodeIndexed(node)) {
    if (memo_delete4(load<usize>(g, G_EDGES), object, relation, subject, subjectRelation) == ABSENT) return 0;
  } else if (!nodeHasEdge(g, node, object, relation, subject, subjectRelation)) {
    return 0;
  }
  if (kind == KIND_OBJECT) {
    removeObject(g, node, object, relation, subject);
  } else if (nodeLone(node)) {
    // A lone record holds no userset or wildcard: nothing of this kind to remove (it has no such words to write).
  } else if (kind == KIND_USERSET) {
    const usersets = load<usize>(node, N_USERSETS);
    if (defersNode(g, node, usersets)) note(LIST_USERSETS, usersets, object, relation, subject, subjectRelation);
    else store<usize>(node, vec_remove(g, usersets, 2, subject, subjectRelation), N_USERSETS);
  } else {
    const wildcards = load<usize>(node, N_WILDCARDS);
    if (defersNode(g, node, wildcards)) note(LIST_WILDCARDS, wildcards, object, relation, subject, 0);
    else store<usize>(node, vec_remove(g, wildcards, 1, subject, 0), N_WILDCARDS);
  }
  // A node with a noted entry still counts it, so it stays until graph_batch_end drops it.
  dropNodeIfEmpty(g, object, relation, node);
  const subjects = load<usize>(g, G_SUBJECTS);
  const v = memo_get2(subjects, subject, subjectRelation);
  if (v != ABSENT) {
    if (batchGraph == g && load<u32>(<usize>v) > DEFER_AFTER) {
      note(LIST_SUBJECTS, <usize>v, subject, subjectRelation, object, relation);
    } else {
      const shrunk = vec_remove(g, <usize>v, 2, object, relation);
      if (shrunk == 0) memo_delete2(subjects, subject, subjectRelation);
      else if (shrunk != <usize>v) put2(subjects, subject, subjectRelation, <u32>shrunk);
    }
  }
  store<u32>(g, load<u32>(g, G_TUPLES) - 1, G_TUPLES);
  return 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Batches of removals.
//
// graph_remove takes an entry out of a vector by a scan to it and a shift of the tail: O(length). Deleting k of a
// group's n members (or k of a folder's files: each file's `parent` tuple is in the folder's reverse list) did that
// k times, O(n·k): the 80,000 members of one group, deleted last-written first in writes of 10,000, took 1.6 s in
// the kernel. Between graph_batch_begin and graph_batch_end, graph_remove only notes an entry of a vector longer
// than DEFER_AFTER (leaving it in place); graph_batch_end then takes every noted entry out of its vector in one
// pass, the rest keeping their order (the evaluator visits a node's subjects in that order, which its per-check
// memo makes observable in cyclic models, so entries are never swapped into the gaps): O(n + k) a vector a batch.
// The graph after graph_batch_end is the one the same graph_remove calls make without a batch: the same entries
// in the same order, the same vector blocks (a vector is never shrunk, only freed once empty), a node's last
// plain object inline again, empty nodes dropped, a subject with no entry left out of the reverse adjacency.
//
// Until graph_batch_end, long vectors still hold their noted entries, so nothing may read the graph in between
// (evaluation, listing, the Leopard upkeep, the TypeScript side's invalidation walk): src/wasm-eval/graph.ts runs
// those after the batch. graph_remove's own answers need no reading of a noted entry: only an indexed node's
// vectors are deferred (a node holds at most INDEX_AFTER tuples before it is indexed), whose tuples are looked up
// in the edges memo, and graph_remove deletes a tuple from there at once (so a second removal of it in the batch
// answers 0 as before); a subject's reverse list is only removed from. graph_add ends an open batch first.
// ---------------------------------------------------------------------------------------------------------------

/**
 * Vectors at most this long are removed from at once, as outside a batch: a scan of a few cache lines costs less
 * than noting the entry. Above INDEX_AFTER, so a deferred node vector is always an indexed node's.
 */
// @ts-ignore: decorator
@inline const DEFER_AFTER: u32 = 64;
/**
 * A vector with at most this many noted entries has them removed one by one at the end (a scan and a shift each);
 * one with more is compacted in one pass that tests every entry against the noted ones (a bit filter, then a hash
 * set for the few the filter passes), which costs more an entry than a scan's compare and only pays for itself
 * once there are more than a few to take out.
 */
// @ts-ignore: decorator
@inline const ONE_BY_ONE: u32 = 16;

// The vector a note is in: a node's plain objects, usersets or wildcards, or a subject's reverse list.
// @ts-ignore: decorator
@inline const LIST_OBJECTS: u32 = 0;
// @ts-ignore: decorator
@inline const LIST_USERSETS: u32 = 1;
// @ts-ignore: decorator
@inline const LIST_WILDCARDS: u32 = 2;
// @ts-ignore: decorator
@inline const LIST_SUBJECTS: u32 = 3;

// A batch's vector record: [list][vector][x][y][entries noted], (x, y) the node's (object, relation) or the subject.
// @ts-ignore: decorator
@inline const RECORD_BYTES: usize = 20;
// A note: [record index][a][b], the entry (a[, b]) to take out (b is 0 for a 1-word entry).
// @ts-ignore: decorator
@inline const NOTE_BYTES: usize = 12;

/** The graph whose batch is open (0 when none: one batch at a time per kernel instance). */
let batchGraph: usize = 0;
/** memo (vector, 0) -> its record index; 0 until the batch's first note. */
let batchVectors: usize = 0;
let batchRecords: usize = 0;
let batchRecordCount: u32 = 0;
let batchRecordCap: u32 = 0;
let batchNotes: usize = 0;
let batchNoteCount: u32 = 0;
let batchNoteCap: u32 = 0;

/** Whether a removal from the node's vector `v` is noted rather than done now (see the section's comment). */
// @ts-ignore: decorator
@inline
function defersNode(g: usize, node: usize, v: usize): bool {
  return batchGraph == g && v != 0 && nodeIndexed(node) && load<u32>(v) > DEFER_AFTER;
}

// @ts-ignore: decorator
@inline
function entryWords(list: u32): u32 {
  return list == LIST_USERSETS || list == LIST_SUBJECTS ? 2 : 1;
}

/** Notes the entry (a, b) of vector `v` (list `list` of node or subject (x, y)) for graph_batch_end. */
function note(list: u32, v: usize, x: u32, y: u32, a: u32, b: u32): void {
  // The keys are block addresses, not chosen by a tenant: a fixed seed does.
  if (batchVectors == 0) batchVectors = memo_new(2, 0x2545f491, 0x9e3779b9);
  let record = memo_get2(batchVectors, <u32>v, 0);
  if (record == ABSENT) {
    record = batchRecordCount;
    if (record == batchRecordCap) {
      const cap = max<u32>(batchRecordCap << 1, 16);
      const bytes = <usize>cap * RECORD_BYTES;
      batchRecords = batchRecords == 0 ? heap.alloc(bytes) : heap.realloc(batchRecords, bytes);
      batchRecordCap = cap;
    }
    put2(batchVectors, <u32>v, 0, record);
    const at = batchRecords + <usize>record * RECORD_BYTES;
    store<u32>(at, list);
    store<u32>(at, <u32>v, 4);
    store<u32>(at, x, 8);
    store<u32>(at, y, 12);
    store<u32>(at, 0, 16);
    batchRecordCount++;
  }
  const at = batchRecords + <usize>record * RECORD_BYTES;
  store<u32>(at, load<u32>(at, 16) + 1, 16);
  if (batchNoteCount == batchNoteCap) {
    const cap = max<u32>(batchNoteCap << 1, 64);
    const bytes = <usize>cap * NOTE_BYTES;
    batchNotes = batchNotes == 0 ? heap.alloc(bytes) : heap.realloc(batchNotes, bytes);
    batchNoteCap = cap;
  }
  const n = batchNotes + <usize>batchNoteCount * NOTE_BYTES;
  store<u32>(n, record);
  store<u32>(n, a, 4);
  store<u32>(n, b, 8);
  batchNoteCount++;
}

/** Forgets the batch's notes and frees its scratch (the vectors are left as they are). */
function batchForget(): void {
  batchGraph = 0;
  if (batchVectors != 0) memo_free(batchVectors);
  if (batchRecords != 0) heap.free(batchRecords);
  if (batchNotes != 0) heap.free(batchNotes);
  batchVectors = 0;
  batchRecords = 0;
  batchNotes = 0;
  batchRecordCount = 0;
  batchRecordCap = 0;
  batchNoteCount = 0;
  batchNoteCap = 0;
}

/**
 * Opens a batch of removals on graph `g` (ending another graph's open batch first): until graph_batch_end, only
 * graph_remove may be called on it (graph_add ends the batch itself).
 */
export function graph_batch_begin(g: usize): void {
  if (batchGraph != 0 && batchGraph != g) graph_batch_end(batchGraph);
  batchGraph = g;
}

/** Ends the batch open on `g` (nothing when none is): every noted entry taken out, the graph whole again. */
export function graph_batch_end(g: usize): void {
  if (batchGraph != g || g == 0) return;
  if (batchNoteCount == 0) {
    batchForget();
    return;
  }
  // The noted entries of vectors with many of them, in one set keyed by (vector, a, b) (a vector's entries are
  // distinct, and a tuple is noted at most once a batch), and in a bit filter in front of it: at least 16 bits a
  // noted entry, so that all but ~1 in 16 of the entries that stay are passed by one bit test, not a probe of the
  // set (a write of 10,000 deletes reaches the graph in runs of a few hundred: each run's pass over a long vector
  // is mostly entries that stay).
  let hashed: u32 = 0;
  for (let i: u32 = 0; i < batchRecordCount; i++) {
    const noted = load<u32>(batchRecords + <usize>i * RECORD_BYTES, 16);
    if (noted > ONE_BY_ONE) hashed += noted;
  }
  let many: usize = 0;
  let filter: usize = 0;
  let filterBits: u32 = 10;
  if (hashed > 0) {
    while (filterBits < 30 && (<u64>1 << filterBits) < (<u64>hashed << 4)) filterBits++;
    filter = heap.alloc((<usize>1) << (filterBits - 3));
    memory.fill(filter, 0, (<usize>1) << (filterBits - 3));
    many = memo_new(3, 0x632be5ab, 0x85ebca6b);
  }
  for (let i: u32 = 0; i < batchNoteCount; i++) {
    const n = batchNotes + <usize>i * NOTE_BYTES;
    const r = batchRecords + <usize>load<u32>(n) * RECORD_BYTES;
    const v = load<u32>(r, 4);
    const a = load<u32>(n, 4);
    const b = load<u32>(n, 8);
    if (load<u32>(r, 16) <= ONE_BY_ONE) {
      vecDrop(<usize>v, entryWords(load<u32>(r)), a, b);
      continue;
    }
    const bit = filterBit(v, a, b, filterBits);
    const at = filter + <usize>(bit >>> 3);
    store<u8>(at, load<u8>(at) | (<u8>1 << <u8>(bit & 7)));
    if (memo_set3(many, v, a, b, 1) < 0) unreachable();
  }
  for (let i: u32 = 0; i < batchRecordCount; i++) {
    const r = batchRecords + <usize>i * RECORD_BYTES;
    const noted = load<u32>(r, 16);
    if (noted > ONE_BY_ONE) compact(<usize>load<u32>(r, 4), entryWords(load<u32>(r)), many, filter, filterBits, noted);
  }
  if (many != 0) {
    memo_free(many);
    heap.free(filter);
  }
  // Then each vector as graph_remove leaves one: freed once empty (a node's pointer to it cleared, a subject left
  // out of the reverse adjacency), a node's one remaining object inline.
  const subjects = load<usize>(g, G_SUBJECTS);
  for (let i: u32 = 0; i < batchRecordCount; i++) {
    const r = batchRecords + <usize>i * RECORD_BYTES;
    const list = load<u32>(r);
    const v = <usize>load<u32>(r, 4);
    const x = load<u32>(r, 8);
    const y = load<u32>(r, 12);
    if (list == LIST_SUBJECTS) {
      if (load<u32>(v) == 0) {
        vecFree(g, v, 2);
        memo_delete2(subjects, x, y);
      }
      continue;
    }
    // The node is there: a node with a noted entry counted it and was not dropped.
    const node = graphNode(g, x, y);
    const field: usize = list == LIST_OBJECTS ? N_OBJECTS : list == LIST_USERSETS ? N_USERSETS : N_WILDCARDS;
    if (load<u32>(v) == 0) {
      vecFree(g, v, entryWords(list));
      store<usize>(node + field, 0);
    } else if (list == LIST_OBJECTS) {
      settleObjects(g, node);
    }
  }
  // Last the nodes left empty (once every vector of theirs is settled).
  for (let i: u32 = 0; i < batchRecordCount; i++) {
    const r = batchRecords + <usize>i * RECORD_BYTES;
    if (load<u32>(r) == LIST_SUBJECTS) continue;
    const x = load<u32>(r, 8);
    const y = load<u32>(r, 12);
    const node = graphNode(g, x, y);
    if (node != 0) dropNodeIfEmpty(g, x, y, node);
  }
  batchForget();
}

/** The filter bit of entry (a, b) of vector v: a multiplicative mix of the three, its top `bits` bits. */
// @ts-ignore: decorator
@inline
function filterBit(v: u32, a: u32, b: u32, bits: u32): u32 {
  let h = (a * 0x9e3779b1) ^ (b * 0x85ebca77) ^ (v * 0xc2b2ae3d);
  h ^= h >>> 15;
  h *= 0x2c1b3c6d;
  h ^= h >>> 13;
  return h >>> (32 - bits);
}

/**
 * Takes the `noted` entries found in `many` (keyed by (v, a, b), each with its bit set in `filter`) out of vector v
 * in one pass, the rest keeping their order; once the last is found the tail moves in one copy.
 */
function compact(v: usize, words: u32, many: usize, filter: usize, bits: u32, noted: u32): void {
  const entry: usize = (<usize>words) << 2;
  const key = <u32>v;
  const end = v + VEC_HEADER + <usize>load<u32>(v) * entry;
  let to = v + VEC_HEADER;
  let left = noted;
  let at = to;
  for (; at < end && left > 0; at += entry) {
    const a = load<u32>(at);
    const b: u32 = words == 2 ? load<u32>(at, 4) : 0;
    const bit = filterBit(key, a, b, bits);
    const marked = (load<u8>(filter + <usize>(bit >>> 3)) & (<u8>1 << <u8>(bit & 7))) != 0;
    if (marked && memo_get3(many, key, a, b) != ABSENT) {
      left--;
      continue;
    }
    if (to != at) {
      store<u32>(to, a);
      if (words == 2) store<u32>(to, b, 4);
    }
    to += entry;
  }
  if (to != at) memory.copy(to, at, end - at);
  to += end - at;
  store<u32>(v, <u32>((to - v - VEC_HEADER) / entry));
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
// The graph's caches: kept facts (graph/facts.ts) and object plans (graph/plans.ts), both stamped with the node
// epochs (graph/epochs.ts) so that a change retires exactly the entries above it.
// ---------------------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline
export function graphFactTable(g: usize): usize {
  return load<usize>(g, G_FACTS);
}

// @ts-ignore: decorator
@inline
export function graphPlanTable(g: usize): usize {
  return load<usize>(g, G_PLANS);
}

// @ts-ignore: decorator
@inline
export function graphEpochs(g: usize): usize {
  return load<usize>(g, G_EPOCHS);
}

/** Invalidates every fact and plan about node (object, relation). */
export function graph_invalidate(g: usize, object: u32, relation: u32): void {
  if (!bumpEpoch(load<usize>(g, G_EPOCHS), object, relation)) graphWipeCaches(g);
}

/** Resets the node epochs, so everything stamped with them goes too: the facts and the plans. */
function graphWipeCaches(g: usize): void {
  memo_clear(load<usize>(g, G_EPOCHS));
  tableWipe(load<usize>(g, G_FACTS));
  tableWipe(load<usize>(g, G_PLANS));
}

/** Forgets every fact in O(1) (benches measuring cold checks; answers never need it). */
export function graph_clear_facts(g: usize): void {
  if (!tableForget(load<usize>(g, G_FACTS))) graphWipeCaches(g);
}

/** Facts held: slots filled since the last clear (a fact invalidated by a write counts until replaced). */
export function graph_facts(g: usize): u32 {
  return tableHeld(load<usize>(g, G_FACTS));
}

/** Forgets every plan (freeing each as its slot is reused): benches measuring cold checks. */
export function graph_clear_plans(g: usize): void {
  const t = load<usize>(g, G_PLANS);
  if (!tableForget(t)) tableWipe(t);
}

/** Plans and markers held (slots filled since the last clear). */
export function graph_plans(g: usize): u32 {
  return tableHeld(load<usize>(g, G_PLANS));
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
  return node == 0 ? 0 : nodeFlagged(node);
}

/** Length of one of a node's lists: `which` 0 objects, 1 usersets. */
export function graph_node_length(g: usize, object: u32, relation: u32, which: u32): u32 {
  const node = graphNode(g, object, relation);
  if (node == 0) return 0;
  return vecLength(which == 0 ? nodeObjects(node) : nodeUsersets(node));
}

/** Address of a node list's first entry (valid until the next write), 0 if empty. */
export function graph_node_entries(g: usize, object: u32, relation: u32, which: u32): usize {
  const node = graphNode(g, object, relation);
  if (node == 0) return 0;
  const v = which == 0 ? nodeObjects(node) : nodeUsersets(node);
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
  return (
    G_HEADER +
    memo_memory_bytes(load<usize>(g, G_NODES)) +
    ((<usize>load<u32>(g, G_DIR_LENGTH)) << 2) +
    (<usize>load<u32>(g, G_PAGES)) * PAGE_BYTES +
    memo_memory_bytes(load<usize>(g, G_EDGES)) +
    memo_memory_bytes(load<usize>(g, G_SUBJECTS)) +
    tableBytes(load<usize>(g, G_FACTS)) +
    memo_memory_bytes(load<usize>(g, G_EPOCHS)) +
    tableBytes(load<usize>(g, G_PLANS)) +
    <usize>(load<u32>(g, G_NODE_COUNT) - load<u32>(g, G_LONE_COUNT)) * N_SIZE +
    <usize>load<u32>(g, G_LONE_COUNT) * LONE_SIZE +
    load<u32>(g, G_VECTOR_BYTES)
  );
}
