// Interned symbols and memo tables over raw linear memory: the base that the compiled tuple graph, the evaluator's
// memo caches and the Leopard index build on. Every structure is a header in raw memory addressed by a pointer and
// every function takes that pointer, so another kernel can `import` these functions (or `export * from "./intern"`
// to host the TypeScript classes too) and keep symbols and memo tables in the same linear memory as its own data.
// No module-level state except one static, read-only "empty table" slot; no managed objects.
//
// This file is the kernel's entry: it exports exactly the functions src/kernels/intern.ts calls (the list is
// src/kernels/abi/intern.ts). The structures live in tables/: interner.ts (strings -> symbols), memo.ts (u32 keys
// -> u32 values) and common.ts (what both share).
//
// Failure model: an allocation that memory.grow cannot satisfy traps (TLSF's `unreachable`). Every operation that
// may allocate does all of its allocation first, through a reserve step whose stages each leave a valid structure,
// and only then writes: a trap therefore leaves the structure exactly as it was (possibly with more capacity). A
// request beyond a structure's hard limits (one TLSF block is at most 1 GiB) returns a failure value instead.
//
// The kernel uses no SIMD on purpose: it is the base of the evaluator, which must load where SIMD is missing.
export { alloc, free } from "./lib/memory";
export {
  interner_free,
  interner_intern,
  interner_intern_batch,
  interner_lookup,
  interner_lookup_batch,
  interner_memory_bytes,
  interner_new,
  interner_reserve,
  interner_size,
} from "./tables/interner";
export {
  memo_capacity,
  memo_clear,
  memo_copy_entries,
  memo_delete2,
  memo_delete3,
  memo_delete4,
  memo_delete_many,
  memo_free,
  memo_generation,
  memo_get2,
  memo_get3,
  memo_get4,
  memo_get_many,
  memo_memory_bytes,
  memo_new,
  memo_reserve,
  memo_set2,
  memo_set3,
  memo_set4,
  memo_set_generation,
  memo_set_many,
  memo_size,
} from "./tables/memo";
