// The file store after a failed fdatasync (injected): it refuses writes and reads go on, as documented. Linux
// reports a writeback error once, so the next fdatasync returns 0 without the bytes being durable: no write in
// flight at the failure, nor any later one, may be acknowledged or made visible on its strength.
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { openFileTupleStore } from "../../src/tuples/file/index.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { tempDir } from "../blobs/helpers.js";

const failNext = { sync: false };
vi.mock("../../src/io/fs-io.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/io/fs-io.js")>();
  return {
    ...real,
    syncData: async (fd: number) => {
      if (!failNext.sync) return real.syncData(fd);
      failNext.sync = false;
      // Slow enough for the next write to be appended meanwhile and wait for the next round.
      await new Promise((r) => setTimeout(r, 20));
      throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
    },
  };
});

const dirs: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);
afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
});
afterEach(() => {
  failNext.sync = false;
});

function t(object: string, user: string): RelationTuple {
  const n = normalizeTuple({ object, relation: "viewer", user }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

function write(store: Awaited<ReturnType<typeof openFileTupleStore>>, object: string) {
  return store.write({ writes: [t(object, "user:a")], deletes: [] });
}

describe("a failed fdatasync", () => {
  it("fails the write it covered and the one waiting for the next round; nothing is published; reads go on", async () => {
    const { dir, cleanup } = tempDir("nexus-syncfail-");
    dirs.push(cleanup);
    const store = await openFileTupleStore({ dir });
    await write(store, "doc:0");
    failNext.sync = true;
    const [a, b] = await Promise.allSettled([write(store, "doc:a"), write(store, "doc:b")]);
    expect(a).toMatchObject({ status: "rejected", reason: { code: "io_error" } });
    expect(b).toMatchObject({ status: "rejected", reason: { code: "io_error" } });
    // Neither became visible (A's record is in B's revision, so B must not be either).
    expect(await store.currentRevision()).toBe(1);
    const snapshot = await store.snapshot(1);
    expect((await snapshot.read({ tenant: "default" })).map((x) => x.object)).toEqual(["doc:0"]);
    snapshot.release();
    expect((await store.changesAfter(0, 10)).map((c) => c.revision)).toEqual([1]);
    // Later writes and model versions are refused until the store is reopened.
    const later = await write(store, "doc:c").catch((e: unknown) => e);
    expect(isNexusError(later, "io_error") && later.message).toMatch(/stopped taking writes/);
    await expect(store.models.add({ tenant: "default", source: "model 1" })).rejects.toMatchObject({
      code: "io_error",
    });
    await store.close();
    // No promise was left rejected with nobody listening (Node exits on one by default).
    await new Promise((r) => setTimeout(r, 10));
    expect(unhandled).toEqual([]);
    // Reopened, recovery decides from what reached the disk.
    const again = await openFileTupleStore({ dir });
    expect(await again.currentRevision()).toBeGreaterThanOrEqual(1);
    await write(again, "doc:d");
    await again.close();
  });

  it("alone, with no other write in flight, leaves no unhandled rejection", async () => {
    const { dir, cleanup } = tempDir("nexus-syncfail-");
    dirs.push(cleanup);
    const store = await openFileTupleStore({ dir });
    failNext.sync = true;
    await expect(write(store, "doc:a")).rejects.toMatchObject({ code: "io_error" });
    await new Promise((r) => setTimeout(r, 10));
    expect(unhandled).toEqual([]);
    expect(await store.currentRevision()).toBe(0);
    await store.close();
  });
});
