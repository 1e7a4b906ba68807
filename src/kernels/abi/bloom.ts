/**
 * The `bloom` kernel's contract (assembly/bloom.ts): the functions src/kernels/bloom.ts calls and the numbers both
 * sides size filters with. test/kernels/abi.test.ts checks it against the AssemblyScript source and bloom.wasm.
 */
import type { KernelAbi } from "./kernel-abi.js";

export const bloomAbi = {
  kernel: "bloom",
  exports: [
    "memory",
    "alloc",
    "free",
    "create",
    "destroy",
    "clear",
    "add",
    "mightContain",
    "addMany",
    "mightContainMany",
    "popCount",
    "checksum",
    // The cheapest call the kernel has: bench/bloom.bench.ts times the JS→WASM call cost with it.
    "bits",
  ],
  constants: {
    /** Bits in one block: one 64-byte cache line, where all of a key's bits live. */
    BLOCK_BITS: 512,
    /** Most bits a key sets (the kernel holds this many salts). */
    MAX_K: 32,
    /** Bytes a filter takes besides its bits: a 64-byte header and up to 64 bytes to align the bits. */
    FILTER_OVERHEAD: 128,
  },
} as const satisfies KernelAbi;
