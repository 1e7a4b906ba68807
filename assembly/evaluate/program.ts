// The installed program: a model compiled by src/wasm-eval/compile.ts into one block of u32 words that the
// evaluator (evaluate.ts) and the plan builder (plan.ts) read. The bytecode's opcodes and the block's header
// offsets are shared with the TypeScript side through src/kernels/abi/evaluate.ts.
//
// Bytecode, one node per rewrite, u32 words [op, length in words, operands..., children...]:
//   0 DIRECT [0, 2]                  1 COMPUTED [1, 3, relation]        2 TTU [2, 4, tupleset, computed]
//   3 UNION [3, n, children...]      4 INTERSECTION [4, n, children...] 5 EXCLUSION [5, n, base, subtract]
//   6 NONE [6, 2]
// Program block (u32 words): a header of PROGRAM_HEADER words [types, relation names, relation count, subject
// kinds, max depth, @ridOf, @ridCode, @code, @reach, flags, @leopard, @facts] (@: word offset in the block) then
// the tables: ridOf[type × names + name] = relation index (rid) or ABSENT; ridCode[rid] = word offset of its
// rewrite in code; reach (bytes) [rid × kinds + kind] = whether that subject kind can reach it; leopard (bytes)
// [rid] = whether the relation is answered through the Leopard index (leopard.ts) when it can; facts (bytes)
// [rid] = whether the relation is "union-only": nothing its evaluation can reach uses intersection or exclusion
// (compile.ts computes it on the type-level graph, which over-approximates every graph of tuples).

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;

// Opcodes.
// @ts-ignore: decorator
@inline export const OP_DIRECT: u32 = 0;
// @ts-ignore: decorator
@inline export const OP_COMPUTED: u32 = 1;
// @ts-ignore: decorator
@inline export const OP_TTU: u32 = 2;
// @ts-ignore: decorator
@inline export const OP_UNION: u32 = 3;
// @ts-ignore: decorator
@inline export const OP_INTERSECTION: u32 = 4;
// @ts-ignore: decorator
@inline export const OP_EXCLUSION: u32 = 5;
// @ts-ignore: decorator
@inline export const OP_NONE: u32 = 6;

// Program header, word offsets.
// @ts-ignore: decorator
@inline const PROGRAM_TYPES: usize = 0;
// @ts-ignore: decorator
@inline const PROGRAM_RELATION_NAMES: usize = 1;
// @ts-ignore: decorator
@inline const PROGRAM_RELATIONS: usize = 2;
// @ts-ignore: decorator
@inline const PROGRAM_KINDS: usize = 3;
// @ts-ignore: decorator
@inline const PROGRAM_MAX_DEPTH: usize = 4;
// @ts-ignore: decorator
@inline const PROGRAM_RID_OF: usize = 5;
// @ts-ignore: decorator
@inline const PROGRAM_RID_CODE: usize = 6;
// @ts-ignore: decorator
@inline const PROGRAM_CODE: usize = 7;
// @ts-ignore: decorator
@inline const PROGRAM_REACH: usize = 8;
// @ts-ignore: decorator
@inline const PROGRAM_FLAGS: usize = 9;
// @ts-ignore: decorator
@inline const PROGRAM_LEOPARD: usize = 10;
// @ts-ignore: decorator
@inline const PROGRAM_FACTS: usize = 11;
// @ts-ignore: decorator
@inline const PROGRAM_HEADER: usize = 12;

let relationNames: u32 = 0;
let kindCount: u32 = 0;
let depthLimit: u32 = 25;
let ridOf: usize = 0;
let ridCode: usize = 0;
let code: usize = 0;
let reach: usize = 0;
let leopardRids: usize = 0;
let factRids: usize = 0;
// Bytes [rid]: whether a node of the relation gets an object plan (planWorthy), owned here.
let planRids: usize = 0;

// A plan replaces the node reads of its rewrite (computed relations of the object inlined) with one plan-table
// look-up and the plan's block. A rewrite reading two of the object's nodes gains nothing by it: the peer
// workload's `view: viewer or view from parent` on folders, kernel-only replay of 2,000 first-pass single checks
// per set (256 KB of other memory touched between checks, two kernels alternated in one process): median 2.24 ->
// 1.82 us without plans, and batches of 1,000 1,039 -> 941 us. Rewrites reading more nodes keep their plans.
// @ts-ignore: decorator
@inline const PLAN_MIN_READS: u32 = 3;
// Computed relations followed at most when counting a rewrite's reads (a computed cycle stops there).
// @ts-ignore: decorator
@inline const READS_MAX_INLINE: u32 = 16;

