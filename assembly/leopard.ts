// The Leopard index (Zanzibar's name for it): for a recursive, directly assigned relation like
// `group#member: [user, group#member]`, the transitive closure "subject s is a member of group G, at nesting
// distance d" and each group's nesting height, so that the evaluator answers a membership question with one
// lookup instead of a walk down the group tree.
//
// It is used only where it gives the reference evaluator's answer exactly (the evaluator asks leopard_decide):
// - the program has no intersection or exclusion (so a node's TRUE/FALSE does not depend on the path it is
//   reached on), the relation's rewrite is `direct`, the subject is a plain object or a wildcard;
// - the relation's group graph is "clean": no userset subject of another relation or type (impure), no flagged
//   tuple (condition, expiry, cross-tenant), and no cycle;
// - TRUE when the subject (or its type's wildcard) is a member within the remaining depth budget; FALSE when it is
//   not a member and the group's height fits the budget (so the reference walk would not hit the depth limit);
//   otherwise the evaluator walks as before.
//
// Maintenance (called by the TypeScript side after each graph change on an indexed relation): additions propagate
// distances and heights upward (to the groups that contain the changed group, via the graph's reverse
// adjacency); a deletion recomputes exactly the changed group and the groups above it, bottom-up from their
// (unchanged) children. A change that makes the relation unclean marks it dirty; once clean again it is rebuilt
// (by leopard_rebuild, which the TypeScript side calls off the request path; questions walk until then), which
// is also how a cycle is left behind.
//
// Layout: header [dist memo3 (relation, group, subject) -> distance][records memo2 (group, relation) -> record
// [u32 height][usize members vector]][states memo2 (type, relation) -> state [u32 impure][u32 flagged]
// [u32 cyclic][u32 dirty]][marks memo2][u32 greatest height stored][u32 vector bytes].
export * from "./graph";
import {
  graph_tuples,
  graphCopyNodeKeys,
  graphNode,
  graphNodeCount,
  graphSubjectVector,
  nodeObjects,
  nodeUsersets,
  nodeWildcards,
  symbolType,
  vec_push,
  vec_remove,
  vecEntries,
  vecLength,
} from "./graph";
import {
  memo_clear,
  memo_copy_entries,
  memo_delete2,
  memo_delete3,
  memo_free,
  memo_get2,
  memo_get3,
  memo_memory_bytes,
  memo_new,
  memo_set3,
  memo_size,
} from "./intern";

import { put2 } from "./tables/put";
// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const KIND_USERSET: u32 = 2;

// @ts-ignore: decorator
@inline const L_DIST: usize = 0;
// @ts-ignore: decorator
@inline const L_RECORDS: usize = 4;
// @ts-ignore: decorator
@inline const L_STATES: usize = 8;
// @ts-ignore: decorator
@inline const L_MARKS: usize = 12;
// The greatest height ever stored in this index (never lowered): an upper bound on every group's height, so a
// question whose budget it fits needs no look-up of the group's own height (leopard_decide).
// @ts-ignore: decorator
@inline const L_MAX_HEIGHT: usize = 16;
// Same offset as the graph's vector-byte counter: vec_push/vec_remove account there.
// @ts-ignore: decorator
@inline const L_VECTOR_BYTES: usize = 20;
// @ts-ignore: decorator
@inline const L_HEADER: usize = 24;

// @ts-ignore: decorator
@inline const R_HEIGHT: usize = 0;
// @ts-ignore: decorator
@inline const R_MEMBERS: usize = 4;
// @ts-ignore: decorator
@inline const R_SIZE: usize = 8;

// @ts-ignore: decorator
@inline const S_IMPURE: usize = 0;
// @ts-ignore: decorator
@inline const S_FLAGGED: usize = 4;
// @ts-ignore: decorator
@inline const S_CYCLIC: usize = 8;
// @ts-ignore: decorator
@inline const S_DIRTY: usize = 12;
// The closure passed its bound (closureBound): the relation is not indexed for the rest of the index's life (its
// records are dropped, no maintenance runs, questions walk).
// @ts-ignore: decorator
@inline const S_OVERSIZED: usize = 16;
// @ts-ignore: decorator
@inline const S_SIZE: usize = 20;

