import { describe, expect, it } from "vitest";
import { getParallelThreshold, resetParallelThresholds, setParallelThreshold } from "../../src/index.js";
import { NexusError } from "../../src/util/errors.js";
import { instantiateKernel, isReady, MemoryViews, ready } from "../../src/wasm/loader.js";

describe("wasm loader", () => {
  it("loads every kernel once, idempotently", async () => {
    await Promise.all([ready(), ready()]);
    expect(isReady()).toBe(true);
  });

  it("names an unknown kernel in a typed error", async () => {
    await ready();
    expect(() => instantiateKernel("no-such-kernel")).toThrowError(NexusError);
  });

  it("refreshes views after memory.grow detaches the old buffer", () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const views = new MemoryViews(memory);
    const before = views.u8;
    before[10] = 7;
    memory.grow(1);
    expect(before.byteLength).toBe(0);
    expect(views.u8.byteLength).toBe(2 * 65536);
    expect(views.u8[10]).toBe(7);
  });
});

describe("parallel thresholds", () => {
  it("validates and round-trips", () => {
    setParallelThreshold("bulkCheck", 1234);
    expect(getParallelThreshold("bulkCheck")).toBe(1234);
    expect(() => setParallelThreshold("bulkCheck", 0)).toThrowError(NexusError);
    expect(() => setParallelThreshold("nope" as "hash", 5)).toThrowError(/unknown parallel operation/);
    resetParallelThresholds();
    expect(getParallelThreshold("bulkCheck")).not.toBe(1234);
  });
});
