/**
 * Compiles a Program to the evaluator kernel's program block (layout: assembly/evaluate/program.ts; the numbers
 * from src/kernels/abi/evaluate.ts): dense ids for types, relation names, relations and subject kinds, each
 * relation's rewrite as bytecode, and the reachability table (OpenFGA's PathExists, from the reference's own
 * analysis) so the kernel prunes exactly where the reference does. Runtime-neutral.
 */

import { evaluateAbi } from "../kernels/abi/evaluate.js";
import { ANY_CLASS, analyze } from "../model/analysis.js";
import type { Program, Rewrite } from "../model/program.js";
import { NexusError } from "../util/errors.js";

const abi = evaluateAbi.constants;
export const ABSENT = abi.ABSENT;
export const NO_REL = abi.NO_REL;

const OP = {
  direct: abi.OP_DIRECT,
  computed: abi.OP_COMPUTED,
  ttu: abi.OP_TTU,
  union: abi.OP_UNION,
  intersection: abi.OP_INTERSECTION,
  exclusion: abi.OP_EXCLUSION,
  none: abi.OP_NONE,
} as const;

export interface CompiledProgram {
  readonly program: Program;
  /** type name -> type id */
  readonly typeIds: ReadonlyMap<string, number>;
  /** relation name -> relation-name id (names are shared by every type) */
  readonly relationIds: ReadonlyMap<string, number>;
  /** `type#relation` -> relation index (rid), for defined relations */
  readonly rids: ReadonlyMap<string, number>;
  /** Subject kinds: a type's plain objects and wildcard are kind = type id; `type#relation` usersets numTypes + rid. */
  readonly kindCount: number;
  /** Whether no rewrite uses intersection or exclusion (memoized results are then path-independent facts). */
  readonly monotone: boolean;
  /**
   * Per relation index: whether no relation its evaluation can reach (itself included, through computed
   * usersets, tuple-to-usersets and the usersets its direct subjects allow) uses intersection or exclusion. Such
   * a relation's TRUE/FALSE is kept as a fact across checks, and answered by the Leopard index, even in a
   * program that uses them elsewhere (see assembly/evaluate.ts for why that is exact).
   */
  readonly unionOnly: readonly boolean[];
  /**
   * `type#relation` of the relations whose evaluation can reach a SpiceDB intersection arrow (`parent.all(view)`),
   * which the kernel does not evaluate: their checks go to the reference (empty for almost every model).
   */
  readonly routedRelations: ReadonlySet<string>;
  readonly maxDepth: number;
  /** Relations answered through the Leopard index where it can (ids: type, relation name, rid). */
  readonly leopardRelations: readonly { type: number; relation: number; rid: number }[];
  /** The block to copy into kernel memory. */
  readonly block: Uint32Array;
}