// The most (relation, group, member) distances an index keeps: CLOSURE_PER_TUPLE a tuple of the graph, at least
// CLOSURE_MIN. The closure of a chain of n nested groups with a member each is n²/2 distances: a tenant writing a
// chain of 3,000 groups (6,000 tuples) made it 4.5M entries and ~450 MB, and past the distance table's hard limit
// (~25M) a member's distance was silently not stored, so decide answered FALSE for a member. Past the bound the
// relation is given up (S_OVERSIZED) and its questions are walked, as for an impure relation. Nested teams of
// ordinary depth stay far below it (the peer workload: ~1 distance a tuple).
// @ts-ignore: decorator
@inline const CLOSURE_PER_TUPLE: u32 = 8;
// @ts-ignore: decorator
@inline const CLOSURE_MIN: u32 = 1 << 20;
/** The bound for the call under way (set by each entry point from its graph), and whether it was reached. */
let closureCap: u32 = CLOSURE_MIN;
let overflowed = false;

// Groups one tuple's maintenance may visit (the cycle check's walk down, the heights' and a delete's walks up)
// before it stops and leaves the relation to a rebuild (dirty: questions walk until it runs, off the request path,
// in O(groups + links)). Each walk is linear in the chain it follows, so a chain of n nested groups written from
// the bottom up cost O(n) a tuple and O(n²) in all: 5.9 s of writes for a chain of 20,000. With the bound a tuple
// costs at most this many steps, and the ones after it, while the relation waits for its rebuild, a counter each.
// A group containing more than this many groups (nested) makes its writes wait for a rebuild too: questions walk
// until writes settle.
// @ts-ignore: decorator
@inline const WALK_LIMIT: u32 = 1 << 12;
/** A walk passed WALK_LIMIT in the call under way (its result is unknown). */
let walkedTooFar = false;

function closureBound(g: usize): u32 {
  const tuples = <u64>graph_tuples(g) * CLOSURE_PER_TUPLE;
  return tuples > <u64>CLOSURE_MIN ? <u32>min<u64>(tuples, 0xffffffff) : CLOSURE_MIN;
}

// Membership writes done by maintenance over the kernel's life (for the fan-out cost report).
let updates: u64 = 0;

export function leopard_new(seedLo: u32, seedHi: u32): usize {
  const lp = heap.alloc(L_HEADER);
  memory.fill(lp, 0, L_HEADER);
  store<usize>(lp, memo_new(3, seedLo, seedHi), L_DIST);
  store<usize>(lp, memo_new(2, seedLo ^ 0x27d4eb2f, seedHi), L_RECORDS);
  store<usize>(lp, memo_new(2, seedLo ^ 0x165667b1, seedHi), L_STATES);
  store<usize>(lp, memo_new(2, seedLo ^ 0x61c88647, seedHi), L_MARKS);
  return lp;
}

export function leopard_free(lp: usize): void {
  if (lastIndex == lp) lastIndex = 0;
  freeRecords(load<usize>(lp, L_RECORDS), true);
  freeRecords(load<usize>(lp, L_STATES), false);
  memo_free(load<usize>(lp, L_RECORDS));
  memo_free(load<usize>(lp, L_STATES));
  memo_free(load<usize>(lp, L_DIST));
  memo_free(load<usize>(lp, L_MARKS));
  heap.free(lp);
}

function freeRecords(table: usize, records: bool): void {
  const n = memo_size(table);
  if (n == 0) return;
  const keys = heap.alloc(<usize>n * 8);
  const values = heap.alloc(<usize>n * 4);
  memo_copy_entries(table, keys, values);
  for (let i: u32 = 0; i < n; i++) {
    const p = <usize>load<u32>(values + ((<usize>i) << 2));
    if (records) {
      const members = load<usize>(p, R_MEMBERS);
      if (members != 0) heap.free(members);
    }
    heap.free(p);
  }
  heap.free(keys);
  heap.free(values);
}

export function leopard_updates(): u64 {
  return updates;
}

export function leopard_entries(lp: usize): u32 {
  return memo_size(load<usize>(lp, L_DIST));
}

export function leopard_memory_bytes(lp: usize): usize {
  return (
    L_HEADER +
    memo_memory_bytes(load<usize>(lp, L_DIST)) +
    memo_memory_bytes(load<usize>(lp, L_RECORDS)) +
    memo_memory_bytes(load<usize>(lp, L_STATES)) +
    <usize>memo_size(load<usize>(lp, L_RECORDS)) * R_SIZE +
    load<u32>(lp, L_VECTOR_BYTES)
  );
}

