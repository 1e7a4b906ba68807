import { threadId } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/parallel/pool.js";
import { NexusError } from "../../src/util/errors.js";

const task = new URL("./fixture-task.js", import.meta.url);

describe("WorkerPool", () => {
  it("starts lazily, runs tasks on other threads, and leaves nothing running after close", async () => {
    const before = process.getActiveResourcesInfo().length;
    const pool = new WorkerPool({ maxThreads: 2 });
    expect(pool.started).toBe(false);
    const results = await Promise.all(
      [1, 2, 3, 4].map((n) => pool.run<{ total: number; threadId: number }>(task, "sum", { values: [n, n] })),
    );
    expect(results.map((r) => r.total)).toEqual([2, 4, 6, 8]);
    expect(results.every((r) => r.threadId !== threadId)).toBe(true);
    expect(pool.threadCount).toBeGreaterThan(0);
    await pool.close();
    expect(pool.threadCount).toBe(0);
    await expect(pool.run(task, "sum", { values: [] })).rejects.toBeInstanceOf(NexusError);
    await new Promise((r) => setTimeout(r, 50));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });

  it("passes a task's error to the caller", async () => {
    await using pool = new WorkerPool({ maxThreads: 1 });
    await expect(pool.run(task, "fail", null)).rejects.toThrow(/on purpose/);
  });

  it("validates its options", () => {
    expect(() => new WorkerPool({ maxThreads: 0 })).toThrowError(NexusError);
  });
});