export function compileProgram(program: Program, maxDepth: number): CompiledProgram {
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 0xffff) {
    throw new NexusError("invalid_argument", `maxDepth must be an integer from 1 to 65535, got ${maxDepth}`);
  }
  const analysis = analyze(program);
  const typeIds = new Map<string, number>();
  const relationIds = new Map<string, number>();
  const rids = new Map<string, number>();
  const nameOf = (name: string): number => {
    let id = relationIds.get(name);
    if (id === undefined) {
      id = relationIds.size;
      relationIds.set(name, id);
    }
    return id;
  };
  let monotone = true;
  const visitNames = (rw: Rewrite): void => {
    switch (rw.kind) {
      case "computed":
        nameOf(rw.relation);
        return;
      case "ttu":
        if (rw.all === true) monotone = false;
        nameOf(rw.tupleset);
        nameOf(rw.computed);
        return;
      case "union":
        for (const c of rw.children) visitNames(c);
        return;
      case "intersection":
        monotone = false;
        for (const c of rw.children) visitNames(c);
        return;
      case "exclusion":
        monotone = false;
        visitNames(rw.base);
        visitNames(rw.subtract);
        return;
      default:
        return;
    }
  };
  const relations: { type: string; name: string; rewrite: Rewrite }[] = [];
  for (const [typeName, type] of program.types) {
    typeIds.set(typeName, typeIds.size);
    for (const [name, relation] of type.relations) {
      nameOf(name);
      rids.set(`${typeName}#${name}`, relations.length);
      relations.push({ type: typeName, name, rewrite: relation.rewrite });
      visitNames(relation.rewrite);
      for (const s of relation.directSubjects ?? []) if (s.relation !== undefined) nameOf(s.relation);
    }
  }
  const numTypes = typeIds.size;
  const numNames = relationIds.size;
  const numRids = relations.length;
  const kindCount = numTypes + numRids;

  const code: number[] = [];
  const emit = (rw: Rewrite): void => {
    const start = code.length;
    switch (rw.kind) {
      case "direct":
        code.push(OP.direct, 2);
        return;
      case "computed":
        code.push(OP.computed, 3, relationIds.get(rw.relation)!);
        return;
      case "ttu":
        code.push(OP.ttu, 4, relationIds.get(rw.tupleset)!, relationIds.get(rw.computed)!);
        return;
      case "none":
        code.push(OP.none, 2);
        return;
      case "union":
      case "intersection":
        code.push(OP[rw.kind], 0);
        for (const c of rw.children) emit(c);
        break;
      case "exclusion":
        code.push(OP.exclusion, 0);
        emit(rw.base);
        emit(rw.subtract);
        break;
    }
    code[start + 1] = code.length - start;
  };
  const ridCode: number[] = [];
  for (const r of relations) {
    ridCode.push(code.length);
    emit(r.rewrite);
  }

  const unionOnly = unionOnlyRelations(program, rids, relations);
  const routedRelations = new Set<string>();
  if (relations.some((r) => hasIntersectionArrow(r.rewrite))) {
    const reaching = relationsReaching(program, rids, relations, hasIntersectionArrow);
    for (const [i, r] of relations.entries()) if (reaching[i]) routedRelations.add(`${r.type}#${r.name}`);
  }
  // Relations that can reach a long chain of computed relations (which the kernel evaluates by recursion on its
  // own stack) go to the reference, which yields as it descends.
  const deep = deepComputedRewrites(relations, rids);
  if (deep.size > 0) {
    const reaching = relationsReaching(program, rids, relations, (rw) => deep.has(rw));
    for (const [i, r] of relations.entries()) if (reaching[i]) routedRelations.add(`${r.type}#${r.name}`);
  }

  const ridOfOff = abi.PROGRAM_HEADER;
  const ridCodeOff = ridOfOff + numTypes * numNames;
  const codeOff = ridCodeOff + numRids;
  const reachOff = codeOff + code.length;
  if (numRids * kindCount + numTypes * numNames > MAX_BLOCK_ENTRIES) {
    // The block holds a relations × subject kinds table: past this size the engine's default evaluator is the
    // reference (createEngine catches this; an explicit evaluator "wasm" reports it).
    throw new NexusError(
      "out_of_memory",
      `the model is too large for the WASM evaluator (${numRids} relations × ${kindCount} subject kinds; at most ${MAX_BLOCK_ENTRIES} entries)`,
      { relations: numRids, kinds: kindCount },
    );
  }
  const reachWords = Math.ceil((numRids * kindCount) / 4);
  const leopardOff = reachOff + reachWords;
  const factOff = leopardOff + Math.ceil(numRids / 4);
  const block = new Uint32Array(factOff + Math.ceil(numRids / 4));
  block[abi.PROGRAM_TYPES] = numTypes;
  block[abi.PROGRAM_RELATION_NAMES] = numNames;
  block[abi.PROGRAM_RELATIONS] = numRids;
  block[abi.PROGRAM_KINDS] = kindCount;
  block[abi.PROGRAM_MAX_DEPTH] = maxDepth;
  block[abi.PROGRAM_RID_OF] = ridOfOff;
  block[abi.PROGRAM_RID_CODE] = ridCodeOff;
  block[abi.PROGRAM_CODE] = codeOff;
  block[abi.PROGRAM_REACH] = reachOff;
  block[abi.PROGRAM_FLAGS] = +monotone;
  block[abi.PROGRAM_LEOPARD] = leopardOff;
  block[abi.PROGRAM_FACTS] = factOff;
  block.fill(ABSENT, ridOfOff, ridCodeOff);
  for (const [i, r] of relations.entries()) {
    block[ridOfOff + typeIds.get(r.type)! * numNames + relationIds.get(r.name)!] = i;
  }
  block.set(ridCode, ridCodeOff);
  block.set(code, codeOff);
  const reach = new Uint8Array(block.buffer, reachOff * 4, numRids * kindCount);
  const kindNames: string[] = [...typeIds.keys()];
  for (const r of relations) kindNames.push(`${r.type}#${r.name}`);
  // Kind by kind: the analysis lists the relations one kind reaches from one walk.
  for (let k = 0; k < kindCount; k++) {
    for (const node of analysis.relationsReachedBy(kindNames[k]!)) {
      const i = rids.get(node);
      if (i !== undefined) reach[i * kindCount + k] = 1;
    }
  }
  const facts = new Uint8Array(block.buffer, factOff * 4, numRids);
  for (const [i, only] of unionOnly.entries()) facts[i] = only ? 1 : 0;
  // Leopard relations: recursive direct relations (`member: [user, group#member]`, or Nexus's unrestricted
  // `member: {}`) whose answers are path-independent facts (nothing they reach uses intersection or exclusion).
  const leopard = new Uint8Array(block.buffer, leopardOff * 4, numRids);
  const leopardRelations: { type: number; relation: number; rid: number }[] = [];
  for (const [i, r] of relations.entries()) {
    if (!unionOnly[i] || r.rewrite.kind !== "direct") continue;
    const subjects = program.types.get(r.type)!.relations.get(r.name)!.directSubjects;
    if (subjects !== undefined && !subjects.some((s) => s.type === r.type && s.relation === r.name)) continue;
    leopard[i] = 1;
    leopardRelations.push({ type: typeIds.get(r.type)!, relation: relationIds.get(r.name)!, rid: i });
  }
  return {
    program,
    typeIds,
    relationIds,
    rids,
    kindCount,
    monotone,
    unionOnly,
    routedRelations,
    maxDepth,
    block,
    leopardRelations,
  };
}

