// The check evaluator: runs a model compiled to a small bytecode (src/wasm-eval/compile.ts) over a compiled tuple graph
// (graph.ts), with the reference evaluator's semantics (src/reference/check.ts) step for step: the same order of
// checks in `resolve` (depth limit, cycle on the path, the userset-itself rule, the per-check memo with depths,
// the relation's existence, reachability by subject kind), the same visiting order of tuples and children, and
// the same outcome algebra (TRUE, FALSE, CYCLE, TOO_COMPLEX). So its answers are the reference's, including where
// the per-check memo makes the answer depend on the order of evaluation in cyclic models. Where it takes a
// shortcut (a node without tuples or userset tuples answered by its own edges, the Leopard index, kept facts,
// object plans), a comment says why the answer cannot change.
//
// What it does not evaluate it does not guess: reading a node that holds a flagged tuple (a condition, an expiry,
// a cross-tenant subject) aborts the check with UNSUPPORTED and the caller answers it with the reference.
//
// One interpreter (`evaluate`) runs both the model's bytecode (evaluate/program.ts) and the object plans built
// from it against the graph (evaluate/plan.ts): a plan is the bytecode with the graph's structure read in, so
// the two share every operator and the outcome rules below, and differ only in where an operand is read.
//
// Facts: a union-only node's TRUE/FALSE for a subject, with the depth it was computed at, is kept across checks
// and batches (graph/facts.ts) and reused at that depth or shallower, as the reference reuses its per-check memo.
// Why that gives the reference's answers although the reference has no such cache: inside a union-only region,
// TRUE means "a route of usersets/parents reaches the subject within the depth left" and FALSE means "the whole
// region below was explored, no route, no cycle, no depth limit met" (union turns any CYCLE or error below into
// CYCLE or an error, never FALSE). So
// - a FALSE fact certifies that the region below the node is acyclic and fits the budget: no path of any later
//   check can enter it (a path node inside it would close a cycle through the node), so the reference, exploring
//   it again at the same or a shallower depth, finds FALSE again;
// - a TRUE fact where the reference would see CYCLE (its routes all pass through a node on the current path): the
//   topmost such path node T, and every path node between T and the faulted node, lie in the node's region, hence
//   union-only; T itself reaches the subject over the rest of the route (not through anything above T), so T is
//   TRUE either way. The differing values stay inside union nodes below T and never reach an intersection or an
//   exclusion, whose results would otherwise depend on CYCLE vs TRUE; the root is above T or T itself, so the
//   answer is the same. Depth: the route the fact stands for fit the budget where it was computed; from T (higher
//   up, more budget) its remainder fits too.
// Cycle- or error-tainted outcomes (CYCLE, TOO_COMPLEX) are never kept, and intersection/exclusion nodes (whose
// TRUE/FALSE can depend on CYCLE vs TRUE below) use only the per-check memo, exactly as the reference. The
// differential tests (test/wasm-eval) hold this on random models mixing all operators; keeping facts for every relation
// of such models instead makes them fail within seconds.
//
// This file is the kernel's entry: what it exports is exactly what src/wasm-eval uses (the list and the numbers
// both sides share are in src/kernels/abi/evaluate.ts).
export * from "./intern";
export {
  graph_add,
  graph_batch_begin,
  graph_batch_end,
  graph_clear_facts,
  graph_clear_plans,
  graph_facts,
  graph_flagged,
  graph_free,
  graph_has_edge,
  graph_invalidate,
  graph_memory_bytes,
  graph_new,
  graph_node_entries,
  graph_node_flagged,
  graph_node_length,
  graph_plans,
  graph_remove,
  graph_set_leopard,
  graph_subject_entries,
  graph_subject_length,
  graph_tuples,
  symbols_memory_bytes,
  symbols_set_types,
  symbols_type,
} from "./graph";
export {
  leopard_decide,
  leopard_distance,
  leopard_entries,
  leopard_free,
  leopard_height,
  leopard_mark_dirty,
  leopard_memory_bytes,
  leopard_new,
  leopard_on_add,
  leopard_on_remove,
  leopard_rebuild,
  leopard_state,
  leopard_updates,
} from "./leopard";
export { eval_plan_hits, eval_plans_built } from "./evaluate/plan";
export { list_objects, list_objects_memory_bytes, list_objects_results } from "./evaluate/list-objects";
export { list_objects_fresh, list_objects_order } from "./evaluate/list-order";
import { leopard_decide } from "./leopard";
import { factGet, factSet, factSlot, setFactCapacity } from "./graph/facts";
import { setPlanCapacity, plansOn } from "./graph/plans";
import {
  graphEpochs,
  graphFactTable,
  graphHasEdge,
  graphLeopard,
  graphNode,
  graphNodes,
  headSlot,
  nodeFlagged,
  nodeObjects,
  nodeUsersets,
  symbolType,
  touchHeadPage,
  vecEntries,
  vecLength,
} from "./graph";
import { memo_clear, memo_get2, memo_get4, memo_new, memo_set2, memo_set4 } from "./intern";
import { tableBeginUse, tableEndUse } from "./lib/stamped-table";
import { HASHED, P_ABORT, P_DIRECT, P_ENTER, P_LEAF, P_SELF, P_TTU, planOf } from "./evaluate/plan";
import {
  OP_COMPUTED,
  OP_DIRECT,
  OP_EXCLUSION,
  OP_INTERSECTION,
  OP_TTU,
  OP_UNION,
  factRelation,
  installProgram,
  leopardRelation,
  maxDepth,
  planWorthy,
  reachable,
  relationIndex,
  relationNameCount,
  rewriteOf,
} from "./evaluate/program";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const NO_REL: u32 = 0xffffffff;
// Placeholders the TypeScript side uses for an object / subject no tuple names: never kept as facts (two
// different unknown strings share a placeholder). FIRST_PLACEHOLDER is the lowest.
// @ts-ignore: decorator
@inline const UNKNOWN_OBJECT: u32 = 0xfffffffe;
// @ts-ignore: decorator
@inline const UNKNOWN_SUBJECT: u32 = 0xfffffffd;
// @ts-ignore: decorator
@inline const FIRST_PLACEHOLDER: u32 = UNKNOWN_SUBJECT;

