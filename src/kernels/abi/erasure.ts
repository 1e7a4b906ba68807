/**
 * The `erasure` kernel's contract (assembly/erasure.ts; erasure.scalar.wasm is the same source built without SIMD
 * and has the same contract): the functions src/kernels/erasure.ts calls and the field both sides compute in.
 * test/kernels/abi.test.ts checks it against the AssemblyScript source and both .wasm builds.
 */
import type { KernelAbi } from "./kernel-abi.js";

export const erasureAbi = {
  kernel: "erasure",
  exports: [
    "memory",
    "alloc",
    "free",
    "gfInv",
    "mulMatrices",
    "invertMatrix",
    "equalBytes",
    "planBytes",
    "buildPlan",
    "applyPlan",
    // Field multiplication alone: test/kernels/erasure.test.ts checks the kernel's field against the twin's with it.
    "gfMul",
  ],
  constants: {
    /** Elements of GF(2^8): at most this many shards, data and parity together. */
    FIELD_SIZE: 256,
    /** The field's polynomial x^8 + x^4 + x^3 + x^2 + 1 (test/twins/erasure.ts builds the same field). */
    POLY: 0x11d,
  },
} as const satisfies KernelAbi;
