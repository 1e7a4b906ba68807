/**
 * A member whose Redis is not there (in this process, so its resources can be counted): it starts at once,
 * degraded, answers checks from PostgreSQL, and close() leaves nothing running — the background connection
 * attempts stop (node-redis's pending retry delay, at most 2 s, ends by itself).
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { startServer } from "../../src/server/index.js";
import { modelJson } from "../server/helpers.js";
import { eventually, freePort, PG_URL, uniqueName } from "./helpers.js";

const schema = uniqueName("degraded");

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function beyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [name, count] of resourceCounts()) {
    if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
  }
  return extra;
}

describe("a member started without Redis", () => {
  afterAll(async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it("starts degraded, answers, and close() leaves nothing running", async () => {
    const port = await freePort(); // nothing listens there
    const baseline = resourceCounts();
    const server = await startServer({
      port: 0,
      postgres: PG_URL,
      postgresSchema: schema,
      cluster: { redis: `redis://127.0.0.1:${port}`, prefix: `${uniqueName("degraded")}:` },
    });
    const post = async (path: string, body: unknown) =>
      (await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then((r) => r.json())) as Record<string, unknown>;
    try {
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
        cluster: { degraded: boolean; members: number };
      };
      expect(health.cluster.degraded).toBe(true);
      expect(health.cluster.members).toBe(0);
      const store = (await post("/stores", { name: "d" })).id as string;
      await post(
        `/stores/${store}/authorization-models`,
        modelJson(`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`),
      );
      await post(`/stores/${store}/write`, {
        writes: { tuple_keys: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] },
      });
      const tuple_key = { user: "user:anne", relation: "viewer", object: "doc:1" };
      expect((await post(`/stores/${store}/check`, { tuple_key })).allowed).toBe(true);
      expect(
        (await post(`/stores/${store}/check`, { tuple_key: { ...tuple_key, user: "user:bob" } })).allowed,
      ).toBe(false);
    } finally {
      await server.close();
    }
    await eventually(() => beyond(baseline).length === 0, 5_000, `resources to return: ${beyond(baseline)}`);
  }, 60_000);
});