// Outcomes, as eval_check returns them.
// @ts-ignore: decorator
@inline const FALSE: i32 = 0;
// @ts-ignore: decorator
@inline const TRUE: i32 = 1;
// @ts-ignore: decorator
@inline const CYCLE: i32 = 2;
// @ts-ignore: decorator
@inline const TOO_COMPLEX: i32 = 3;
// @ts-ignore: decorator
@inline const UNSUPPORTED: i32 = 4;
// Over the step budget: "resolution_too_complex" as TOO_COMPLEX, but the host names the step budget in the error,
// not the depth limit. Only `run` returns it (for the whole check); inside a check the budget aborts instead.
// @ts-ignore: decorator
@inline const TOO_MANY_STEPS: i32 = 5;

// The per-check step budget (src/kernels/abi/evaluate.ts): `resolve`/`resolveInlined` calls that evaluate a
// rewrite, as the reference counts them (src/reference/check.ts). One more and the whole check answers
// TOO_MANY_STEPS.
// @ts-ignore: decorator
@inline const MAX_RESOLUTION_STEPS: u32 = 250000;

// A request record of eval_check_many: REQUEST_WORDS u32 words, at these word offsets (the last word is 0).
// @ts-ignore: decorator
@inline const REQUEST_OBJECT: usize = 0;
// @ts-ignore: decorator
@inline const REQUEST_TYPE: usize = 1;
// @ts-ignore: decorator
@inline const REQUEST_RELATION: usize = 2;
// @ts-ignore: decorator
@inline const REQUEST_SUBJECT: usize = 3;
// @ts-ignore: decorator
@inline const REQUEST_SUBJECT_RELATION: usize = 4;
// @ts-ignore: decorator
@inline const REQUEST_WILDCARD: usize = 5;
// @ts-ignore: decorator
@inline const REQUEST_KIND: usize = 6;
// @ts-ignore: decorator
@inline const REQUEST_USERSET: usize = 7;
// @ts-ignore: decorator
@inline const REQUEST_WORDS: usize = 9;
// Bits of eval_check_many's `flags` (src/wasm-eval/evaluator.ts passes the same numbers).
// @ts-ignore: decorator
@inline const BATCH_SHARE: u32 = 1;
// @ts-ignore: decorator
@inline const BATCH_NO_QUESTION_FACTS: u32 = 2;

// How operands combine, as the reference's rules (src/reference/check.ts), for every operator of the bytecode and
// the plans: a union is TRUE at its first TRUE operand, an intersection FALSE at its first FALSE one; otherwise
// they fold their other outcomes with these.
/** A union operand that was not TRUE, folded in: an error wins over a cycle, a cycle over FALSE. */
// @ts-ignore: decorator
@inline
function unionWith(rest: i32, outcome: i32): i32 {
  return outcome > rest ? outcome : rest; // FALSE < CYCLE < TOO_COMPLEX
}
/** An intersection operand that was not FALSE, folded in: a cycle wins over an error, an error over TRUE. */
// @ts-ignore: decorator
@inline
function intersectionWith(rest: i32, outcome: i32): i32 {
  if (rest == CYCLE || outcome == CYCLE) return CYCLE;
  return outcome == TOO_COMPLEX ? TOO_COMPLEX : rest;
}
/** An exclusion whose base was not FALSE. */
// @ts-ignore: decorator
@inline
function excluded(base: i32, subtract: i32): i32 {
  if (subtract == TRUE) return FALSE;
  if (base == CYCLE || subtract == CYCLE) return CYCLE;
  if (base == TOO_COMPLEX || subtract == TOO_COMPLEX) return TOO_COMPLEX;
  return TRUE;
}

