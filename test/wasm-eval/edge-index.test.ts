/**
 * The graph kernel answers "does this tuple exist" by scanning a node's vectors until the node holds more than 16
 * evaluable tuples, then through its edges memo (assembly/graph.ts, INDEX_AFTER). Model-based against the
 * TypeScript twin (test/twins/graph.ts) with enough subjects per node to cross that line both ways: random adds
 * and removes of plain, wildcard and userset subjects, duplicates and absent ones, every edge compared after
 * every step, and a node emptied after it was indexed, then refilled.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ready } from "../../src/wasm/loader.js";
import { instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";
import { GraphTwin, NO_REL, OBJECT, USERSET, WILDCARD } from "../twins/graph.js";

const OBJECTS = [0, 1];
const RELATIONS = [0, 1];
/** Subjects 10..49 are plain objects, 50 a wildcard, 0..1 groups (as usersets). */
const PLAIN = Array.from({ length: 40 }, (_, i) => 10 + i);
const WILD = 50;

const opArb = fc.record({
  add: fc.integer({ min: 0, max: 9 }), // mostly adds, so nodes grow past the index line
  object: fc.constantFrom(...OBJECTS),
  relation: fc.constantFrom(...RELATIONS),
  form: fc.constantFrom("object", "object", "object", "wildcard", "userset"),
  subject: fc.nat(39),
});

describe("graph kernel edges: scanned small nodes, indexed large ones", () => {
  it("equal the twin's after every add and remove", async () => {
    await ready();
    await fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 160 }), fc.boolean(), (ops, drain) => {
        const k = instantiateEvaluateKernel();
        const e = k.exports;
        const g = e.graph_new(5, 6) >>> 0;
        const twin = new GraphTwin();
        const step = (
          add: boolean,
          object: number,
          relation: number,
          subject: number,
          sr: number,
          kind: number,
        ) => {
          const expected = add
            ? twin.add(object, relation, subject, sr, kind, false)
            : twin.remove(object, relation, subject, sr, kind, false);
          const got = add
            ? e.graph_add(g, object, relation, subject, sr, kind, 0)
            : e.graph_remove(g, object, relation, subject, sr, kind, 0);
          expect(got).toBe(expected);
          expect(e.graph_tuples(g)).toBe(twin.tuples);
        };
        const compare = () => {
          for (const o of OBJECTS) {
            for (const r of RELATIONS) {
              for (const s of [...PLAIN, WILD]) {
                expect(!!e.graph_has_edge(g, o, r, s, NO_REL)).toBe(
                  twin.edges.has(`${o},${r},${s},${NO_REL}`),
                );
              }
              for (const s of OBJECTS) {
                for (const q of RELATIONS) {
                  expect(!!e.graph_has_edge(g, o, r, s, q)).toBe(twin.edges.has(`${o},${r},${s},${q}`));
                }
              }
            }
          }
        };
        const decode = (op: (typeof ops)[number]): [number, number, number] =>
          op.form === "object"
            ? [PLAIN[op.subject]!, NO_REL, OBJECT]
            : op.form === "wildcard"
              ? [WILD, NO_REL, WILDCARD]
              : [OBJECTS[op.subject % 2]!, op.subject % 2, USERSET];
        for (const op of ops) {
          const [subject, sr, kind] = decode(op);
          step(op.add < 7, op.object, op.relation, subject, sr, kind);
          compare();
        }
        if (drain) {
          // Empty every node (indexed ones included), then add a few back: a node made anew starts unindexed.
          for (const key of [...twin.edges]) {
            const [o, r, s, q] = key.split(",").map(Number) as [number, number, number, number];
            const kind = q !== NO_REL ? USERSET : s === WILD ? WILDCARD : OBJECT;
            step(false, o, r, s, q, kind);
          }
          compare();
          for (const op of ops.slice(0, 20)) {
            const [subject, sr, kind] = decode(op);
            step(true, op.object, op.relation, subject, sr, kind);
          }
          compare();
        }
        e.graph_free(g);
      }),
      { numRuns: 60 },
    );
  });
});
