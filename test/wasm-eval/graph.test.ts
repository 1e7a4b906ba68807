/**
 * Model-based tests of the graph kernel and the Leopard index against their TypeScript twin (test/twins/graph.ts):
 * random adds and removes (plain, wildcard, userset, flagged, duplicates, absent), every list, edge, reverse
 * adjacency and count compared after every step; the closure distances and heights compared whenever the twin
 * says the relation is clean.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ready } from "../../src/wasm/loader.js";
import { type EvaluateKernel, instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";
import { GraphTwin, NO_REL, OBJECT, USERSET, WILDCARD } from "../twins/graph.js";

const ABSENT = 0xffffffff;
const GROUPS = [0, 1, 2, 3, 4, 5];
const MEMBERS = [10, 11, 12, 13]; // 13 is a wildcard
const RELATIONS = [0, 1];

const opArb = fc.record({
  add: fc.boolean(),
  object: fc.constantFrom(...GROUPS),
  relation: fc.constantFrom(...RELATIONS),
  form: fc.constantFrom("object", "wildcard", "group", "impure", "flagged"),
  subject: fc.nat(5),
});

function list(k: EvaluateKernel, ptr: number, n: number, words: number): number[] {
  const u32 = k.views.u32;
  return Array.from(u32.subarray(ptr >>> 2, (ptr >>> 2) + n * words));
}

describe("graph kernel = twin", () => {
  it("after every add and remove", async () => {
    await ready();
    await fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), (ops) => {
        const k = instantiateEvaluateKernel();
        const e = k.exports;
        // Symbol types: everything is type 0 (groups and members alike; members never have usersets).
        const pairs = e.alloc(8 * 16) >>> 0;
        for (let s = 0; s < 16; s++) {
          k.views.u32[(pairs >>> 2) + 2 * s] = s;
          k.views.u32[(pairs >>> 2) + 2 * s + 1] = 0;
        }
        e.symbols_set_types(pairs, 16);
        const g = e.graph_new(1, 2) >>> 0;
        const lp = e.leopard_new(3, 4) >>> 0;
        e.graph_set_leopard(g, lp);
        const twin = new GraphTwin();
        for (const op of ops) {
          let subject: number;
          let sr = NO_REL;
          let kind = OBJECT;
          let flagged = false;
          switch (op.form) {
            case "object":
              subject = MEMBERS[op.subject % 3]!;
              break;
            case "wildcard":
              subject = MEMBERS[3]!;
              kind = WILDCARD;
              break;
            case "group":
              subject = GROUPS[op.subject]!;
              sr = op.relation;
              kind = USERSET;
              break;
            case "impure":
              subject = GROUPS[op.subject]!;
              sr = 1 - op.relation;
              kind = USERSET;
              break;
            default:
              subject = 0;
              kind = 0;
              flagged = true;
          }
          const f = flagged ? 1 : 0;
          const expected = op.add
            ? twin.add(op.object, op.relation, subject, sr, kind, flagged)
            : twin.remove(op.object, op.relation, subject, sr, kind, flagged);
          const got = op.add
            ? e.graph_add(g, op.object, op.relation, subject, sr, kind, f)
            : e.graph_remove(g, op.object, op.relation, subject, sr, kind, f);
          expect(got).toBe(expected);
          if (got === 1) {
            (op.add ? e.leopard_on_add : e.leopard_on_remove)(
              g,
              lp,
              0,
              op.relation,
              op.object,
              subject,
              sr,
              kind,
              f,
            );
          }
          expect(e.graph_tuples(g)).toBe(twin.tuples);
          expect(e.graph_flagged(g)).toBe(twin.flagged);
          for (const o of GROUPS) {
            for (const r of RELATIONS) {
              const node = twin.node(o, r);
              expect(e.graph_node_flagged(g, o, r)).toBe(node?.flagged ?? 0);
              const n0 = e.graph_node_length(g, o, r, 0);
              const n1 = e.graph_node_length(g, o, r, 1);
              expect(n0 === 0 ? [] : list(k, e.graph_node_entries(g, o, r, 0), n0, 1)).toEqual(
                node?.objects ?? [],
              );
              expect(n1 === 0 ? [] : list(k, e.graph_node_entries(g, o, r, 1), n1, 2)).toEqual(
                (node?.usersets ?? []).flat(),
              );
              for (const s of [...MEMBERS, ...GROUPS]) {
                for (const q of [NO_REL, ...RELATIONS]) {
                  expect(!!e.graph_has_edge(g, o, r, s, q)).toBe(twin.edges.has(`${o},${r},${s},${q}`));
                }
              }
            }
          }
          for (const s of [...MEMBERS, ...GROUPS]) {
            for (const q of [NO_REL, ...RELATIONS]) {
              const n = e.graph_subject_length(g, s, q);
              const expectedList = (twin.subjects.get(`${s},${q}`) ?? []).flat();
              expect(n === 0 ? [] : list(k, e.graph_subject_entries(g, s, q), n, 2)).toEqual(expectedList);
            }
          }
          // Leopard: whenever the twin says relation r is clean, distances and heights must match.
          for (const r of RELATIONS) {
            const closure = twin.closure(GROUPS, r);
            const nodes = k.views.u32[g >>> 2]!;
            // A question never rebuilds a dirty relation (it is undecided: the walk answers)...
            if ((e.leopard_state(lp, 0, r) & 8) !== 0) {
              expect(e.leopard_decide(g, lp, nodes, 0, r, 0, MEMBERS[0]!, ABSENT, 100)).toBe(-1);
              expect(e.leopard_state(lp, 0, r) & 8).toBe(8);
            }
            // ...TenantGraphs rebuilds it off the request path.
            e.leopard_rebuild(g, lp, 0, r);
            if (closure === undefined) {
              expect(e.leopard_state(lp, 0, r) & 7, `relation ${r} should be unclean`).not.toBe(0);
              continue;
            }
            expect(e.leopard_state(lp, 0, r) & 7).toBe(0);
            for (const grp of GROUPS) {
              expect(e.leopard_height(lp, r, grp), `height of ${grp} (relation ${r})`).toBe(
                closure.height.get(grp),
              );
              for (const m of [...MEMBERS, ...GROUPS]) {
                const d = closure.dist.get(grp)!.get(m);
                expect(e.leopard_distance(lp, r, grp, m) >>> 0, `dist ${grp} ∋ ${m} (relation ${r})`).toBe(
                  d ?? ABSENT,
                );
              }
            }
          }
        }
        e.leopard_free(lp);
        e.graph_free(g);
      }),
      { numRuns: Number(process.env.GRAPH_RUNS ?? 150) },
    );
  }, 300_000);
});
