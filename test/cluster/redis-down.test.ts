/**
 * Redis going away under a running cluster: two real members over a private `redis-server` (started on a free port
 * for this file, so killing it touches nothing else) and one PostgreSQL schema of this run's own. With Redis dead,
 * writes and checks through either member stay right (a write through one is read through the other at once),
 * /healthz and /metrics report the degradation; when Redis is back the members re-register and report healthy.
 * And a member started while Redis is down: it starts degraded and answers right, and joins the ring (and uses the
 * shared cache) once Redis comes up.
 */
import pg from "pg";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modelJson } from "../server/helpers.js";
import {
  cleanup,
  eventually,
  freePort,
  health,
  type Member,
  metric,
  PG_URL,
  startMember,
  startPrivateRedis,
  stopMember,
  uniqueName,
} from "./helpers.js";

/** An API answer's JSON, read by the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: the assertions check the shape
type Answer = any;
const redisInstalled = await import("node:child_process").then(
  ({ spawnSync }) => spawnSync("redis-server", ["--version"]).status === 0,
);

const MODEL = modelJson(`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`);

const schema = uniqueName("redisdown");
const prefix = `${uniqueName("redisdown")}:`;
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
let members: Member[] = [];

async function call(url: string, path: string, body?: unknown): Promise<{ status: number; json: Answer }> {
  const response = await fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? undefined : JSON.parse(text) };
}

describe.skipIf(!redisInstalled)("a cluster whose Redis goes away", () => {
  beforeAll(async () => {
    try {
      redis = await startPrivateRedis();
      members = await Promise.all([0, 1].map(() => startMember({ schema, prefix, redis: redis.url })));
      await eventually(
        async () =>
          (await Promise.all(members.map((m) => health(m.url)))).every((h) => h.cluster?.members === 2),
        20_000,
        "2 members to see each other",
      );
    } catch (error) {
      await cleanup();
      throw error;
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(members.map((m) => stopMember(m)));
    await redis?.stop();
    await cleanup();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }, 60_000);

  it("keeps answering right from caches and PostgreSQL, reports it, and recovers when Redis is back", async () => {
    const [a, b] = members.map((m) => m.url) as [string, string];
    const store = (await call(a, "/stores", { name: "r" })).json.id as string;
    expect((await call(b, `/stores/${store}/authorization-models`, MODEL)).status).toBe(201);
    const check = async (url: string, user: string, object: string): Promise<boolean> => {
      const answer = await call(url, `/stores/${store}/check`, {
        tuple_key: { user, relation: "viewer", object },
      });
      expect(answer.status).toBe(200);
      return answer.json.allowed as boolean;
    };
    const write = async (
      url: string,
      kind: "writes" | "deletes",
      user: string,
      object: string,
    ): Promise<void> => {
      const answer = await call(url, `/stores/${store}/write`, {
        [kind]: { tuple_keys: [{ user, relation: "viewer", object }] },
      });
      expect(answer.status).toBe(200);
    };
    await write(a, "writes", "user:anne", "doc:1");
    expect(await check(b, "user:anne", "doc:1")).toBe(true);
    expect(await check(a, "user:anne", "doc:1")).toBe(true); // the shared cache now holds it

    await redis.stop();
    await eventually(
      async () => (await Promise.all([a, b].map(health))).every((h) => h.cluster?.degraded === true),
      10_000,
      "both members to report Redis unreachable",
    );
    expect((await health(a)).status).toBe("SERVING");
    expect(await metric(a, "nexus_cluster_redis_up")).toBe(0);

    // Without Redis: writes through one member are read through the other at once, both ways.
    for (let i = 0; i < 5; i++) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      await write(writer, "writes", "user:bob", `doc:${i}`);
      expect(await check(reader, "user:bob", `doc:${i}`)).toBe(true);
      await write(reader, "deletes", "user:bob", `doc:${i}`);
      expect(await check(writer, "user:bob", `doc:${i}`)).toBe(false);
    }
    expect(await check(a, "user:anne", "doc:1")).toBe(true);
    expect(await check(b, "user:carl", "doc:1")).toBe(false);

    // Redis back (empty: it kept nothing): the members re-register and share answers again.
    redis = await startPrivateRedis(redis.port);
    await eventually(
      async () =>
        (await Promise.all([a, b].map(health))).every(
          (h) => h.cluster?.degraded === false && h.cluster.members === 2,
        ),
      15_000,
      "both members to report Redis back",
    );
    expect(await metric(a, "nexus_cluster_redis_up")).toBe(1);
    await write(b, "writes", "user:dora", "doc:9");
    expect(await check(a, "user:dora", "doc:9")).toBe(true);
  }, 120_000);
});

describe.skipIf(!redisInstalled)("a member started while Redis is down", () => {
  const schema2 = uniqueName("redislate");
  const prefix2 = `${uniqueName("redislate")}:`;
  let late: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  let member: Member | undefined;

  afterAll(async () => {
    if (member !== undefined) await stopMember(member);
    await late?.stop();
    await cleanup();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema2} CASCADE`);
    await client.end();
  }, 60_000);

  it("starts degraded, answers right, and joins the ring when Redis comes up", async () => {
    const port = await freePort(); // nothing listens there yet
    member = await startMember({ schema: schema2, prefix: prefix2, redis: `redis://127.0.0.1:${port}` });
    const url = member.url;
    const h = await health(url);
    expect(h.status).toBe("SERVING");
    expect(h.cluster?.degraded).toBe(true);
    expect(h.cluster?.redis).toBe("unreachable");

    const store = (await call(url, "/stores", { name: "late" })).json.id as string;
    expect((await call(url, `/stores/${store}/authorization-models`, MODEL)).status).toBe(201);
    const check = async (user: string): Promise<boolean> => {
      const answer = await call(url, `/stores/${store}/check`, {
        tuple_key: { user, relation: "viewer", object: "doc:1" },
      });
      expect(answer.status).toBe(200);
      return answer.json.allowed as boolean;
    };
    const write = await call(url, `/stores/${store}/write`, {
      writes: { tuple_keys: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] },
    });
    expect(write.status).toBe(200);
    expect(await check("user:anne")).toBe(true);
    expect(await check("user:bob")).toBe(false);

    late = await startPrivateRedis(port);
    await eventually(
      async () => (await health(url)).cluster?.degraded === false,
      15_000,
      "the member to join once Redis is up",
    );
    // The ring in Redis lists it.
    const client = createClient({ url: late.url });
    await client.connect();
    try {
      expect(await client.zRange(`${prefix2}members`, 0, -1)).toContain((await health(url)).cluster?.member);
    } finally {
      client.destroy();
    }
    // The shared cache is used: an answer stored by one check is a hit for the next.
    const hits = async (): Promise<number> =>
      (await metric(url, 'nexus_cluster_shared_cache{result="hits"}')) ?? 0;
    const before = await hits();
    expect(await check("user:anne")).toBe(true);
    await eventually(
      async () => {
        expect(await check("user:anne")).toBe(true);
        return (await hits()) > before;
      },
      10_000,
      "a shared-cache hit",
    );
  }, 120_000);
});
