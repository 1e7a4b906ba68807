/**
 * Parallel thresholds: the batch size above which an operation is split across the worker pool. Runtime-neutral
 * (the pool itself is Node-only); defaults are chosen from bench/ measurements so the parallel path is never slower
 * than one thread. A threshold of Infinity turns an operation's parallel path off.
 */
import { NexusError } from "../util/errors.js";

export type ParallelOperation = "bulkCheck" | "listObjects" | "hash" | "erasure";

const defaults: Record<ParallelOperation, number> = {
  // Measured on 2 cores (bench/wasm-eval.bench.ts): a 100,000-check batch on the pool ran at 0.57-1.32x one thread,
  // never reliably faster, so the parallel path is off until a machine shows a gain.
  bulkCheck: Number.POSITIVE_INFINITY,
  listObjects: 50_000,
  hash: 64,
  // Measured on 2 cores (bench/erasure.bench.ts): a 32 MiB encode on the pool ran at 0.33x one thread, so the
  // parallel path is off until a machine shows a gain; setParallelThreshold("erasure", bytes) turns it on.
  erasure: Number.POSITIVE_INFINITY,
};

const current: Record<ParallelOperation, number> = { ...defaults };

function assertOperation(op: string): asserts op is ParallelOperation {
  if (!Object.hasOwn(defaults, op)) {
    throw new NexusError("invalid_argument", `unknown parallel operation ${JSON.stringify(op)}`, {
      op,
      known: Object.keys(defaults),
    });
  }
}

/** Sets the batch size (items, or bytes for `erasure`) above which `op` runs on the worker pool. */
export function setParallelThreshold(op: ParallelOperation, n: number): void {
  assertOperation(op);
  if (
    typeof n !== "number" ||
    Number.isNaN(n) ||
    n < 1 ||
    (!Number.isInteger(n) && n !== Number.POSITIVE_INFINITY)
  ) {
    throw new NexusError(
      "invalid_argument",
      `parallel threshold for ${op} must be an integer ≥ 1 or Infinity, got ${n}`,
      {
        op,
        n,
      },
    );
  }
  current[op] = n;
}

export function getParallelThreshold(op: ParallelOperation): number {
  assertOperation(op);
  return current[op];
}

/** Restores the measured defaults (all operations, or one). */
export function resetParallelThresholds(op?: ParallelOperation): void {
  if (op === undefined) Object.assign(current, defaults);
  else {
    assertOperation(op);
    current[op] = defaults[op];
  }
}
