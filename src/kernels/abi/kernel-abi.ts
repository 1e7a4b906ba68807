/**
 * The contract between a WebAssembly kernel (assembly/<kernel>.ts, compiled to <kernel>.wasm) and the TypeScript
 * that calls it, written once: each kernel's file in this folder describes it, the TypeScript side imports its
 * numbers from there, and test/kernels/abi.test.ts checks the AssemblyScript source declares the same numbers and
 * the built .wasm exports exactly the listed names.
 */
export interface KernelAbi {
  /** The .wasm file's name without extension; assembly/<kernel>.ts is its entry file. */
  readonly kernel: string;
  /** Every name the .wasm exports (functions, globals, memory), and nothing more. */
  readonly exports: readonly string[];
  /**
   * Numbers both sides must agree on (opcodes, outcome codes, record sizes and field offsets), each under the name
   * the AssemblyScript source declares it with (`const NAME: i32 = value` or `export const NAME ...`).
   */
  readonly constants: Readonly<Record<string, number>>;
}
