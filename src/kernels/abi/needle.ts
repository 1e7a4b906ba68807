/**
 * The `needle` kernel's contract (assembly/needle.ts): the functions src/blobs/volume/needle-index.ts calls and the
 * bit layout of the location word both sides pack and unpack. test/kernels/abi.test.ts checks it against the
 * AssemblyScript source and needle.wasm.
 */
import type { KernelAbi } from "./kernel-abi.js";

export const needleAbi = {
  kernel: "needle",
  exports: [
    "memory",
    "init",
    "set",
    "get",
    "resultOffset8",
    "remove",
    "lookupBatch",
    "batchKeysPtr",
    "batchOutPtr",
    "count",
    "setMergeThreshold",
    "setPageLimit",
    "flush",
    "clear",
    "l0Capacity",
    "readRange",
    "baseSize",
  ],
  constants: {
    /** Keys one lookupBatch call takes ((lo, hi) u32 pairs at batchKeysPtr); readRange writes at most half. */
    BATCH: 4096,
    /** packed = volume << LEN_BITS | length/8. */
    LEN_BITS: 18,
    /** length/8 at this value means "2 MiB or more: the caller keeps the length". */
    LEN_LARGE: 2 ** 18 - 1,
    /** Largest volume id the index can hold (14 bits). */
    MAX_VOLUME: 2 ** 14 - 1,
    /** Bytes of one lookupBatch result at batchOutPtr: offset/8 u32, packed u32. */
    RESULT_BYTES: 8,
    /** Bytes of one readRange record at batchOutPtr: key lo u32, key hi u32, offset/8 u32, packed u32. */
    RANGE_RECORD_BYTES: 16,
  },
} as const satisfies KernelAbi;
