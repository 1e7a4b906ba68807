/**
 * One path, whatever the cache switches: the cross-tenant grant queries answer alike with every layer on, with the
 * cross-tenant layer off and with `cache: false`, follow later writes, and cost the engine no second change feed;
 * watch streams (from now, from an old token, several at once, a slow reader) are listeners of the engine's one
 * feed and deliver every change once, in order.
 */
import { describe, expect, it } from "vitest";
import { createEngine, type Engine, type EngineOptions } from "../../src/engine/engine.js";

const model = `model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
    define shared-viewer: [user]
`;

const switches: [string, Partial<EngineOptions>][] = [
  ["default", {}],
  ["crossTenant off", { cache: { crossTenant: false } }],
  ["watch off", { cache: { watch: false } }],
  ["cache: false", { cache: false }],
];

async function take<T>(stream: AsyncGenerator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) {
    out.push(item);
    if (out.length === n) break;
  }
  return out;
}

describe("cross-tenant grant queries", () => {
  for (const [name, options] of switches) {
    it(`answer with ${name}`, async () => {
      await using engine: Engine = await createEngine({ model, ...options });
      await engine.write({
        tenant: "acme",
        writes: [
          { user: "user:bob", subjectTenant: "globex", relation: "shared-viewer", object: "folder:f1" },
          { user: "user:anne", relation: "viewer", object: "folder:f1" },
        ],
      });
      await engine.caughtUp();
      const grants = engine.crossTenantIndex;
      expect(grants).toBeDefined();
      const toBob = await grants.grantsTo({ subjectTenant: "globex", user: "user:bob" });
      expect(toBob.map((t) => t.object)).toEqual(["folder:f1"]);
      expect((await grants.grantsOn({ tenant: "acme", object: "folder:f1" })).map((t) => t.user)).toEqual([
        "user:bob",
      ]);
      // A later write reaches the index (through the engine's feed).
      const { token } = await engine.write({
        tenant: "acme",
        writes: [
          { user: "user:bob", subjectTenant: "globex", relation: "shared-viewer", object: "folder:f2" },
        ],
      });
      await engine.caughtUp();
      for (let i = 0; i < 100; i++) {
        const now = await grants.grantsTo({ subjectTenant: "globex", user: "user:bob" });
        if (now.length === 2) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(
        (await grants.grantsTo({ subjectTenant: "globex", user: "user:bob" })).map((t) => t.object),
      ).toEqual(["folder:f1", "folder:f2"]);
      expect(
        await engine.check({
          tenant: "acme",
          subjectTenant: "globex",
          user: "user:bob",
          relation: "shared-viewer",
          object: "folder:f2",
          consistency: { atLeastAsFresh: token },
        }),
      ).toBe(true);
      // The layers and the grant index share the engine's one feed.
      const feed = engine.stats().chain?.feed;
      if (feed !== undefined) expect(feed.listeners).toBeGreaterThan(0);
    });
  }
});

describe("watch streams on the engine's feed", () => {
  for (const [name, options] of switches) {
    it(`deliver every change once, in order, with ${name}`, async () => {
      await using engine = await createEngine({ model, ...options });
      const first = await engine.write({
        writes: [{ user: "user:a", relation: "viewer", object: "folder:0" }],
      });
      const fromNow = engine.watch();
      const fromOld = engine.watch({ after: first.token });
      const live = take(fromNow, 3);
      const old = take(fromOld, 3);
      // Let both streams subscribe before the writes.
      await new Promise((r) => setTimeout(r, 10));
      for (let i = 1; i <= 3; i++) {
        await engine.write({ writes: [{ user: `user:u${i}`, relation: "viewer", object: `folder:${i}` }] });
      }
      const expected = ["user:u1", "user:u2", "user:u3"];
      expect((await live).map((c) => c.tuple.user)).toEqual(expected);
      expect((await old).map((c) => c.tuple.user)).toEqual(expected);
    });
  }

  it("deliver a slow reader's whole backlog, in order", async () => {
    await using engine = await createEngine({ model });
    const start = await engine.token();
    const stream = engine.watch({ after: start });
    const first = stream.next();
    const total = 6000;
    for (let i = 0; i < total; i += 500) {
      await engine.write({
        writes: Array.from({ length: 500 }, (_, k) => ({
          user: `user:u${i + k}`,
          relation: "viewer",
          object: "folder:big",
        })),
      });
    }
    const seen = [(await first).value!.tuple.user];
    for await (const change of stream) {
      seen.push(change.tuple.user);
      if (seen.length === total) break;
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => `user:u${i}`));
  });

  it("end when the engine closes", async () => {
    const engine = await createEngine({ model, cache: false });
    const stream = engine.watch();
    const next = stream.next();
    await new Promise((r) => setTimeout(r, 10));
    await engine.close();
    expect((await next).done).toBe(true);
  });
});
