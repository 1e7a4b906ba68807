// Object plans (graph/plans.ts keeps them): a node's rewrite compiled against the graph, so that every subject
// reaching the node replays it instead of reading the node's object again. Plans are for the nodes a check
// reaches from another object (a parent, a userset: the subproblems checks share), not for the check's own node
// (evaluate.ts `resolve` says why); a plan is built at the second visit (a node reached once costs one marker).
//
// A plan is evaluated by the same interpreter as the bytecode (evaluate.ts `evaluate`), so it shares the
// bytecode's COMPUTED, UNION, INTERSECTION, EXCLUSION and NONE ops and adds its own, numbered after them, for what
// `evaluate` would read from the graph, read in at build time:
//   OP_NONE   [6, 2]                            a relation rewriting to nothing, an absent node
//   OP_UNION / OP_INTERSECTION / OP_EXCLUSION [3|4|5, n, children...]
//   OP_COMPUTED [1, 3, relation]                resolve(object, relation), left to run as the bytecode's (not
//                                               read in: a direct relation holding usersets or flagged tuples, a
//                                               Leopard relation, a computed cycle, a chain inlined too deep)
//   P_ENTER   [8, n, relation, rid, child]      resolve of a computed relation of the object, its rewrite inlined:
//                                               the same checks in the same order (depth, cycle on the path, the
//                                               userset-itself rule, reachability, the per-check memo)
//   P_SELF    [9, 3, relation]                  a computed relation that is absent or has no tuple: only the
//                                               userset-itself rule can make it TRUE (it is never on the path)
//   P_LEAF    [10, n, relation, rid, count, subjects...]  a direct relation whose tuples name no userset: TRUE for
//                                               the userset itself, FALSE when unreachable, else its edges
//   P_DIRECT  [11, n, count, subjects..., usersets, (subject, relation, type)...]  OP_DIRECT on the plan's node
//   P_ABORT   [12, 2]                           a node with a flagged tuple: the check goes to the reference
//   P_TTU     [13, n, computed, count, (parent, type)...]  OP_TTU (parents lacking `computed` left out)
// Edge lists (the plain-object and wildcard subjects of a node) are inline up to INLINE_EDGES, else count is
// HASHED and the edge table is asked, as OP_DIRECT does. Plans are at most MAX_PLAN_WORDS words.
import { PLAN_NONE, PLAN_SEEN, planGet, planSet } from "../graph/plans";
import {
  graphEpochs,
  graphNode,
  graphPlanTable,
  nodeFlagged,
  nodeObjects,
  nodeUsersets,
  nodeWildcards,
  symbolType,
  vecEntries,
  vecLength,
} from "../graph";
import {
  OP_COMPUTED,
  OP_DIRECT,
  OP_EXCLUSION,
  OP_INTERSECTION,
  OP_NONE,
  OP_TTU,
  OP_UNION,
  relationIndex,
  rewriteOf,
} from "./program";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline export const P_ENTER: u32 = 8;
// @ts-ignore: decorator
@inline export const P_SELF: u32 = 9;
// @ts-ignore: decorator
@inline export const P_LEAF: u32 = 10;
// @ts-ignore: decorator
@inline export const P_DIRECT: u32 = 11;
// @ts-ignore: decorator
@inline export const P_ABORT: u32 = 12;
// @ts-ignore: decorator
@inline export const P_TTU: u32 = 13;
// @ts-ignore: decorator
@inline export const HASHED: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const INLINE_EDGES: u32 = 8;
// @ts-ignore: decorator
@inline const MAX_PLAN_WORDS: u32 = 512;
// Relations inlined into one another at most (deeper computed chains are left as OP_COMPUTED).
// @ts-ignore: decorator
@inline const MAX_INLINE: u32 = 16;

let planHits: u64 = 0;
let plansBuilt: u64 = 0;
// The graph the plan is built against.
let graph: usize = 0;
// The plan being built: words at `pb` (capacity MAX_PLAN_WORDS), its length, and whether it overflowed.
let pb: usize = 0;
let pbLen: u32 = 0;
let pbOver: bool = false;
// Relations inlined on the way to the one being built (a computed cycle is left as OP_COMPUTED).
let chain: usize = 0;
let chainLen: u32 = 0;

export function eval_plan_hits(): u64 {
  return planHits;
}

export function eval_plans_built(): u64 {
  return plansBuilt;
}

/**
 * The address of the plan of node (object, relation) of graph `g`, whose rewrite is at `pc`; 0 when it has none
 * (asked once so far, or too large). Its first word is its size in bytes, its ops follow.
 */
export function planOf(g: usize, object: u32, type: u32, relation: u32, pc: usize): usize {
  const table = graphPlanTable(g);
  const epochs = graphEpochs(g);
  const entry = planGet(table, epochs, object, relation);
  if (entry == ABSENT) {
    planSet(table, epochs, object, relation, PLAN_SEEN);
    return 0;
  }
  if (entry == PLAN_NONE) return 0;
  if (entry != PLAN_SEEN) {
    planHits++;
    return <usize>entry;
  }
  if (pb == 0) {
    pb = heap.alloc(<usize>MAX_PLAN_WORDS << 2);
    chain = heap.alloc(<usize>MAX_INLINE << 2);
  }
  graph = g;
  pbLen = 0;
  pbOver = false;
  chainLen = 1;
  store<u32>(chain, relation);
  buildRewrite(pc, object, type, relation);
  if (pbOver) {
    planSet(table, epochs, object, relation, PLAN_NONE);
    return 0;
  }
  const bytes: usize = 4 + ((<usize>pbLen) << 2);
  const plan = heap.alloc(bytes);
  store<u32>(plan, <u32>bytes);
  memory.copy(plan + 4, pb, (<usize>pbLen) << 2);
  planSet(table, epochs, object, relation, <u32>plan);
  plansBuilt++;
  return plan;
}

