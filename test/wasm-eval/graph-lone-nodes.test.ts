/**
 * Lone node records (assembly/graph.ts): a node whose one tuple is a plain-object subject, made while its object
 * has no other node, is a 12-byte record instead of a 28-byte one. Its memory per tuple on a tree of files, and
 * every way a lone record is read, widened (a second subject of any kind, a flagged tuple, a node put before it)
 * and freed, against a plain model of the graph's lists.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ready } from "../../src/wasm/loader.js";
import { instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";

const NO_REL = 0xffffffff;
const OBJECT = 0;
const WILDCARD = 1;
const USERSET = 2;

describe("lone node records", () => {
  it("hold a tree of files in 12 bytes a node record", async () => {
    await ready();
    const k = instantiateEvaluateKernel();
    const e = k.exports;
    const g = e.graph_new(3, 4) >>> 0;
    // 100 folders of 1,000 files (symbols 1,000 and up), a parent each, written folder by folder as a load writes
    // them, and 1 file in 100 with a viewer too (a second node: a full record put before the lone one).
    let file = 1000;
    for (let folder = 0; folder < 100; folder++) {
      for (let i = 0; i < 1000; i++, file++) {
        e.graph_add(g, file, 0, folder, NO_REL, OBJECT, 0);
        if (file % 100 === 0) e.graph_add(g, file, 1, 900, NO_REL, OBJECT, 0);
      }
    }
    const tuples = e.graph_tuples(g) >>> 0;
    expect(tuples).toBe(101_000);
    // Per file: its node record (12 bytes as a lone record; 28 as a full one), its page's share (4), its entry in
    // its folder's reverse-adjacency vector (8; 1,062 entries' room for 1,000), the viewers' full records (1 in
    // 100): about 25 bytes a tuple, 41 with full records only.
    expect((e.graph_memory_bytes(g) >>> 0) / tuples).toBeLessThan(30);
    for (let f = 1000; f < file; f += 37) {
      expect(e.graph_has_edge(g, f, 0, Math.floor((f - 1000) / 1000), NO_REL)).toBe(1);
      expect(e.graph_node_length(g, f, 0, 0) >>> 0).toBe(1);
      expect(e.graph_has_edge(g, f, 1, 900, NO_REL)).toBe(f % 100 === 0 ? 1 : 0);
    }
    e.graph_free(g);
  });

  // Objects 0-3 (their nodes' lists), relations 0-2, subjects 10-12 of every kind, and flagged tuples.
  const opArb = fc.record({
    add: fc.boolean(),
    object: fc.integer({ min: 0, max: 3 }),
    relation: fc.integer({ min: 0, max: 2 }),
    kind: fc.constantFrom(OBJECT, OBJECT, OBJECT, WILDCARD, USERSET, -1),
    subject: fc.integer({ min: 10, max: 12 }),
  });

  it("read, widen and free as full records do, in any order of adds and removes", async () => {
    await ready();
    await fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), (ops) => {
        const k = instantiateEvaluateKernel();
        const e = k.exports;
        const g = e.graph_new(7, 8) >>> 0;
        const empty = e.graph_memory_bytes(g) >>> 0;
        // (object, relation) -> its objects, wildcards and usersets in insertion order, and its flagged count.
        type Node = { objects: number[]; wildcards: number[]; usersets: number[]; flagged: number };
        const model = new Map<string, Node>();
        const key = (o: number, r: number) => `${o}/${r}`;
        let tuples = 0;
        for (const op of ops) {
          const node = model.get(key(op.object, op.relation)) ?? {
            objects: [],
            wildcards: [],
            usersets: [],
            flagged: 0,
          };
          // Wildcard subjects are other symbols than plain ones (a symbol's text says which it is).
          const subject = op.kind === WILDCARD ? op.subject + 10 : op.subject;
          if (op.kind === -1) {
            const done = op.add
              ? e.graph_add(g, op.object, op.relation, 0, NO_REL, OBJECT, 1)
              : e.graph_remove(g, op.object, op.relation, 0, NO_REL, OBJECT, 1);
            const expected = op.add || node.flagged > 0;
            expect(done).toBe(expected ? 1 : 0);
            if (expected) node.flagged += op.add ? 1 : -1;
          } else {
            const list =
              op.kind === OBJECT ? node.objects : op.kind === WILDCARD ? node.wildcards : node.usersets;
            const relation = op.kind === USERSET ? 1 : NO_REL;
            const at = list.indexOf(subject);
            const done = op.add
              ? e.graph_add(g, op.object, op.relation, subject, relation, op.kind, 0)
              : e.graph_remove(g, op.object, op.relation, subject, relation, op.kind, 0);
            expect(done).toBe((op.add ? at < 0 : at >= 0) ? 1 : 0);
            if (op.add && at < 0) {
              list.push(subject);
              tuples++;
            }
            if (!op.add && at >= 0) {
              list.splice(at, 1);
              tuples--;
            }
          }
          model.set(key(op.object, op.relation), node);
          for (let o = 0; o < 4; o++) {
            for (let r = 0; r < 3; r++) {
              const want = model.get(key(o, r));
              const objects = want?.objects ?? [];
              const n = e.graph_node_length(g, o, r, 0) >>> 0;
              const ptr = e.graph_node_entries(g, o, r, 0) >>> 0;
              expect(n === 0 ? [] : Array.from(k.views.u32.subarray(ptr >>> 2, (ptr >>> 2) + n))).toEqual(
                objects,
              );
              const usersets = want?.usersets ?? [];
              const m = e.graph_node_length(g, o, r, 1) >>> 0;
              const uptr = e.graph_node_entries(g, o, r, 1) >>> 0;
              const got: number[] = [];
              for (let i = 0; i < m; i++) got.push(k.views.u32[(uptr >>> 2) + 2 * i]!);
              expect(got).toEqual(usersets);
              expect(e.graph_node_flagged(g, o, r) >>> 0).toBe(want?.flagged ?? 0);
              for (let s = 10; s <= 12; s++) {
                expect(e.graph_has_edge(g, o, r, s, NO_REL)).toBe(objects.includes(s) ? 1 : 0);
                expect(e.graph_has_edge(g, o, r, s + 10, NO_REL)).toBe(
                  want?.wildcards.includes(s + 10) ? 1 : 0,
                );
                expect(e.graph_has_edge(g, o, r, s, 1)).toBe(usersets.includes(s) ? 1 : 0);
              }
            }
          }
        }
        expect(e.graph_tuples(g) >>> 0).toBe(tuples);
        // Everything removed: no node record or vector is left. What stays is the page and the tables' capacity
        // (the subject memo grown for up to 9 subjects: the same before lone records); a count of records gone
        // wrong would wrap far above this.
        for (const [k2, node] of model) {
          const [o, r] = k2.split("/").map(Number) as [number, number];
          for (const s of node.objects) e.graph_remove(g, o, r, s, NO_REL, OBJECT, 0);
          for (const s of node.wildcards) e.graph_remove(g, o, r, s, NO_REL, WILDCARD, 0);
          for (const s of node.usersets) e.graph_remove(g, o, r, s, 1, USERSET, 0);
          for (let i = 0; i < node.flagged; i++) e.graph_remove(g, o, r, 0, NO_REL, OBJECT, 1);
        }
        expect(e.graph_tuples(g) >>> 0).toBe(0);
        const pages = model.size === 0 ? 0 : 32;
        expect((e.graph_memory_bytes(g) >>> 0) - empty).toBeLessThanOrEqual(pages + 1024);
        e.graph_free(g);
      }),
      { numRuns: 300 },
    );
  });
});
