/**
 * The computed-permission change stream (src/views/permissions.ts): over random models and write sequences, the
 * set accumulated from a stream started after a token equals, at every later revision, the set recomputed from
 * scratch by the engine's own listObjects (every plain subject with tuples × every object of the type); every
 * revision arrives once, in order, and no change repeats (a "gained" pair was not held, a "lost" one was). A
 * stream resumed from a middle token, and one started with `initial`, agree too. The public per-change API
 * yields changes as writes happen, for one user or all, and ends on `signal` and on engine close.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine, type Engine, type PermissionRevision } from "../../src/engine/engine.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { type GeneratedModel, modelArb } from "../reference/random-models.js";

type Sets = Map<string, Set<string>>; // class `type#relation` → "subject object" pairs

const pair = (user: string, object: string): string => `${user} ${object}`;
const isPlain = (user: string): boolean => !user.includes("#") && !user.endsWith(":*");

/** Every class's pairs at the engine's current revision, from scratch (listObjects per plain subject with tuples). */
async function recompute(engine: Engine, model: GeneratedModel, token: string): Promise<Sets> {
  const subjects = new Set(
    (await engine.read({ consistency: { atLeastAsFresh: token } })).map((t) => t.user).filter(isPlain),
  );
  const out: Sets = new Map();
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      const pairs = new Set<string>();
      for (const user of subjects) {
        const objects = await engine.listObjects({
          user,
          relation,
          type,
          consistency: { atLeastAsFresh: token },
        });
        for (const object of objects) pairs.add(pair(user, object));
      }
      out.set(`${type}#${relation}`, pairs);
    }
  }
  return out;
}

/** Applies a stream's batches to `held` up to revision `last`, comparing with `expected` at each revision. */
async function follow(
  stream: AsyncGenerator<PermissionRevision>,
  held: Set<string>,
  expected: Map<number, Set<string>>,
  first: number,
  last: number,
): Promise<void> {
  let next = first;
  for await (const batch of stream) {
    expect(batch.revision).toBe(next);
    for (const c of batch.changes) {
      const key = pair(c.user, c.object);
      expect(c.revision).toBe(batch.revision);
      if (c.change === "gained") {
        expect(held.has(key), `duplicate gain ${key}`).toBe(false);
        held.add(key);
      } else {
        expect(held.has(key), `loss of an unheld ${key}`).toBe(true);
        held.delete(key);
      }
    }
    expect([...held].sort()).toEqual([...expected.get(batch.revision)!].sort());
    if (batch.revision === last) break;
    next++;
  }
  expect(next).toBe(last);
}

