/**
 * The `intern` kernel's contract (assembly/intern.ts, whose structures live in assembly/tables/): the functions
 * src/kernels/intern.ts calls, the interner header fields it reads without a call, and the codes batch calls
 * return. The evaluator kernel re-exports these functions too (it hosts interners and memo tables for its own
 * code), so its contract includes `internAbi.exports`. test/kernels/abi.test.ts checks both sides.
 */
import type { KernelAbi } from "./kernel-abi.js";

export const internAbi = {
  kernel: "intern",
  exports: [
    "memory",
    "alloc",
    "free",
    "interner_new",
    "interner_free",
    "interner_size",
    "interner_memory_bytes",
    "interner_reserve",
    "interner_intern",
    "interner_lookup",
    "interner_intern_batch",
    "interner_lookup_batch",
    "memo_new",
    "memo_free",
    "memo_size",
    "memo_capacity",
    "memo_memory_bytes",
    "memo_generation",
    "memo_set_generation",
    "memo_reserve",
    "memo_get2",
    "memo_get3",
    "memo_get4",
    "memo_set2",
    "memo_set3",
    "memo_set4",
    "memo_delete2",
    "memo_delete3",
    "memo_delete4",
    "memo_clear",
    "memo_get_many",
    "memo_set_many",
    "memo_delete_many",
    "memo_copy_entries",
  ],
  constants: {
    /** "No symbol" / "no value": the u32 batch lookups write for a miss, and the one value a memo table refuses. */
    ABSENT: 0xffffffff,
    /** Byte offset of the interner header's symbol count (u32). */
    I_SIZE: 8,
    /**
     * Byte offset of the interner header's pointer to its entries: per symbol [u32 bytes pointer], the byte length
     * being the u32 (unaligned) right before the bytes.
     */
    I_ENTRIES: 16,
    /** Bytes of one entries record. */
    I_ENTRY_BYTES: 4,
    /** What a batch call returns, having changed nothing, when it would pass a structure's hard limit. */
    LIMIT_REACHED: -1,
    /** memo_set_many returns BAD_VALUE - i, having changed nothing, when values[i] is ABSENT. */
    BAD_VALUE: -2,
  },
} as const satisfies KernelAbi;
