// List objects by reverse expansion over a compiled tuple graph (graph.ts), in one call: from the subject (and its
// type's wildcard) up through the graph's reverse adjacency (subject -> the (object, relation) nodes naming it),
// following a "reverse program" the TypeScript side compiles from the model (src/wasm-eval/list-objects.ts), and
// collecting the objects reached at the queried type#relation. It is the kernel's copy of
// src/reference/exact-list-objects.ts exactListObjects, step for step, and is used only where that one is exact
// (a union-only program without conditions, a plain subject of the tenant, no check able to reach the depth
// limit) and, in addition, where the graph holds no flagged tuple (a flagged tuple is absent from the reverse
// adjacency: the expansion could not see it). The caller checks all of that; this file only walks.
//
// Reverse program block (u32 words):
//   [types T][relation names R][index: T × R words, word offset of the node step of (type, relation) or 0]
//   step: [userset][computed count][relation ids...][ttu count][(parent type, parent relation, tupleset)...]
//     userset   1 when some relation accepts `type#relation` as a userset subject: the node's own userset
//               subject is looked up (graph subjects (object, relation))
//     computed  relations of the same type that include this one as a computed userset: reached on the object
//     ttu       tuple-to-usersets `relation from tupleset` on a parent type whose tupleset may name this type: the
//               tuples naming the object plainly (graph subjects (object, NO_REL)) on `tupleset` of an object of
//               `parent type` reach that object's `parent relation`
// A node of a (type, relation) whose index word is 0 leads nowhere.
//
// Scratch (kernel-wide, grown on demand, reused across calls): a "visited" record per symbol ([u8 stamp][B bytes
// of relation bits], B = ceil(R / 8)) stamped with the call's generation, so nothing is cleared between calls but
// one in 255 (the stamp wraps: every record is zeroed then). Bytes, not words: 2 bytes a symbol for a model of up
// to 8 relation names (was 8), which at 1M symbols is 2 MB of fresh memory for a first listing to touch, not 8; the
// stack of nodes to expand; the results (object symbols, in no particular order: list_objects_order in
// list-order.ts sorts them).
import { graphSubjectVector, symbolType, vecEntries, vecLength } from "../graph";
import { orderMemoryBytes } from "./list-order";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const NO_REL: u32 = 0xffffffff;

// Reverse program header (word offsets) and step fields.
// @ts-ignore: decorator
@inline const LIST_TYPES: usize = 0;
// @ts-ignore: decorator
@inline const LIST_RELATION_NAMES: usize = 1;
// @ts-ignore: decorator
@inline const LIST_HEADER: usize = 2;

// Visited records.
let visited: usize = 0;
let visitedCap: u32 = 0;
let recordBytes: u32 = 0;
let generation: u32 = 0;
// The stack of (object, relation) nodes to expand.
let stack: usize = 0;
let stackCap: u32 = 0;
let stackLen: u32 = 0;
// The results of the last call.
let results: usize = 0;
let resultsCap: u32 = 0;
let resultsLen: u32 = 0;
// The call's target.
let targetType: u32 = ABSENT;
let targetRelation: u32 = ABSENT;
// The call's reverse program: its index of steps and its dimensions.
let programIndex: usize = 0;
let programTypes: u32 = 0;
let programNames: u32 = 0;

/** Address of the last call's results (u32 object symbols; valid until the next call). */
export function list_objects_results(): usize {
  return results;
}

/** Bytes the listing holds: its scratch (visited records, stack, results) and the order (list-order.ts). */
export function list_objects_memory_bytes(): usize {
  return (
    <usize>visitedCap * recordBytes + ((<usize>stackCap * 2 + <usize>resultsCap) << 2) + orderMemoryBytes()
  );
}


/**
 * The objects of type `type` on which subject `subject` (or `wildcard`, its type's wildcard symbol; ABSENT for
 * none; `subject` ABSENT when never interned) has `relation`, over graph `g` with reverse program `block`: their
 * count; the symbols are at list_objects_results().
 */
