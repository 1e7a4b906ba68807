/**
 * The cluster's shortcuts against the reference: two members in this process (startServer with `cluster`) over one
 * PostgreSQL schema and one Redis prefix of this run's own, driven over HTTP with random writes and deletes on a
 * random member (in two stores, so one store's writes must not retire the other's shared answers) and checks on a
 * random member, repeated so the shared Redis cache and forwarding both answer. Every answer is compared with the
 * reference evaluator (no caches) over a memory store fed the same writes. Also: stores created concurrently on
 * both members are all kept (the shared catalog), and close() leaves nothing in the member set.
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { type NexusServer, startServer } from "../../src/server/index.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { modelJson } from "../server/helpers.js";
import { dropPrefix, PG_URL, REDIS_URL, redisAvailable, uniqueName } from "./helpers.js";

const available = await redisAvailable();
const schema = uniqueName("diff");
const prefix = `${uniqueName("diff")}:`;

const DSL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, group#member] or owner or viewer from parent`;

const USERS = ["user:a", "user:b", "user:c"];
const GROUPS = ["group:x", "group:y"];
const FOLDERS = ["folder:f1", "folder:f2"];
const DOCS = ["doc:1", "doc:2", "doc:3"];

/** The tuples the model allows over the small universe above. */
function candidates(): { user: string; relation: string; object: string }[] {
  const out: { user: string; relation: string; object: string }[] = [];
  for (const g of GROUPS) {
    for (const u of USERS) out.push({ user: u, relation: "member", object: g });
    for (const h of GROUPS) if (h !== g) out.push({ user: `${h}#member`, relation: "member", object: g });
  }
  for (const f of FOLDERS) {
    for (const u of USERS) out.push({ user: u, relation: "viewer", object: f });
    for (const g of GROUPS) out.push({ user: `${g}#member`, relation: "viewer", object: f });
  }
  for (const d of DOCS) {
    for (const f of FOLDERS) out.push({ user: f, relation: "parent", object: d });
    for (const u of USERS) {
      out.push({ user: u, relation: "owner", object: d });
      out.push({ user: u, relation: "viewer", object: d });
    }
    for (const g of GROUPS) out.push({ user: `${g}#member`, relation: "viewer", object: d });
  }
  return out;
}

