/**
 * Materialized permission views (src/postgres/views.ts) on a real PostgreSQL: through random writes and deletes
 * over an engine on the PostgreSQL store (nested groups, wildcards, folders as parents, an exclusion), the view
 * tables and the member closure hold exactly the engine's listObjects answers for every plain subject with tuples;
 * after close and reopen they resume from the recorded revision (the state table says which) and stay exact; a
 * stream with no state is rebuilt; a random model over the memory store agrees too; an engine closed under the
 * views is reported (caughtUp rejects "closed"); bad options are named; and
 * nothing is left running after close.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { materializePermissions, openPostgresTupleStore, tableName } from "../../src/postgres/index.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { seededRandom } from "../../src/util/random.js";
import { modelArb } from "../reference/random-models.js";
import { dropSchema, freshSchema, PG_URL, sql } from "./helpers.js";

const storeSchema = freshSchema("views_store");
const viewSchema = freshSchema("views");
const randomSchema = freshSchema("views_random");

beforeAll(async () => {
  await (await openPostgresTupleStore({ connectionString: PG_URL, schema: storeSchema })).close();
});
afterAll(async () => {
  for (const schema of [storeSchema, viewSchema, randomSchema]) await dropSchema(schema);
});

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
    define viewer: ([user, user:*, group#member] or viewer from parent) but not blocked`;

const USERS = ["user:u0", "user:u1", "user:u2", "user:u3"];
const GROUPS = ["group:g0", "group:g1", "group:g2"];
const FOLDERS = ["folder:f0", "folder:f1"];
const DOCS = ["doc:d0", "doc:d1", "doc:d2"];

function randomTuple(random: () => number): TupleKey {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const subject = () => (random() < 0.3 ? `${pick(GROUPS)}#member` : pick(USERS));
  switch (Math.floor(random() * 6)) {
    case 0:
      return { object: pick(GROUPS), relation: "member", user: random() < 0.1 ? "user:*" : subject() };
    case 1:
      return { object: pick(FOLDERS), relation: "parent", user: pick(FOLDERS) };
    case 2:
      return { object: pick(FOLDERS), relation: "viewer", user: subject() };
    case 3:
      return { object: pick(DOCS), relation: "parent", user: pick(FOLDERS) };
    case 4:
      return { object: pick(DOCS), relation: "blocked", user: pick(USERS) };
    default:
      return { object: pick(DOCS), relation: "viewer", user: random() < 0.1 ? "user:*" : subject() };
  }
}

const isPlain = (user: string): boolean => !user.includes("#") && !user.endsWith(":*");

/** `subject object` pairs the engine allows now, for every plain subject with tuples. */
async function expectedPairs(engine: Engine, type: string, relation: string): Promise<string[]> {
  const subjects = new Set(
    (await engine.read({ consistency: "fully_consistent" })).map((t) => t.user).filter(isPlain),
  );
  const out: string[] = [];
  for (const user of subjects) {
    const objects = await engine.listObjects({ user, relation, type, consistency: "fully_consistent" });
    for (const object of objects) out.push(`${user} ${object}`);
  }
  return out.sort();
}

async function tablePairs(schema: string, table: string): Promise<string[]> {
  const rows = await sql<{ subject: string; object: string }>(
    `SELECT subject, object FROM ${schema}.${table} WHERE tenant = 'default'`,
  );
  return rows.map((r) => `${r.subject} ${r.object}`).sort();
}

async function closurePairs(schema: string): Promise<string[]> {
  const rows = await sql<{ member: string; group: string }>(
    `SELECT member, "group" FROM ${schema}.member_closure WHERE tenant = 'default' AND relation = 'member'`,
  );
  return rows.map((r) => `${r.member} ${r.group}`).sort();
}

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

