import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { NexusError } from "../../src/util/errors.js";

// A Nexus namespace config as Nexus writes them: no `user` or `agent` type is declared anywhere.
const namespaces = {
  file: {
    relations: {
      parent: {},
      direct_viewer: {},
      parent_viewer: { tupleToUserset: { tupleset: "parent", computedUserset: "viewer" } },
      viewer: { union: ["direct_viewer", "parent_viewer"] },
    },
    permissions: { read: ["viewer"] },
  },
};

describe("Nexus configs and undeclared subject types", () => {
  it("accepts plain subjects of undeclared types as opaque leaves", async () => {
    await using engine = await createEngine({ model: namespaces, format: "nexus" });
    const { token } = await engine.write({
      writes: [
        { user: "agent:bot-7", relation: "direct_viewer", object: "file:/a" },
        { user: "file:/a", relation: "parent", object: "file:/a/b.txt" },
      ],
    });
    const consistency = { atLeastAsFresh: token };
    expect(
      await engine.check({ user: "agent:bot-7", relation: "read", object: "file:/a/b.txt", consistency }),
    ).toBe(true);
    expect(
      await engine.check({ user: "user:alice", relation: "read", object: "file:/a/b.txt", consistency }),
    ).toBe(false);
    expect(
      await engine.listObjects({ user: "agent:bot-7", relation: "read", type: "file", consistency }),
    ).toEqual(expect.arrayContaining(["file:/a", "file:/a/b.txt"]));
  });

  it("still rejects usersets on undeclared types", async () => {
    await using engine = await createEngine({ model: namespaces, format: "nexus" });
    await expect(
      engine.write({ writes: [{ user: "team:eng#member", relation: "direct_viewer", object: "file:/a" }] }),
    ).rejects.toBeInstanceOf(NexusError);
  });

  it("keeps OpenFGA's type_not_found for undeclared subject types", async () => {
    await using engine = await createEngine({
      model: "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]",
    });
    await expect(
      engine.check({ user: "agent:x", relation: "viewer", object: "doc:1" }),
    ).rejects.toMatchObject({
      code: "type_not_found",
    });
  });
});
