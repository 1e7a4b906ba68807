/** nexus-fast/node: everything in the root entry plus the Node-only pieces (worker pool, thresholds). */

export * from "./index.js";
export { type RunOptions, WorkerPool, type WorkerPoolOptions } from "./parallel/pool.js";
export {
  enableParallelBulkCheck,
  ParallelBulkChecker,
  type ParallelBulkOptions,
} from "./wasm-eval/parallel.js";
