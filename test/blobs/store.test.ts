import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { type NeedleStore, openStore } from "../../src/blobs/index.js";
import { createChecksums } from "../../src/io/checksum.js";
import { WorkerPool } from "../../src/parallel/pool.js";
import { resetParallelThresholds, setParallelThreshold } from "../../src/parallel/thresholds.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { bytesOf, tempDir } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  resetParallelThresholds();
});

async function fresh(options: Partial<Parameters<typeof openStore>[0]> = {}) {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const store = await openStore({ dir, ...options });
  cleanups.push(() => store.close());
  return { dir, store };
}

const text = (s: string) => new TextEncoder().encode(s);
const blake3Hex = async (bytes: Uint8Array) =>
  Buffer.from((await createChecksums()).blake3(bytes)).toString("hex");

async function expectCode(p: Promise<unknown> | (() => unknown), code: string) {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(isNexusError(e), String(e)).toBe(true);
    expect((e as NexusError).code).toBe(code);
    return e as NexusError;
  }
  throw new Error(`expected NexusError ${code}`);
}

describe("NeedleStore API", () => {
  it("stores content under its BLAKE3 key, once, with a reference count", async () => {
    const { store } = await fresh();
    const a = await store.put(text("hello"));
    expect(a).toEqual({ key: await blake3Hex(text("hello")), size: 5, deduped: false });
    expect((await store.put(text("hello"))).deduped).toBe(true);
    expect(new TextDecoder().decode(await store.get(a.key))).toBe("hello");
    expect(store.stats().needles).toBe(1);
    expect(await store.delete(a.key)).toBe(true);
    expect(await store.has(a.key)).toBe(true); // one reference left
    expect(await store.delete(a.key)).toBe(true);
    expect(await store.has(a.key)).toBe(false);
    expect(await store.delete(a.key)).toBe(false);
    await expectCode(store.get(a.key), "not_found");
    const empty = await store.put(new Uint8Array(0));
    expect((await store.get(empty.key)).length).toBe(0);
  });

  it("rejects malformed keys, bad blobs and bad options with typed errors", async () => {
    const { store, dir } = await fresh();
    const e = await expectCode(store.get("abc"), "invalid_argument");
    expect(e.message).toContain('"abc"');
    await expectCode(store.has("g".repeat(64)), "invalid_argument");
    await expectCode(store.delete(42 as unknown as string), "invalid_argument");
    await expectCode(store.put("text" as unknown as Uint8Array), "invalid_argument");
    await expectCode(openStore({ dir: join(dir, "x"), volumeSize: 10 }), "invalid_argument");
    await expectCode(openStore({ dir: join(dir, "x"), fsync: "sometimes" as "always" }), "invalid_argument");
    await expectCode(openStore({ dir: "" }), "invalid_argument");
    await expectCode(openStore({ dir: join(dir, "x"), compactThreshold: 0 }), "invalid_argument");
    await expectCode(store.compact({ threshold: 2 }), "invalid_argument");
  });

  it("gives a second writer of the same directory a clear 'locked' error", async () => {
    const { store, dir } = await fresh();
    const e = await expectCode(openStore({ dir }), "locked");
    expect(e.message).toContain(dir);
    await store.close();
    const again = await openStore({ dir });
    await again.close();
  });

  it("refuses every call after close, and leaves nothing running", async () => {
    const before = new Set(process.getActiveResourcesInfo());
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    setParallelThreshold("hash", 2);
    const store = await openStore({ dir });
    await store.putMany([text("a"), text("b"), text("c"), text("d")]); // starts the store's own pool
    const key = (await store.put(text("x"))).key;
    await store.close();
    await store.close(); // idempotent
    await expectCode(store.get(key), "closed");
    await expectCode(store.put(text("y")), "closed");
    await expectCode(store.delete(key), "closed");
    expect(existsSync(join(dir, "LOCK"))).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    const after = process.getActiveResourcesInfo().filter((r) => !before.has(r));
    expect(after.filter((r) => r !== "TTYWrap" && r !== "Timeout")).toEqual([]);
  });

  it("rolls volumes over at volumeSize and keeps everything readable across reopen", async () => {
    const { dir, store } = await fresh({ volumeSize: 16 * 1024 });
    const keys: string[] = [];
    for (let i = 0; i < 60; i++) keys.push((await store.put(bytesOf(i, 1000 + i))).key);
    expect(store.stats().volumes).toBeGreaterThan(3);
    await store.close();
    expect(readdirSync(dir).filter((n) => n.endsWith(".vol")).length).toBeGreaterThan(3);
    const again = await openStore({ dir, volumeSize: 16 * 1024 });
    cleanups.push(() => again.close());
    for (let i = 0; i < 60; i++) expect(await again.get(keys[i]!)).toEqual(bytesOf(i, 1000 + i));
    const s = again.stats();
    expect(s.needles).toBe(60);
    expect(s.garbageBytes).toBe(0);
  });

  it("serializes concurrent puts and deletes, under every fsync policy", async () => {
    for (const fsync of ["always", "batch", "never"] as const) {
      const { store } = await fresh({ fsync, volumeSize: 64 * 1024 });
      const blobs = Array.from({ length: 80 }, (_, i) => bytesOf(i % 40, 300)); // every blob twice
      const puts = await Promise.all(blobs.map((b) => store.put(b)));
      expect(puts.filter((p) => p.deduped).length).toBe(40);
      expect(store.stats().needles).toBe(40);
      await Promise.all(puts.slice(0, 40).map((p) => store.delete(p.key)));
      expect(store.stats().needles).toBe(40);
      await Promise.all(puts.slice(0, 20).map((p) => store.delete(p.key)));
      expect(store.stats().needles).toBe(20);
      for (let i = 20; i < 40; i++) expect(await store.get(puts[i]!.key)).toEqual(blobs[i]);
    }
  });

  it("hashes big batches on the worker pool (above the hash threshold) with the same keys", async () => {
    const pool = new WorkerPool({ maxThreads: 2 });
    cleanups.push(() => pool.close());
    const { store } = await fresh({ pool });
    const blobs = Array.from({ length: 40 }, (_, i) => bytesOf(1000 + i, 2000));
    const local = await Promise.all(blobs.slice(0, 5).map(blake3Hex));
    setParallelThreshold("hash", 8);
    const results = await store.putMany(blobs);
    expect(pool.started).toBe(true);
    expect(results.slice(0, 5).map((r) => r.key)).toEqual(local);
    expect((await store.putMany(blobs)).every((r) => r.deduped)).toBe(true);
    for (let i = 0; i < 40; i += 7) expect(await store.get(results[i]!.key)).toEqual(blobs[i]);
    await store.close();
    expect(pool.started).toBe(true); // a pool passed in is not the store's to end
  });

  it("streams large blobs through a staging file without holding them whole", async () => {
    const { dir, store } = await fresh({ streamBufferBytes: 64 * 1024 });
    const whole = bytesOf(7, 1_000_000);
    async function* chunks() {
      for (let i = 0; i < whole.length; i += 65_000) yield whole.subarray(i, i + 65_000);
    }
    const r = await store.putStream(chunks());
    expect(r.key).toBe(await blake3Hex(whole));
    expect(Buffer.compare(await store.get(r.key), whole)).toBe(0);
    expect((await store.putStream(chunks())).deduped).toBe(true);
    expect(readdirSync(join(dir, "staging"))).toEqual([]);
    const small = await store.putStream(new Blob([text("tiny")]).stream());
    expect(new TextDecoder().decode(await store.get(small.key))).toBe("tiny");
    await expectCode(
      store.putStream(
        (async function* () {
          yield "nope" as unknown as Uint8Array;
        })(),
      ),
      "invalid_argument",
    );
  });

  it("resolves 64-bit prefix collisions with the full hash in the needle header", async () => {
    // Keep 3 bits of the index key: dozens of blobs share each prefix.
    const { dir, store } = await fresh({ testing: { prefixBits: 3 }, volumeSize: 8192 });
    const blobs = Array.from({ length: 40 }, (_, i) => bytesOf(500 + i, 100 + i));
    const keys = [];
    for (const b of blobs) keys.push((await store.put(b)).key);
    expect(store.stats().needles).toBe(40);
    for (let i = 0; i < 40; i++) expect(await store.get(keys[i]!)).toEqual(blobs[i]);
    for (let i = 0; i < 40; i += 3) await store.delete(keys[i]!);
    await store.put(blobs[1]!); // a second reference
    await store.close();
    const again = await openStore({ dir, testing: { prefixBits: 3 }, volumeSize: 8192 });
    cleanups.push(() => again.close());
    for (let i = 0; i < 40; i++) {
      if (i % 3 === 0) await expectCode(again.get(keys[i]!), "not_found");
      else expect(await again.get(keys[i]!)).toEqual(blobs[i]);
    }
    await again.delete(keys[1]!);
    expect(await again.has(keys[1]!)).toBe(true);
    await again.compact({ threshold: 0.01 });
    for (let i = 1; i < 40; i += 3) expect(await again.get(keys[i]!)).toEqual(blobs[i]);
    expect(again.stats().needles).toBe(26);
  });

  it("behaves like a reference-counted map, across reopen and compaction (fast-check)", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    type Op = { op: "put" | "delete" | "reopen" | "compact"; blob: number };
    const ops = fc.array(
      fc.record({
        op: fc.constantFrom<Op["op"]>("put", "put", "put", "delete", "delete", "reopen", "compact"),
        blob: fc.nat(12),
      }),
      { maxLength: 40 },
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(ops, async (list) => {
        const sub = join(dir, String(run++));
        let store: NeedleStore = await openStore({ dir: sub, volumeSize: 4096, fsync: "never" });
        const model = new Map<string, { count: number; bytes: Uint8Array }>();
        const keyOf = new Map<number, string>();
        try {
          for (const { op, blob } of list) {
            const bytes = bytesOf(blob, 50 + blob * 97);
            if (op === "put") {
              const r = await store.put(bytes);
              keyOf.set(blob, r.key);
              const m = model.get(r.key);
              expect(r.deduped).toBe(m !== undefined);
              model.set(r.key, { count: (m?.count ?? 0) + 1, bytes });
            } else if (op === "delete") {
              const key = keyOf.get(blob) ?? (await blake3Hex(bytes));
              const m = model.get(key);
              expect(await store.delete(key)).toBe(m !== undefined);
              if (m && m.count > 1) m.count--;
              else model.delete(key);
            } else if (op === "reopen") {
              await store.close();
              store = await openStore({ dir: sub, volumeSize: 4096, fsync: "never" });
            } else await store.compact({ threshold: 0.1 });
            expect(store.stats().needles).toBe(model.size);
          }
          for (const [key, m] of model) expect(await store.get(key)).toEqual(m.bytes);
        } finally {
          await store.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});
