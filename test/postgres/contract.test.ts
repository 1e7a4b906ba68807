/** The TupleStore contract suite, unchanged, over the PostgreSQL store (one fresh schema, default partitions). */
import { afterAll, beforeAll } from "vitest";
import { openPostgresTupleStore, type PostgresTupleStore } from "../../src/postgres/index.js";
import { describeTupleStoreContract } from "../tuples/contract.js";
import { dropSchema, freshSchema, PG_URL } from "./helpers.js";

const schema = freshSchema("contract");

beforeAll(async () => {
  // Created once (64 partitions take a few seconds); every test opens its own store over it.
  await (await openPostgresTupleStore({ connectionString: PG_URL, schema })).close();
});
afterAll(() => dropSchema(schema));

describeTupleStoreContract(
  "postgres",
  (options) => openPostgresTupleStore({ connectionString: PG_URL, schema, ...options }),
  {
    collectChangelog: async (store) => {
      await (store as PostgresTupleStore).collectGarbage();
    },
  },
);
