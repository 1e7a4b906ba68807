/**
 * Engines over the PostgreSQL store (the default engine: WASM evaluator, cache chain, read-your-writes) answer
 * exactly as the same engine over the in-memory store, through random write and delete sequences (groups nested,
 * folders as parents, wildcards, an exclusion, an expiring grant); and an engine with its store closes back to the
 * baseline of active resources.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { openPostgresTupleStore } from "../../src/postgres/index.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { seededRandom } from "../../src/util/random.js";
import { dropSchema, freshSchema, PG_URL } from "./helpers.js";

const schema = freshSchema("engine");

beforeAll(async () => {
  await (await openPostgresTupleStore({ connectionString: PG_URL, schema })).close();
});
afterAll(() => dropSchema(schema));

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type doc
  relations
    define parent: [folder]
    define blocked: [user]
    define editor: [user, group#member]
    define viewer: ([user, user:*, group#member] or editor or viewer from parent) but not blocked`;

const USERS = ["user:u0", "user:u1", "user:u2", "user:u3", "user:u4"];
const GROUPS = ["group:g0", "group:g1", "group:g2"];
const FOLDERS = ["folder:f0", "folder:f1", "folder:f2"];
const DOCS = ["doc:d0", "doc:d1", "doc:d2", "doc:d3"];

function randomTuple(random: () => number, now: number): TupleKey {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const subject = () => (random() < 0.3 ? `${pick(GROUPS)}#member` : pick(USERS));
  const kind = Math.floor(random() * 7);
  const tuple: TupleKey =
    kind === 0
      ? { object: pick(GROUPS), relation: "member", user: random() < 0.1 ? "user:*" : subject() }
      : kind === 1
        ? { object: pick(FOLDERS), relation: "parent", user: pick(FOLDERS) }
        : kind === 2
          ? { object: pick(FOLDERS), relation: "viewer", user: subject() }
          : kind === 3
            ? { object: pick(DOCS), relation: "parent", user: pick(FOLDERS) }
            : kind === 4
              ? { object: pick(DOCS), relation: "blocked", user: pick(USERS) }
              : kind === 5
                ? { object: pick(DOCS), relation: "editor", user: subject() }
                : { object: pick(DOCS), relation: "viewer", user: random() < 0.1 ? "user:*" : subject() };
  // Some grants expire within the run (both engines read expiry by the same clock).
  return random() < 0.1 ? { ...tuple, expiresAt: new Date(now + 300 + random() * 600) } : tuple;
}

describe("an engine over PostgreSQL", () => {
  it("answers as the same engine over memory through random writes and deletes", async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const random = seededRandom(seed);
    await using store = await openPostgresTupleStore({ connectionString: PG_URL, schema });
    const overPostgres = await createEngine({ model, store });
    const overMemory = await createEngine({ model });
    const live: TupleKey[] = [];
    let compared = 0;
    try {
      for (let step = 0; step < 8; step++) {
        const writes: TupleKey[] = [];
        for (let i = 0; i < 1 + Math.floor(random() * 8); i++) writes.push(randomTuple(random, Date.now()));
        const deletes = live.filter(() => random() < 0.15).slice(0, 4);
        const batch = {
          writes,
          deletes: deletes.map(({ object, relation, user }) => ({ object, relation, user })),
          onDuplicate: "ignore" as const,
          onMissing: "ignore" as const,
        };
        const [a, b] = await Promise.allSettled([overPostgres.write(batch), overMemory.write(batch)]);
        expect(a.status, `seed ${seed} step ${step}`).toBe(b.status);
        if (a.status === "fulfilled") {
          for (const d of deletes) live.splice(live.indexOf(d), 1);
          live.push(...writes);
        }
        const tokens = {
          postgres: a.status === "fulfilled" ? a.value.token : undefined,
          memory: b.status === "fulfilled" ? b.value.token : undefined,
        };
        for (const object of [...DOCS, ...FOLDERS]) {
          for (const user of [...USERS, "group:g0#member"]) {
            const question = { user, relation: "viewer", object };
            const [x, y] = await Promise.all([
              overPostgres.check({ ...question, consistency: "fully_consistent" }),
              overMemory.check({ ...question, consistency: "fully_consistent" }),
            ]);
            expect(x, `seed ${seed} step ${step}: ${user} viewer ${object}`).toBe(y);
            compared++;
          }
        }
        for (const user of USERS.slice(0, 2)) {
          const request = { user, relation: "viewer", type: "doc" };
          const [x, y] = await Promise.all([
            overPostgres.listObjects({
              ...request,
              ...(tokens.postgres ? { consistency: { atLeastAsFresh: tokens.postgres } } : {}),
            }),
            overMemory.listObjects({
              ...request,
              ...(tokens.memory ? { consistency: { atLeastAsFresh: tokens.memory } } : {}),
            }),
          ]);
          expect([...x].sort(), `seed ${seed} step ${step}: listObjects ${user}`).toEqual([...y].sort());
          compared++;
        }
      }
    } finally {
      await overPostgres.close();
      await overMemory.close();
    }
    expect(compared).toBeGreaterThan(200);
  });
});

describe("closing", () => {
  it("leaves nothing running after an engine over the store and the store close", async () => {
    const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 50));
    const counts = () => {
      const out = new Map<string, number>();
      for (const r of process.getActiveResourcesInfo()) out.set(r, (out.get(r) ?? 0) + 1);
      return out;
    };
    await settle();
    const baseline = counts();
    const store = await openPostgresTupleStore({ connectionString: PG_URL, schema });
    const engine = await createEngine({ model, store });
    const { token } = await engine.write({
      writes: [{ user: "user:u0", relation: "viewer", object: "doc:leak" }],
    });
    expect(
      await engine.check({
        user: "user:u0",
        relation: "viewer",
        object: "doc:leak",
        consistency: { atLeastAsFresh: token },
      }),
    ).toBe(true);
    const abort = new AbortController();
    const watching = (async () => {
      for await (const _ of engine.watch({ signal: abort.signal })) break;
    })();
    await engine.write({ writes: [{ user: "user:u1", relation: "viewer", object: "doc:leak" }] });
    await watching;
    abort.abort();
    await store.collectGarbage();
    await engine.close();
    await store.close();
    await settle();
    const extra: string[] = [];
    for (const [name, count] of counts()) {
      if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
    }
    expect(extra).toEqual([]);
  });
});
