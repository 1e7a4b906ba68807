/**
 * NodeIndex (src/changes/node-index.ts) against a Map keyed by (tenant, object): the same id for the same pair
 * while it lives, distinct ids for live pairs, -1 once deleted, freed ids handed out again, through many rehashes.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NodeIndex } from "../../src/changes/node-index.js";

describe("NodeIndex", () => {
  it("property: agrees with a Map of (tenant, object) through adds, finds and deletes", () => {
    const step = fc.record({
      op: fc.constantFrom("add", "add", "find", "delete"),
      tenant: fc.constantFrom("a", "b", "c"),
      object: fc.integer({ min: 0, max: 40 }).map((i) => `doc:${i}`),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300, size: "max" }), (steps) => {
        const index = new NodeIndex();
        const model = new Map<string, number>();
        for (const s of steps) {
          const key = `${s.tenant}\u0000${s.object}`;
          const known = model.get(key);
          if (s.op === "add") {
            const id = index.add(s.tenant, s.object);
            expect(index.isNew).toBe(known === undefined);
            if (known !== undefined) expect(id).toBe(known);
            else {
              expect([...model.values()]).not.toContain(id);
              model.set(key, id);
            }
          } else if (s.op === "find") {
            expect(index.find(s.tenant, s.object)).toBe(known ?? -1);
          } else if (known !== undefined) {
            index.delete(s.tenant, s.object, known);
            model.delete(key);
            expect(index.find(s.tenant, s.object)).toBe(-1);
          }
          expect(index.size).toBe(model.size);
        }
        for (const [key, id] of model) {
          const [tenant, object] = key.split("\u0000") as [string, string];
          expect(index.find(tenant, object)).toBe(id);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps every pair through many rehashes, deletes half, and reuses their ids", () => {
    const index = new NodeIndex();
    const n = 50_000;
    for (let i = 0; i < n; i++) expect(index.add("t", `file:${i}`)).toBe(i);
    expect(index.find("u", "file:1")).toBe(-1); // another tenant, another node
    for (let i = 0; i < n; i += 2) index.delete("t", `file:${i}`, i);
    expect(index.size).toBe(n / 2);
    for (let i = 0; i < n; i++) expect(index.find("t", `file:${i}`)).toBe(i % 2 === 0 ? -1 : i);
    const reused = new Set<number>();
    for (let i = 0; i < n / 2; i++) reused.add(index.add("u", `file:${i}`));
    expect(reused.size).toBe(n / 2);
    for (const id of reused) expect(id % 2).toBe(0);
    expect(index.slots).toBe(n);
  });
});