let factsUsable: bool = false;
// Whether the question's own node (depth 0) is kept as a fact. A fact answers at its depth or shallower, so one
// computed at depth 0 answers only depth 0: the same question asked again, which a result cache in front of the
// kernel answers before it gets here. A batch may leave them out (BATCH_NO_QUESTION_FACTS); single checks keep them.
let keepQuestionFacts: bool = true;
// Facts kept per graph at most (0: none); at the limit a new fact replaces a little-used one (graph/facts.ts).
let factLimit: u32 = 1 << 18;
let factHits: u64 = 0;
// What redoing the current check's nodes would cost, in `resolve` calls (its entry points count one each, before
// any shortcut). Only differences are read: what a fact of a node saves is the resolves below it, `redo` after its
// rewrite minus `redo` once it was entered (its own resolve is replaced by the fact's look-up). A node whose fact
// is kept counts one (that look-up) for the nodes above it.
let redo: u32 = 0;
// A fact is kept only for a node whose evaluation took at least FACT_MIN_REDO resolves below it. A kept fact pays when
// (resolves it saves on a hit) x (chance it is read again before the graph changes or it is pushed out) exceeds its
// write, a slot in a table of up to factLimit entries, mostly a cache miss on a cold pass. Kernel-only replay of first-
// pass single checks on the 100k peer workload (sets of 2,000 with facts cleared first, 256 KB of other memory touched
// between checks, two kernels alternated in one process, 3 runs): keeping every fact (3.8 written a check) against
// none, median 1.32-1.37 -> 1.53-1.72 us a check for ~1 resolve saved a check, so a write costs about one resolve
// (~0.25 us); ~1 written fact in 5-6 was read again (16-21%). Hence a fact pays on a first pass when it saves ~1 /
// (0.16..0.21) = 5-6 resolves or more, not counting the useful facts it may push out; of the thresholds measured, 7 was
// the fastest. Against keeping every fact (same replay, 2 runs each, cold / warm): 7 took 0.79-0.87 / 0.83-0.88 of the
// time, 4 took 0.85-0.93 / 0.88-0.95, 10 took 0.83-0.93 / 1.08-1.11 (its upper nodes keep facts the lower ones no
// longer do: 11.9k held warm against 6.1k); facts held ~47k -> ~6k warm. 16 keeps no fact at all on this workload and
// was 5-10% faster than 7 on its cold replay (3 runs), but a model whose shared subproblems are deeper (nested folders,
// groups without Leopard) would redo them on every check without one.
// Keeping fewer facts never changes an answer: a missing fact is evaluated; within a check every node is memoized too
// (settle), as the reference memoizes every node, so the step budget counts the same resolves.
// @ts-ignore: decorator
@inline const FACT_MIN_REDO: u32 = 7;
// Whether the per-check memo holds any node yet (cleared with the memo): only then does a fact miss look there too.
let memoHoldsFacts: bool = false;

// The current check.
let graph: usize = 0;
let memo: usize = 0;
// The current batch's requests so far: (object, relation, subject, subject relation) -> index of the first.
let seen: usize = 0;
let qSubject: u32 = ABSENT;
let qSubjectRelation: u32 = NO_REL;
let qWildcard: u32 = ABSENT;
let qKind: u32 = 0;
let qUserset: bool = false;
let aborted: bool = false;
// Set with `aborted` when the check went over MAX_RESOLUTION_STEPS: `run` then answers TOO_MANY_STEPS, not
// UNSUPPORTED.
let exhausted: bool = false;
// Steps of the current check (reset by `run`, per question of a batch).
let steps: u32 = 0;
let path: usize = 0;
let pathCap: u32 = 0;
let pathLen: u32 = 0;
// Nodes resolved (not answered by the memo), over the kernel's life: for tests and benches.
let resolved: u64 = 0;
// Membership questions the Leopard index decided (hits) and left to the walk (misses).
let leopardDecided: u64 = 0;
let leopardUndecided: u64 = 0;
// Memo answers (a node resolved before in the same check, or for the same subject in a shared batch).
let memoHits: u64 = 0;

/** Installs a program block (layout: evaluate/program.ts; the block must stay allocated while it is in use). */
export function eval_set_program(block: usize): void {
  installProgram(block);
  if (memo == 0) memo = memo_new(2, 0x2545f491, 0x4f6cdd1d);
}

export function eval_set_fact_limit(limit: u32): void {
  factLimit = limit;
  if (limit > 0) setFactCapacity(limit);
}

export function eval_set_plan_limit(limit: u32): void {
  setPlanCapacity(limit);
}

export function eval_resolved(): u64 {
  return resolved;
}

export function eval_leopard_decided(): u64 {
  return leopardDecided;
}

export function eval_leopard_undecided(): u64 {
  return leopardUndecided;
}

export function eval_memo_hits(): u64 {
  return memoHits;
}

export function eval_fact_hits(): u64 {
  return factHits;
}

/** FACT_MIN_REDO: the resolves a node must take for its fact to be kept (tests build models around it). */
export function eval_fact_min_redo(): u32 {
  return FACT_MIN_REDO;
}

// ---------------------------------------------------------------------------------------------------------------
// The path of the current check: the nodes being resolved, for cycle detection.
// ---------------------------------------------------------------------------------------------------------------

