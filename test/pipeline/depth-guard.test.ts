import { describe, expect, it } from "vitest";
import type { TupleDepthBound } from "../../src/changes/depth.js";
import type { InfluenceMap } from "../../src/changes/influence.js";
import { depthGuardOf } from "../../src/pipeline/chain.js";
import type { ResolvedCheck } from "../../src/pipeline/types.js";

/** A recursive class (maxHops at the limit), so the guard depends on the bound alone. */
const influence = { maxHops: () => 25 } as unknown as InfluenceMap;

function at(revision: number): ResolvedCheck {
  return {
    tenant: "default",
    subjectTenant: "default",
    object: "group:a",
    objectType: "group",
    relation: "member",
    subject: { kind: "object", type: "user", id: "anne" },
    user: "user:anne",
    revision,
    now: 0,
    context: undefined,
    contextualTuples: [],
  };
}

describe("depthGuardOf", () => {
  it("remembers only the revision the bound proved safe: a later, deeper revision is asked again and refused", () => {
    const safe = new Set([5]);
    const asked: number[] = [];
    const bound = {
      safeBelow: (_max: number, revision: number) => {
        asked.push(revision);
        return safe.has(revision);
      },
    } as unknown as TupleDepthBound;
    const guard = depthGuardOf(influence, bound, 25);
    expect(guard(at(5))).toBe(true);
    expect(guard(at(5))).toBe(true);
    expect(asked).toEqual([5]);
    // Revision 6 holds a chain as long as the limit: no shortcut may deny there.
    expect(guard(at(6))).toBe(false);
    expect(guard(at(6))).toBe(false);
    expect(asked).toEqual([5, 6, 6]);
    // Revision 5's tuples did not change: still safe.
    expect(guard(at(5))).toBe(true);
    // A revision the bound cannot speak for yet is refused, and asked again later (not remembered as refused).
    expect(guard(at(7))).toBe(false);
    safe.add(7);
    expect(guard(at(7))).toBe(true);
  });
});
