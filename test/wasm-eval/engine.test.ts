/**
 * The fast path inside the engine: the evaluator option, explicit routing to the reference (contextual tuples,
 * conditional and expiring tuples on the path, cross-tenant subjects, revisions older than the graph), the graph
 * following writes and deletes through the changelog, bulk checks, and close().
 */
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { isNexusError } from "../../src/util/errors.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member, user with small] or viewer from parent
type doc
  relations
    define parent: [folder]
    define banned: [user]
    define viewer: ([user, user:*] or viewer from parent) but not banned
condition small(x: int) {
  x < 5
}`;

async function engine(options: { evaluator?: "wasm" | "reference"; quantizationWindowMs?: number } = {}) {
  const e = await createEngine({ model, cache: false, ...options });
  await e.write({
    writes: [
      { user: "user:anne", relation: "member", object: "group:a" },
      { user: "group:a#member", relation: "member", object: "group:b" },
      { user: "group:b#member", relation: "viewer", object: "folder:root" },
      { user: "folder:root", relation: "parent", object: "folder:x" },
      { user: "folder:x", relation: "parent", object: "doc:1" },
    ],
  });
  return e;
}

const fastCount = (e: Engine) => e.wasmEvaluator!.stats.answered;

describe("engine with the WASM evaluator", () => {
  it("uses wasm by default, reference on request, and rejects other values", async () => {
    await using a = await createEngine({ model });
    expect(a.evaluator).toBe("wasm");
    await using b = await createEngine({ model, evaluator: "reference" });
    expect(b.evaluator).toBe("reference");
    expect(b.wasmEvaluator).toBeUndefined();
    await expect(createEngine({ model, evaluator: "gpu" as never })).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });

  it("answers checks itself and follows writes and deletes", async () => {
    await using e = await engine();
    expect(await e.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
    expect(await e.check({ user: "user:bob", relation: "viewer", object: "doc:1" })).toBe(false);
    expect(fastCount(e)).toBe(2);
    await e.write({ writes: [{ user: "user:anne", relation: "banned", object: "doc:1" }] });
    expect(await e.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(false);
    await e.write({ deletes: [{ user: "user:anne", relation: "banned", object: "doc:1" }] });
    expect(await e.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
    await e.write({ deletes: [{ user: "group:a#member", relation: "member", object: "group:b" }] });
    expect(await e.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(false);
    expect(fastCount(e)).toBe(5);
    expect(e.wasmEvaluator!.stats.graphBuilds).toBe(1);
    expect(e.wasmEvaluator!.stats.changesApplied).toBe(3);
  });

  it("routes contextual tuples to the reference", async () => {
    await using e = await engine();
    const before = fastCount(e);
    const allowed = await e.check({
      user: "user:carl",
      relation: "viewer",
      object: "doc:1",
      contextualTuples: [{ user: "user:carl", relation: "member", object: "group:a" }],
    });
    expect(allowed).toBe(true);
    expect(fastCount(e)).toBe(before);
  });

  it("routes a check that reads a conditional or expiring tuple, and only that check", async () => {
    await using e = await engine();
    await e.write({
      writes: [{ user: "user:dora", relation: "viewer", object: "folder:x", condition: { name: "small" } }],
    });
    // doc:1's path reads folder:x#viewer, which holds the conditional tuple.
    expect(await e.check({ user: "user:dora", relation: "viewer", object: "doc:1", context: { x: 1 } })).toBe(
      true,
    );
    expect(await e.check({ user: "user:dora", relation: "viewer", object: "doc:1", context: { x: 9 } })).toBe(
      false,
    );
    await expect(e.check({ user: "user:dora", relation: "viewer", object: "doc:1" })).rejects.toMatchObject({
      code: "condition_missing_parameter",
    });
    expect(e.wasmEvaluator!.stats.routed.unsupported).toBe(3);
    // A check that never reads folder:x#viewer stays on the fast path.
    const before = fastCount(e);
    expect(await e.check({ user: "user:anne", relation: "member", object: "group:b" })).toBe(true);
    expect(fastCount(e)).toBe(before + 1);
  });

  it("routes cross-tenant requests", async () => {
    await using e = await engine();
    expect(
      await e.check({ user: "user:anne", relation: "viewer", object: "doc:1", subjectTenant: "other" }),
    ).toBe(false);
    expect(e.wasmEvaluator!.stats.routed.cross_tenant).toBe(1);
  });

  it("keeps one graph per tenant", async () => {
    await using e = await engine();
    await e.write({ tenant: "t2", writes: [{ user: "user:anne", relation: "viewer", object: "doc:9" }] });
    expect(await e.check({ tenant: "t2", user: "user:anne", relation: "viewer", object: "doc:9" })).toBe(
      true,
    );
    expect(await e.check({ tenant: "t2", user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(
      false,
    );
    expect(await e.check({ user: "user:anne", relation: "viewer", object: "doc:9" })).toBe(false);
    expect(e.wasmEvaluator!.stats.graphBuilds).toBe(2);
  });

  it("never answers from a graph newer than the request's revision", async () => {
    await using e = await engine();
    const fast = e.wasmEvaluator!;
    const revision = await e.revisionFor("fully_consistent");
    const { revision: later } = await e.write({
      writes: [{ user: "user:erin", relation: "viewer", object: "doc:1" }],
    });
    const q = {
      tenant: "default",
      subjectTenant: "default",
      object: "doc:1",
      relation: "viewer",
      user: "user:erin",
      subject: { kind: "object", type: "user", id: "erin" } as const,
    };
    expect(await fast.check(q, later)).toBe(true);
    expect(await fast.check(q, revision)).toBeUndefined();
    expect(fast.stats.routed.stale_revision).toBe(1);
  });

  it("reports resolution_too_complex like the reference", async () => {
    const deep = await createEngine({ model, maxResolutionDepth: 2 });
    const reference = await createEngine({
      model,
      maxResolutionDepth: 2,
      evaluator: "reference",
      store: deep.store,
    });
    try {
      await deep.write({
        writes: [
          { user: "group:a#member", relation: "member", object: "group:b" },
          { user: "group:b#member", relation: "member", object: "group:c" },
          { user: "group:c#member", relation: "member", object: "group:d" },
        ],
      });
      const request = { user: "user:zed", relation: "member", object: "group:d" };
      const a = await deep.check(request).catch((error: unknown) => error);
      const b = await reference.check(request).catch((error: unknown) => error);
      expect(isNexusError(a) && a.code).toBe("resolution_too_complex");
      expect((a as Error).message).toBe((b as Error).message);
      expect(deep.wasmEvaluator!.stats.answered).toBe(1);
    } finally {
      await reference.close();
      await deep.close();
    }
  });

  it("checkBulk: request order, duplicates once, errors name their index, routed requests answered", async () => {
    await using e = await engine();
    await e.write({
      writes: [{ user: "user:dora", relation: "viewer", object: "folder:x", condition: { name: "small" } }],
    });
    const requests = [
      { user: "user:anne", relation: "viewer", object: "doc:1" },
      { user: "user:bob", relation: "viewer", object: "doc:1" },
      { user: "user:anne", relation: "viewer", object: "doc:1" },
      { user: "user:dora", relation: "viewer", object: "doc:1", context: { x: 1 } },
      {
        user: "user:carl",
        relation: "viewer",
        object: "doc:1",
        contextualTuples: [{ user: "user:carl", relation: "member", object: "group:a" }],
      },
      { user: "user:anne", relation: "member", object: "group:b" },
    ];
    expect(await e.checkBulk(requests)).toEqual([true, false, true, true, true, true]);
    await expect(
      e.checkBulk([requests[0]!, { user: "user:anne", relation: "nope", object: "doc:1" }]),
    ).rejects.toMatchObject({ details: { index: 1 } });
    const many = Array.from({ length: 5000 }, (_, i) => ({
      user: `user:${i % 7 === 0 ? "anne" : `u${i}`}`,
      relation: "viewer",
      object: "doc:1",
    }));
    const answers = await e.checkBulk(many);
    expect(answers).toEqual(many.map((r) => r.user === "user:anne"));
  });

  it("close() frees the fast path and leaves nothing running", async () => {
    const before = new Set(process.getActiveResourcesInfo());
    const e = await engine();
    await e.check({ user: "user:anne", relation: "viewer", object: "doc:1" });
    await e.close();
    expect(e.wasmEvaluator!.closed).toBe(true);
    const after = process.getActiveResourcesInfo().filter((r) => !before.has(r));
    expect(after.filter((r) => r !== "TTYWrap")).toEqual([]);
  });
});
