/**
 * The tuple graph's invalidation walk (src/wasm-eval/graph.ts) against the reference evaluator: one evaluator
 * keeps its facts and plans across a random sequence of writes of one tuple or a few (nested groups, a
 * non-recursive team type, folder trees, tuple-to-usersets, an exclusion so plans read subtracted relations), and
 * after every single change the same checks, asked twice (the second from the kept facts and plans), equal the
 * reference's at that revision. A fact or plan that survived a change affecting it shows as a stale answer (a walk
 * that drops half of its same-object or tuple-to-userset steps fails here at once).
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

await loadOpenFgaDsl();

const models = {
  // Union-only: facts are kept.
  facts: `model
  schema 1.1
type user
type team
  relations
    define member: [user]
type group
  relations
    define member: [user, group#member, team#member]
type folder
  relations
    define parent: [folder]
    define owner: [user, group#member]
    define viewer: [user, group#member, team#member] or owner or viewer from parent
`,
  // An exclusion: no facts for it, plans read its subtracted relation.
  plans: `model
  schema 1.1
type user
type team
  relations
    define member: [user]
type group
  relations
    define member: [user, group#member, team#member]
type folder
  relations
    define parent: [folder]
    define banned: [user, group#member, team#member]
    define viewer: [user, group#member, team#member] or viewer from parent
    define can_view: viewer but not banned
`,
};

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

const USERS = ["user:a", "user:b", "user:c"];
const GROUPS = ["group:0", "group:1", "group:2"];
const FOLDERS = ["folder:0", "folder:1", "folder:2", "folder:3"];
const TEAMS = ["team:0", "team:1"];

const tupleArb = (kind: keyof typeof models): fc.Arbitrary<TupleKey> => {
  const subject = fc.oneof(
    fc.constantFrom(...USERS),
    fc.constantFrom(...GROUPS).map((g) => `${g}#member`),
  );
  const grant = kind === "facts" ? "owner" : "banned";
  return fc.oneof(
    fc.record({ user: subject, relation: fc.constant("member"), object: fc.constantFrom(...GROUPS) }),
    fc.record({
      user: fc.constantFrom(...USERS),
      relation: fc.constant("member"),
      object: fc.constantFrom(...TEAMS),
    }),
    fc.record({
      user: subject,
      relation: fc.constantFrom("viewer", grant),
      object: fc.constantFrom(...FOLDERS),
    }),
    fc.record({
      user: fc.constantFrom(...FOLDERS),
      relation: fc.constant("parent"),
      object: fc.constantFrom(...FOLDERS),
    }),
  );
};

describe("invalidation walk = reference, one write at a time", () => {
  for (const kind of ["facts", "plans"] as const) {
    it(`${kind}: after every write of one tuple or a few, kept facts and plans answer like the reference`, async () => {
      await ready();
      const program = compileModel(models[kind]);
      const relations = kind === "facts" ? ["viewer", "owner"] : ["viewer", "can_view"];
      const queries = [
        ...FOLDERS.flatMap((f) => USERS.flatMap((u) => relations.map((r) => query(f, r, u)))),
        ...GROUPS.flatMap((g) => USERS.map((u) => query(g, "member", u))),
        ...TEAMS.flatMap((t) => USERS.map((u) => query(t, "member", u))),
      ];
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            // Mostly one tuple a write; some writes of a few (one batch of walks in the graph).
            fc.array(fc.record({ add: fc.boolean(), tuple: tupleArb(kind) }), { minLength: 1, maxLength: 3 }),
            { minLength: 1, maxLength: 30 },
          ),
          async (writes) => {
            const store = new MemoryTupleStore();
            await using fast = new WasmEvaluator({ program, store });
            const live = new Map<string, RelationTuple>();
            for (const steps of writes) {
              const added: RelationTuple[] = [];
              const deleted: RelationTuple[] = [];
              // A tuple at most once a write (the store refuses to add and delete it in one).
              const touched = new Set<string>();
              for (const step of steps) {
                const t = normalized(step.tuple);
                const key = `${t.object}#${t.relation}@${t.user}`;
                // Deletes pick a live tuple (so most of them change something).
                const target = step.add ? t : ([...live.values()][key.length % Math.max(1, live.size)] ?? t);
                const targetKey = `${target.object}#${target.relation}@${target.user}`;
                if (step.add === live.has(targetKey) || touched.has(targetKey)) continue;
                touched.add(targetKey);
                if (step.add) live.set(targetKey, target);
                else live.delete(targetKey);
                (step.add ? added : deleted).push(target);
              }
              if (added.length + deleted.length === 0) continue;
              await store.write({ writes: added, deletes: deleted });
              const revision = await store.currentRevision();
              const want = await referenceAnswers(store, program, revision, queries, 25);
              for (let round = 0; round < 2; round++) {
                const got = [];
                for (const q of queries) got.push(comparable(await fast.check(q, revision)));
                expect(got).toEqual(want);
              }
            }
          },
        ),
        { numRuns: 60 },
      );
    }, 120_000);
  }
});