function stateFor(lp: usize, type: u32, relation: u32): usize {
  const states = load<usize>(lp, L_STATES);
  const p = memo_get2(states, type, relation);
  if (p != ABSENT) return <usize>p;
  const s = heap.alloc(S_SIZE);
  memory.fill(s, 0, S_SIZE);
  put2(states, type, relation, <u32>s);
  return s;
}

// @ts-ignore: decorator
@inline
function clean(state: usize): bool {
  return load<u32>(state, S_IMPURE) == 0 && load<u32>(state, S_FLAGGED) == 0 && load<u32>(state, S_CYCLIC) == 0;
}

function recordFor(lp: usize, group: u32, relation: u32): usize {
  const records = load<usize>(lp, L_RECORDS);
  const p = memo_get2(records, group, relation);
  if (p != ABSENT) return <usize>p;
  const r = heap.alloc(R_SIZE);
  memory.fill(r, 0, R_SIZE);
  put2(records, group, relation, <u32>r);
  return r;
}

// @ts-ignore: decorator
@inline
function heightOf(lp: usize, group: u32, relation: u32): u32 {
  const p = memo_get2(load<usize>(lp, L_RECORDS), group, relation);
  return p == ABSENT ? 0 : load<u32>(<usize>p, R_HEIGHT);
}

/** Sets a group record's height, raising the index's bound on every height (L_MAX_HEIGHT) to cover it. */
// @ts-ignore: decorator
@inline
function storeHeight(lp: usize, record: usize, height: u32): void {
  store<u32>(record, height, R_HEIGHT);
  if (height > load<u32>(lp, L_MAX_HEIGHT)) store<u32>(lp, height, L_MAX_HEIGHT);
}

/** Lowers dist(group, member) to `d`; returns whether it changed. */
function setMin(lp: usize, relation: u32, group: u32, member: u32, d: u32): bool {
  const dist = load<usize>(lp, L_DIST);
  const current = memo_get3(dist, relation, group, member);
  if (current != ABSENT && current <= d) return false;
  // A new distance past the bound, or one the table cannot take: nothing stored, and the caller gives the
  // relation up (overflowed), so no question reads the incomplete closure.
  if (current == ABSENT && (overflowed || memo_size(dist) >= closureCap)) {
    overflowed = true;
    return false;
  }
  if (memo_set3(dist, relation, group, member, d) < 0) {
    overflowed = true;
    return false;
  }
  updates++;
  if (current == ABSENT) {
    const r = recordFor(lp, group, relation);
    store<usize>(r, vec_push(lp, load<usize>(r, R_MEMBERS), 1, member, 0), R_MEMBERS);
  }
  return true;
}

/** Calls back for each group that directly contains `group` (userset group#relation on a same-type group). */
// The parents are read from the graph's reverse adjacency: (parent, relation) entries of subject (group, relation).
function parentsOf(g: usize, group: u32, relation: u32, type: u32, out: usize): u32 {
  // Writes parent symbols to the scratch vector `out` (a vector pointer holder), returns the new vector.
  const v = graphSubjectVector(g, group, relation);
  const n = vecLength(v);
  let result: usize = load<usize>(out);
  if (result != 0) store<u32>(result, 0); // reuse: length 0
  const entries: usize = n == 0 ? <usize>0 : vecEntries(v);
  for (let i: u32 = 0; i < n; i++) {
    const at = entries + ((<usize>i) << 3);
    const parent = load<u32>(at);
    if (load<u32>(at, 4) != relation || symbolType(parent) != type) continue;
    result = vec_push(scratchOwner, result, 1, parent, 0);
  }
  store<usize>(out, result);
  return vecLength(result);
}

// A throwaway vector-byte counter for scratch vectors (they are not the index's memory).
const scratchOwner: usize = memory.data(24, 8);

