// Reads that present a consistency token (read-your-writes across engines): once a token has been accepted, later
// reads with it skip the store calls and, for a repeated question, validation; they must still see at least the
// token's revision, and a bad token or a stray field must still be refused every time.
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { isNexusError } from "../../src/util/errors.js";

const model = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;

describe("reads with an accepted consistency token", () => {
  it("see the token's write from another engine every time, and nothing older than it", async () => {
    await using store = new MemoryTupleStore();
    await using writer = await createEngine({ model, store });
    await using reader = await createEngine({ model, store });
    const question = { user: "user:anne", relation: "viewer", object: "doc:1" };
    // The reader resolves its quantization window before the write: its window revision stays older.
    expect(await reader.check(question)).toBe(false);
    const { token } = await writer.write({ writes: [question] });
    for (let i = 0; i < 5; i++) {
      expect(await reader.check({ ...question, consistency: { atLeastAsFresh: token } })).toBe(true);
    }
    const { token: revoked } = await writer.write({ deletes: [question] });
    for (let i = 0; i < 5; i++) {
      expect(await reader.check({ ...question, consistency: { atLeastAsFresh: revoked } })).toBe(false);
    }
    const revision = reader.stats().chain?.revision;
    expect(revision?.explicit).toBe(10);
  });

  it("a write's own token is accepted at once: the first read with it asks the store nothing", async () => {
    let storeCalls = 0;
    class CountingStore extends MemoryTupleStore {
      override async currentRevision(): Promise<number> {
        storeCalls++;
        return super.currentRevision();
      }
      override async revisionAt(timeMs: number): Promise<number> {
        storeCalls++;
        return super.revisionAt(timeMs);
      }
    }
    await using store = new CountingStore();
    await using engine = await createEngine({ model, store });
    const question = { user: "user:anne", relation: "viewer", object: "doc:1" };
    const { token } = await engine.write({ writes: [question] });
    storeCalls = 0;
    expect(await engine.check({ ...question, consistency: { atLeastAsFresh: token } })).toBe(true);
    expect(await engine.check({ ...question, object: "doc:2", consistency: { atLeastAsFresh: token } })).toBe(
      false,
    );
    expect(storeCalls).toBe(0);
    // A later write is seen by a read presenting the older token (at least as fresh: the newest known revision).
    const { token: revoked } = await engine.write({ deletes: [question] });
    expect(await engine.check({ ...question, consistency: { atLeastAsFresh: token } })).toBe(false);
    expect(await engine.check({ ...question, consistency: { atLeastAsFresh: revoked } })).toBe(false);
    // A token of the same store that this engine did not issue (another engine's write) is still checked.
    await using other = await createEngine({ model, store });
    const { token: theirs } = await other.write({ writes: [question] });
    storeCalls = 0;
    expect(await engine.check({ ...question, consistency: { atLeastAsFresh: theirs } })).toBe(true);
    expect(storeCalls).toBeGreaterThan(0);
  });

  it("still refuses a token of another store, a garbled one, and a stray consistency field", async () => {
    await using engine = await createEngine({ model });
    await using other = await createEngine({ model });
    const question = { user: "user:anne", relation: "viewer", object: "doc:1" };
    const { token } = await engine.write({ writes: [question] });
    const { token: foreign } = await other.write({ writes: [question] });
    for (let i = 0; i < 3; i++) {
      expect(await engine.check({ ...question, consistency: { atLeastAsFresh: token } })).toBe(true);
      await expect(engine.check({ ...question, consistency: { atLeastAsFresh: foreign } })).rejects.toSatisfy(
        (e: unknown) => isNexusError(e, "invalid_token"),
      );
      await expect(
        engine.check({ ...question, consistency: { atLeastAsFresh: `${token}x` } }),
      ).rejects.toSatisfy((e: unknown) => isNexusError(e, "invalid_token"));
      await expect(
        engine.check({
          ...question,
          consistency: { atLeastAsFresh: token, extra: 1 } as unknown as { atLeastAsFresh: string },
        }),
      ).rejects.toSatisfy((e: unknown) => isNexusError(e, "invalid_argument"));
    }
  });
});

describe("a write's outcome", () => {
  it("is its commit: a read lookup failing after it (a flaky store) does not report a committed write as failed", async () => {
    let failRevisionAt = false;
    class FlakyStore extends MemoryTupleStore {
      override async revisionAt(timeMs: number): Promise<number> {
        if (failRevisionAt) throw new Error("transient store error in revisionAt");
        return super.revisionAt(timeMs);
      }
    }
    const store = new FlakyStore();
    await using engine = await createEngine({ model, store });
    failRevisionAt = true;
    const { token, revision } = await engine.write({
      writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }],
    });
    expect(revision).toBe(await store.currentRevision());
    failRevisionAt = false;
    const consistency = { atLeastAsFresh: token };
    expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:1", consistency })).toBe(
      true,
    );
    await store.close();
  });

  it("nothing is written when the engine is closed while a large write is validated", async () => {
    const store = new MemoryTupleStore();
    const engine = await createEngine({ model, store });
    const writes = Array.from({ length: 40_000 }, (_, i) => ({
      user: `user:u${i % 97}`,
      relation: "viewer",
      object: `doc:${i}`,
    }));
    const writing = engine.write({ writes });
    // The first turn of the event loop the write's validation gives up.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await engine.close();
    await expect(writing).rejects.toMatchObject({ code: "closed" });
    expect(await store.currentRevision()).toBe(0);
    await store.close();
  });
});