export function list_objects(g: usize, block: usize, subject: u32, wildcard: u32, type: u32, relation: u32): u32 {
  const names = load<u32>(block + (LIST_RELATION_NAMES << 2));
  const types = load<u32>(block + (LIST_TYPES << 2));
  const bytes = 1 + ((names + 7) >> 3);
  if (bytes != recordBytes) {
    // Another program (a new layout): start over.
    if (visited != 0) heap.free(visited);
    visited = 0;
    visitedCap = 0;
    recordBytes = bytes;
  }
  generation++;
  if (generation > 255) {
    memory.fill(visited, 0, <usize>visitedCap * recordBytes);
    generation = 1;
  }
  targetType = type;
  targetRelation = relation;
  programIndex = block + (LIST_HEADER << 2);
  programTypes = types;
  programNames = names;
  stackLen = 0;
  resultsLen = 0;
  if (subject != ABSENT) seed(g, subject);
  if (wildcard != ABSENT) seed(g, wildcard);
  const index = block + (LIST_HEADER << 2);
  while (stackLen > 0) {
    stackLen--;
    const at = stack + ((<usize>stackLen) << 3);
    const object = load<u32>(at);
    const r = load<u32>(at, 4);
    const t = symbolType(object);
    if (t >= types || r >= names) continue;
    const offset = load<u32>(index + ((<usize>t * names + r) << 2));
    if (offset == 0) continue;
    let p = block + ((<usize>offset) << 2);
    const userset = load<u32>(p);
    const computed = load<u32>(p, 4);
    p += 8;
    for (let i: u32 = 0; i < computed; i++, p += 4) reach(object, load<u32>(p));
    const ttu = load<u32>(p);
    p += 4;
    if (ttu != 0) {
      const v = graphSubjectVector(g, object, NO_REL);
      const n = vecLength(v);
      if (n != 0) {
        const entries = vecEntries(v);
        for (let k: u32 = 0; k < n; k++) {
          const e = entries + ((<usize>k) << 3);
          const o = load<u32>(e);
          const tupleset = load<u32>(e, 4);
          let parentType: u32 = ABSENT;
          for (let i: u32 = 0; i < ttu; i++) {
            const step = p + <usize>i * 12;
            if (load<u32>(step, 8) != tupleset) continue;
            if (parentType == ABSENT) parentType = symbolType(o);
            if (load<u32>(step) == parentType) reach(o, load<u32>(step, 4));
          }
        }
      }
    }
    if (userset != 0) {
      const v = graphSubjectVector(g, object, r);
      const n = vecLength(v);
      if (n != 0) {
        const entries = vecEntries(v);
        for (let k: u32 = 0; k < n; k++) {
          const e = entries + ((<usize>k) << 3);
          reach(load<u32>(e), load<u32>(e, 4));
        }
      }
    }
  }
  return resultsLen;
}

/** Every node naming `subject` plainly (a tuple object#relation@subject) is reached. */
function seed(g: usize, subject: u32): void {
  const v = graphSubjectVector(g, subject, NO_REL);
  const n = vecLength(v);
  if (n == 0) return;
  const entries = vecEntries(v);
  for (let k: u32 = 0; k < n; k++) {
    const e = entries + ((<usize>k) << 3);
    reach(load<u32>(e), load<u32>(e, 4));
  }
}

/**
 * Marks node (object, relation) reached (once per call): a result at the target, and on the stack to expand when
 * the reverse program has a step for its (type, relation).
 */
function reach(object: u32, relation: u32): void {
  if (object >= visitedCap) growVisited(object);
  const record = visited + <usize>object * recordBytes;
  if (<u32>load<u8>(record) != generation) {
    store<u8>(record, <u8>generation);
    // A store a byte, not memory.fill: V8 makes that a call out of the module, which costs more than a byte or two.
    for (let b: u32 = 1; b < recordBytes; b++) store<u8>(record + b, 0);
  }
  const cell = record + 1 + <usize>(relation >> 3);
  const bit: u32 = 1 << (relation & 7);
  const bits = <u32>load<u8>(cell);
  if ((bits & bit) != 0) return;
  store<u8>(cell, <u8>(bits | bit));
  const t = symbolType(object);
  if (relation == targetRelation && t == targetType) {
    if (resultsLen == resultsCap) {
      const cap = resultsCap == 0 ? 1024 : resultsCap << 1;
      results = results == 0 ? heap.alloc((<usize>cap) << 2) : heap.realloc(results, (<usize>cap) << 2);
      resultsCap = cap;
    }
    store<u32>(results + ((<usize>resultsLen) << 2), object);
    resultsLen++;
  }
  // Only a node that leads somewhere goes on the stack: most of a listing's nodes are its results, which lead
  // nowhere in most programs (a file's view), and skipping them saves a push, a pop and a second type lookup each.
  if (t >= programTypes || relation >= programNames) return;
  if (load<u32>(programIndex + ((<usize>t * programNames + relation) << 2)) == 0) return;
  if (stackLen == stackCap) {
    const cap = stackCap == 0 ? 1024 : stackCap << 1;
    stack = stack == 0 ? heap.alloc((<usize>cap) << 3) : heap.realloc(stack, (<usize>cap) << 3);
    stackCap = cap;
  }
  const at = stack + ((<usize>stackLen) << 3);
  store<u32>(at, object);
  store<u32>(at, relation, 4);
  stackLen++;
}

/** Makes room for symbol `symbol`'s visited record (new records start unstamped). */
function growVisited(symbol: u32): void {
  let cap: u32 = visitedCap < 1024 ? 1024 : visitedCap;
  while (cap <= symbol) cap <<= 1;
  const next = heap.alloc(<usize>cap * recordBytes);
  memory.fill(next, 0, <usize>cap * recordBytes);
  if (visited != 0) {
    memory.copy(next, visited, <usize>visitedCap * recordBytes);
    heap.free(visited);
  }
  visited = next;
  visitedCap = cap;
}
