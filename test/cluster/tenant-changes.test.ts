/**
 * TenantChanges over a real PostgreSQL store, as a listener of a change feed: a change reaches the questions that
 * read it once reach() has passed its revision, other tenants' changes do not, an expiring tuple leaves its tenant
 * out; and a changelog read that fails (the database unreachable) stops the feed, after which a new one carries on
 * from the watermark without skipping a change.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TenantChanges } from "../../src/cluster/tenant-changes.js";
import { loadOpenFgaDsl } from "../../src/model/dsl.js";
import { openFgaDslToJson } from "../../src/model/openfga.js";
import { openPostgresTupleStore, type PostgresTupleStore } from "../../src/postgres/index.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import type { Revision, StoredChange } from "../../src/tuples/types.js";
import { NexusError } from "../../src/util/errors.js";
import { PG_URL, uniqueName } from "./helpers.js";

const DSL = `model
  schema 1.1
type user
type doc
  relations
    define owner: [user]
    define viewer: [user] or owner`;

const schema = uniqueName("tenant_changes");
let store: PostgresTupleStore;
let model: string;

beforeAll(async () => {
  store = await openPostgresTupleStore({ connectionString: PG_URL, schema, partitions: 4 });
  await loadOpenFgaDsl();
  const json = openFgaDslToJson(DSL);
  model = (await store.models.add({ tenant: "t", source: JSON.stringify(json), format: "openfga" })).id;
});

afterAll(async () => {
  await store?.close();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

async function write(key: TupleKey & { tenant: string }): Promise<Revision> {
  const tuple = normalizeTuple(key, key.tenant);
  if (!tuple.ok) throw new Error(tuple.problem);
  return (await store.write({ writes: [tuple.value], deletes: [] })).revision;
}

const within = <T>(promise: Promise<T>, ms = 10_000): Promise<T> =>
  Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms)),
  ]);

it("records which questions each change reaches, per tenant, once reach() has passed it", async () => {
  await using changes = new TenantChanges(store);
  await changes.start();
  const floor = (await changes.question("t", model, "doc#viewer", "user:a")).lastChange;

  const r1 = await write({ tenant: "t", object: "doc:1", relation: "owner", user: "user:a" });
  await within(changes.reach(r1));
  expect(changes.watermark).toBeGreaterThanOrEqual(r1);
  expect(await changes.question("t", model, "doc#viewer", "user:a")).toEqual({
    lastChange: r1,
    excluded: false,
  });
  expect((await changes.question("t", model, "doc#viewer", "user:b")).lastChange).toBe(floor);

  // Another tenant's change moves the watermark, not the tenant's questions.
  const r2 = await write({ tenant: "u", object: "doc:1", relation: "owner", user: "user:a" });
  await within(changes.reach(r2));
  expect((await changes.question("t", model, "doc#viewer", "user:a")).lastChange).toBe(r1);

  // A tuple with an expiry: the tenant's answers change with time, so it is left out.
  const r3 = await write({
    tenant: "t",
    object: "doc:2",
    relation: "viewer",
    user: "user:c",
    expiresAt: Date.now() + 3_600_000,
  });
  await within(changes.reach(r3));
  expect((await changes.question("t", model, "doc#viewer", "user:c")).excluded).toBe(true);
});

it("opens a new feed from the watermark when a changelog read fails, and skips no change", async () => {
  let failures = 0;
  // The same store, except that changelog reads fail while `failures` is above zero.
  const flaky = new Proxy(store, {
    get(target, property) {
      if (property === "changesAfter") {
        return (after: Revision, limit: number): Promise<StoredChange[]> => {
          if (failures > 0) {
            failures--;
            return Promise.reject(new NexusError("unavailable", "the database is unreachable"));
          }
          return target.changesAfter(after, limit);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  await using changes = new TenantChanges(flaky);
  await changes.start();
  await changes.question("t", model, "doc#owner", "user:d");

  failures = 3;
  const r1 = await write({ tenant: "t", object: "doc:3", relation: "owner", user: "user:d" });
  const r2 = await write({ tenant: "t", object: "doc:4", relation: "owner", user: "user:e" });
  await within(changes.reach(r2));
  expect(failures).toBe(0);
  expect((await changes.question("t", model, "doc#owner", "user:d")).lastChange).toBe(r1);
  expect((await changes.question("t", model, "doc#owner", "user:e")).lastChange).toBe(r2);
});
