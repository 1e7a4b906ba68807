import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isNexusError } from "../../src/errors.js";
import { MemoryTupleStore } from "../../src/store/memory.js";
import { normalizeTuple } from "../../src/store/normalize.js";
import { decodeToken, encodeToken } from "../../src/store/token.js";
import { identityKey, type RelationTuple, type TupleKey } from "../../src/store/tuple.js";

function tuple(key: TupleKey): RelationTuple {
  const n = normalizeTuple(key, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

const t = (object: string, user: string, extra: Partial<TupleKey> = {}) =>
  tuple({ object, relation: "viewer", user, ...extra });

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isNexusError(error) ? error.code : String(error);
  }
  return undefined;
}

async function state(store: MemoryTupleStore, revision: number): Promise<string[]> {
  const snapshot = await store.snapshot(revision);
  try {
    return (await snapshot.read({ tenant: "default" })).map(identityKey).sort();
  } finally {
    snapshot.release();
  }
}

describe("MemoryTupleStore", () => {
  it("applies a batch atomically: a failing batch changes nothing", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    expect(
      await codeOf(store.write({ writes: [t("doc:2", "user:a"), t("doc:1", "user:a")], deletes: [] })),
    ).toBe("invalid_write");
    expect(
      await codeOf(store.write({ writes: [t("doc:3", "user:a")], deletes: [t("doc:9", "user:a")] })),
    ).toBe("invalid_write");
    expect(
      await codeOf(store.write({ writes: [t("doc:4", "user:a"), t("doc:4", "user:a")], deletes: [] })),
    ).toBe("invalid_write");
    expect(await store.currentRevision()).toBe(1);
    expect(await state(store, 1)).toEqual([identityKey(t("doc:1", "user:a"))]);
  });

  it("names the offending tuple and honours onDuplicate / onMissing: ignore", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    await expect(store.write({ writes: [t("doc:1", "user:a")], deletes: [] })).rejects.toThrow(
      /doc:1#viewer@user:a/,
    );
    const ignored = await store.write({
      writes: [t("doc:1", "user:a")],
      deletes: [t("doc:2", "user:b")],
      onDuplicate: "ignore",
      onMissing: "ignore",
    });
    expect(ignored).toEqual({ revision: 1, written: 0, deleted: 0 });
    // A different condition is not a duplicate to ignore.
    expect(
      await codeOf(
        store.write({
          writes: [t("doc:1", "user:a", { condition: { name: "c" } })],
          deletes: [],
          onDuplicate: "ignore",
        }),
      ),
    ).toBe("invalid_write");
  });

  it("serves every retained revision exactly as it was (snapshot reads)", async () => {
    const ids = ["doc:1", "doc:2", "doc:3"].flatMap((o) => ["user:a", "user:b"].map((u) => [o, u] as const));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.nat(ids.length - 1), { minLength: 1, maxLength: 4 }), { maxLength: 12 }),
        async (batches) => {
          await using store = new MemoryTupleStore({ clock: () => 0 });
          const live = new Set<string>();
          const expected: string[][] = [[]];
          for (const batch of batches) {
            const toggled = [...new Set(batch)].map((i) => t(ids[i]![0], ids[i]![1]));
            const writes = toggled.filter((x) => !live.has(identityKey(x)));
            const deletes = toggled.filter((x) => live.has(identityKey(x)));
            const { revision } = await store.write({ writes, deletes });
            for (const x of writes) live.add(identityKey(x));
            for (const x of deletes) live.delete(identityKey(x));
            expected[revision] = [...live].sort();
          }
          for (let r = 0; r < expected.length; r++) expect(await state(store, r)).toEqual(expected[r]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("collects old versions once no reader can need them, but never under an open snapshot", async () => {
    let now = 0;
    await using store = new MemoryTupleStore({ clock: () => now, snapshotRetentionMs: 1000 });
    for (let i = 0; i < 300; i++) await store.write({ writes: [t(`doc:${i}`, "user:a")], deletes: [] });
    const held = await store.snapshot(300);
    now = 10_000;
    for (let i = 0; i < 300; i++) await store.write({ writes: [], deletes: [t(`doc:${i}`, "user:a")] });
    now = 20_000;
    for (let i = 0; i < 300; i++) await store.write({ writes: [t(`doc:x${i}`, "user:a")], deletes: [] });
    // The held snapshot still reads its revision.
    expect((await held.read({ tenant: "default" })).length).toBe(300);
    held.release();
    now = 40_000;
    await store.write({ writes: [t("doc:last", "user:a")], deletes: [] });
    for (let i = 0; i < 300; i++)
      await store.write({ writes: [t(`doc:y${i}`, "user:a")], deletes: [t(`doc:x${i}`, "user:a")] });
    now = 60_000;
    await store.write({ writes: [t("doc:final", "user:a")], deletes: [] });
    expect(store.versionCount).toBeLessThan(700);
    expect(await codeOf(store.snapshot(300))).toBe("invalid_token");
    expect((await state(store, await store.currentRevision())).length).toBe(302);
  });

  it("keeps a bounded changelog and refuses revisions it no longer covers", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 10 });
    for (let i = 0; i < 30; i++) await store.write({ writes: [t(`doc:${i}`, "user:a")], deletes: [] });
    const recent = await store.changesAfter(25, 100);
    expect(recent.map((c) => c.revision)).toEqual([26, 27, 28, 29, 30]);
    expect(recent.every((c) => c.op === "write")).toBe(true);
    expect(await codeOf(store.changesAfter(2, 100))).toBe("invalid_token");
    expect(await codeOf(store.changesAfter(31, 100))).toBe("invalid_token");
  });

  it("removes expired tuples on the next write, recording them as expired deletes", async () => {
    let now = 1000;
    await using store = new MemoryTupleStore({ clock: () => now });
    await store.write({
      writes: [
        t("doc:1", "user:a", { expiresAt: new Date(1500) }),
        t("doc:2", "user:a", { expiresAt: new Date(5000) }),
      ],
      deletes: [],
    });
    now = 2000;
    // Re-writing an expired tuple replaces it rather than failing as a duplicate.
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    const changes = await store.changesAfter(1, 10);
    expect(changes.map((c) => [c.op, c.tuple.object, c.expired ?? false])).toEqual([
      ["delete", "doc:1", true],
      ["write", "doc:1", false],
    ]);
    now = 6000;
    await store.write({ writes: [t("doc:3", "user:a")], deletes: [] });
    expect((await store.changesAfter(2, 10)).map((c) => [c.op, c.tuple.object, c.expired ?? false])).toEqual([
      ["write", "doc:3", false],
      ["delete", "doc:2", true],
    ]);
  });

  it("wakes waiters on write, abort and close, leaving nothing behind", async () => {
    const store = new MemoryTupleStore();
    const woken = store.waitForRevision(0);
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    await woken;
    const abort = new AbortController();
    const aborted = store.waitForRevision(1, abort.signal);
    abort.abort();
    await aborted;
    const closing = store.waitForRevision(1);
    await store.close();
    await closing;
    expect(await codeOf(store.write({ writes: [], deletes: [] }))).toBe("closed");
  });

  it("answers revisionAt from commit times", async () => {
    let now = 100;
    await using store = new MemoryTupleStore({ clock: () => now });
    await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
    now = 200;
    await store.write({ writes: [t("doc:2", "user:a")], deletes: [] });
    expect(await store.revisionAt(50)).toBe(0);
    expect(await store.revisionAt(100)).toBe(1);
    expect(await store.revisionAt(199)).toBe(1);
    expect(await store.revisionAt(10_000)).toBe(2);
  });
});

describe("tokens", () => {
  it("round-trip and reject garbage, tampering and other shapes", () => {
    const token = encodeToken("abc123", 42);
    expect(decodeToken(token)).toEqual({ storeId: "abc123", revision: 42 });
    for (const bad of [
      "",
      "garbage",
      "nft1_",
      `${token}x`,
      token.slice(0, -2),
      token.replace(/.$/, "A"),
      42,
      null,
    ]) {
      expect(() => decodeToken(bad), String(bad)).toThrowError(/token/);
      try {
        decodeToken(bad);
      } catch (error) {
        expect(isNexusError(error, "invalid_token")).toBe(true);
      }
    }
  });
});
