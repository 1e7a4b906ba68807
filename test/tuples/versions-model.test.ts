/**
 * The memory store against a plain model of its versions, on random batches: writes (some duplicates, some
 * re-writes of expired tuples), deletes (some missing), expiry, cross-tenant subjects and one object relation
 * with many subjects (a large slot); snapshots held across writes and collection. Every read (by object, subject,
 * type and relation, and read with each filter field) at every held revision must equal the model's tuples
 * visible there, and the changelog must list each revision's changes. The sliced variant validates every write
 * in slices of a few tuples (yielding between them) and reads the revision before it while it is in flight: the
 * staged tuples must stay invisible, and a refused batch must leave nothing behind.
 */
import { describe, expect, it } from "vitest";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import { identityKey, type RelationTuple, type TupleKey } from "../../src/tuples/tuple.js";
import type { TupleSnapshot } from "../../src/tuples/types.js";
import { isNexusError } from "../../src/util/errors.js";
import { seededRandom } from "../../src/util/random.js";

interface ModelVersion {
  readonly tuple: RelationTuple;
  readonly created: number;
  deleted: number;
}

const TENANTS = ["a", "b"];
const OBJECTS = ["doc:0", "doc:1", "doc:2", "folder:0", "group:big"];
const RELATIONS = ["viewer", "member"];

