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
// Bytecode, one node per rewrite, u32 words [op, length in words, operands..., children...]:
//   0 DIRECT [0, 2]                  1 COMPUTED [1, 3, relation]        2 TTU [2, 4, tupleset, computed]
//   3 UNION [3, n, children...]      4 INTERSECTION [4, n, children...] 5 EXCLUSION [5, n, base, subtract]
//   6 NONE [6, 2]
// Program block (u32 words): [types, relation names, relation count, subject kinds, max depth, @ridOf, @ridCode,
// @code, @reach, flags, @leopard, @facts] then the tables: ridOf[type × names + name] = relation index or ABSENT;
// ridCode[rid] = word offset of its rewrite in code; reach (bytes) [rid × kinds + kind] = whether that subject kind
// can reach it; leopard (bytes) [rid] = whether the relation is answered through the Leopard index (leopard.ts)
// when it can; facts (bytes) [rid] = whether the relation is "union-only": nothing its evaluation can reach uses
// intersection or exclusion (src/wasm-eval/compile.ts computes it on the type-level graph, which over-approximates
// every graph of tuples).
//
// Facts: a union-only node's TRUE/FALSE for a subject, with the depth it was computed at, is kept across checks
// and batches (graph.ts) and reused at that depth or shallower, as the reference reuses its per-check memo.
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
// differential tests (test/fast) hold this on random models mixing all operators; keeping facts for every relation
// of such models instead makes them fail within seconds.
export * from "./leopard";
import { leopard_decide } from "./leopard";
import {
  PLAN_NONE,
  PLAN_SEEN,
  graphFact,
  graphHasEdge,
  graphPlan,
  graphPlansOn,
  graphSetPlan,
  graphSetPlanCapacity,
  graphBeginPlanUse,
  graphEndPlanUse,
  nodeWildcards,
  graphSetFact,
  graphSetFactCapacity,
  graphLeopard,
  graphNode,
  graphNodes,
  nodeFlagged,
  nodeObjects,
  nodeUsersets,
  symbolType,
  vecEntries,
  vecLength,
} from "./graph";
import { memo_clear, memo_get2, memo_get4, memo_new, memo_set2, memo_set4 } from "./intern";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const NO_REL: u32 = 0xffffffff;


// Outcomes.
// @ts-ignore: decorator
@inline const FALSE: i32 = 0;
// @ts-ignore: decorator
@inline const TRUE: i32 = 1;
// @ts-ignore: decorator
@inline const CYCLE: i32 = 2;
// @ts-ignore: decorator
@inline const TOO_COMPLEX: i32 = 3;

// How operands combine, as the reference's rules (src/reference/check.ts): one place for the walk and the plan replay.
/** A union none of whose operands was TRUE: an error wins over a cycle, a cycle over FALSE. */
@inline function unionRest(error: bool, cycle: bool): i32 {
  return error ? TOO_COMPLEX : cycle ? CYCLE : FALSE;
}
/** An intersection none of whose operands was FALSE: a cycle wins over an error, an error over TRUE. */
@inline function intersectionRest(error: bool, cycle: bool): i32 {
  return cycle ? CYCLE : error ? TOO_COMPLEX : TRUE;
}
/** An exclusion whose base was not FALSE. */
@inline function excluded(base: i32, subtract: i32): i32 {
  if (subtract == TRUE) return FALSE;
  if (base == CYCLE || subtract == CYCLE) return CYCLE;
  if (base == TOO_COMPLEX || subtract == TOO_COMPLEX) return TOO_COMPLEX;
  return TRUE;
}
// @ts-ignore: decorator
@inline const UNSUPPORTED: i32 = 4;

// Ops.
// @ts-ignore: decorator
@inline const OP_DIRECT: u32 = 0;
// @ts-ignore: decorator
@inline const OP_COMPUTED: u32 = 1;
// @ts-ignore: decorator
@inline const OP_TTU: u32 = 2;
// @ts-ignore: decorator
@inline const OP_UNION: u32 = 3;
// @ts-ignore: decorator
@inline const OP_INTERSECTION: u32 = 4;
// @ts-ignore: decorator
@inline const OP_EXCLUSION: u32 = 5;

