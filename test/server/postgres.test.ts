/**
 * `nexus-fast serve --postgres URL`: stores, models, tuples and assertions kept in PostgreSQL (a schema of this
 * test's own), there again after the server is closed and started over the same schema.
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

const URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA = `nexus_server_test_${process.pid}`;

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}
const available = await reachable();

describe.skipIf(!available)("serve over PostgreSQL", () => {
  afterAll(async () => {
    const client = new pg.Client({ connectionString: URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await client.end();
  });

  it("keeps stores, models, tuples and assertions across a restart", async () => {
    const options = { postgres: URL, postgresSchema: SCHEMA };
    let storeId: string;
    let modelId: string;
    {
      await using server = await startTestServer(options);
      storeId = (await clientFor(server).createStore({ name: "pg" })).id;
      const client = clientFor(server, { storeId });
      modelId = (
        await client.writeAuthorizationModel(
          modelJson("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]"),
        )
      ).authorization_model_id;
      await client.writeTuples([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
      await clientFor(server, { storeId, authorizationModelId: modelId }).writeAssertions([
        { user: "user:anne", relation: "viewer", object: "doc:1", expectation: true },
      ]);
      expect((await client.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).allowed).toBe(
        true,
      );
    }
    await using again = await startTestServer(options);
    const client = clientFor(again, { storeId });
    expect((await client.getStore()).name).toBe("pg");
    expect((await client.readLatestAuthorizationModel()).authorization_model?.id).toBe(modelId);
    expect((await client.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).allowed).toBe(
      true,
    );
    expect((await client.read()).tuples).toHaveLength(1);
    const assertions = await clientFor(again, { storeId, authorizationModelId: modelId }).readAssertions();
    expect(assertions.assertions).toHaveLength(1);
  });
});
