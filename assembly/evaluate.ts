// The check evaluator: runs a model compiled to a small bytecode (src/fast/compile.ts) over a compiled tuple graph
// (graph.ts), with the reference evaluator's semantics (src/check/check.ts) step for step: the same order of
// checks in `resolve` (depth limit, cycle on the path, the userset-itself rule, the per-check memo with depths,
// the relation's existence, reachability by subject kind), the same visiting order of tuples and children, and
// the same outcome algebra (TRUE, FALSE, CYCLE, TOO_COMPLEX). So its answers are the reference's, including where
// the per-check memo makes the answer depend on the order of evaluation in cyclic models.
//
// What it does not evaluate it does not guess: reading a node that holds a flagged tuple (a condition, an expiry,
// a cross-tenant subject) aborts the check with UNSUPPORTED and the caller answers it with the reference.
//
// Bytecode, one node per rewrite, u32 words [op, length in words, operands..., children...]:
//   0 DIRECT [0, 2]                  1 COMPUTED [1, 3, relation]        2 TTU [2, 4, tupleset, computed]
//   3 UNION [3, n, children...]      4 INTERSECTION [4, n, children...] 5 EXCLUSION [5, n, base, subtract]
//   6 NONE [6, 2]
// Program block (u32 words): [types, relation names, relation count, subject kinds, max depth, @ridOf, @ridCode,
// @code, @reach, flags, @leopard] then the tables: ridOf[type × names + name] = relation index or ABSENT; ridCode[rid] =
// word offset of its rewrite in code; reach (bytes) [rid × kinds + kind] = whether that subject kind can reach it;
// leopard (bytes) [rid] = whether the relation is answered through the Leopard index (leopard.ts) when it can.
export * from "./leopard";
import { leopard_decide } from "./leopard";
import {
  graph_clear_facts,
  graphFact,
  graphFacts,
  graphHasEdge,
  graphSetFact,
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
import { memo_clear, memo_get2, memo_new, memo_set2, memo_size } from "./intern";

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
// Whether TRUE/FALSE results are path-independent (no intersection, no exclusion): then they are kept as facts
// per (node, subject) across checks at the graph's revision (graph.ts), not only for one check.
let monotone: bool = false;
// Placeholders the TypeScript side uses for an object / subject no tuple names: never kept as facts (two
// different unknown strings share a placeholder).
// @ts-ignore: decorator
@inline const FIRST_PLACEHOLDER: u32 = 0xfffffffd;
let factsUsable: bool = false;
// Facts kept per graph at most (then they are all forgotten at the next check: a size cap, not invalidation).
let factLimit: u32 = 1 << 18;

export function eval_set_fact_limit(limit: u32): void {
  factLimit = limit;
}
let factHits: u64 = 0;

// The current check.
let graph: usize = 0;
let memo: usize = 0;
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
  monotone = load<u32>(block, 36) != 0;
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
}

function resolve(object: u32, type: u32, relation: u32, depth: u32): i32 {
  if (depth >= maxDepth) return TOO_COMPLEX;
  for (let i: u32 = 0; i < pathLen; i++) {
    const at = path + ((<usize>i) << 3);
    if (load<u32>(at) == object && load<u32>(at, 4) == relation) return CYCLE;
  }
  if (qUserset && relation == qSubjectRelation && object == qSubject) return TRUE;
  const asFact = factsUsable && object < FIRST_PLACEHOLDER;
  const memoed = asFact
    ? graphFact(graph, object, relation, qSubject, qSubjectRelation)
    : memo_get2(memo, object, relation);
  if (memoed != ABSENT && depth <= memoed >> 1) {
    if (asFact) factHits++;
    else memoHits++;
    return <i32>(memoed & 1);
  }
  const rid = relationIndex(type, relation);
  if (rid == ABSENT) return FALSE;
  if (load<u8>(reach + <usize>rid * kindCount + qKind) == 0) return FALSE;
  if (!qUserset && load<u8>(leopardRids + rid) != 0) {
    // A membership question on a recursive relation: one lookup when the Leopard index can answer exactly.
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
        if (memoed == ABSENT || memoed >> 1 < depth) remember(asFact, object, relation, (depth << 1) | <u32>decided);
        return decided;
      }
      leopardUndecided++;
    }
  }
  resolved++;
  pushPath(object, relation);
  const outcome = rewrite(code + ((<usize>load<u32>(ridCode + ((<usize>rid) << 2))) << 2), object, type, relation, depth);
  pathLen--;
  if (aborted) return FALSE;
  if (outcome <= TRUE && (memoed == ABSENT || memoed >> 1 < depth)) {
    remember(asFact, object, relation, (depth << 1) | <u32>outcome);
  }
  return outcome;
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