function pushPath(object: u32, relation: u32): void {
  if (pathLen == pathCap) {
    const cap = pathCap == 0 ? 64 : pathCap << 1;
    path = path == 0 ? heap.alloc((<usize>cap) << 3) : heap.realloc(path, (<usize>cap) << 3);
    pathCap = cap;
  }
  const at = path + ((<usize>pathLen) << 3);
  store<u32>(at, object);
  store<u32>(at, relation, 4);
  pathLen++;
  const c = pathFilter + pathSlot(object, relation);
  store<u16>(c, load<u16>(c) + 1);
}

// @ts-ignore: decorator
@inline
function popPath(): void {
  pathLen--;
  const at = path + ((<usize>pathLen) << 3);
  const c = pathFilter + pathSlot(load<u32>(at), load<u32>(at, 4));
  store<u16>(c, load<u16>(c) - 1);
}

/**
 * Counts of path entries per hash slot (64 u16s): a node whose slot counts 0 is not on the path, so the scan of
 * the path is skipped for nearly every node (the path of a deep check holds tens of entries).
 */
let pathFilter: usize = 0;

// @ts-ignore: decorator
@inline
function pathSlot(object: u32, relation: u32): usize {
  return (<usize>(((object * 0x9e3779b1) ^ (relation * 0x85ebca77)) >>> 26)) << 1;
}