/** Propagates dist(start, member) = d upward. Worklist of (group, distance). */
function propagateMember(g: usize, lp: usize, type: u32, relation: u32, start: u32, member: u32, d: u32): void {
  if (!setMin(lp, relation, start, member, d)) return;
  let work: usize = 0;
  work = vec_push(scratchOwner, work, 2, start, d);
  const holder = memory.data(4, 4);
  while (vecLength(work) > 0) {
    const n = vecLength(work);
    const at = vecEntries(work) + (<usize>(n - 1) << 3);
    const group = load<u32>(at);
    const dist = load<u32>(at, 4);
    store<u32>(work, n - 1);
    const count = parentsOf(g, group, relation, type, holder);
    const parents = load<usize>(holder);
    for (let i: u32 = 0; i < count; i++) {
      const parent = load<u32>(vecEntries(parents) + ((<usize>i) << 2));
      if (setMin(lp, relation, parent, member, dist + 1)) work = vec_push(scratchOwner, work, 2, parent, dist + 1);
    }
  }
  heap.free(work);
}

/** Raises height(start) to `h` and propagates upward. */
function propagateHeight(g: usize, lp: usize, type: u32, relation: u32, start: u32, h: u32): void {
  const r = recordFor(lp, start, relation);
  if (load<u32>(r, R_HEIGHT) >= h) return;
  storeHeight(lp, r, h);
  let work: usize = vec_push(scratchOwner, 0, 1, start, 0);
  const holder = memory.data(4, 4);
  let steps: u32 = 0;
  while (vecLength(work) > 0) {
    if (++steps > WALK_LIMIT) {
      walkedTooFar = true;
      break;
    }
    const n = vecLength(work);
    const group = load<u32>(vecEntries(work) + (<usize>(n - 1) << 2));
    store<u32>(work, n - 1);
    const height = heightOf(lp, group, relation);
    const count = parentsOf(g, group, relation, type, holder);
    const parents = load<usize>(holder);
    for (let i: u32 = 0; i < count; i++) {
      const parent = load<u32>(vecEntries(parents) + ((<usize>i) << 2));
      const pr = recordFor(lp, parent, relation);
      if (load<u32>(pr, R_HEIGHT) < height + 1) {
        storeHeight(lp, pr, height + 1);
        work = vec_push(scratchOwner, work, 1, parent, 0);
      }
    }
  }
  heap.free(work);
}

/** Whether `target` is reachable downward from `from` through same-relation usersets (DFS with marks). */
function reaches(g: usize, lp: usize, relation: u32, from: u32, target: u32): bool {
  const marks = load<usize>(lp, L_MARKS);
  memo_clear(marks);
  let work: usize = vec_push(scratchOwner, 0, 1, from, 0);
  put2(marks, from, 0, 1);
  let found = false;
  let steps: u32 = 0;
  while (vecLength(work) > 0 && !found) {
    if (++steps > WALK_LIMIT) {
      walkedTooFar = true;
      break;
    }
    const n = vecLength(work);
    const group = load<u32>(vecEntries(work) + (<usize>(n - 1) << 2));
    store<u32>(work, n - 1);
    if (group == target) {
      found = true;
      break;
    }
    const node = graphNode(g, group, relation);
    if (node == 0) continue;
    const children = nodeUsersets(node);
    const count = vecLength(children);
    for (let i: u32 = 0; i < count; i++) {
      const at = vecEntries(children) + ((<usize>i) << 3);
      const child = load<u32>(at);
      if (load<u32>(at, 4) != relation || memo_get2(marks, child, 0) != ABSENT) continue;
      put2(marks, child, 0, 1);
      work = vec_push(scratchOwner, work, 1, child, 0);
    }
  }
  heap.free(work);
  return found;
}

/** Forgets a group's members and height. */
function clearRecord(lp: usize, group: u32, relation: u32): void {
  const records = load<usize>(lp, L_RECORDS);
  const p = memo_get2(records, group, relation);
  if (p == ABSENT) return;
  const r = <usize>p;
  const members = load<usize>(r, R_MEMBERS);
  const n = vecLength(members);
  const dist = load<usize>(lp, L_DIST);
  for (let i: u32 = 0; i < n; i++) memo_delete3(dist, relation, group, load<u32>(vecEntries(members) + ((<usize>i) << 2)));
  if (members != 0) {
    store<u32>(lp, load<u32>(lp, L_VECTOR_BYTES) - (8 + (load<u32>(members, 4) << 2)), L_VECTOR_BYTES);
    heap.free(members);
  }
  memo_delete2(records, group, relation);
  heap.free(r);
}

