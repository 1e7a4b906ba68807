import { describe, expect, it } from "vitest";
import { MemoryModelVersions } from "../../src/tuples/models.js";
import { isNexusError } from "../../src/util/errors.js";

describe("MemoryModelVersions", () => {
  it("keeps immutable versions per tenant, ids increasing, listed newest first with paging", async () => {
    let now = 1_000;
    const models = new MemoryModelVersions(() => now);
    const a1 = await models.add({ tenant: "a", source: "model 1" });
    now = 500; // the clock going back does not make ids go back
    const b1 = await models.add({ tenant: "b", source: "model b", format: "spicedb" });
    const a2 = await models.add({ tenant: "a", source: "model 2" });
    expect(a1.id < b1.id && b1.id < a2.id).toBe(true);
    expect(a1.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect((await models.list("a")).map((m) => m.source)).toEqual(["model 2", "model 1"]);
    expect((await models.list("a", { limit: 1 })).map((m) => m.id)).toEqual([a2.id]);
    expect((await models.list("a", { before: a2.id })).map((m) => m.id)).toEqual([a1.id]);
    expect((await models.latest("b"))?.format).toBe("spicedb");
    expect(await models.latest("c")).toBeUndefined();
    expect(await models.get("b", a1.id)).toBeUndefined(); // another tenant's id
    expect((await models.get("a", a1.id))?.source).toBe("model 1");
  });

  it("rejects a version without a tenant or source", async () => {
    const models = new MemoryModelVersions();
    for (const bad of [{ tenant: "a", source: "" }, { source: "x" }, null, { tenant: "a", source: 3 }]) {
      const error = await models.add(bad as never).catch((e: unknown) => e);
      expect(isNexusError(error) && error.code).toBe("invalid_argument");
    }
  });
});
