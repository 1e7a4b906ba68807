import { describe, expect, it } from "vitest";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import { decodeToken, encodeToken } from "../../src/tuples/token.js";
import { identityKey, type RelationTuple, type TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { describeTupleStoreContract } from "./contract.js";

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

describeTupleStoreContract("memory", async (options) => new MemoryTupleStore(options));

describe("MemoryTupleStore (beyond the contract, on a controlled clock)", () => {
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
});

describe("MemoryTupleStore's expiry queue", () => {
  it("does not keep tuples revoked before their expiry until it comes, and still expires the rest in order", async () => {
    let now = 1000;
    await using store = new MemoryTupleStore({ clock: () => now });
    const month = 30 * 24 * 3600 * 1000;
    // Long-lived grants, kept: each expires at its own time.
    const kept = Array.from({ length: 50 }, (_, i) =>
      t(`doc:kept${i}`, "user:k", { expiresAt: new Date(10_000 + 100 * (49 - i)) }),
    );
    await store.write({ writes: kept, deletes: [] });
    // Grants and revocations: without compaction every revoked one stayed queued (so held) for a month.
    for (let i = 0; i < 5000; i++) {
      const grant = t(`doc:${i}`, "user:a", { expiresAt: new Date(now + month) });
      await store.write({ writes: [grant], deletes: [] });
      await store.write({ writes: [], deletes: [grant] });
    }
    expect(store.size).toBe(50);
    expect(store.expiringCount).toBeLessThanOrEqual(50 + 2 * 1024);
    // The kept ones expire at their times, soonest first, after the compactions.
    now = 10_000 + 100 * 24;
    await store.write({ writes: [t("doc:tick", "user:a")], deletes: [] });
    const expired = (await store.changesAfter((await store.currentRevision()) - 1, 100))
      .filter((c) => c.expired)
      .map((c) => c.tuple.object);
    expect(expired).toEqual(Array.from({ length: 25 }, (_, k) => `doc:kept${49 - k}`));
    expect(store.size).toBe(26);
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
