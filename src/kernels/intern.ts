/**
 * Interned symbols and memo tables, backed by the `intern` WASM kernel (assembly/intern.ts).
 *
 * - `Interner`: string -> dense u32 symbol (0, 1, 2, ... in first-seen order, stable for the interner's life), with
 *   reverse lookup. Strings are compared as UTF-8 bytes, so they must be well-formed UTF-16: a lone surrogate would
 *   encode to U+FFFD and silently alias another string, so it is rejected instead.
 * - `MemoTable`: (u32, u32[, u32[, u32]]) -> u32 value, with O(1) `clear()`. Values are u32 except
 *   `MemoTable.ABSENT` (0xFFFFFFFF), which the batched calls use for "no value" and which `set` rejects.
 *
 * Both live in raw linear memory of a kernel instance (by default the realm's shared `intern` instance; pass
 * `kernel` to host them in another kernel that re-exports these functions, e.g. the evaluator, whose WASM code can
 * then use the same structures through `pointer`). Single calls cost one WASM call; batched calls pack their input
 * into a per-kernel scratch buffer and cost one WASM call per batch. Runtime-neutral: no `node:` imports.
 *
 * The classes live in interner.ts and memo-table.ts, the kernel they share in intern-host.ts; this module is
 * their one entry point.
 */
export type { InternKernel, InternKernelExports } from "./intern-host.js";
export { Interner, type InternerOptions } from "./interner.js";
export { type MemoArity, MemoTable, type MemoTableOptions } from "./memo-table.js";