// Marks during recompute: 1 = in progress, 2 = done. Groups not in the affected set are "done" already.
/**
 * Recomputes a group from its children, children first. Returns false on a cycle. Iterative (a stack of
 * (group, next child) pairs, not recursion): a chain of 20,000 nested groups overflowed the WASM stack, and the
 * RangeError escaped the rebuild's timer and ended the process.
 */
function recompute(g: usize, lp: usize, relation: u32, root: u32): bool {
  const marks = load<usize>(lp, L_MARKS);
  const rootMark = memo_get2(marks, root, 0);
  if (rootMark == 2 || rootMark == ABSENT) return true;
  if (rootMark == 1) return false;
  enter(lp, marks, relation, root);
  let stack: usize = vec_push(scratchOwner, 0, 2, root, 0);
  let ok = true;
  while (vecLength(stack) > 0) {
    const top = vecEntries(stack) + (<usize>(vecLength(stack) - 1) << 3);
    const group = load<u32>(top);
    let next = load<u32>(top, 4);
    const node = graphNode(g, group, relation);
    const children: usize = node == 0 ? 0 : nodeUsersets(node);
    const count = vecLength(children);
    // The next child still to recompute (mark 3), if any: descend into it.
    let child: u32 = ABSENT;
    while (next < count) {
      const c = load<u32>(vecEntries(children) + ((<usize>next) << 3));
      next++;
      const mark = memo_get2(marks, c, 0);
      if (mark == 2 || mark == ABSENT) continue;
      if (mark == 1) {
        ok = false;
        break;
      }
      child = c;
      break;
    }
    if (!ok) break;
    store<u32>(top, next, 4);
    if (child != ABSENT) {
      enter(lp, marks, relation, child);
      stack = vec_push(scratchOwner, stack, 2, child, 0);
      continue;
    }
    finish(lp, marks, relation, group, node);
    store<u32>(stack, vecLength(stack) - 1);
  }
  heap.free(stack);
  return ok;
}

/** recompute's entry into a group: in progress, its record forgotten. */
function enter(lp: usize, marks: usize, relation: u32, group: u32): void {
  put2(marks, group, 0, 1);
  clearRecord(lp, group, relation);
}

/** recompute's exit from a group whose children are all done: its height and members from theirs, then done. */
function finish(lp: usize, marks: usize, relation: u32, group: u32, node: usize): void {
  if (node != 0) {
    const children = nodeUsersets(node);
    const count = vecLength(children);
    let height: u32 = 0;
    for (let i: u32 = 0; i < count; i++) {
      const child = load<u32>(vecEntries(children) + ((<usize>i) << 3));
      height = max<u32>(height, heightOf(lp, child, relation) + 1);
      const cp = memo_get2(load<usize>(lp, L_RECORDS), child, relation);
      if (cp == ABSENT) continue;
      const members = load<usize>(<usize>cp, R_MEMBERS);
      const n = vecLength(members);
      const dist = load<usize>(lp, L_DIST);
      for (let j: u32 = 0; j < n; j++) {
        const m = load<u32>(vecEntries(members) + ((<usize>j) << 2));
        setMin(lp, relation, group, m, memo_get3(dist, relation, child, m) + 1);
      }
    }
    if (height > 0) storeHeight(lp, recordFor(lp, group, relation), height);
    const objects = nodeObjects(node);
    for (let i: u32 = 0; i < vecLength(objects); i++) {
      setMin(lp, relation, group, load<u32>(vecEntries(objects) + ((<usize>i) << 2)), 0);
    }
    const wildcards = nodeWildcards(node);
    for (let i: u32 = 0; i < vecLength(wildcards); i++) {
      setMin(lp, relation, group, load<u32>(vecEntries(wildcards) + ((<usize>i) << 2)), 0);
    }
  }
  put2(marks, group, 0, 2);
}

/** Marks `group` and every group above it as affected (mark 3). */
function markAffected(g: usize, lp: usize, type: u32, relation: u32, group: u32): void {
  const marks = load<usize>(lp, L_MARKS);
  memo_clear(marks);
  put2(marks, group, 0, 3);
  let work: usize = vec_push(scratchOwner, 0, 1, group, 0);
  const holder = memory.data(4, 4);
  let steps: u32 = 0;
  while (vecLength(work) > 0) {
    if (++steps > WALK_LIMIT) {
      walkedTooFar = true;
      break;
    }
    const n = vecLength(work);
    const x = load<u32>(vecEntries(work) + (<usize>(n - 1) << 2));
    store<u32>(work, n - 1);
    const count = parentsOf(g, x, relation, type, holder);
    const parents = load<usize>(holder);
    for (let i: u32 = 0; i < count; i++) {
      const parent = load<u32>(vecEntries(parents) + ((<usize>i) << 2));
      if (memo_get2(marks, parent, 0) != ABSENT) continue;
      put2(marks, parent, 0, 3);
      work = vec_push(scratchOwner, work, 1, parent, 0);
    }
  }
  heap.free(work);
}

