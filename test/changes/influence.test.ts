/**
 * The influence map's closures, longest paths and condition rule are computed lazily and in linear time; here
 * they are checked against the plain definitions (a DFS from every class, longest path by exhaustive search)
 * over the same direct edges, on random models, the Nexus preset and unrestricted Nexus relations; and building
 * the map grows linearly with the number of types.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ANY_CLASS, influenceEdges, influenceOf } from "../../src/changes/influence.js";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { compileModel } from "../../src/model/index.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import type { Program } from "../../src/model/program.js";
import { modelArb } from "../reference/random-models.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

/** The definitions, computed the slow way over the direct edges (ANY_CLASS expanded to every class). */
function plain(program: Program) {
  const { all, reads, next, conditional } = influenceEdges(program);
  const successors = (cls: string): string[] =>
    [...(next.get(cls) ?? [])].flatMap((c) => (c === ANY_CLASS ? all : [c]));
  const reach = (start: string): Set<string> => {
    const seen = new Set([start]);
    const stack = [start];
    while (stack.length > 0) {
      for (const c of successors(stack.pop()!)) {
        if (!seen.has(c)) {
          seen.add(c);
          stack.push(c);
        }
      }
    }
    return seen;
  };
  const readsOf = new Map<string, Set<string>>();
  for (const cls of all) {
    const out = new Set<string>();
    for (const c of reach(cls)) for (const t of reads.get(c) ?? []) out.add(t);
    readsOf.set(cls, out);
  }
  const longest = (cls: string, path: Set<string>): number => {
    let most = 0;
    for (const c of successors(cls)) {
      if (path.has(c)) return Number.POSITIVE_INFINITY;
      path.add(c);
      most = Math.max(most, 1 + longest(c, path));
      path.delete(c);
    }
    return most;
  };
  return {
    all,
    readsOf,
    affectedBy: (t: string) => all.filter((cls) => readsOf.get(cls)!.has(t)).sort(),
    maxHops: (cls: string) => longest(cls, new Set([cls])),
    mayEvaluateConditions: (cls: string) => [...readsOf.get(cls)!].some((t) => conditional.has(t)),
  };
}

function compare(program: Program): void {
  const expected = plain(program);
  const map = influenceOf(program);
  // Each class asked again after others and right after itself: the map keeps its last answer per function.
  const all = expected.all;
  const order = all.flatMap((c, i) => [c, all[(i * 7 + 3) % all.length]!, c]);
  for (const cls of order) {
    const [type, relation] = cls.split("#") as [string, string];
    expect([...map.readsOf(type, relation)].sort(), cls).toEqual([...expected.readsOf.get(cls)!].sort());
    expect([...map.affectedBy(type, relation)].sort(), cls).toEqual(expected.affectedBy(cls));
    expect(map.maxHops(type, relation), cls).toBe(expected.maxHops(cls));
    expect(map.mayEvaluateConditions(type, relation), cls).toBe(expected.mayEvaluateConditions(cls));
  }
}

/** subjectBound of every (class, subject type), asked in a scrambled order, equals a fresh answer each time. */
function compareSubjectBound(program: Program, again: Program): void {
  const map = influenceOf(program);
  const fresh = influenceOf(again);
  const types = [...program.types.keys()];
  const asks = influenceEdges(program).all.flatMap((cls) =>
    types.map((t) => [...cls.split("#"), t] as const),
  );
  const order = asks.flatMap((a, i) => [a, asks[(i * 5 + 1) % asks.length]!, a]);
  for (const [type, relation, subjectType] of order) {
    fresh.subjectBound("", "", ""); // forget its last answer
    expect(map.subjectBound(type!, relation!, subjectType), `${type}#${relation}@${subjectType}`).toBe(
      fresh.subjectBound(type!, relation!, subjectType),
    );
  }
}

describe("influence map", () => {
  it("equals the plain definitions on random models (conditions, exclusion, cycles)", () => {
    fc.assert(
      fc.property(modelArb({ exclusion: true, conditions: true }), ({ program }) => compare(program)),
      { numRuns: 300, seed: 20261206 },
    );
  });

  it("equals them on the Nexus preset and on unrestricted Nexus relations", () => {
    compare(compileModel(nexusFilesystemModel, "nexus"));
    compareSubjectBound(
      compileModel(nexusFilesystemModel, "nexus"),
      compileModel(nexusFilesystemModel, "nexus"),
    );
    compare(
      compileModel(
        {
          file: {
            relations: {
              parent: {},
              owner: {},
              inherited: { tupleToUserset: { tupleset: "parent", computedUserset: "viewer" } },
              viewer: { union: ["owner", "inherited"] },
            },
            permissions: { read: ["viewer"] },
          },
          group: { relations: { member: {} } },
        },
        "nexus",
      ),
    );
  });

  it("builds in time linear in the number of types (a chain of tuple-to-usersets)", () => {
    const chain = (n: number): Program => {
      const direct = (...types: object[]) => ({ directly_related_user_types: types });
      const types: object[] = [
        { type: "user" },
        {
          type: "t0",
          relations: { r: { this: {} } },
          metadata: { relations: { r: direct({ type: "user" }) } },
        },
      ];
      for (let i = 1; i < n; i++) {
        const parentRead = {
          tupleToUserset: { tupleset: { relation: "p" }, computedUserset: { relation: "r" } },
        };
        types.push({
          type: `t${i}`,
          relations: { p: { this: {} }, r: { union: { child: [{ this: {} }, parentRead] } } },
          metadata: {
            relations: {
              p: direct({ type: `t${i - 1}` }),
              r: direct({ type: "user" }, { type: `t${i - 1}`, relation: "r" }),
            },
          },
        });
      }
      return compileModel({ schema_version: "1.1", type_definitions: types });
    };
    const timeFor = (n: number): number => {
      const program = chain(n);
      const started = performance.now();
      const map = influenceOf(program);
      // What a cache asks on a change and on a check: a few closures, not every one.
      map.affectedBy("t0", "r");
      map.maxHops(`t${n - 1}`, "r");
      map.mayEvaluateConditions(`t${n - 1}`, "r");
      return performance.now() - started;
    };
    timeFor(500);
    const small = timeFor(2_000);
    const large = timeFor(8_000);
    expect(large / small).toBeLessThan(12);
  }, 120_000);
});