async function run(seed: number, sliced = false): Promise<void> {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  let now = 1000;
  const store = new MemoryTupleStore({
    clock: () => now,
    snapshotRetentionMs: 50,
    changelogMaxEntries: 500,
    ...(sliced ? { writeSliceMs: 0, writeSliceTuples: 2 + (seed % 3) } : {}),
  });
  const versions: ModelVersion[] = [];
  const changes = new Map<number, string[]>();
  let revision = 0;

  const randomTuple = (): RelationTuple => {
    const tenant = pick(TENANTS);
    const object = random() < 0.4 ? "group:big" : pick(OBJECTS);
    const users = object === "group:big" ? 60 : 6;
    const user =
      random() < 0.1 ? "user:*" : random() < 0.1 ? "group:g1#member" : `user:${Math.floor(random() * users)}`;
    const key: TupleKey = {
      tenant,
      object,
      relation: object === "group:big" ? "member" : pick(RELATIONS),
      user,
      ...(random() < 0.15 ? { subjectTenant: pick(TENANTS) } : {}),
      ...(random() < 0.15 ? { expiresAt: now + Math.floor(random() * 40) } : {}),
    };
    const n = normalizeTuple(key, "default");
    if (!n.ok) throw new Error(n.problem);
    return n.value;
  };
  const liveOf = (t: RelationTuple) =>
    versions.find((v) => v.deleted === Infinity && identityKey(v.tuple) === identityKey(t));
  const label = (op: string, t: RelationTuple, expired?: boolean) =>
    `${op}${expired ? "(expired)" : ""} ${identityKey(t)}@${t.expiresAt}`;

  const check = async (snapshot: TupleSnapshot) => {
    const r = snapshot.revision;
    const visible = versions.filter((v) => v.created <= r && r < v.deleted).map((v) => v.tuple);
    const ids = (ts: readonly RelationTuple[]) => ts.map((t) => `${identityKey(t)}@${t.expiresAt}`).sort();
    const same = (got: readonly RelationTuple[], want: (t: RelationTuple) => boolean, what: string) =>
      expect(ids(got), `${what} at ${r} (seed ${seed})`).toEqual(ids(visible.filter(want)));
    for (const tenant of TENANTS) {
      same(await snapshot.read({ tenant }), (t) => t.tenant === tenant, "read");
      for (const object of OBJECTS) {
        same(
          await snapshot.read({ tenant, object }),
          (t) => t.tenant === tenant && t.object === object,
          `read ${object}`,
        );
        for (const relation of RELATIONS) {
          const [byObject] = await snapshot.readByObject([{ tenant, object, relation }]);
          const want = (t: RelationTuple) =>
            t.tenant === tenant && t.object === object && t.relation === relation;
          same(byObject!, want, `readByObject ${object}#${relation}`);
          same(await snapshot.read({ tenant, object, relation }), want, `read ${object}#${relation}`);
        }
      }
      for (const objectType of ["doc", "folder", "group"]) {
        for (const relation of RELATIONS) {
          const [byType] = await snapshot.readByTypeRelation([{ tenant, objectType, relation }]);
          const want = (t: RelationTuple) =>
            t.tenant === tenant && t.objectType === objectType && t.relation === relation;
          same(byType!, want, `readByTypeRelation ${objectType}#${relation}`);
        }
        same(
          await snapshot.read({ tenant, objectType }),
          (t) => t.tenant === tenant && t.objectType === objectType,
          `read ${objectType}:`,
        );
      }
      same(
        await snapshot.read({ tenant, relation: "member", user: "user:3" }),
        (t) => t.tenant === tenant && t.relation === "member" && t.user === "user:3",
        "read member@user:3",
      );
      for (const user of ["user:1", "user:*", "group:g1#member"]) {
        const [bySubject] = await snapshot.readBySubject([{ subjectTenant: tenant, user }]);
        same(bySubject!, (t) => t.subjectTenant === tenant && t.user === user, `readBySubject ${user}`);
      }
    }
  };

  const held: TupleSnapshot[] = [];
  for (let step = 0; step < 150; step++) {
    now += Math.floor(random() * 20);
    const count = 1 + Math.floor(random() * (random() < 0.2 ? 40 : 6));
    const writes: RelationTuple[] = [];
    const deletes: RelationTuple[] = [];
    const named = new Set<string>();
    for (let i = 0; i < count; i++) {
      const t = random() < 0.3 && versions.length > 0 ? pick(versions).tuple : randomTuple();
      if (named.has(identityKey(t))) continue;
      named.add(identityKey(t));
      (random() < 0.35 ? deletes : writes).push(t);
    }
    const onDuplicate = random() < 0.5 ? "ignore" : "error";
    const onMissing = random() < 0.5 ? "ignore" : "error";
    // The model's outcome: refused (nothing changes) or applied at revision + 1.
    let refused = false;
    const next = revision + 1;
    const log: string[] = [];
    const applied: (() => void)[] = [];
    for (const d of deletes) {
      const live = liveOf(d);
      if (live === undefined) {
        if (onMissing === "error") refused = true;
        continue;
      }
      applied.push(() => {
        live.deleted = next;
      });
      log.push(label("delete", live.tuple));
    }
    for (const w of writes) {
      const live = liveOf(w);
      if (live !== undefined && !(live.tuple.expiresAt !== undefined && live.tuple.expiresAt <= now)) {
        if (onDuplicate === "ignore" && live.tuple.expiresAt === w.expiresAt) continue;
        refused = true;
        continue;
      }
      applied.push(() => {
        if (live !== undefined) live.deleted = next;
        versions.push({ tuple: w, created: next, deleted: Infinity });
      });
      if (live !== undefined) log.push(label("delete", live.tuple, true));
      log.push(label("write", w));
    }
    let error: unknown;
    try {
      const writing = store.write({ writes, deletes, onDuplicate, onMissing });
      if (sliced) {
        writing.catch(() => {}); // awaited below; a refusal may come before that
        // In flight: the revision before it is all a reader sees, however far validation got; the commit then
        // moves the store one revision on in one step.
        for (let yields = 0; yields < 200; yields++) {
          if (yields % 4 === 0) {
            const before = await store.snapshot(revision);
            await check(before);
            before.release();
          }
          const current = await store.currentRevision();
          if (current !== revision) {
            expect(current).toBe(revision + 1);
            break;
          }
          expect(await store.changesAfter(revision, 1000)).toEqual([]);
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      await writing;
    } catch (e) {
      error = e;
    }
    if (refused) {
      expect(isNexusError(error) && error.code, `seed ${seed} step ${step}`).toBe("invalid_write");
    } else {
      expect(error, `seed ${seed} step ${step}`).toBeUndefined();
      if (applied.length > 0) {
        for (const apply of applied) apply();
        for (const v of versions) {
          if (v.deleted === Infinity && v.tuple.expiresAt !== undefined && v.tuple.expiresAt <= now) {
            v.deleted = next;
            log.push(label("delete", v.tuple, true));
          }
        }
        revision = next;
        changes.set(revision, log);
      }
    }
    expect(await store.currentRevision()).toBe(revision);
    if (random() < 0.3) held.push(await store.snapshot(revision));
    if (held.length > 0 && random() < 0.2) held.splice(Math.floor(random() * held.length), 1)[0]!.release();
    for (const snapshot of held) await check(snapshot);
    const latest = await store.snapshot(revision);
    await check(latest);
    latest.release();
  }
  // The changelog: each retained revision's changes (order within a revision aside, expiries come off a heap).
  const page = await store.changesAfter(revision - 20 < 0 ? 0 : revision - 20, 100_000).catch(() => []);
  const got = new Map<number, string[]>();
  for (const c of page) {
    const list = got.get(c.revision) ?? [];
    list.push(label(c.op, c.tuple, c.expired));
    got.set(c.revision, list);
  }
  for (const [r, list] of got) expect(list.sort(), `changes at ${r}`).toEqual([...changes.get(r)!].sort());
  expect(store.size).toBe(versions.filter((v) => v.deleted === Infinity).length);
  for (const snapshot of held) snapshot.release();
  await store.close();
}

describe("memory store versions against a model", () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}`, async () => {
      await run(seed);
    });
  }
  for (const seed of [7, 8]) {
    it(`seed ${seed}, every write validated in slices with reads in between`, async () => {
      await run(seed, true);
    });
  }
});

describe("memory store: one object relation with very many subjects", () => {
  it("collects deleted versions out of a slot of 130,000 and finds each identity without a scan", async () => {
    let now = 0;
    await using store = new MemoryTupleStore({ clock: () => now, snapshotRetentionMs: 0 });
    const member = (i: number): RelationTuple => {
      const n = normalizeTuple({ object: "group:all", relation: "member", user: `user:${i}` }, "default");
      if (!n.ok) throw new Error(n.problem);
      return n.value;
    };
    const all = Array.from({ length: 130_000 }, (_, i) => member(i));
    await store.write({ writes: all, deletes: [] });
    now = 1000;
    await store.write({ writes: [], deletes: all.filter((_, i) => i % 2 === 0) });
    now = 2000;
    // A later write lets the store collect the deleted half (no snapshot holds it).
    await store.write({ writes: [member(-1)], deletes: [] });
    expect(store.versionCount).toBe(65_001);
    const snapshot = await store.snapshot(await store.currentRevision());
    const [members] = await snapshot.readByObject([
      { tenant: "default", object: "group:all", relation: "member" },
    ]);
    expect(members!.length).toBe(65_001);
    snapshot.release();
    // Identities are found in the large slot: a duplicate is refused, a deleted one may be written again.
    await expect(store.write({ writes: [member(1)], deletes: [] })).rejects.toThrow("already exists");
    await store.write({ writes: [member(0)], deletes: [member(3)] });
    expect(store.size).toBe(65_001);
  });
});