/** Recomputes every group marked affected. Returns false on a cycle. */
function recomputeMarked(g: usize, lp: usize, relation: u32): bool {
  const marks = load<usize>(lp, L_MARKS);
  const n = memo_size(marks);
  if (n == 0) return true;
  const keys = heap.alloc(<usize>n * 8);
  const values = heap.alloc(<usize>n * 4);
  memo_copy_entries(marks, keys, values);
  let ok = true;
  for (let i: u32 = 0; i < n && ok; i++) ok = recompute(g, lp, relation, load<u32>(keys + ((<usize>i) << 3)));
  heap.free(keys);
  heap.free(values);
  return ok;
}

/** Forgets every record (members, distances, height) the index holds for the relation's groups. */
function forgetRelation(lp: usize, type: u32, relation: u32): void {
  const records = load<usize>(lp, L_RECORDS);
  const n = memo_size(records);
  if (n == 0) return;
  const keys = heap.alloc(<usize>n * 8);
  const values = heap.alloc(<usize>n * 4);
  memo_copy_entries(records, keys, values);
  for (let i: u32 = 0; i < n; i++) {
    const group = load<u32>(keys + ((<usize>i) << 3));
    if (load<u32>(keys + ((<usize>i) << 3), 4) == relation && symbolType(group) == type) {
      clearRecord(lp, group, relation);
    }
  }
  heap.free(keys);
  heap.free(values);
}

/**
 * Gives the relation up once its closure passed the bound (setMin set `overflowed`): its records are dropped (the
 * memory they held returned), no maintenance or rebuild runs for it again, and leopard_decide leaves its questions
 * to the walk. For the index's life: the graph that owns it is rebuilt from scratch only after lost changes.
 */
function abandon(lp: usize, type: u32, relation: u32, state: usize): void {
  overflowed = false;
  forgetRelation(lp, type, relation);
  store<u32>(state, 1, S_OVERSIZED);
  store<u32>(state, 0, S_DIRTY);
}

/** Rebuilds a relation's index from the graph (every group of `type` with the relation). */
function rebuild(g: usize, lp: usize, type: u32, relation: u32, state: usize): void {
  forgetRelation(lp, type, relation);
  // Mark every group of the relation affected, then recompute them all.
  const marks = load<usize>(lp, L_MARKS);
  memo_clear(marks);
  const n = graphNodeCount(g);
  if (n > 0) {
    const keys = heap.alloc(<usize>n * 8);
    graphCopyNodeKeys(g, keys);
    for (let i: u32 = 0; i < n; i++) {
      const group = load<u32>(keys + ((<usize>i) << 3));
      if (load<u32>(keys + ((<usize>i) << 3), 4) == relation && symbolType(group) == type) {
        put2(marks, group, 0, 3);
      }
    }
    heap.free(keys);
  }
  const ok = recomputeMarked(g, lp, relation);
  store<u32>(state, ok ? 0 : 1, S_CYCLIC);
  store<u32>(state, 0, S_DIRTY);
  if (overflowed) abandon(lp, type, relation, state);
}

/**
 * Maintenance after the graph added a tuple on an indexed relation (type, relation): group `group`, subject
 * (subject, subjectRelation) of `kind` (0 object, 1 wildcard, 2 userset), `flagged` as passed to graph_add.
 */