/** A seeded generator (mulberry32), so a failure names a run that can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function post(
  url: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe.skipIf(!available)("two cluster members against the reference evaluator", () => {
  const servers: NexusServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await dropPrefix(prefix);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }, 60_000);

  it("answers every check as the reference does under random writes on random members", async () => {
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startServer({
          port: 0,
          postgres: PG_URL,
          postgresSchema: schema,
          cluster: { redis: REDIS_URL, prefix },
        }),
      );
    }
    const urls = servers.map((s) => s.url);
    const seed = Number(process.env.CLUSTER_SEED ?? Date.now() % 1_000_000);
    const next = random(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;

    // Stores created on both members at once are all kept.
    const created = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post(urls[i % 2]!, "/stores", { name: `s${i}` })),
    );
    const ids = created.map((c) => c.json.id as string);
    for (const url of urls) {
      const listed = (await (await fetch(`${url}/stores?page_size=100`)).json()) as {
        stores: { id: string }[];
      };
      const seen = new Set(listed.stores.map((s) => s.id));
      for (const id of ids) expect(seen.has(id), `store ${id} listed by ${url}`).toBe(true);
    }

    const stores = ids.slice(0, 2);
    const model = modelJson(DSL);
    const references = new Map<string, Engine>();
    const present = new Map<string, Set<string>>();
    for (const store of stores) {
      expect((await post(pick(urls), `/stores/${store}/authorization-models`, model)).status).toBe(201);
      references.set(
        store,
        await createEngine({
          model: DSL,
          evaluator: "reference",
          cache: false,
          store: new MemoryTupleStore(),
        }),
      );
      present.set(store, new Set());
    }
    const all = candidates();
    let checks = 0;
    try {
      for (let step = 0; step < 80; step++) {
        const store = pick(stores);
        const reference = references.get(store)!;
        const have = present.get(store)!;
        const tuple = pick(all);
        const key = JSON.stringify(tuple);
        const deleting = have.has(key);
        const body = deleting ? { deletes: { tuple_keys: [tuple] } } : { writes: { tuple_keys: [tuple] } };
        const written = await post(pick(urls), `/stores/${store}/write`, body);
        expect(written.status, JSON.stringify(written.json)).toBe(200);
        await reference.write(deleting ? { deletes: [tuple] } : { writes: [tuple] });
        if (deleting) have.delete(key);
        else have.add(key);
        // A few questions, each asked of both members about both stores (the owner answers; a repeat is a hit).
        for (let q = 0; q < 3; q++) {
          const question = {
            user: pick(USERS),
            relation: pick(["viewer", "owner"]),
            object: pick(DOCS),
          };
          for (const other of stores) {
            const expected = await references
              .get(other)!
              .check({ ...question, consistency: "fully_consistent" });
            for (const url of urls) {
              const answer = await post(url, `/stores/${other}/check`, { tuple_key: question });
              expect(
                answer.json.allowed,
                `seed ${seed} step ${step} ${other} ${JSON.stringify(question)} at ${url}`,
              ).toBe(expected);
              checks++;
            }
          }
        }
      }
    } finally {
      for (const engine of references.values()) await engine.close();
    }
    const stats = servers.map((s) => s.cluster!.sharedCache!.stats);
    const hits = stats.reduce((n, s) => n + s.hits, 0);
    const stored = stats.reduce((n, s) => n + s.stores, 0);
    console.log(
      `seed ${seed}: ${checks} checks; shared cache ${hits} hits, ${stored} stored, errors ${stats.map((s) => s.errors)}`,
    );
    expect(hits).toBeGreaterThan(0);
    expect(stats.every((s) => s.errors === 0)).toBe(true);
  }, 300_000);

  it("keeps a subject's shared answer across writes that cannot reach it, and withdraws it on one that can", async () => {
    const urls = servers.map((s) => s.url);
    const store = (await post(urls[0]!, "/stores", { name: "reach" })).json.id as string;
    expect((await post(urls[1]!, `/stores/${store}/authorization-models`, modelJson(DSL))).status).toBe(201);
    const total = (field: "hits" | "misses" | "stores"): number =>
      servers.reduce((n, s) => n + s.cluster!.sharedCache!.stats[field], 0);
    const write = async (kind: "writes" | "deletes", user: string, relation: string, object: string) => {
      const answer = await post(urls[1]!, `/stores/${store}/write`, {
        [kind]: { tuple_keys: [{ user, relation, object }] },
      });
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    };
    const question = { user: "user:a", relation: "viewer", object: "doc:1" };
    /** Asks once, on member 0; whether the shared cache answered it. */
    const ask = async (expected: boolean): Promise<boolean> => {
      const hits = total("hits");
      const answer = await post(urls[0]!, `/stores/${store}/check`, { tuple_key: question });
      expect(answer.json.allowed).toBe(expected);
      return total("hits") > hits;
    };
    /** Asks (a miss), waits for the answer to be stored (stores run after the reply), asks again: a hit. */
    const warm = async (expected: boolean): Promise<void> => {
      const stored = total("stores");
      expect(await ask(expected)).toBe(false);
      const deadline = Date.now() + 5_000;
      while (total("stores") === stored && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(await ask(expected)).toBe(true);
    };

    await write("writes", "user:a", "viewer", "doc:1");
    await warm(true);
    // Writes that cannot reach (user:a, doc#viewer): another plain subject on a class no tuple-to-userset
    // follows (doc#viewer, group#member), and a class doc#viewer does not read (a folder nobody's parent of).
    await write("writes", "user:b", "viewer", "doc:1");
    expect(await ask(true)).toBe(true);
    await write("writes", "user:c", "member", "group:x");
    expect(await ask(true)).toBe(true);
    await write("deletes", "user:b", "viewer", "doc:1");
    expect(await ask(true)).toBe(true);
    // A write to the tupleset doc#viewer follows (parent) reaches every subject: withdrawn.
    await write("writes", "folder:f1", "parent", "doc:2");
    await warm(true);
    // A write about user:a itself on a class doc#viewer reads: withdrawn, and the new answer is right.
    await write("deletes", "user:a", "viewer", "doc:1");
    await warm(false);
    await write("writes", "user:a", "owner", "doc:1");
    expect(await ask(true)).toBe(false);
  }, 120_000);

  it("leaves nothing in the member set after close", async () => {
    await Promise.all(servers.map((s) => s.close()));
    const { connectRedis, closeRedis } = await import("../../src/cluster/redis.js");
    const client = await connectRedis(REDIS_URL);
    try {
      expect(await client.zRange(`${prefix}members`, 0, -1)).toEqual([]);
    } finally {
      await closeRedis(client);
    }
  }, 60_000);
});