/** Address of the table whose word offset the header holds at `field`. */
// @ts-ignore: decorator
@inline
function table(block: usize, field: usize): usize {
  return block + ((<usize>load<u32>(block + (field << 2))) << 2);
}

/** Installs a program block (the block must stay allocated while it is in use). */
export function installProgram(block: usize): void {
  relationNames = load<u32>(block + (PROGRAM_RELATION_NAMES << 2));
  kindCount = load<u32>(block + (PROGRAM_KINDS << 2));
  depthLimit = load<u32>(block + (PROGRAM_MAX_DEPTH << 2));
  ridOf = table(block, PROGRAM_RID_OF);
  ridCode = table(block, PROGRAM_RID_CODE);
  code = table(block, PROGRAM_CODE);
  reach = table(block, PROGRAM_REACH);
  leopardRids = table(block, PROGRAM_LEOPARD);
  factRids = table(block, PROGRAM_FACTS);
  markPlanWorthy(block);
}

/** Fills planRids: for each type's relations, whether the rewrite reads at least PLAN_MIN_READS nodes. */
function markPlanWorthy(block: usize): void {
  const types = load<u32>(block + (PROGRAM_TYPES << 2));
  const relations = load<u32>(block + (PROGRAM_RELATIONS << 2));
  if (planRids != 0) heap.free(planRids);
  planRids = heap.alloc(<usize>max<u32>(relations, 1));
  memory.fill(planRids, 0, <usize>max<u32>(relations, 1));
  for (let t: u32 = 0; t < types; t++) {
    for (let n: u32 = 0; n < relationNames; n++) {
      const rid = relationIndex(t, n);
      if (rid == ABSENT || rid >= relations) continue;
      if (nodeReads(t, rewriteOf(rid), 0) >= PLAN_MIN_READS) store<u8>(planRids + rid, 1);
    }
  }
}

/** The nodes of its object that the rewrite at `pc` reads (a direct relation or a tupleset: one each). */
function nodeReads(type: u32, pc: usize, inlined: u32): u32 {
  const op = load<u32>(pc);
  if (op == OP_DIRECT || op == OP_TTU) return 1;
  if (op == OP_COMPUTED) {
    const rid = relationIndex(type, load<u32>(pc, 8));
    if (rid == ABSENT) return 0;
    if (inlined >= READS_MAX_INLINE) return PLAN_MIN_READS;
    return nodeReads(type, rewriteOf(rid), inlined + 1);
  }
  if (op == OP_UNION || op == OP_INTERSECTION || op == OP_EXCLUSION) {
    const end = pc + ((<usize>load<u32>(pc, 4)) << 2);
    let reads: u32 = 0;
    for (let child = pc + 8; child < end; child += (<usize>load<u32>(child, 4)) << 2) {
      reads += nodeReads(type, child, inlined);
    }
    return reads;
  }
  return 0; // OP_NONE
}

/** The resolution depth limit (the reference's maxDepth). */
// @ts-ignore: decorator
@inline
export function maxDepth(): u32 {
  return depthLimit;
}

/** How many relation names there are (relation ids are below it). */
// @ts-ignore: decorator
@inline
export function relationNameCount(): u32 {
  return relationNames;
}

/** The relation index (rid) of `type#relation`, ABSENT when the type lacks it (or the type is unknown). */
// @ts-ignore: decorator
@inline
export function relationIndex(type: u32, relation: u32): u32 {
  if (type == ABSENT) return ABSENT;
  return load<u32>(ridOf + ((<usize>type * relationNames + relation) << 2));
}

/** Address of relation `rid`'s rewrite bytecode. */
// @ts-ignore: decorator
@inline
export function rewriteOf(rid: u32): usize {
  return code + ((<usize>load<u32>(ridCode + ((<usize>rid) << 2))) << 2);
}

/** Whether subjects of kind `kind` can reach relation `rid` at all. */
// @ts-ignore: decorator
@inline
export function reachable(rid: u32, kind: u32): bool {
  return load<u8>(reach + <usize>rid * kindCount + kind) != 0;
}

/** Whether relation `rid` is answered through the Leopard index where it can be. */
// @ts-ignore: decorator
@inline
export function leopardRelation(rid: u32): bool {
  return load<u8>(leopardRids + rid) != 0;
}

/** Whether nodes of relation `rid` get object plans (evaluate/plan.ts): its rewrite reads enough nodes. */
// @ts-ignore: decorator
@inline
export function planWorthy(rid: u32): bool {
  return load<u8>(planRids + rid) != 0;
}

/** Whether relation `rid` is union-only, so its outcomes may be kept as facts. */
// @ts-ignore: decorator
@inline
export function factRelation(rid: u32): bool {
  return load<u8>(factRids + rid) != 0;
}