export function leopard_on_add(
  g: usize,
  lp: usize,
  type: u32,
  relation: u32,
  group: u32,
  subject: u32,
  subjectRelation: u32,
  kind: u32,
  flagged: u32,
): void {
  const state = stateFor(lp, type, relation);
  if (load<u32>(state, S_OVERSIZED) != 0) return;
  closureCap = closureBound(g);
  overflowed = false;
  walkedTooFar = false;
  if (flagged != 0) {
    store<u32>(state, load<u32>(state, S_FLAGGED) + 1, S_FLAGGED);
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  const pure = kind != KIND_USERSET || (subjectRelation == relation && symbolType(subject) == type);
  if (!pure) {
    store<u32>(state, load<u32>(state, S_IMPURE) + 1, S_IMPURE);
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  if (!clean(state) || load<u32>(state, S_DIRTY) != 0) {
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  if (kind != KIND_USERSET) {
    propagateMember(g, lp, type, relation, group, subject, 0);
    if (overflowed) abandon(lp, type, relation, state);
    return;
  }
  // group ∋ subject#relation: a cycle if the subgroup reaches the group.
  if (reaches(g, lp, relation, subject, group)) {
    store<u32>(state, 1, S_CYCLIC);
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  if (walkedTooFar) {
    // Whether the link closes a cycle is not known: the rebuild finds out.
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  const sub = memo_get2(load<usize>(lp, L_RECORDS), subject, relation);
  if (sub != ABSENT) {
    const members = load<usize>(<usize>sub, R_MEMBERS);
    const n = vecLength(members);
    // Copy the member list first: propagation may grow (move) vectors.
    const copy = heap.alloc(<usize>max<u32>(n, 1) * 8);
    const dist = load<usize>(lp, L_DIST);
    for (let i: u32 = 0; i < n; i++) {
      const m = load<u32>(vecEntries(members) + ((<usize>i) << 2));
      store<u32>(copy + ((<usize>i) << 3), m);
      store<u32>(copy + ((<usize>i) << 3), memo_get3(dist, relation, subject, m), 4);
    }
    for (let i: u32 = 0; i < n; i++) {
      const at = copy + ((<usize>i) << 3);
      propagateMember(g, lp, type, relation, group, load<u32>(at), load<u32>(at, 4) + 1);
    }
    heap.free(copy);
  }
  propagateHeight(g, lp, type, relation, group, heightOf(lp, subject, relation) + 1);
  if (overflowed) abandon(lp, type, relation, state);
  // Heights above the walk's end were not raised: the rebuild sets them.
  else if (walkedTooFar) store<u32>(state, 1, S_DIRTY);
}

/** Maintenance after the graph removed a tuple on an indexed relation (same arguments as leopard_on_add). */
export function leopard_on_remove(
  g: usize,
  lp: usize,
  type: u32,
  relation: u32,
  group: u32,
  subject: u32,
  subjectRelation: u32,
  kind: u32,
  flagged: u32,
): void {
  const state = stateFor(lp, type, relation);
  if (load<u32>(state, S_OVERSIZED) != 0) return;
  closureCap = closureBound(g);
  overflowed = false;
  walkedTooFar = false;
  if (flagged != 0) {
    store<u32>(state, load<u32>(state, S_FLAGGED) - 1, S_FLAGGED);
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  const pure = kind != KIND_USERSET || (subjectRelation == relation && symbolType(subject) == type);
  if (!pure) {
    store<u32>(state, load<u32>(state, S_IMPURE) - 1, S_IMPURE);
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  if (load<u32>(state, S_CYCLIC) != 0) {
    // Removing a group edge may break the cycle: rebuild (and re-check) at the next question.
    if (kind == KIND_USERSET) store<u32>(state, 0, S_CYCLIC);
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  if (!clean(state) || load<u32>(state, S_DIRTY) != 0) {
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  markAffected(g, lp, type, relation, group);
  if (walkedTooFar) {
    // More groups above it than one delete may recompute: the rebuild does it.
    store<u32>(state, 1, S_DIRTY);
    return;
  }
  if (!recomputeMarked(g, lp, relation)) {
    store<u32>(state, 1, S_CYCLIC);
    store<u32>(state, 1, S_DIRTY);
  }
  if (overflowed) abandon(lp, type, relation, state);
}

// The state leopard_decide read last: a check asks about one relation many times (each group a folder names),
// and a state, once made, stays at its address until leopard_free (which forgets this). Only a cache of the
// states memo: the flags are read from the state itself at every question.
let lastIndex: usize = 0;
let lastType: u32 = 0;
let lastRelation: u32 = 0;
let lastState: usize = 0;

/**
 * The evaluator's question: is `subject` (or `wildcard`, ABSENT if none) a member of group#relation within
 * `budget` more nesting levels? 1 TRUE, 0 FALSE, -1 undecided (walk instead; also while the relation waits for
 * its rebuild).
 * `nodes` is unused (the graph's node index is read through `g`); kept so the export's signature stays.
 */
export function leopard_decide(
  g: usize,
  lp: usize,
  nodes: usize,
  type: u32,
  relation: u32,
  group: u32,
  subject: u32,
  wildcard: u32,
  budget: u32,
): i32 {
  let state: usize = 0;
  if (lastIndex == lp && lastType == type && lastRelation == relation) {
    state = lastState;
  } else {
    const sp = memo_get2(load<usize>(lp, L_STATES), type, relation);
    if (sp != ABSENT) {
      state = <usize>sp;
      lastIndex = lp;
      lastType = type;
      lastRelation = relation;
      lastState = state;
    }
  }
  if (state != 0) {
    if (load<u32>(state, S_IMPURE) != 0 || load<u32>(state, S_FLAGGED) != 0) return -1;
    if (load<u32>(state, S_OVERSIZED) != 0) return -1;
    // A rebuild is never run inside a question (it scans every node of the graph: ~4 ms at 100k tuples); the
    // TypeScript side runs leopard_rebuild after the writes, and meanwhile the walk answers.
    if (load<u32>(state, S_DIRTY) != 0 || load<u32>(state, S_CYCLIC) != 0) return -1;
  }
  const dist = load<usize>(lp, L_DIST);
  const d1 = memo_get3(dist, relation, group, subject);
  if (d1 != ABSENT && d1 <= budget) return 1;
  if (wildcard != ABSENT) {
    const d2 = memo_get3(dist, relation, group, wildcard);
    if (d2 != ABSENT && d2 <= budget) return 1;
  }
  if (d1 == ABSENT && (load<u32>(lp, L_MAX_HEIGHT) <= budget || heightOf(lp, group, relation) <= budget)) {
    if (wildcard == ABSENT || memo_get3(dist, relation, group, wildcard) == ABSENT) return 0;
  }
  return -1;
}

/**
 * Rebuilds the relation's index when it is dirty and clean (no impure or flagged tuple): called by the TypeScript
 * side off the request path (after a bulk run, or once writes settle). 1 when it rebuilt, else 0.
 */
export function leopard_rebuild(g: usize, lp: usize, type: u32, relation: u32): u32 {
  const sp = memo_get2(load<usize>(lp, L_STATES), type, relation);
  if (sp == ABSENT) return 0;
  const state = <usize>sp;
  if (load<u32>(state, S_DIRTY) == 0 || load<u32>(state, S_OVERSIZED) != 0) return 0;
  if (load<u32>(state, S_IMPURE) != 0 || load<u32>(state, S_FLAGGED) != 0) return 0;
  closureCap = closureBound(g);
  overflowed = false;
  rebuild(g, lp, type, relation, state);
  return 1;
}

/** Marks a relation for a rebuild (before a bulk load: the hooks then only count). */
export function leopard_mark_dirty(lp: usize, type: u32, relation: u32): void {
  const state = stateFor(lp, type, relation);
  if (load<u32>(state, S_OVERSIZED) == 0) store<u32>(state, 1, S_DIRTY);
}

/** Test hooks: the stored distance (ABSENT if not a member) and height of a group. */
export function leopard_distance(lp: usize, relation: u32, group: u32, member: u32): u32 {
  return memo_get3(load<usize>(lp, L_DIST), relation, group, member);
}

export function leopard_height(lp: usize, relation: u32, group: u32): u32 {
  return heightOf(lp, group, relation);
}

/** State flags of a relation: bit 0 impure, 1 flagged, 2 cyclic, 3 dirty, 4 oversized (given up). */
export function leopard_state(lp: usize, type: u32, relation: u32): u32 {
  const sp = memo_get2(load<usize>(lp, L_STATES), type, relation);
  if (sp == ABSENT) return 0;
  const s = <usize>sp;
  return (
    (load<u32>(s, S_IMPURE) != 0 ? 1 : 0) |
    (load<u32>(s, S_FLAGGED) != 0 ? 2 : 0) |
    (load<u32>(s, S_CYCLIC) != 0 ? 4 : 0) |
    (load<u32>(s, S_DIRTY) != 0 ? 8 : 0) |
    (load<u32>(s, S_OVERSIZED) != 0 ? 16 : 0)
  );
}