async function settledBeyond(baseline: Map<string, number>): Promise<string[]> {
  let extra: string[] = [];
  for (let i = 0; i < 50; i++) {
    extra = [];
    for (const [name, count] of resourceCounts()) {
      if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
    }
    if (extra.length === 0) return extra;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return extra;
}

describe("materialized permission views", () => {
  it("hold the engine's answers through random writes, resume after a restart, rebuild without state", async () => {
    const baseline = resourceCounts();
    const seed = Math.floor(Math.random() * 2 ** 31);
    const random = seededRandom(seed);
    const store = await openPostgresTupleStore({ connectionString: PG_URL, schema: storeSchema });
    const engine = await createEngine({ model, store });
    const options = {
      engine,
      connectionString: PG_URL,
      schema: viewSchema,
      views: [
        { type: "doc", relation: "viewer" },
        { type: "folder", relation: "viewer" },
      ],
      groups: [{ type: "group", relation: "member" }],
    };
    const live = new Map<string, TupleKey>();
    const step = async () => {
      const writes: TupleKey[] = [];
      const count = 1 + Math.floor(random() * 5);
      // Draws until the batch has `count` new tuples (at most 50 draws), so no batch is empty.
      for (let draws = 0; writes.length < count && draws < 50; draws++) {
        const t = randomTuple(random);
        const id = `${t.object}#${t.relation}@${t.user}`;
        if (!live.has(id) && !writes.some((w) => `${w.object}#${w.relation}@${w.user}` === id))
          writes.push(t);
      }
      const deletes = [...live.values()].filter(() => random() < 0.2).slice(0, 3);
      await engine.write({ writes, deletes });
      for (const t of writes) live.set(`${t.object}#${t.relation}@${t.user}`, t);
      for (const t of deletes) live.delete(`${t.object}#${t.relation}@${t.user}`);
    };
    const compare = async (label: string) => {
      const context = `${label} (seed ${seed})`;
      expect(await tablePairs(viewSchema, "perm_doc_viewer"), context).toEqual(
        await expectedPairs(engine, "doc", "viewer"),
      );
      expect(await tablePairs(viewSchema, "perm_folder_viewer"), context).toEqual(
        await expectedPairs(engine, "folder", "viewer"),
      );
      expect(await closurePairs(viewSchema), context).toEqual(await expectedPairs(engine, "group", "member"));
    };
    try {
      for (let i = 0; i < 2; i++) await step(); // rows before the views exist: the first load
      let views = await materializePermissions(options);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 2; i++) await step();
        await views.caughtUp();
        await compare(`round ${round}`);
      }
      await views.close();
      // Written while no materializer runs: the next one resumes from the recorded revision.
      const recorded = await sql<{ stream: string; revision: string }>(
        `SELECT stream, revision FROM ${viewSchema}.perm_state ORDER BY stream`,
      );
      expect(recorded.map((r) => r.stream)).toEqual([
        "closure/default/group#member",
        "perm/default/doc#viewer",
        "perm/default/folder#viewer",
      ]);
      for (let i = 0; i < 3; i++) await step();
      views = await materializePermissions(options);
      await views.caughtUp();
      await compare("after a restart");
      expect(views.stats().rebuilds).toBe(0); // resumed from the recorded revisions, not rebuilt
      const resumed = views.stats().streams;
      expect(resumed.every((s) => s.revision === resumed[0]!.revision)).toBe(true);
      for (let i = 0; i < 2; i++) await step();
      await views.caughtUp();
      await compare("after a restart and more writes");
      await views.close();
      // No state for a stream (e.g. dropped by an operator): its rows are rebuilt from the current revision.
      await sql(`DELETE FROM ${viewSchema}.perm_state WHERE stream = 'perm/default/doc#viewer'`);
      await sql(`INSERT INTO ${viewSchema}.perm_doc_viewer VALUES ('default', 'user:ghost', 'doc:ghost')`);
      await using rebuilt = await materializePermissions(options);
      await rebuilt.caughtUp();
      expect(rebuilt.stats().rebuilds).toBe(1);
      await compare("after a rebuild");
    } finally {
      await engine.close();
      await store.close();
    }
    expect(await settledBeyond(baseline)).toEqual([]);
  }, 30_000);

  it("agree with the engine over random models (memory store)", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        modelArb({ exclusion: true }),
        fc.array(fc.nat(500), { minLength: 4, maxLength: 10 }),
        async (generated, picks) => {
          if (generated.slots.length === 0) return;
          await using engine = await createEngine({ model: generated.program });
          const views = generated.types.flatMap((type) =>
            [...generated.program.types.get(type)!.relations.keys()].map((relation) => ({ type, relation })),
          );
          const schema = `${randomSchema}_${run++}`;
          try {
            await using materialized = await materializePermissions({
              engine,
              connectionString: PG_URL,
              schema,
              views,
            });
            const live = new Set<number>();
            for (const p of picks) {
              const i = p % generated.slots.length;
              const slot = generated.slots[i]!;
              if (live.delete(i)) {
                await engine.write({
                  deletes: [{ user: slot.user, relation: slot.relation, object: slot.object }],
                });
              } else {
                live.add(i);
                await engine.write({ writes: [slot] });
              }
            }
            await materialized.caughtUp();
            for (const v of views) {
              expect(await tablePairs(schema, tableName(v))).toEqual(
                await expectedPairs(engine, v.type, v.relation),
              );
            }
          } finally {
            await dropSchema(schema);
          }
        },
      ),
      { numRuns: 2 },
    );
  }, 30_000);

  it("report an engine closed under them, and close cleanly after", async () => {
    const engine = await createEngine({ model });
    const schema = `${randomSchema}_closed`;
    try {
      await using views = await materializePermissions({
        engine,
        connectionString: PG_URL,
        schema,
        views: [{ type: "doc", relation: "viewer" }],
      });
      await views.caughtUp();
      await engine.close();
      await expect(views.caughtUp(1_000)).rejects.toMatchObject({ code: "closed" });
      expect(views.stats().error).toMatch(/engine closed/);
    } finally {
      await dropSchema(schema);
    }
  });

  it("names bad options", async () => {
    await using engine = await createEngine({ model });
    const base = { engine, connectionString: PG_URL, schema: viewSchema };
    await expect(materializePermissions({ ...base, views: [] })).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(
      materializePermissions({ ...base, views: [{ type: "doc", relation: "nope" }] }),
    ).rejects.toMatchObject({ code: "relation_not_found" });
    await expect(
      materializePermissions({ ...base, schema: "Bad-Schema", views: [{ type: "doc", relation: "viewer" }] }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(
      materializePermissions({
        ...base,
        connectionString: "mysql://x",
        views: [{ type: "doc", relation: "viewer" }],
      }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
  });
});
