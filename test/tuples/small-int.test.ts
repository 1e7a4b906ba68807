/**
 * smallInt keeps a revision's value (it only changes how V8 holds it): 32-bit integers come back equal, as do
 * larger, negative and non-integer numbers.
 */
import { describe, expect, it } from "vitest";
import { smallInt } from "../../src/tuples/versions.js";

describe("smallInt", () => {
  it("returns the same number", () => {
    const doubles = new Float64Array([0, 1, 7, 2 ** 30 - 1, 2 ** 30, 2 ** 31, 2 ** 53 - 1, -1, 1.5, -0]);
    for (const n of doubles) expect(Object.is(smallInt(n), n) || (n === 0 && smallInt(n) === 0)).toBe(true);
    expect(smallInt(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(smallInt(Number.NaN)).toBeNaN();
  });
});
