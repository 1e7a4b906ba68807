/**
 * The depth bound of an engine whose model never names a type as a subject, over a store it shares with an engine
 * whose model does (the server runs an engine per model version over one store; each follows every tenant's
 * changes). Review finding: the first version made the bound unbounded for good at the other model's first tuple
 * naming such an object as its subject, which turned off every shortcut that needs the bound. Such a tuple is one
 * no evaluation under this model follows (reads skip tuples the model does not allow): the bound leaves it out,
 * and answers stay those of the reference evaluator.
 */
import { expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";

const withDocSubjects = `model
  schema 1.1
type user
type doc
  relations
    define parent: [folder]
    define viewer: [user]
    define view: viewer or view from parent
type folder
  relations
    define parent: [folder, doc]
    define viewer: [user]
    define view: viewer or view from parent
`;

// The same types, but no relation allows a doc as its subject: docs are source-only here.
const docsSourceOnly = withDocSubjects.replace("define parent: [folder, doc]", "define parent: [folder]");

it("a model's depth bound leaves out another model's tuples that name its source-only objects as subjects", async () => {
  const store = new MemoryTupleStore();
  const a = await createEngine({ model: withDocSubjects, store });
  const b = await createEngine({ model: docsSourceOnly, store });
  const reference = await createEngine({
    model: docsSourceOnly,
    store,
    evaluator: "reference",
    cache: false,
  });
  try {
    await b.write({
      tenant: "b",
      writes: [
        { object: "folder:f1", relation: "parent", user: "folder:root" },
        { object: "doc:d1", relation: "parent", user: "folder:f1" },
        { object: "folder:root", relation: "viewer", user: "user:anne" },
      ],
    });
    const { token } = await a.write({
      tenant: "a",
      writes: [{ object: "folder:z", relation: "parent", user: "doc:x" }],
    });
    await b.caughtUp();
    const depth = (b.stats().chain as { depth: { longestChain: number } }).depth;
    expect(depth.longestChain).toBe(3); // doc:d1 → folder:f1 → folder:root → user:anne, in tenant b
    const consistency = { atLeastAsFresh: token };
    for (const [user, object] of [
      ["user:anne", "doc:d1"],
      ["user:bob", "doc:d1"],
      ["user:nobody", "folder:f1"],
    ] as const) {
      const ask = { tenant: "b", user, relation: "view", object, consistency };
      expect(await b.check(ask)).toBe(await reference.check(ask));
    }
  } finally {
    await a.close();
    await b.close();
    await reference.close();
    await store.close();
  }
});
