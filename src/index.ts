/**
 * nexus-fast: the root entry. Browser- and edge-safe: nothing reachable from here imports a `node:` module.
 * Node-only pieces live behind `nexus-fast/node` and `nexus-fast/storage`.
 */
export { describe, isNexusError, NexusError, type NexusErrorCode } from "./errors.js";
export {
  Interner,
  type InternerOptions,
  type InternKernel,
  type InternKernelExports,
  type MemoArity,
  MemoTable,
  type MemoTableOptions,
} from "./kernels/intern.js";
export type { ModelFormat, Program } from "./model/program.js";
export {
  getParallelThreshold,
  type ParallelOperation,
  resetParallelThresholds,
  setParallelThreshold,
} from "./parallel/thresholds.js";
export { isReady, ready, simdSupported } from "./wasm/loader.js";