// @ts-ignore: decorator
@inline
function emit(word: u32): void {
  if (pbLen < MAX_PLAN_WORDS) store<u32>(pb + ((<usize>pbLen) << 2), word);
  else pbOver = true;
  pbLen++;
}

/** An op of two words: [op, 2]. */
// @ts-ignore: decorator
@inline
function emitBare(op: u32): void {
  emit(op);
  emit(2);
}

/** An op of three words: [op, 3, relation]. */
// @ts-ignore: decorator
@inline
function emitRelation(op: u32, relation: u32): void {
  emit(op);
  emit(3);
  emit(relation);
}

/** Writes the op's length (from `start` to the current end) into its second word. */
// @ts-ignore: decorator
@inline
function close(start: u32): void {
  if (start + 1 < MAX_PLAN_WORDS) store<u32>(pb + ((<usize>start + 1) << 2), pbLen - start);
}

/** The plan of rewrite `pc` on node (object, relation), read against the graph: mirrors the bytecode's ops. */
function buildRewrite(pc: usize, object: u32, type: u32, relation: u32): void {
  const op = load<u32>(pc);
  const start = pbLen;
  if (op == OP_DIRECT) {
    const node = graphNode(graph, object, relation);
    if (node == 0) return emitBare(OP_NONE);
    if (nodeFlagged(node) != 0) return emitBare(P_ABORT);
    emit(P_DIRECT);
    emit(0);
    emitEdges(node);
    const usersets = nodeUsersets(node);
    const n = vecLength(usersets);
    emit(n);
    const entries: usize = n == 0 ? 0 : vecEntries(usersets);
    for (let i: u32 = 0; i < n; i++) {
      const at = entries + ((<usize>i) << 3);
      const subject = load<u32>(at);
      emit(subject);
      emit(load<u32>(at, 4));
      emit(symbolType(subject));
    }
    close(start);
    return;
  }
  if (op == OP_COMPUTED) {
    buildComputed(object, type, load<u32>(pc, 8));
    return;
  }
  if (op == OP_TTU) {
    const node = graphNode(graph, object, load<u32>(pc, 8));
    if (node == 0) return emitBare(OP_NONE);
    if (nodeFlagged(node) != 0) return emitBare(P_ABORT);
    const computed = load<u32>(pc, 12);
    emit(P_TTU);
    emit(0);
    emit(computed);
    const countAt = pbLen;
    emit(0);
    const parents = nodeObjects(node);
    const n = vecLength(parents);
    const entries: usize = n == 0 ? 0 : vecEntries(parents);
    let kept: u32 = 0;
    for (let i: u32 = 0; i < n; i++) {
      const parent = load<u32>(entries + ((<usize>i) << 2));
      const parentType = symbolType(parent);
      if (relationIndex(parentType, computed) == ABSENT) continue;
      emit(parent);
      emit(parentType);
      kept++;
    }
    if (countAt < MAX_PLAN_WORDS) store<u32>(pb + ((<usize>countAt) << 2), kept);
    close(start);
    return;
  }
  if (op == OP_UNION || op == OP_INTERSECTION || op == OP_EXCLUSION) {
    emit(op);
    emit(0);
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    for (let child = pc + 8; child < end; child += (<usize>load<u32>(child, 4)) << 2) {
      buildRewrite(child, object, type, relation);
    }
    close(start);
    return;
  }
  emitBare(OP_NONE);
}

/** The plain-object and wildcard subjects of a node, inline when few: [count, subjects...] or [HASHED]. */
function emitEdges(node: usize): void {
  const objects = nodeObjects(node);
  const wildcards = nodeWildcards(node);
  const a = vecLength(objects);
  const b = vecLength(wildcards);
  if (a + b > INLINE_EDGES) {
    emit(HASHED);
    return;
  }
  emit(a + b);
  for (let i: u32 = 0; i < a; i++) emit(load<u32>(vecEntries(objects) + ((<usize>i) << 2)));
  for (let i: u32 = 0; i < b; i++) emit(load<u32>(vecEntries(wildcards) + ((<usize>i) << 2)));
}

/** The plan of `resolve(object, relation', same depth)` for a computed userset: mirrors `resolve`. */
function buildComputed(object: u32, type: u32, relation: u32): void {
  const start = pbLen;
  const rid = relationIndex(type, relation);
  if (rid == ABSENT) return emitRelation(P_SELF, relation);
  const pc = rewriteOf(rid);
  if (load<u32>(pc) == OP_DIRECT) {
    // resolve's leaf shortcut, read in; anything else (usersets, flagged tuples, the Leopard index) is a call.
    const node = graphNode(graph, object, relation);
    if (node == 0) return emitRelation(P_SELF, relation);
    if (nodeFlagged(node) != 0 || vecLength(nodeUsersets(node)) != 0) return emitRelation(OP_COMPUTED, relation);
    emit(P_LEAF);
    emit(0);
    emit(relation);
    emit(rid);
    emitEdges(node);
    close(start);
    return;
  }
  for (let i: u32 = 0; i < chainLen; i++) {
    if (load<u32>(chain + ((<usize>i) << 2)) == relation) return emitRelation(OP_COMPUTED, relation);
  }
  if (chainLen == MAX_INLINE) return emitRelation(OP_COMPUTED, relation);
  store<u32>(chain + ((<usize>chainLen) << 2), relation);
  chainLen++;
  emit(P_ENTER);
  emit(0);
  emit(relation);
  emit(rid);
  buildRewrite(pc, object, type, relation);
  close(start);
  chainLen--;
}
