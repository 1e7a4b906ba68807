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

/** Whether relation `rid` is union-only, so its outcomes may be kept as facts. */
// @ts-ignore: decorator
@inline
export function factRelation(rid: u32): bool {
  return load<u8>(factRids + rid) != 0;
}
