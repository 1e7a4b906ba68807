/**
 * tenantsOf (src/engine/tuples.ts) names every tenant a write's tuples are in, whether the list came from
 * writeOfInSlices (which notes when all its tuples are in the request's tenant) or not.
 */
import { describe, expect, it } from "vitest";
import { tenantsOf, writeOfInSlices } from "../../src/engine/tuples.js";
import type { WriteRequest } from "../../src/engine/types.js";
import { compileModelAsync } from "../../src/model/index.js";

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
`;

describe("tenantsOf", () => {
  it("names the tenants of writeOfInSlices' lists and of any other list", async () => {
    const program = await compileModelAsync(MODEL);
    const one = await writeOfInSlices(program, {
      tenant: "a",
      writes: [
        { object: "doc:1", relation: "viewer", user: "user:x" },
        { object: "doc:2", relation: "viewer", user: "user:x" },
      ],
    } as WriteRequest);
    expect([...tenantsOf(one.writes, one.deletes)]).toEqual(["a"]);
    const mixed = await writeOfInSlices(program, {
      tenant: "a",
      writes: [
        { object: "doc:1", relation: "viewer", user: "user:x" },
        { object: "doc:2", relation: "viewer", user: "user:x", tenant: "b" },
      ],
      deletes: [{ object: "doc:3", relation: "viewer", user: "user:x", tenant: "c" }],
    } as WriteRequest);
    expect([...tenantsOf(mixed.writes, mixed.deletes)].sort()).toEqual(["a", "b", "c"]);
    const deletesOnly = await writeOfInSlices(program, {
      tenant: "a",
      deletes: [{ object: "doc:3", relation: "viewer", user: "user:x", tenant: "d" }],
    } as WriteRequest);
    expect([...tenantsOf(deletesOnly.writes, deletesOnly.deletes)]).toEqual(["d"]);
    // A list of its own (not writeOfInSlices'): read tuple by tuple.
    expect([...tenantsOf([...one.writes, { tenant: "e" }])].sort()).toEqual(["a", "e"]);
  });
});
