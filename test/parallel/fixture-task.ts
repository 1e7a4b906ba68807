// A task module for the pool tests: runs inside a worker thread.
import { threadId } from "node:worker_threads";

export function sum(payload: { values: number[] }): { total: number; threadId: number } {
  return { total: payload.values.reduce((a, b) => a + b, 0), threadId };
}

export function fail(): never {
  throw new Error("task failed on purpose");
}
