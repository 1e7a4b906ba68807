/**
 * Revisions under concurrency: checks at many revisions issued at once, while writes land, each answered at
 * exactly its own revision (by the fast path when its graph is at that revision, else by the reference), never
 * from a newer or older graph.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { comparable, query, referenceAnswers } from "./reference.js";

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member]
`);

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

const SLOTS: TupleKey[] = [
  { user: "user:a", relation: "member", object: "group:g" },
  { user: "user:b", relation: "member", object: "group:h" },
  { user: "group:h#member", relation: "member", object: "group:g" },
  { user: "group:g#member", relation: "viewer", object: "doc:1" },
  { user: "user:c", relation: "viewer", object: "doc:1" },
];
const QUERIES = ["user:a", "user:b", "user:c", "user:d"].flatMap((u) => [
  query("doc:1", "viewer", u),
  query("group:g", "member", u),
]);

describe("fast path revisions", () => {
  it("answers concurrent checks at mixed revisions exactly at their own revision", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(SLOTS.length - 1), { minLength: 2, maxLength: 10 }),
        fc.array(fc.nat(), { minLength: 4, maxLength: 12 }),
        async (toggles, picks) => {
          const store = new MemoryTupleStore();
          const fast = new WasmEvaluator({ program, store });
          try {
            const live = new Set<number>();
            for (const t of toggles) {
              const present = live.has(t);
              await store.write({
                writes: present ? [] : [normalized(SLOTS[t]!)],
                deletes: present ? [normalized(SLOTS[t]!)] : [],
              });
              if (present) live.delete(t);
              else live.add(t);
            }
            const current = await store.currentRevision();
            // Ask at increasing revisions mostly (a graph only moves forward), some older ones too.
            const asks = picks.map((p, i) => ({
              revision: 1 + (p % current),
              q: QUERIES[i % QUERIES.length]!,
            }));
            const answers = await Promise.all(asks.map((a) => fast.check(a.q, a.revision)));
            for (const [i, a] of asks.entries()) {
              const [expected] = await referenceAnswers(store, program, a.revision, [a.q], 25);
              const got = comparable(answers[i]);
              if (got === "routed") continue; // only a revision older than the graph's is routed
              expect(got, `${a.q.object}#${a.q.relation}@${a.q.user} at ${a.revision}`).toEqual(expected);
            }
            expect(fast.stats.routed.unsupported + fast.stats.routed.unknown).toBe(0);
          } finally {
            await fast.close();
            await store.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