/** Whether (object, relation) is on the current path (a cycle). */
// @ts-ignore: decorator
@inline
function onPath(object: u32, relation: u32): bool {
  if (load<u16>(pathFilter + pathSlot(object, relation)) == 0) return false;
  for (let i: u32 = 0; i < pathLen; i++) {
    const at = path + ((<usize>i) << 3);
    if (load<u32>(at) == object && load<u32>(at, 4) == relation) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolving a node: the reference's `resolve`.
// ---------------------------------------------------------------------------------------------------------------

/** Whether (object, relation) is the userset the check asks about (TRUE by the userset-itself rule). */
// @ts-ignore: decorator
@inline
function isQueriedUserset(object: u32, relation: u32): bool {
  return qUserset && relation == qSubjectRelation && object == qSubject;
}

/** The outcome `resolve` gives before anything else (depth limit, cycle, the userset itself), or -1. */
// @ts-ignore: decorator
@inline
function settledFirst(object: u32, relation: u32, depth: u32): i32 {
  if (depth >= maxDepth()) return TOO_COMPLEX;
  if (onPath(object, relation)) return CYCLE;
  if (isQueriedUserset(object, relation)) return TRUE;
  return -1;
}

/** Whether a memo or fact entry (depth << 1 | outcome, or ABSENT) answers at this depth. */
// @ts-ignore: decorator
@inline
function answers(memoed: u32, depth: u32): bool {
  return memoed != ABSENT && depth <= memoed >> 1;
}

/**
 * After the node's rewrite was evaluated with the node on the path: takes it off the path and remembers a
 * TRUE/FALSE outcome (as a fact or in the per-check memo) unless the entry there was computed deeper.
 */
// @ts-ignore: decorator
@inline
function settle(
  outcome: i32,
  object: u32,
  relation: u32,
  depth: u32,
  asFact: bool,
  memoed: u32,
  entered: u32,
): i32 {
  popPath();
  if (aborted) return FALSE;
  if (outcome <= TRUE && (memoed == ABSENT || memoed >> 1 < depth)) {
    const value = (depth << 1) | <u32>outcome;
    if (asFact && redo - entered >= FACT_MIN_REDO) {
      if (depth > 0 || keepQuestionFacts) {
        factSet(graphFactTable(graph), graphEpochs(graph), object, relation, qSubject, qSubjectRelation, value);
      }
      redo = entered; // asked again, the node is its fact's look-up: the unit counted at its entry
    }
    // Memoized for the rest of the check whether or not it was kept as a fact, where the reference memoizes every
    // node: the same node is looked up in the memo when reached through a computed relation (no hop) and in the
    // facts, then the memo, when reached by a hop, so neither way evaluates it twice in one check (an extra step
    // each, which the step budget counted: resolution_too_complex where the reference answered, found by review).
    memoHoldsFacts = true;
    memo_set2(memo, object, relation, value);
  }
  return outcome;
}

/**
 * The check went over its step budget: it stops as an abort does (nothing more is evaluated or kept, every caller
 * returns at once) and `run` answers TOO_MANY_STEPS.
 */
function overBudget(): i32 {
  exhausted = true;
  aborted = true;
  return FALSE;
}

function resolve(object: u32, type: u32, relation: u32, depth: u32, hop: bool): i32 {
  redo++;
  const first = settledFirst(object, relation, depth);
  if (first >= 0) return first;
  // The reference consults its memo before these two, but both answer FALSE, as would any memo entry here.
  const rid = relationIndex(type, relation);
  if (rid == ABSENT) return FALSE;
  if (!reachable(rid, qKind)) return FALSE;
  if (!qUserset && leopardRelation(rid)) {
    // A membership question on a recursive relation: one lookup when the Leopard index can answer exactly
    // (its answer is the walk's, so neither the memo nor a fact is needed for it). Asked before the node is
    // read: a decided answer is the walk's whatever the node holds (a node without usersets answers with its own
    // edges, the index's members at distance 0), and a folder's groups are nearly all asked for a subject that
    // is not a member, where the node's read was the look-up the index then repeated.
    const lp = graphLeopard(graph);
    if (lp != 0) {
      const budget = maxDepth() - 1 - depth;
      const decided = leopard_decide(graph, lp, graphNodes(graph), type, relation, object, qSubject, qWildcard, budget);
      if (decided >= 0) {
        leopardDecided++;
        return decided;
      }
      leopardUndecided++;
    }
  }
  const pc = rewriteOf(rid);
  if (load<u32>(pc) == OP_DIRECT) {
    // A node with no tuple, or none naming a userset: its answer is its own edges, whatever the path, depth or
    // memo (no recursion below it), so it is answered without them.
    const node = graphNode(graph, object, relation);
    if (node == 0) return FALSE;
    if (nodeFlagged(node) == 0 && vecLength(nodeUsersets(node)) == 0) return directEdges(object, relation);
  }
  // Facts are kept for the nodes a check enters by a hop to another object (the check's own node, a
  // tuple-to-userset parent, a userset): the subproblems other checks share. A node entered through a computed
  // userset is one of its object's own relations, kept in the per-check memo only: as exact, and cheaper.
  const asFact = hop && factsUsable && object < FIRST_PLACEHOLDER && factRelation(rid);
  const memoed = asFact
    ? factGet(graphFactTable(graph), graphEpochs(graph), object, relation, qSubject, qSubjectRelation)
    : memo_get2(memo, object, relation);
  if (answers(memoed, depth)) {
    if (asFact) factHits++;
    else memoHits++;
    return <i32>(memoed & 1);
  }
  if (asFact && memoHoldsFacts) {
    // Evaluated earlier in this check without keeping its fact (settle).
    const inCheck = memo_get2(memo, object, relation);
    if (answers(inCheck, depth)) {
      memoHits++;
      return <i32>(inCheck & 1);
    }
  }
  // A node entered by a hop from another object (a parent, a userset) replays its object plan when it has one:
  // the same evaluation without re-reading the object's structure. Not the check's own node (depth 0): most
  // questions name an object asked about once (a file), whose plan marker alone cost a write into the plan
  // table (and could push out plans in use); an object asked about for many subjects is read from the bytecode
  // instead, a node lookup per relation it reads (a file of the peer workload: two, against the plan's table
  // lookup and block). Probe, 100k-tuple peer workload, first-pass batches of 1,000: kernel time per batch
  // ~1.07 -> ~0.85 ms. Nor a node whose rewrite reads too few of its object's nodes for a plan to save anything
  // (evaluate/program.ts planWorthy).
  const plan =
    hop && depth > 0 && object < FIRST_PLACEHOLDER && plansOn() && load<u32>(pc) != OP_DIRECT && planWorthy(rid)
      ? planOf(graph, object, type, relation, pc)
      : 0;
  resolved++;
  if (++steps > MAX_RESOLUTION_STEPS) return overBudget();
  pushPath(object, relation);
  const entered = redo;
  const outcome = evaluate(plan != 0 ? plan + 4 : pc, object, type, relation, depth);
  return settle(outcome, object, relation, depth, asFact, memoed, entered);
}

/** P_ENTER: `resolve` of a computed relation whose rewrite a plan inlined (no hop: the per-check memo, no fact). */
function resolveInlined(pc: usize, object: u32, type: u32, depth: u32): i32 {
  redo++; // a `resolve` of the computed relation, inlined
  const relation = load<u32>(pc, 8);
  const first = settledFirst(object, relation, depth);
  if (first >= 0) return first;
  if (!reachable(load<u32>(pc, 12), qKind)) return FALSE;
  const memoed = memo_get2(memo, object, relation);
  if (answers(memoed, depth)) {
    memoHits++;
    return <i32>(memoed & 1);
  }
  resolved++;
  if (++steps > MAX_RESOLUTION_STEPS) return overBudget();
  pushPath(object, relation);
  return settle(evaluate(pc + 16, object, type, relation, depth), object, relation, depth, false, memoed, redo);
}

// ---------------------------------------------------------------------------------------------------------------
// The interpreter: one op of the bytecode (evaluate/program.ts) or of a plan (evaluate/plan.ts) on node
// (object, relation).
// ---------------------------------------------------------------------------------------------------------------

function evaluate(pc: usize, object: u32, type: u32, relation: u32, depth: u32): i32 {
  switch (load<u32>(pc)) {
    case OP_DIRECT:
      return direct(object, relation, depth);
    case OP_COMPUTED:
      return resolve(object, type, load<u32>(pc, 8), depth, false);
    case OP_TTU:
      return tupleToUserset(object, load<u32>(pc, 8), load<u32>(pc, 12), depth);
    case OP_UNION:
      return combine(pc, object, type, relation, depth, true);
    case OP_INTERSECTION:
      return combine(pc, object, type, relation, depth, false);
    case OP_EXCLUSION: {
      const basePc = pc + 8;
      const base = evaluate(basePc, object, type, relation, depth);
      if (aborted || base == FALSE) return FALSE;
      const subtract = evaluate(basePc + ((<usize>load<u32>(basePc, 4)) << 2), object, type, relation, depth);
      if (aborted) return FALSE;
      return excluded(base, subtract);
    }
    case P_ENTER:
      return resolveInlined(pc, object, type, depth);
    case P_SELF:
      return isQueriedUserset(object, load<u32>(pc, 8)) ? TRUE : FALSE;
    case P_LEAF: {
      const r = load<u32>(pc, 8);
      if (isQueriedUserset(object, r)) return TRUE;
      if (!reachable(load<u32>(pc, 12), qKind)) return FALSE;
      return plannedEdges(pc + 16, object, r);
    }
    case P_DIRECT:
      return plannedDirect(pc, object, relation, depth);
    case P_TTU:
      return unionOver(pc + 16, load<u32>(pc, 12), 8, load<u32>(pc, 8), 4, depth);
    case P_ABORT:
      aborted = true;
      return FALSE;
    default:
      return FALSE; // OP_NONE
  }
}

/** A union (`any`) or an intersection of the op's children, in order. */
// @ts-ignore: decorator
@inline
function combine(pc: usize, object: u32, type: u32, relation: u32, depth: u32, any: bool): i32 {
  const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
  let rest = any ? FALSE : TRUE;
  for (let child = pc + 8; child < end; child += (<usize>load<u32>(child, 4)) << 2) {
    const outcome = evaluate(child, object, type, relation, depth);
    if (aborted) return FALSE;
    if (any) {
      if (outcome == TRUE) return TRUE;
      rest = unionWith(rest, outcome);
    } else {
      if (outcome == FALSE) return FALSE;
      rest = intersectionWith(rest, outcome);
    }
  }
  return rest;
}

/**
 * The union over a list of subjects, each resolved one level deeper, in list order. Entries are `stride` bytes
 * apart from `at`: the subject, then its relation unless `computed` (a tuple-to-userset's, the same for all) is
 * given, and its type at byte `typeAt` or, when that is 0, looked up.
 */
// @ts-ignore: decorator
@inline
function unionOver(at: usize, n: u32, stride: usize, computed: u32, typeAt: usize, depth: u32): i32 {
  let rest = FALSE;
  for (let i: u32 = 0; i < n; i++, at += stride) {
    const subject = load<u32>(at);
    const relation = computed != NO_REL ? computed : load<u32>(at, 4);
    const type = typeAt != 0 ? load<u32>(at + typeAt) : symbolType(subject);
    // A parent whose type lacks the computed relation contributes nothing (not an error); plans leave it out.
    if (computed != NO_REL && typeAt == 0 && relationIndex(type, computed) == ABSENT) continue;
    const outcome = resolve(subject, type, relation, depth + 1, true);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    rest = unionWith(rest, outcome);
  }
  return rest;
}

/** The exact tuple or the subject type's wildcard on (object, relation). */
// @ts-ignore: decorator
@inline
function directEdges(object: u32, relation: u32): i32 {
  if (graphHasEdge(graph, object, relation, qSubject, qSubjectRelation)) return TRUE;
  if (qWildcard != ABSENT && graphHasEdge(graph, object, relation, qWildcard, NO_REL)) return TRUE;
  return FALSE;
}

/** OP_DIRECT: the node's own edges, then its userset subjects. */
function direct(object: u32, relation: u32, depth: u32): i32 {
  const node = graphNode(graph, object, relation);
  if (node == 0) return FALSE;
  if (nodeFlagged(node) != 0) {
    aborted = true;
    return FALSE;
  }
  if (directEdges(object, relation) == TRUE) return TRUE;
  const usersets = nodeUsersets(node);
  const n = vecLength(usersets);
  if (n == 0) return FALSE;
  return unionOver(vecEntries(usersets), n, 8, NO_REL, 0, depth);
}

/** OP_TTU: the computed relation on every parent the tupleset's tuples name. */
function tupleToUserset(object: u32, tupleset: u32, computed: u32, depth: u32): i32 {
  const node = graphNode(graph, object, tupleset);
  if (node == 0) return FALSE;
  if (nodeFlagged(node) != 0) {
    aborted = true;
    return FALSE;
  }
  const parents = nodeObjects(node);
  const n = vecLength(parents);
  if (n == 0) return FALSE;
  return unionOver(vecEntries(parents), n, 4, computed, 0, depth);
}

/** Whether the node's subject lists (P_LEAF / P_DIRECT layout at `at`) hold the subject or its wildcard. */
// @ts-ignore: decorator
@inline
function plannedEdges(at: usize, object: u32, relation: u32): i32 {
  if (qUserset) return FALSE; // callers match usersets themselves
  const count = load<u32>(at);
  if (count == HASHED) return directEdges(object, relation);
  for (let i: u32 = 0; i < count; i++) {
    const s = load<u32>(at + 4 + ((<usize>i) << 2));
    if (s == qSubject || (s == qWildcard && qWildcard != ABSENT)) return TRUE;
  }
  return FALSE;
}

/** P_DIRECT: OP_DIRECT with the node's lists read from the plan. */
function plannedDirect(pc: usize, object: u32, relation: u32, depth: u32): i32 {
  const edges = pc + 8;
  const count = load<u32>(edges);
  const usersetsAt = edges + 4 + (count == HASHED ? 0 : (<usize>count) << 2);
  const n = load<u32>(usersetsAt);
  if (qUserset) {
    for (let i: u32 = 0; i < n; i++) {
      const at = usersetsAt + 4 + <usize>i * 12;
      if (load<u32>(at) == qSubject && load<u32>(at, 4) == qSubjectRelation) return TRUE;
    }
  } else if (plannedEdges(edges, object, relation) == TRUE) {
    return TRUE;
  }
  return unionOver(usersetsAt + 4, n, 12, NO_REL, 8, depth);
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points.
// ---------------------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline
function setSubject(subject: u32, subjectRelation: u32, wildcard: u32, kind: u32, userset: u32): void {
  qSubject = subject;
  qSubjectRelation = subjectRelation;
  qWildcard = wildcard;
  qKind = kind;
  qUserset = userset != 0;
  factsUsable =
    maxDepth() < 256 && relationNameCount() < 0xffff && subject < FIRST_PLACEHOLDER && factLimit > 0;
}

/**
 * Checks object#relation for a subject over graph `g`: TRUE 1, FALSE 0, CYCLE 2 (false), TOO_COMPLEX 3 (the depth
 * limit), UNSUPPORTED 4 (the check read a flagged tuple: answer it with the reference) or TOO_MANY_STEPS 5 (the
 * step budget). `type` is the object's type id (the object may be a placeholder symbol when it was never interned).
 * `subject`/`subjectRelation`: the subject (relation NO_REL unless a userset); `wildcard`: its type's wildcard symbol
 * or ABSENT; `kind`: its subject-kind id.
 */
export function eval_check(
  g: usize,
  object: u32,
  type: u32,
  relation: u32,
  subject: u32,
  subjectRelation: u32,
  wildcard: u32,
  kind: u32,
  userset: u32,
): i32 {
  graph = g;
  keepQuestionFacts = true;
  setSubject(subject, subjectRelation, wildcard, kind, userset);
  memo_clear(memo);
  memoHoldsFacts = false;
  if (object < FIRST_PLACEHOLDER) touchQuestion(object, relation, subject, subjectRelation);
  return run(object, type, relation);
}

/**
 * Reads ahead what a single check reads first: its object's page and the question's fact slot, which do not
 * depend on each other, then the object's first node record. `resolve` reads the fact first and the page only
 * after it (through the rewrite), so for a cold object (a file asked about once) the two misses came one after the
 * other; here they overlap, as touchAhead overlaps a batch's. Only reads: no answer can change.
 */
// @ts-ignore: decorator
@inline
function touchQuestion(object: u32, relation: u32, subject: u32, subjectRelation: u32): void {
  const slot = headSlot(graph, object);
  let sink: u32 = 0;
  if (factsUsable) sink = <u32>factSlot(graphFactTable(graph), object, relation, subject, subjectRelation);
  if (slot != 0) {
    const node = load<usize>(slot);
    if (node != 0) sink ^= load<u32>(node);
  }
  touched = sink;
}

function run(object: u32, type: u32, relation: u32): i32 {
  aborted = false;
  exhausted = false;
  steps = 0;
  if (pathFilter == 0) {
    pathFilter = heap.alloc(128);
    memory.fill(pathFilter, 0, 128);
  }
  if (pathLen != 0) {
    // Left over by a trap (memory could not grow) in the previous check.
    pathLen = 0;
    memory.fill(pathFilter, 0, 128);
  }
  tableBeginUse();
  const outcome = resolve(object, type, relation, 0, true);
  tableEndUse();
  if (aborted) {
    memo_clear(memo);
    memoHoldsFacts = false;
    return exhausted ? TOO_MANY_STEPS : UNSUPPORTED;
  }
  return outcome;
}

/** Word `word` of the request record at `r`. */
// @ts-ignore: decorator
@inline
function field(r: usize, word: usize): u32 {
  return load<u32>(r + (word << 2));
}

/**
 * Checks `count` request records (REQUEST_WORDS u32 words each, at `requests`), writing one outcome byte each to
 * `out`. A request identical to an earlier one (same object, relation, subject and subject relation: the other
 * words follow from those) copies its outcome. `flags`: with BATCH_SHARE (only for programs without intersection
 * or exclusion, where a memoized TRUE/FALSE is a path-independent reachability fact), consecutive requests for the
 * same subject keep the memo, so each subgraph is evaluated once per subject; with BATCH_NO_QUESTION_FACTS, the
 * requests' own nodes are not kept as facts (see keepQuestionFacts).
 */
export function eval_check_many(g: usize, requests: usize, count: u32, out: usize, flags: u32): void {
  graph = g;
  keepQuestionFacts = (flags & BATCH_NO_QUESTION_FACTS) == 0;
  const share = (flags & BATCH_SHARE) != 0;
  if (seen == 0) seen = memo_new(4, 0x6a09e667, 0xbb67ae85);
  memo_clear(seen);
  let previous: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const r = requests + <usize>i * (REQUEST_WORDS << 2);
    if (i % TOUCH_WINDOW == 0) touchAhead(r, min<u32>(TOUCH_WINDOW, count - i));
    const object = field(r, REQUEST_OBJECT);
    const relation = field(r, REQUEST_RELATION);
    const subject = field(r, REQUEST_SUBJECT);
    const subjectRelation = field(r, REQUEST_SUBJECT_RELATION);
    const kind = field(r, REQUEST_KIND);
    // Placeholders stand for different strings: only requests naming interned symbols are matched.
    const matchable = object < FIRST_PLACEHOLDER && subject < FIRST_PLACEHOLDER;
    if (matchable) {
      const first = memo_get4(seen, object, relation, subject, subjectRelation);
      if (first != ABSENT) {
        store<u8>(out + i, load<u8>(out + <usize>first));
        continue;
      }
    }
    const same =
      share &&
      previous != 0 &&
      field(previous, REQUEST_SUBJECT) == subject &&
      field(previous, REQUEST_SUBJECT_RELATION) == subjectRelation &&
      field(previous, REQUEST_KIND) == kind;
    if (!same) {
      setSubject(subject, subjectRelation, field(r, REQUEST_WILDCARD), kind, field(r, REQUEST_USERSET));
      memo_clear(memo);
      memoHoldsFacts = false;
    }
    store<u8>(out + i, <u8>run(object, field(r, REQUEST_TYPE), relation));
    if (matchable) memo_set4(seen, object, relation, subject, subjectRelation, i);
    previous = r;
  }
}

// Touching ahead. A batch's objects are mostly not in cache (a file asked about once), and reading one's node
// is a chain of dependent loads (the page memo's slot, the page, the node record, its subject vector), as is
// the question's own fact: done question by question, one question's misses start only after the previous
// one's have ended. So before evaluating a window of questions, touchAhead goes over the window once per link,
// each pass one load per question at an address the previous pass brought into cache: within a pass the loads
// of different questions do not depend on each other, and the processor overlaps their misses. Only reads, of
// nodes the evaluation is about to read itself: no answer can change. The window is small enough for what it
// touches to stay in cache until its questions are evaluated. Probe (100k-tuple peer workload, 40 first-pass
// batches of 1,000 after a 32 MB sweep each, 3 interleaved pairs): eval_check_many median 1.22-1.28 ->
// 1.02-1.06 ms a batch; second pass 0.35-0.38 -> 0.32-0.35 ms.
// @ts-ignore: decorator
@inline const TOUCH_WINDOW: u32 = 64;
// One word a question of the window: its head slot, then its head node.
let ahead: usize = 0;
// What the passes read, kept so that the optimizer cannot drop their loads.
let touched: u32 = 0;

function touchAhead(requests: usize, count: u32): void {
  if (ahead == 0) ahead = heap.alloc((<usize>TOUCH_WINDOW) << 2);
  const facts = graphFactTable(graph);
  let sink: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const object = field(requests + <usize>i * (REQUEST_WORDS << 2), REQUEST_OBJECT);
    if (object < FIRST_PLACEHOLDER) sink ^= touchHeadPage(graph, object);
  }
  for (let i: u32 = 0; i < count; i++) {
    const r = requests + <usize>i * (REQUEST_WORDS << 2);
    const object = field(r, REQUEST_OBJECT);
    let slot: usize = 0;
    if (object < FIRST_PLACEHOLDER) {
      slot = headSlot(graph, object);
      if (slot != 0) sink ^= load<u32>(slot);
      const relation = field(r, REQUEST_RELATION);
      sink ^= <u32>factSlot(facts, object, relation, field(r, REQUEST_SUBJECT), field(r, REQUEST_SUBJECT_RELATION));
    }
    store<u32>(ahead + ((<usize>i) << 2), <u32>slot);
  }
  for (let i: u32 = 0; i < count; i++) {
    const slot = <usize>load<u32>(ahead + ((<usize>i) << 2));
    const node: usize = slot != 0 ? load<usize>(slot) : 0;
    if (node != 0) sink ^= <u32>nodeObjects(node);
    store<u32>(ahead + ((<usize>i) << 2), <u32>node);
  }
  for (let i: u32 = 0; i < count; i++) {
    const node = <usize>load<u32>(ahead + ((<usize>i) << 2));
    if (node == 0) continue;
    const objects = nodeObjects(node);
    if (objects != 0) sink ^= vecLength(objects);
  }
  touched = sink;
}
