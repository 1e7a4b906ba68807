import { describe, expect, it } from "vitest";
import { tupleColumns } from "../../src/postgres/rows.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";

function stored(object: string): RelationTuple {
  const normalized = normalizeTuple({ object, relation: "viewer", user: "user:anne" }, "default");
  if (!normalized.ok) throw new Error("fixture tuple did not normalize");
  return normalized.value;
}

describe("tupleColumns", () => {
  it("writes the object id of a stored tuple, and of a caller's spread or clone of one", () => {
    // A stored tuple's objectId is a getter: a spread or structuredClone copies only own fields.
    const tuple = stored("doc:a:b");
    const copies = [tuple, { ...tuple }, structuredClone(tuple)] as RelationTuple[];
    const cols = tupleColumns(copies);
    expect(cols[1]).toEqual(["doc", "doc", "doc"]);
    expect(cols[2]).toEqual(["a:b", "a:b", "a:b"]);
  });
});