/**
 * For each relation index, whether every relation its evaluation can reach uses only direct, computed,
 * tuple-to-userset, union and none: the type-level graph (a relation to the relations it computes, the parent
 * types' computed relation of its tuple-to-usersets, the usersets its direct subjects allow; any relation of any
 * type where a relation is unrestricted) over-approximates every graph of tuples, so an instance can only reach
 * what its type-level relation reaches.
 */
function unionOnlyRelations(
  program: Program,
  rids: ReadonlyMap<string, number>,
  relations: readonly { type: string; name: string; rewrite: Rewrite }[],
): boolean[] {
  const nonUnion = (rw: Rewrite): boolean =>
    rw.kind === "intersection" ||
    rw.kind === "exclusion" ||
    hasIntersectionArrow(rw) ||
    (rw.kind === "union" && rw.children.some(nonUnion));
  return relationsReaching(program, rids, relations, nonUnion).map((t) => !t);
}

/** Entries (u8/u32 mixed, counted as entries) of the per-model tables above which the kernel is not used. */
const MAX_BLOCK_ENTRIES = 64 * 1024 * 1024;

/** Computed chains longer than this (relations evaluated one inside another, on one object) go to the reference. */
const MAX_FAST_COMPUTED_CHAIN = 256;

/**
 * The rewrites of relations from which a chain of computed usersets (on one object, so within one type) may be
 * longer than MAX_FAST_COMPUTED_CHAIN: longest paths by Kahn's algorithm from the chain ends; relations on or
 * above a cycle of computed usersets count as their type's whole relation count (a bound on a simple path).
 */