describe("watchPermissions", () => {
  it("accumulates exactly the recomputed permission sets at every revision, from any token", async () => {
    const stepsArb = fc.array(fc.uniqueArray(fc.nat(200), { minLength: 1, maxLength: 4 }), {
      minLength: 3,
      maxLength: 7,
    });
    await fc.assert(
      fc.asyncProperty(modelArb({ exclusion: true }), stepsArb, async (model, steps) => {
        if (model.slots.length === 0) return;
        await using engine = await createEngine({ model: model.program });
        const live = new Map<string, TupleKey>();
        const tokens: string[] = [await engine.token()];
        const revisions: number[] = [await engine.store.currentRevision()];
        const expected = new Map<number, Sets>([[revisions[0]!, await recompute(engine, model, tokens[0]!)]]);
        for (const step of steps) {
          const writes: TupleKey[] = [];
          const deletes: TupleKey[] = [];
          for (const i of new Set(step.map((n) => n % model.slots.length))) {
            const slot = model.slots[i]!;
            const id = `${slot.object}#${slot.relation}@${slot.user}`;
            if (live.has(id)) {
              deletes.push({ user: slot.user, relation: slot.relation, object: slot.object });
              live.delete(id);
            } else {
              writes.push(slot);
              live.set(id, slot);
            }
          }
          const { token, revision } = await engine.write({ writes, deletes });
          tokens.push(token);
          revisions.push(revision);
          expected.set(revision, await recompute(engine, model, token));
        }
        const last = revisions[revisions.length - 1]!;
        const middle = Math.floor(revisions.length / 2);
        for (const [cls, start] of [...expected.get(last)!.keys()].flatMap((c) => [
          [c, 0],
          [c, middle],
        ])) {
          const [type, relation] = (cls as string).split("#") as [string, string];
          const byRevision = new Map([...expected].map(([r, sets]) => [r, sets.get(cls as string)!]));
          const from = revisions[start as number]!;
          // From the token: the baseline is the recomputed set there.
          const held = new Set(byRevision.get(from)!);
          const stream = engine.watchPermissionRevisions({ type, relation, after: tokens[start as number]! });
          await follow(stream, held, byRevision, from + 1, last);
        }
        // `initial`: the first batch is the whole set at the start revision.
        const [cls] = [...expected.get(last)!.keys()];
        const [type, relation] = cls!.split("#") as [string, string];
        const byRevision = new Map([...expected].map(([r, sets]) => [r, sets.get(cls!)!]));
        await follow(
          engine.watchPermissionRevisions({ type, relation, after: tokens[0]!, initial: true }),
          new Set(),
          byRevision,
          revisions[0]!,
          last,
        );
      }),
      { numRuns: 15 },
    );
  }, 60_000);

  const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type doc
  relations
    define blocked: [user]
    define viewer: [user, group#member] but not blocked`;

  it("yields changes as writes happen, for every subject or one, and ends on signal and close", async () => {
    const engine = await createEngine({ model });
    const stop = new AbortController();
    const all = engine.watchPermissions({ type: "doc", relation: "viewer", signal: stop.signal });
    const bob = engine.watchPermissions({ type: "doc", relation: "viewer", user: "user:bob" });
    const seen: string[] = [];
    const seenBob: string[] = [];
    const collect = (async () => {
      for await (const c of all) seen.push(`${c.revision} ${c.change} ${c.user} ${c.object}`);
    })();
    const collectBob = (async () => {
      for await (const c of bob) seenBob.push(`${c.revision} ${c.change} ${c.user} ${c.object}`);
    })();
    const w = (writes: TupleKey[], deletes: TupleKey[] = []) => engine.write({ writes, deletes });
    const r1 = await w([
      { user: "user:anne", relation: "member", object: "group:eng" },
      { user: "user:bob", relation: "blocked", object: "doc:x" },
    ]);
    const r2 = await w([{ user: "group:eng#member", relation: "viewer", object: "doc:1" }]);
    const r3 = await w([{ user: "user:*", relation: "member", object: "group:eng" }]);
    const r4 = await w([{ user: "user:anne", relation: "blocked", object: "doc:1" }]);
    const r5 = await w([], [{ user: "user:bob", relation: "blocked", object: "doc:x" }]);
    const want = [
      `${r2.revision} gained user:anne doc:1`,
      `${r3.revision} gained user:bob doc:1`,
      `${r4.revision} lost user:anne doc:1`,
      // bob's last tuple is gone: he leaves the subjects of the all-subjects stream (not the one watching him).
      `${r5.revision} lost user:bob doc:1`,
    ];
    const deadline = Date.now() + 10_000;
    while ((seen.length < want.length || seenBob.length < 1) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(r1.revision).toBeLessThan(r2.revision);
    expect(seen).toEqual(want);
    expect(seenBob).toEqual([`${r3.revision} gained user:bob doc:1`]);
    stop.abort();
    await collect; // the signal ended it
    await engine.close();
    await collectBob; // close ended it
    await expect(engine.watchPermissions({ type: "doc", relation: "viewer" }).next()).rejects.toMatchObject({
      code: "closed",
    });
  });

  it("names bad requests", async () => {
    await using engine = await createEngine({ model });
    const first = (request: object) =>
      engine.watchPermissions(request as Parameters<Engine["watchPermissions"]>[0]).next();
    await expect(first({ type: "nope", relation: "viewer" })).rejects.toMatchObject({
      code: "type_not_found",
    });
    await expect(first({ type: "doc", relation: "nope" })).rejects.toMatchObject({
      code: "relation_not_found",
    });
    await expect(first({ type: "doc", relation: "viewer", after: "garbage" })).rejects.toMatchObject({
      code: "invalid_token",
    });
    await expect(first({ type: "doc", relation: "viewer", usr: "user:a" })).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });
});