// The installed program.
let relationNames: u32 = 0;
let kindCount: u32 = 0;
let maxDepth: u32 = 25;
let ridOf: usize = 0;
let ridCode: usize = 0;
let code: usize = 0;
let reach: usize = 0;
let leopardRids: usize = 0;
let factRids: usize = 0;
// Placeholders the TypeScript side uses for an object / subject no tuple names: never kept as facts (two
// different unknown strings share a placeholder).
// @ts-ignore: decorator
@inline const FIRST_PLACEHOLDER: u32 = 0xfffffffd;
let factsUsable: bool = false;
// Facts kept per graph at most (0: none); at the limit a new fact replaces a little-used one (graph.ts).
let factLimit: u32 = 1 << 18;

export function eval_set_fact_limit(limit: u32): void {
  factLimit = limit;
  if (limit > 0) graphSetFactCapacity(limit);
}
let factHits: u64 = 0;

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

/** Installs a program block (see the header; the block must stay allocated while it is in use). */
export function eval_set_program(block: usize): void {
  relationNames = load<u32>(block, 4);
  kindCount = load<u32>(block, 12);
  maxDepth = load<u32>(block, 16);
  ridOf = block + ((<usize>load<u32>(block, 20)) << 2);
  ridCode = block + ((<usize>load<u32>(block, 24)) << 2);
  code = block + ((<usize>load<u32>(block, 28)) << 2);
  reach = block + ((<usize>load<u32>(block, 32)) << 2);
  leopardRids = block + ((<usize>load<u32>(block, 40)) << 2);
  factRids = block + ((<usize>load<u32>(block, 44)) << 2);
  if (memo == 0) memo = memo_new(2, 0x2545f491, 0x4f6cdd1d);
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

// @ts-ignore: decorator
@inline
function relationIndex(type: u32, relation: u32): u32 {
  if (type == ABSENT) return ABSENT;
  return load<u32>(ridOf + ((<usize>type * relationNames + relation) << 2));
}

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

function resolve(object: u32, type: u32, relation: u32, depth: u32, hop: bool): i32 {
  if (depth >= maxDepth) return TOO_COMPLEX;
  if (onPath(object, relation)) return CYCLE;
  if (qUserset && relation == qSubjectRelation && object == qSubject) return TRUE;
  // The reference consults its memo before these two, but both answer FALSE, as would any memo entry here.
  const rid = relationIndex(type, relation);
  if (rid == ABSENT) return FALSE;
  if (load<u8>(reach + <usize>rid * kindCount + qKind) == 0) return FALSE;
  const pc = code + ((<usize>load<u32>(ridCode + ((<usize>rid) << 2))) << 2);
  if (load<u32>(pc) == OP_DIRECT) {
    // A node with no tuple, or none naming a userset: its answer is its own edges, whatever the path, depth or
    // memo (no recursion below it), so it is answered without them.
    const node = graphNode(graph, object, relation);
    if (node == 0) return FALSE;
    if (nodeFlagged(node) == 0 && vecLength(nodeUsersets(node)) == 0) return directEdges(object, relation);
  }
  if (!qUserset && load<u8>(leopardRids + rid) != 0) {
    // A membership question on a recursive relation: one lookup when the Leopard index can answer exactly
    // (its answer is the walk's, so neither the memo nor a fact is needed for it).
    const lp = graphLeopard(graph);
    if (lp != 0) {
      const decided = leopard_decide(
        graph,
        lp,
        graphNodes(graph),
        type,
        relation,
        object,
        qSubject,
        qWildcard,
        maxDepth - 1 - depth,
      );
      if (decided >= 0) {
        leopardDecided++;
        return decided;
      }
      leopardUndecided++;
    }
  }
  // Facts are kept for the nodes a check enters by a hop to another object (the check's own node, a
  // tuple-to-userset parent, a userset): the subproblems other checks share. A node entered through a computed
  // userset is one of its object's own relations, kept in the per-check memo only: as exact, and cheaper.
  const asFact = hop && factsUsable && object < FIRST_PLACEHOLDER && load<u8>(factRids + rid) != 0;
  const memoed = asFact
    ? graphFact(graph, object, relation, qSubject, qSubjectRelation)
    : memo_get2(memo, object, relation);
  if (memoed != ABSENT && depth <= memoed >> 1) {
    if (asFact) factHits++;
    else memoHits++;
    return <i32>(memoed & 1);
  }
  resolved++;
  pushPath(object, relation);
  // A node entered by a hop replays its object plan when it has one: the same evaluation without re-reading
  // the object's structure.
  const plan =
    hop && object < FIRST_PLACEHOLDER && graphPlansOn() && load<u32>(pc) != OP_DIRECT
      ? planOf(object, type, relation, pc)
      : 0;
  const outcome =
    plan != 0 ? replay(plan + 4, object, type, relation, depth) : rewrite(pc, object, type, relation, depth);
  popPath();
  if (aborted) return FALSE;
  if (outcome <= TRUE && (memoed == ABSENT || memoed >> 1 < depth)) {
    remember(asFact, object, relation, (depth << 1) | <u32>outcome);
  }
  return outcome;
}

/** The exact tuple or the subject type's wildcard on (object, relation). */
// @ts-ignore: decorator
@inline
function directEdges(object: u32, relation: u32): i32 {
  if (graphHasEdge(graph, object, relation, qSubject, qSubjectRelation)) return TRUE;
  if (qWildcard != ABSENT && graphHasEdge(graph, object, relation, qWildcard, NO_REL)) return TRUE;
  return FALSE;
}

// @ts-ignore: decorator
@inline
function remember(asFact: bool, object: u32, relation: u32, value: u32): void {
  if (asFact) graphSetFact(graph, object, relation, qSubject, qSubjectRelation, value);
  else memo_set2(memo, object, relation, value);
}

export function eval_fact_hits(): u64 {
  return factHits;
}

// ---------------------------------------------------------------------------------------------------------------
// Object plans (see graph.ts for how they are kept): a node's rewrite compiled against the graph, so that every
// subject asking about the node replays it instead of reading the node's object again. A plan is built at the
// second question about a node (a node asked about once, like most of a batch's own objects, costs one marker).
//
// A plan mirrors `rewrite` exactly, with what it would read from the graph read in at build time:
//   P_FALSE   [0, 2]                            a relation rewriting to nothing, an absent node
//   P_UNION / P_INTERSECTION / P_EXCLUSION [1|2|3, n, children...]
//   P_CALL    [4, 3, relation]                  resolve(object, relation) as rewrite would (not read in: a
//                                               direct relation holding usersets or flagged tuples, a Leopard
//                                               relation, a computed cycle, a plan grown too large)
//   P_ENTER   [5, n, relation, rid, child]      resolve of a computed relation of the object, its rewrite inlined:
//                                               the same checks in the same order (depth, cycle on the path, the
//                                               userset-itself rule, reachability, the per-check memo)
//   P_SELF    [6, 3, relation]                  a computed relation that is absent or has no tuple: only the
//                                               userset-itself rule can make it TRUE (it is never on the path)
//   P_LEAF    [7, n, relation, rid, count, subjects...]  a direct relation whose tuples name no userset: TRUE for
//                                               the userset itself, FALSE when unreachable, else its edges
//   P_DIRECT  [8, n, count, subjects..., usersets, (subject, relation, type)...]  `direct` on the plan's own node
//   P_ABORT   [9, 2]                            a node with a flagged tuple: the check goes to the reference
//   P_TTU     [10, n, computed, count, (parent, type)...]  `tupleToUserset` (parents lacking `computed` left out)
// Edge lists (the plain-object and wildcard subjects of a node) are inline up to INLINE_EDGES, else count is
// HASHED and the edge table is asked, as `direct` does. Plans are at most MAX_PLAN_WORDS words.
// ---------------------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline const P_FALSE: u32 = 0;
// @ts-ignore: decorator
@inline const P_UNION: u32 = 1;
// @ts-ignore: decorator
@inline const P_INTERSECTION: u32 = 2;
// @ts-ignore: decorator
@inline const P_EXCLUSION: u32 = 3;
// @ts-ignore: decorator
@inline const P_CALL: u32 = 4;
// @ts-ignore: decorator
@inline const P_ENTER: u32 = 5;
// @ts-ignore: decorator
@inline const P_SELF: u32 = 6;
// @ts-ignore: decorator
@inline const P_LEAF: u32 = 7;
// @ts-ignore: decorator
@inline const P_DIRECT: u32 = 8;
// @ts-ignore: decorator
@inline const P_ABORT: u32 = 9;
// @ts-ignore: decorator
@inline const P_TTU: u32 = 10;
// @ts-ignore: decorator
@inline const HASHED: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const INLINE_EDGES: u32 = 8;
// @ts-ignore: decorator
@inline const MAX_PLAN_WORDS: u32 = 512;
// Relations inlined into one another at most (deeper computed chains are P_CALLs).
// @ts-ignore: decorator
@inline const MAX_INLINE: u32 = 16;

let planHits: u64 = 0;
let plansBuilt: u64 = 0;
// The plan being built: words at `pb` (capacity MAX_PLAN_WORDS), its length, and whether it overflowed.
let pb: usize = 0;
let pbLen: u32 = 0;
let pbOver: bool = false;
// Relations inlined on the way to the one being built (a computed cycle becomes a P_CALL).
let chain: usize = 0;
let chainLen: u32 = 0;

export function eval_set_plan_limit(limit: u32): void {
  graphSetPlanCapacity(limit);
}

export function eval_plan_hits(): u64 {
  return planHits;
}

export function eval_plans_built(): u64 {
  return plansBuilt;
}

/** The address of the node's plan, 0 when it has none (asked once so far, or too large). */
function planOf(object: u32, type: u32, relation: u32, pc: usize): usize {
  const entry = graphPlan(graph, object, relation);
  if (entry == ABSENT) {
    graphSetPlan(graph, object, relation, PLAN_SEEN);
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
  pbLen = 0;
  pbOver = false;
  chainLen = 1;
  store<u32>(chain, relation);
  buildRewrite(pc, object, type, relation);
  if (pbOver) {
    graphSetPlan(graph, object, relation, PLAN_NONE);
    return 0;
  }
  const bytes: usize = 4 + ((<usize>pbLen) << 2);
  const plan = heap.alloc(bytes);
  store<u32>(plan, <u32>bytes);
  memory.copy(plan + 4, pb, (<usize>pbLen) << 2);
  graphSetPlan(graph, object, relation, <u32>plan);
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

/** Writes the op's length (from `start` to the current end) into its second word. */
// @ts-ignore: decorator
@inline
function close(start: u32): void {
  if (start + 1 < MAX_PLAN_WORDS) store<u32>(pb + ((<usize>start + 1) << 2), pbLen - start);
}

/** The plan of rewrite `pc` on node (object, relation), read against the graph: mirrors `rewrite`. */
function buildRewrite(pc: usize, object: u32, type: u32, relation: u32): void {
  const op = load<u32>(pc);
  const start = pbLen;
  if (op == OP_DIRECT) {
    const node = graphNode(graph, object, relation);
    if (node == 0) {
      emit(P_FALSE);
      emit(2);
      return;
    }
    if (nodeFlagged(node) != 0) {
      emit(P_ABORT);
      emit(2);
      return;
    }
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
    if (node == 0) {
      emit(P_FALSE);
      emit(2);
      return;
    }
    if (nodeFlagged(node) != 0) {
      emit(P_ABORT);
      emit(2);
      return;
    }
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
    emit(op == OP_UNION ? P_UNION : op == OP_INTERSECTION ? P_INTERSECTION : P_EXCLUSION);
    emit(0);
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    for (let child = pc + 8; child < end; child += (<usize>load<u32>(child, 4)) << 2) {
      buildRewrite(child, object, type, relation);
    }
    close(start);
    return;
  }
  emit(P_FALSE); // NONE
  emit(2);
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
  if (rid == ABSENT) {
    emit(P_SELF);
    emit(3);
    emit(relation);
    return;
  }
  const pc = code + ((<usize>load<u32>(ridCode + ((<usize>rid) << 2))) << 2);
  if (load<u32>(pc) == OP_DIRECT) {
    // resolve's leaf shortcut, read in; anything else (usersets, flagged tuples, the Leopard index) is a call.
    const node = graphNode(graph, object, relation);
    if (node == 0) {
      emit(P_SELF);
      emit(3);
      emit(relation);
      return;
    }
    if (nodeFlagged(node) != 0 || vecLength(nodeUsersets(node)) != 0) {
      emitCall(relation);
      return;
    }
    emit(P_LEAF);
    emit(0);
    emit(relation);
    emit(rid);
    emitEdges(node);
    close(start);
    return;
  }
  for (let i: u32 = 0; i < chainLen; i++) {
    if (load<u32>(chain + ((<usize>i) << 2)) == relation) {
      emitCall(relation);
      return;
    }
  }
  if (chainLen == MAX_INLINE) {
    emitCall(relation);
    return;
  }
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

// @ts-ignore: decorator
@inline
function emitCall(relation: u32): void {
  emit(P_CALL);
  emit(3);
  emit(relation);
}

/** Whether the node's subject lists (P_LEAF / P_DIRECT layout at `at`) hold the subject or its wildcard. */
// @ts-ignore: decorator
@inline
function planEdges(at: usize, object: u32, relation: u32): i32 {
  const count = load<u32>(at);
  if (count == HASHED) {
    if (qUserset) return FALSE; // callers match usersets themselves
    return directEdges(object, relation);
  }
  if (qUserset) return FALSE;
  for (let i: u32 = 0; i < count; i++) {
    const s = load<u32>(at + 4 + ((<usize>i) << 2));
    if (s == qSubject || (s == qWildcard && qWildcard != ABSENT)) return TRUE;
  }
  return FALSE;
}

/** `rewrite` of a plan op: the same evaluation, the graph's structure read from the plan. */
function replay(pc: usize, object: u32, type: u32, relation: u32, depth: u32): i32 {
  const op = load<u32>(pc);
  if (op == P_TTU) return replayTtu(pc, depth);
  if (op == P_ENTER) return replayEnter(pc, object, type, depth);
  if (op == P_LEAF) {
    const r = load<u32>(pc, 8);
    if (qUserset && r == qSubjectRelation && object == qSubject) return TRUE;
    if (load<u8>(reach + <usize>load<u32>(pc, 12) * kindCount + qKind) == 0) return FALSE;
    return planEdges(pc + 16, object, r);
  }
  if (op == P_SELF) {
    return qUserset && load<u32>(pc, 8) == qSubjectRelation && object == qSubject ? TRUE : FALSE;
  }
  if (op == P_CALL) return resolve(object, type, load<u32>(pc, 8), depth, false);
  if (op == P_DIRECT) return replayDirect(pc, object, relation, depth);
  if (op == P_UNION) {
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    let child = pc + 8;
    let error = false;
    let cycle = false;
    while (child < end) {
      const outcome = replay(child, object, type, relation, depth);
      if (aborted) return FALSE;
      if (outcome == TRUE) return TRUE;
      if (outcome == CYCLE) cycle = true;
      else if (outcome == TOO_COMPLEX) error = true;
      child += (<usize>load<u32>(child, 4)) << 2;
    }
    return unionRest(error, cycle);
  }
  if (op == P_INTERSECTION) {
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    let child = pc + 8;
    let error = false;
    let cycle = false;
    while (child < end) {
      const outcome = replay(child, object, type, relation, depth);
      if (aborted) return FALSE;
      if (outcome == FALSE) return FALSE;
      if (outcome == CYCLE) cycle = true;
      else if (outcome == TOO_COMPLEX) error = true;
      child += (<usize>load<u32>(child, 4)) << 2;
    }
    return intersectionRest(error, cycle);
  }
  if (op == P_EXCLUSION) {
    const basePc = pc + 8;
    const base = replay(basePc, object, type, relation, depth);
    if (aborted) return FALSE;
    if (base == FALSE) return FALSE;
    const subtract = replay(basePc + ((<usize>load<u32>(basePc, 4)) << 2), object, type, relation, depth);
    if (aborted) return FALSE;
    return excluded(base, subtract);
  }
  if (op == P_ABORT) aborted = true;
  return FALSE; // P_FALSE, P_ABORT
}

/** `resolve` of a computed userset whose rewrite is inlined (hop = false: the per-check memo, no fact). */
function replayEnter(pc: usize, object: u32, type: u32, depth: u32): i32 {
  const relation = load<u32>(pc, 8);
  if (depth >= maxDepth) return TOO_COMPLEX;
  if (onPath(object, relation)) return CYCLE;
  if (qUserset && relation == qSubjectRelation && object == qSubject) return TRUE;
  if (load<u8>(reach + <usize>load<u32>(pc, 12) * kindCount + qKind) == 0) return FALSE;
  const memoed = memo_get2(memo, object, relation);
  if (memoed != ABSENT && depth <= memoed >> 1) {
    memoHits++;
    return <i32>(memoed & 1);
  }
  resolved++;
  pushPath(object, relation);
  const outcome = replay(pc + 16, object, type, relation, depth);
  popPath();
  if (aborted) return FALSE;
  if (outcome <= TRUE && (memoed == ABSENT || memoed >> 1 < depth)) {
    memo_set2(memo, object, relation, (depth << 1) | <u32>outcome);
  }
  return outcome;
}

/** `direct` on the node itself, its lists read from the plan. */
function replayDirect(pc: usize, object: u32, relation: u32, depth: u32): i32 {
  const edges = pc + 8;
  const count = load<u32>(edges);
  const usersetsAt = edges + 4 + (count == HASHED ? 0 : (<usize>count) << 2);
  const n = load<u32>(usersetsAt);
  if (qUserset) {
    for (let i: u32 = 0; i < n; i++) {
      const at = usersetsAt + 4 + <usize>i * 12;
      if (load<u32>(at) == qSubject && load<u32>(at, 4) == qSubjectRelation) return TRUE;
    }
  } else if (planEdges(edges, object, relation) == TRUE) {
    return TRUE;
  }
  let error = false;
  let cycle = false;
  for (let i: u32 = 0; i < n; i++) {
    const at = usersetsAt + 4 + <usize>i * 12;
    const outcome = resolve(load<u32>(at), load<u32>(at, 8), load<u32>(at, 4), depth + 1, true);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    if (outcome == CYCLE) cycle = true;
    else if (outcome == TOO_COMPLEX) error = true;
  }
  return unionRest(error, cycle);
}

/** `tupleToUserset`, its parents (and their types) read from the plan. */
function replayTtu(pc: usize, depth: u32): i32 {
  const computed = load<u32>(pc, 8);
  const n = load<u32>(pc, 12);
  let error = false;
  let cycle = false;
  for (let i: u32 = 0; i < n; i++) {
    const at = pc + 16 + ((<usize>i) << 3);
    const outcome = resolve(load<u32>(at), load<u32>(at, 4), computed, depth + 1, true);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    if (outcome == CYCLE) cycle = true;
    else if (outcome == TOO_COMPLEX) error = true;
  }
  return unionRest(error, cycle);
}

function rewrite(pc: usize, object: u32, type: u32, relation: u32, depth: u32): i32 {
  const op = load<u32>(pc);
  if (op == OP_DIRECT) return direct(object, relation, depth);
  if (op == OP_COMPUTED) return resolve(object, type, load<u32>(pc, 8), depth, false);
  if (op == OP_TTU) return tupleToUserset(object, load<u32>(pc, 8), load<u32>(pc, 12), depth);
  if (op == OP_UNION) {
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    let child = pc + 8;
    let error = false;
    let cycle = false;
    while (child < end) {
      const outcome = rewrite(child, object, type, relation, depth);
      if (aborted) return FALSE;
      if (outcome == TRUE) return TRUE;
      if (outcome == CYCLE) cycle = true;
      else if (outcome == TOO_COMPLEX) error = true;
      child += (<usize>load<u32>(child, 4)) << 2;
    }
    return unionRest(error, cycle);
  }
  if (op == OP_INTERSECTION) {
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    let child = pc + 8;
    let error = false;
    let cycle = false;
    while (child < end) {
      const outcome = rewrite(child, object, type, relation, depth);
      if (aborted) return FALSE;
      if (outcome == FALSE) return FALSE;
      if (outcome == CYCLE) cycle = true;
      else if (outcome == TOO_COMPLEX) error = true;
      child += (<usize>load<u32>(child, 4)) << 2;
    }
    return intersectionRest(error, cycle);
  }
  if (op == OP_EXCLUSION) {
    const basePc = pc + 8;
    const base = rewrite(basePc, object, type, relation, depth);
    if (aborted) return FALSE;
    if (base == FALSE) return FALSE;
    const subtract = rewrite(basePc + ((<usize>load<u32>(basePc, 4)) << 2), object, type, relation, depth);
    if (aborted) return FALSE;
    return excluded(base, subtract);
  }
  return FALSE; // NONE
}

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
  const entries = vecEntries(usersets);
  let error = false;
  let cycle = false;
  for (let i: u32 = 0; i < n; i++) {
    const at = entries + ((<usize>i) << 3);
    const subject = load<u32>(at);
    const outcome = resolve(subject, symbolType(subject), load<u32>(at, 4), depth + 1, true);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    if (outcome == CYCLE) cycle = true;
    else if (outcome == TOO_COMPLEX) error = true;
  }
  return unionRest(error, cycle);
}

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
  const entries = vecEntries(parents);
  let error = false;
  let cycle = false;
  for (let i: u32 = 0; i < n; i++) {
    const parent = load<u32>(entries + ((<usize>i) << 2));
    const parentType = symbolType(parent);
    // A parent whose type lacks the computed relation contributes nothing (not an error).
    if (relationIndex(parentType, computed) == ABSENT) continue;
    const outcome = resolve(parent, parentType, computed, depth + 1, true);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    if (outcome == CYCLE) cycle = true;
    else if (outcome == TOO_COMPLEX) error = true;
  }
  return unionRest(error, cycle);
}

// @ts-ignore: decorator
@inline
function setSubject(subject: u32, subjectRelation: u32, wildcard: u32, kind: u32, userset: u32): void {
  qSubject = subject;
  qSubjectRelation = subjectRelation;
  qWildcard = wildcard;
  qKind = kind;
  qUserset = userset != 0;
  factsUsable = maxDepth < 256 && relationNames < 0xffff && subject < FIRST_PLACEHOLDER && factLimit > 0;
}

/**
 * Checks object#relation for a subject over graph `g`: TRUE 1, FALSE 0, CYCLE 2 (false), TOO_COMPLEX 3, or
 * UNSUPPORTED 4 (the check read a flagged tuple: answer it with the reference). `type` is the object's type id
 * (the object may be a placeholder symbol when it was never interned). `subject`/`subjectRelation`: the subject
 * (relation NO_REL unless a userset); `wildcard`: its type's wildcard symbol or ABSENT; `kind`: its subject-kind id.
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
  setSubject(subject, subjectRelation, wildcard, kind, userset);
  memo_clear(memo);
  return run(object, type, relation);
}

function run(object: u32, type: u32, relation: u32): i32 {
  aborted = false;
  if (pathFilter == 0) {
    pathFilter = heap.alloc(128);
    memory.fill(pathFilter, 0, 128);
  }
  if (pathLen != 0) {
    // Left over by a trap (memory could not grow) in the previous check.
    pathLen = 0;
    memory.fill(pathFilter, 0, 128);
  }
  graphBeginPlanUse();
  const outcome = resolve(object, type, relation, 0, true);
  graphEndPlanUse();
  if (aborted) {
    memo_clear(memo);
    return UNSUPPORTED;
  }
  return outcome;
}

/**
 * Checks `count` requests of 9 u32 words each at `requests` ([object, type, relation, subject, subjectRelation,
 * wildcard, kind, userset, 0]), writing one outcome byte each to `out`. A request identical to an earlier one
 * (same object, relation, subject and subject relation: the other words follow from those) copies its outcome.
 * With `share` set (only for programs without intersection or exclusion, where a memoized TRUE/FALSE is a
 * path-independent reachability fact), consecutive requests for the same subject keep the memo, so each subgraph
 * is evaluated once per subject.
 */
export function eval_check_many(g: usize, requests: usize, count: u32, out: usize, share: u32): void {
  graph = g;
  if (seen == 0) seen = memo_new(4, 0x6a09e667, 0xbb67ae85);
  memo_clear(seen);
  let previous: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const r = requests + <usize>i * 36;
    const object = load<u32>(r);
    const relation = load<u32>(r, 8);
    const subject = load<u32>(r, 12);
    const subjectRelation = load<u32>(r, 16);
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
      share != 0 &&
      previous != 0 &&
      load<u32>(previous, 12) == subject &&
      load<u32>(previous, 16) == subjectRelation &&
      load<u32>(previous, 24) == load<u32>(r, 24);
    if (!same) {
      setSubject(subject, subjectRelation, load<u32>(r, 20), load<u32>(r, 24), load<u32>(r, 28));
      memo_clear(memo);
    }
    store<u8>(out + i, <u8>run(object, load<u32>(r, 4), relation));
    if (matchable) memo_set4(seen, object, relation, subject, subjectRelation, i);
    previous = r;
  }
}