function deepComputedRewrites(
  relations: readonly { type: string; name: string; rewrite: Rewrite }[],
  rids: ReadonlyMap<string, number>,
): Set<Rewrite> {
  const deep = new Set<Rewrite>();
  const perType = new Map<string, number>();
  for (const r of relations) perType.set(r.type, (perType.get(r.type) ?? 0) + 1);
  if (![...perType.values()].some((n) => n > MAX_FAST_COMPUTED_CHAIN)) return deep;
  const out: number[][] = relations.map((r) => {
    const targets = new Set<number>();
    const stack: Rewrite[] = [r.rewrite];
    while (stack.length > 0) {
      const rw = stack.pop()!;
      if (rw.kind === "computed") {
        const to = rids.get(`${r.type}#${rw.relation}`);
        if (to !== undefined) targets.add(to);
      } else if (rw.kind === "union" || rw.kind === "intersection") stack.push(...rw.children);
      else if (rw.kind === "exclusion") stack.push(rw.base, rw.subtract);
    }
    return [...targets];
  });
  const into: number[][] = relations.map(() => []);
  const pending = out.map((targets) => targets.length);
  for (const [from, targets] of out.entries()) for (const to of targets) into[to]!.push(from);
  const length = relations.map(() => 1);
  const queue = pending.flatMap((n, i) => (n === 0 ? [i] : []));
  const done = new Uint8Array(relations.length);
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head]!;
    done[node] = 1;
    for (const from of into[node]!) {
      length[from] = Math.max(length[from]!, length[node]! + 1);
      if (--pending[from]! === 0) queue.push(from);
    }
  }
  for (const [i, r] of relations.entries()) {
    const bound = done[i] === 1 ? length[i]! : perType.get(r.type)!;
    if (bound > MAX_FAST_COMPUTED_CHAIN) deep.add(r.rewrite);
  }
  return deep;
}

/** Whether a rewrite uses SpiceDB's intersection arrow (`tupleset.all(computed)`). */
function hasIntersectionArrow(rw: Rewrite): boolean {
  switch (rw.kind) {
    case "ttu":
      return rw.all === true;
    case "union":
    case "intersection":
      return rw.children.some(hasIntersectionArrow);
    case "exclusion":
      return hasIntersectionArrow(rw.base) || hasIntersectionArrow(rw.subtract);
    default:
      return false;
  }
}

/**
 * For each relation index, whether its evaluation can reach (itself included) a relation whose own rewrite
 * satisfies `marked`: a backward walk over what each relation's evaluation continues into (computed usersets,
 * tuple-to-userset targets, userset subjects, in every rewrite position: the model analysis's `edges.next`).
 */
function relationsReaching(
  program: Program,
  rids: ReadonlyMap<string, number>,
  relations: readonly { type: string; name: string; rewrite: Rewrite }[],
  marked: (rw: Rewrite) => boolean,
): boolean[] {
  const { next } = analyze(program).edges;
  const all = [...rids.values()];
  const edges: number[][] = relations.map((r) => {
    const out: number[] = [];
    for (const cls of next.get(`${r.type}#${r.name}`) ?? []) {
      if (cls === ANY_CLASS) return all;
      const rid = rids.get(cls);
      if (rid !== undefined) out.push(rid);
    }
    return out;
  });
  // Tainted: marked, or reaches a relation that is (a backward fixpoint).
  const tainted = relations.map((r) => marked(r.rewrite));
  const reverse: number[][] = relations.map(() => []);
  for (const [from, targets] of edges.entries()) for (const to of targets) reverse[to]!.push(from);
  const queue = tainted.flatMap((t, i) => (t ? [i] : []));
  for (let head = 0; head < queue.length; head++) {
    for (const from of reverse[queue[head]!]!) {
      if (tainted[from]) continue;
      tainted[from] = true;
      queue.push(from);
    }
  }
  return tainted;
}
