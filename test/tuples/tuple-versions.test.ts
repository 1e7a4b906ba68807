/**
 * The in-memory store keeps a written tuple object as its own version (its revisions in private fields of
 * StoredTuple), so one object must never stand for two versions. Three ways a caller hands the store an object it
 * holds already: writing again an object the store wrote and deleted, and writing into a second store the objects
 * read from a first. Taking such an object as the new version would move the older version's revisions (both tests
 * fail when newVersion takes every StoredTuple). Reads at every revision must still see what was there then. A
 * refused write gives its objects back (rollback), so writing them again takes them without a copy; the third test
 * holds the answers of that path.
 */
import { expect, it } from "vitest";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";

const tuple = (object: string, user = "user:a"): RelationTuple => {
  const n = normalizeTuple({ object, relation: "viewer", user }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
};

async function objectsAt(store: MemoryTupleStore, revision: number): Promise<string[]> {
  const snapshot = await store.snapshot(revision);
  try {
    return (await snapshot.read({ tenant: "default" })).map((t) => `${t.object}@${t.user}`).sort();
  } finally {
    snapshot.release();
  }
}

it("an object written, deleted and written again is two versions, each seen at its own revisions", async () => {
  const store = new MemoryTupleStore({ snapshotRetentionMs: 60_000 });
  const t = tuple("doc:1");
  expect((await store.write({ writes: [t], deletes: [] })).revision).toBe(1);
  expect((await store.write({ writes: [], deletes: [t] })).revision).toBe(2);
  expect((await store.write({ writes: [t], deletes: [] })).revision).toBe(3);
  expect(await objectsAt(store, 1)).toEqual(["doc:1@user:a"]);
  expect(await objectsAt(store, 2)).toEqual([]);
  expect(await objectsAt(store, 3)).toEqual(["doc:1@user:a"]);
  // The tuple read back carries none of the store's bookkeeping.
  const [read] = await (await store.snapshot(3)).read({ tenant: "default" });
  expect(JSON.parse(JSON.stringify(read))).toEqual(JSON.parse(JSON.stringify(t)));
  expect(Object.keys({ ...read })).toEqual(Object.keys({ ...t }));
  await store.close();
});

it("tuples read from one store and written into another stay versions of each store alone", async () => {
  const a = new MemoryTupleStore({ snapshotRetentionMs: 60_000 });
  const b = new MemoryTupleStore({ snapshotRetentionMs: 60_000 });
  await a.write({ writes: [tuple("doc:1"), tuple("doc:2")], deletes: [] });
  const snapshot = await a.snapshot(1);
  const read = await snapshot.read({ tenant: "default" });
  snapshot.release();
  // b is at revision 2 when it takes them: a's versions (created at 1) must not move.
  await b.write({ writes: [tuple("doc:0")], deletes: [] });
  await b.write({ writes: read, deletes: [] });
  await a.write({ writes: [], deletes: [tuple("doc:1")] });
  expect(await objectsAt(a, 1)).toEqual(["doc:1@user:a", "doc:2@user:a"]);
  expect(await objectsAt(a, 2)).toEqual(["doc:2@user:a"]);
  expect(await objectsAt(b, 1)).toEqual(["doc:0@user:a"]);
  expect(await objectsAt(b, 2)).toEqual(["doc:0@user:a", "doc:1@user:a", "doc:2@user:a"]);
  await a.close();
  await b.close();
});

it("the objects of a refused write can be written again", async () => {
  const store = new MemoryTupleStore({ snapshotRetentionMs: 60_000 });
  await store.write({ writes: [tuple("doc:9")], deletes: [] });
  const fresh = [tuple("doc:1"), tuple("doc:2")];
  // doc:9 exists: the whole write is refused and rolled back.
  await expect(store.write({ writes: [...fresh, tuple("doc:9")], deletes: [] })).rejects.toThrow();
  expect((await store.write({ writes: fresh, deletes: [] })).revision).toBe(2);
  expect(await objectsAt(store, 1)).toEqual(["doc:9@user:a"]);
  expect(await objectsAt(store, 2)).toEqual(["doc:1@user:a", "doc:2@user:a", "doc:9@user:a"]);
  await store.close();
});

it("types whose names begin alike keep their tuples apart on a shared relation", async () => {
  // The store finds an object's slots by its type's name and a `:` after it: `doc` must not take `document:1`.
  const store = new MemoryTupleStore({ snapshotRetentionMs: 60_000 });
  await store.write({
    writes: [tuple("document:1"), tuple("doc:1"), tuple("doc:1", "user:b"), tuple("docs:1")],
    deletes: [],
  });
  await store.write({ writes: [], deletes: [tuple("doc:1", "user:b")] });
  const snapshot = await store.snapshot(2);
  const key = (t: RelationTuple): string => `${t.object}@${t.user}`;
  const [doc, documents, none] = await snapshot.readByTypeRelation([
    { tenant: "default", objectType: "doc", relation: "viewer" },
    { tenant: "default", objectType: "document", relation: "viewer" },
    { tenant: "default", objectType: "do", relation: "viewer" },
  ]);
  expect(doc!.map(key)).toEqual(["doc:1@user:a"]);
  expect(documents!.map(key)).toEqual(["document:1@user:a"]);
  expect(none).toEqual([]);
  const [one, docs] = await snapshot.readByObject([
    { tenant: "default", object: "document:1", relation: "viewer" },
    { tenant: "default", object: "docs:1", relation: "viewer" },
  ]);
  expect(one!.map(key)).toEqual(["document:1@user:a"]);
  expect(docs!.map(key)).toEqual(["docs:1@user:a"]);
  expect((await snapshot.read({ tenant: "default", objectType: "docs" })).map(key)).toEqual([
    "docs:1@user:a",
  ]);
  expect((await snapshot.read({ tenant: "default", object: "doc:1" })).map(key)).toEqual(["doc:1@user:a"]);
  snapshot.release();
  await store.close();
});

it("a plain tuple's object type is taken from its object", async () => {
  // Found in review: a RelationTuple literal given to the store with no objectType (or another) put its slots under
  // that type, where lookups by object never found them (or threw).
  const store = new MemoryTupleStore({ snapshotRetentionMs: 60_000 });
  const t = tuple("doc:1");
  const plain = { ...t, objectType: undefined } as unknown as RelationTuple;
  await store.write({ writes: [plain], deletes: [] });
  const snapshot = await store.snapshot(1);
  const [found] = await snapshot.readByObject([{ tenant: "default", object: "doc:1", relation: "viewer" }]);
  expect(found!.map((x) => x.objectType)).toEqual(["doc"]);
  expect((await snapshot.read({ tenant: "default", objectType: "doc" })).length).toBe(1);
  snapshot.release();
  await expect(store.write({ writes: [{ ...t, objectType: "other" }], deletes: [] })).rejects.toThrow();
  await store.write({ writes: [], deletes: [t] });
  expect(await objectsAt(store, 2)).toEqual([]);
  await store.close();
});