function rewrite(pc: usize, object: u32, type: u32, relation: u32, depth: u32): i32 {
  const op = load<u32>(pc);
  if (op == OP_DIRECT) return direct(object, relation, depth);
  if (op == OP_COMPUTED) return resolve(object, type, load<u32>(pc, 8), depth);
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
    return error ? TOO_COMPLEX : cycle ? CYCLE : FALSE;
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
    return cycle ? CYCLE : error ? TOO_COMPLEX : TRUE;
  }
  if (op == OP_EXCLUSION) {
    const basePc = pc + 8;
    const base = rewrite(basePc, object, type, relation, depth);
    if (aborted) return FALSE;
    if (base == FALSE) return FALSE;
    const subtract = rewrite(basePc + ((<usize>load<u32>(basePc, 4)) << 2), object, type, relation, depth);
    if (aborted) return FALSE;
    if (subtract == TRUE) return FALSE;
    if (base == CYCLE || subtract == CYCLE) return CYCLE;
    if (base == TOO_COMPLEX || subtract == TOO_COMPLEX) return TOO_COMPLEX;
    return TRUE;
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
  if (graphHasEdge(graph, object, relation, qSubject, qSubjectRelation)) return TRUE;
  if (qWildcard != ABSENT && graphHasEdge(graph, object, relation, qWildcard, NO_REL)) return TRUE;
  const usersets = nodeUsersets(node);
  const n = vecLength(usersets);
  if (n == 0) return FALSE;
  const entries = vecEntries(usersets);
  let error = false;
  let cycle = false;
  for (let i: u32 = 0; i < n; i++) {
    const at = entries + ((<usize>i) << 3);
    const subject = load<u32>(at);
    const outcome = resolve(subject, symbolType(subject), load<u32>(at, 4), depth + 1);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    if (outcome == CYCLE) cycle = true;
    else if (outcome == TOO_COMPLEX) error = true;
  }
  return error ? TOO_COMPLEX : cycle ? CYCLE : FALSE;
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
    const outcome = resolve(parent, parentType, computed, depth + 1);
    if (aborted) return FALSE;
    if (outcome == TRUE) return TRUE;
    if (outcome == CYCLE) cycle = true;
    else if (outcome == TOO_COMPLEX) error = true;
  }
  return error ? TOO_COMPLEX : cycle ? CYCLE : FALSE;
}

// @ts-ignore: decorator
@inline
function setSubject(subject: u32, subjectRelation: u32, wildcard: u32, kind: u32, userset: u32): void {
  qSubject = subject;
  qSubjectRelation = subjectRelation;
  qWildcard = wildcard;
  qKind = kind;
  qUserset = userset != 0;
  factsUsable = monotone && maxDepth < 256 && subject < FIRST_PLACEHOLDER && factLimit > 0;
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
  if (factsUsable && memo_size(graphFacts(graph)) >= factLimit) graph_clear_facts(graph);
  aborted = false;
  pathLen = 0;
  const outcome = resolve(object, type, relation, 0);
  if (aborted) {
    memo_clear(memo);
    return UNSUPPORTED;
  }
  return outcome;
}

/**
 * Checks `count` requests of 9 u32 words each at `requests` ([object, type, relation, subject, subjectRelation,
 * wildcard, kind, userset, 0]), writing one outcome byte each to `out`. With `share` set (only for programs
 * without intersection or exclusion, where a memoized TRUE/FALSE is a path-independent reachability fact),
 * consecutive requests for the same subject keep the memo, so each subgraph is evaluated once per subject.
 */
export function eval_check_many(g: usize, requests: usize, count: u32, out: usize, share: u32): void {
  graph = g;
  let previous: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const r = requests + <usize>i * 36;
    const same =
      share != 0 &&
      previous != 0 &&
      load<u32>(previous, 12) == load<u32>(r, 12) &&
      load<u32>(previous, 16) == load<u32>(r, 16) &&
      load<u32>(previous, 24) == load<u32>(r, 24);
    if (!same) {
      setSubject(load<u32>(r, 12), load<u32>(r, 16), load<u32>(r, 20), load<u32>(r, 24), load<u32>(r, 28));
      memo_clear(memo);
    }
    store<u8>(out + i, <u8>run(load<u32>(r), load<u32>(r, 4), load<u32>(r, 8)));
    previous = r;
  }
}
