/**
 * The PostgreSQL store (nexus-fast/postgres) against the in-memory store, in the same run, on the local server
 * (NEXUS_PG_URL, default postgres://postgres@127.0.0.1:5432/test). Every schema it creates is dropped at the end.
 *
 * 1. Writes: a batch of 1 tuple and of 1,000 tuples per call (tuples/s), and 16 one-tuple writes in flight.
 * 2. Checks: an engine (createEngine defaults) over each store holding the Nexus filesystem workload, answering
 *    its questions in turn with the default consistency (the engine's graph and caches answer, so the ratio should
 *    be about 1), and with fully_consistent (one round trip for the current revision per check).
 * 3. A large table: PG_BENCH_TUPLES tuples (default 100,000) over 64 tenants, loaded through store.write in
 *    batches of 5,000 (PG_BENCH_LOAD=write, the default) or generated in SQL (PG_BENCH_LOAD=sql: the rows, commit
 *    records, counter and retained changelog that those writes would leave, in seconds instead of minutes; see
 *    loadInSql); the load rate; EXPLAIN (ANALYZE) of the by-object, by-subject and by-type-relation reads; read
 *    latency by object, by subject (one key per call) and by type and relation (one tenant's group memberships);
 *    start-up of an engine over the first tenants holding PG_BENCH_STARTUP_TUPLES tuples (default the smaller of
 *    PG_BENCH_TUPLES and 1M; open the store, create the engine, one check per tenant so each tenant's graph is
 *    loaded) against an engine over a memory store holding the same tenants' tuples.
 * 4. The pool at 2× its max: 20 concurrent snapshot reads on a pool of 10 against 10 concurrent reads.
 *
 * Run: BENCH_TIME=200 node --import tsx --expose-gc bench/postgres.bench.ts
 *      PG_BENCH_TUPLES=1000000 PG_BENCH_PARTS=big ...   (the large table at 1M tuples, without parts 1-2)
 *      PG_BENCH_LOAD=sql PG_BENCH_TUPLES=10000000 PG_BENCH_PARTS=big ...   (10M tuples, loaded in SQL)
 */
import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { createEngine, type Engine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { openPostgresTupleStore } from "../src/postgres/index.js";
import { MemoryTupleStore } from "../src/tuples/memory.js";
import { normalizeTuple } from "../src/tuples/normalize.js";
import { identityKey, type RelationTuple } from "../src/tuples/tuple.js";
import type { TupleStore } from "../src/tuples/types.js";
import { NexusError } from "../src/util/errors.js";
import { type BenchCase, runSuite } from "./harness.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

const URL = process.env.NEXUS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TUPLES = Number(process.env.PG_BENCH_TUPLES ?? 100_000);
const TENANTS = 64;
/** How the large table is filled: "write" (store.write, batches of 5,000) or "sql" (generated in SQL). */
const LOAD = process.env.PG_BENCH_LOAD ?? "write";
if (LOAD !== "write" && LOAD !== "sql") throw new Error(`PG_BENCH_LOAD must be write or sql, not ${LOAD}`);
/** Tuples of the tenants the engine start-up loads (whole tenants, from the first). */
const STARTUP_TUPLES = Number(process.env.PG_BENCH_STARTUP_TUPLES ?? Math.min(TUPLES, 1_000_000));
/** Tuples per store.write batch of the write load, and so per revision of both loads. */
const LOAD_BATCH = 5000;
/** Which parts run (PG_BENCH_PARTS=write,check,big; default all): `big` is the large table and the pool. */
const parts = new Set((process.env.PG_BENCH_PARTS ?? "write,check,big").split(","));
const run = `${process.pid}_${Date.now().toString(36)}`;
const schemas: string[] = [];
const schemaFor = (label: string) => {
  const name = `nxb_${label}_${run}`;
  schemas.push(name);
  return name;
};

async function admin<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: URL, options: "-c jit=off" });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

function tuple(object: string, user: string, tenant = "default", relation = "viewer"): RelationTuple {
  const n = normalizeTuple({ object, relation, user }, tenant);
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

/** The large table's model: docs viewed by users and groups. */
const bigModel = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, group#member]`;

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Tuples per tenant of the large table. */
const perTenant = Math.ceil(TUPLES / TENANTS);

/**
 * The large table's tuple i of a tenant (global position tenant × perTenant + i, written in that order): docs
 * viewed by users (1 in 4 through a group) and group memberships; users shared by all tenants. No two positions
 * of a tenant give the same tuple. `generatedSql` is the same function in SQL.
 */
function tupleAt(tenant: number, i: number): RelationTuple {
  const name = `tenant${tenant}`;
  if (i % 10 === 9) return tuple(`group:g${((i / 10) % 100) | 0}`, `user:u${(i / 10) | 0}`, name, "member");
  const user = i % 4 === 0 ? `group:g${i % 100}#member` : `user:u${i % 5000}`;
  return tuple(`doc:d${i >> 1}`, user, name);
}

/** A tenant's tuples, in write order. */
function tenantTuples(tenant: number): RelationTuple[] {
  const out: RelationTuple[] = [];
  for (let i = 0; i < perTenant && tenant * perTenant + i < TUPLES; i++) out.push(tupleAt(tenant, i));
  return out;
}

/**
 * tupleAt of `tenant`'s positions from `from` on as SQL rows (g: global position, rev: the revision store.write gave
 * its batch of LOAD_BATCH, then the tuples table's columns). Every value is a number we made.
 */
function generatedSql(tenant: number, from: number): string {
  const to = Math.min(perTenant, TUPLES - tenant * perTenant);
  const member = "i % 10 = 9";
  return `SELECT ${tenant * perTenant} + i AS g, (${tenant * perTenant} + i) / ${LOAD_BATCH} + 1 AS rev,
      'tenant${tenant}' AS tenant,
      CASE WHEN ${member} THEN 'group' ELSE 'doc' END AS object_type,
      CASE WHEN ${member} THEN 'g' || ((i / 10) % 100) ELSE 'd' || (i >> 1) END AS object_id,
      CASE WHEN ${member} THEN 'member' ELSE 'viewer' END AS relation,
      'tenant${tenant}' AS subject_tenant,
      CASE WHEN ${member} THEN 'user:u' || (i / 10) WHEN i % 4 = 0 THEN 'group:g' || (i % 100) || '#member'
        ELSE 'user:u' || (i % 5000) END AS usr
    FROM generate_series(${Math.max(0, from)}, ${to - 1}) AS i`;
}

/**
 * Fills the store's fresh schema (created by its own migrations) with what loading every tuple through
 * store.write in batches of LOAD_BATCH leaves, generated in SQL: each tuple one live version created at its
 * batch's revision; a commit record per revision; the counter at the last revision; and the changelog as the
 * collector leaves it with the default changelogMaxEntries (100,000): the latest whole revisions holding at most
 * that many changes, the floor and its change count in `retention`. The tuples' indexes are dropped for the load
 * and re-created from their own definitions (pg_get_indexdef), which is checked to give the same indexes.
 */
async function loadInSql(schema: string): Promise<{ revision: number; floor: number; timings: string }> {
  const s = schema;
  const revision = Math.ceil(TUPLES / LOAD_BATCH);
  const maxEntries = 100_000;
  const floor = TUPLES > maxEntries ? Math.ceil((TUPLES - maxEntries) / LOAD_BATCH) : 0;
  const client = new pg.Client({ connectionString: URL, options: "-c jit=off" });
  await client.connect();
  try {
    await client.query("SET maintenance_work_mem = '512MB'; SET synchronous_commit = off");
    const indexes = async () =>
      (
        await client.query<{ name: string; def: string; parent: boolean; valid: boolean }>(
          `SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def, c.relkind = 'I' AS parent, x.indisvalid AS valid
           FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           WHERE n.nspname = $1 AND t.relname ~ '^tuples(_p[0-9]+)?$' ORDER BY c.oid`,
          [s],
        )
      ).rows;
    const before = await indexes();
    const parents = before.filter((i) => i.parent);
    let started = performance.now();
    for (const index of parents) await client.query(`DROP INDEX ${s}.${index.name}`);
    const columns = `tenant, object_type, object_id, relation, subject_tenant, "user"`;
    for (let tenant = 0; tenant < TENANTS && tenant * perTenant < TUPLES; tenant++) {
      await client.query(
        `INSERT INTO ${s}.tuples (${columns}, created_rev)
         SELECT tenant, object_type, object_id, relation, subject_tenant, usr, rev FROM (${generatedSql(tenant, 0)}) g`,
      );
    }
    const insertMs = performance.now() - started;
    started = performance.now();
    // pg_get_indexdef names a partitioned index "ON ONLY" the parent; without ONLY it is built on every partition.
    for (const index of parents) await client.query(index.def.replace(" ON ONLY ", " ON "));
    const indexMs = performance.now() - started;
    const after = await indexes();
    const listed = (l: typeof before) =>
      l
        .map((i) => `${i.name}: ${i.def} ${i.valid}`)
        .sort()
        .join("\n");
    if (listed(after) !== listed(before)) {
      throw new Error("the re-created indexes differ from the migrations'");
    }

    started = performance.now();
    const first = floor * LOAD_BATCH;
    for (let tenant = 0; tenant < TENANTS && tenant * perTenant < TUPLES; tenant++) {
      if ((tenant + 1) * perTenant <= first) continue;
      await client.query(
        `INSERT INTO ${s}.changelog (revision, seq, op, ${columns})
         SELECT rev, g - (rev - 1) * ${LOAD_BATCH} + 1, 'w', tenant, object_type, object_id, relation, subject_tenant, usr
         FROM (${generatedSql(tenant, first - tenant * perTenant)}) g`,
      );
    }
    const now = Date.now();
    await client.query(`BEGIN;
      INSERT INTO ${s}.commits (revision, committed_at_ms, changes_total)
        SELECT r, ${now}, least(r * ${LOAD_BATCH}, ${TUPLES}) FROM generate_series(1, ${revision}) AS r;
      UPDATE ${s}.store_meta SET revision = ${revision}, committed_at_ms = ${now}, changes_total = ${TUPLES};
      UPDATE ${s}.retention SET changelog_floor = ${floor},
        changelog_floor_total = ${Math.min(floor * LOAD_BATCH, TUPLES)};
      COMMIT`);
    await client.query(`ANALYZE ${s}.tuples, ${s}.changelog, ${s}.commits, ${s}.store_meta, ${s}.retention`);
    const restMs = performance.now() - started;
    return {
      revision,
      floor,
      timings: `insert ${seconds(insertMs)}, indexes ${seconds(indexMs)}, changelog + counter + ANALYZE ${seconds(restMs)}`,
    };
  } finally {
    await client.end();
  }
}

/** Sorted by identity, for comparing reads with what the generator made. */
const sorted = (tuples: readonly RelationTuple[]) =>
  [...tuples].sort((a, b) =>
    identityKey(a) < identityKey(b) ? -1 : identityKey(a) > identityKey(b) ? 1 : 0,
  );

/**
 * Opens a store over the SQL-loaded schema and checks that it answers as the generator says: the revision, reads
 * by object, by subject and by type and relation in three tenants, and the retained changelog.
 */
async function checkLoaded(schema: string, revision: number, floor: number): Promise<string> {
  const store = await openPostgresTupleStore({ connectionString: URL, schema });
  try {
    const at = await store.currentRevision();
    if (at !== revision) throw new Error(`the loaded store is at revision ${at}, not ${revision}`);
    const snapshot = await store.snapshot(at);
    const same = (what: string, got: readonly RelationTuple[], want: readonly RelationTuple[]) => {
      if (want.length === 0) throw new Error(`${what}: the check chose a key with no tuples`);
      if (!isDeepStrictEqual(sorted(got), sorted(want))) {
        throw new Error(`${what}: the store read ${got.length} tuples, the generator made ${want.length}`);
      }
    };
    let reads = 0;
    const lastTenant = Math.min(TENANTS, Math.ceil(TUPLES / perTenant)) - 1;
    for (const tenant of [0, 7 % (lastTenant + 1), lastTenant]) {
      const all = tenantTuples(tenant);
      const name = `tenant${tenant}`;
      const objects = [0, 1, 4, 123, (all.length >> 2) - 1].map((n) => `doc:d${n}`);
      const byObject = await snapshot.readByObject(
        objects.map((object) => ({ tenant: name, object, relation: "viewer" })),
      );
      for (const [j, object] of objects.entries()) {
        same(
          `${name} ${object}#viewer`,
          byObject[j]!,
          all.filter((t) => t.object === object && t.relation === "viewer"),
        );
      }
      // Users that hold tuples at any size: a direct viewer, a group, a member, the last tuple's subject.
      const users = [...new Set([1, 4, 9, all.length - 1].map((n) => all[n]!.user))];
      const bySubject = await snapshot.readBySubject(users.map((user) => ({ subjectTenant: name, user })));
      for (const [j, user] of users.entries())
        same(
          `${name} subject ${user}`,
          bySubject[j]!,
          all.filter((t) => t.user === user),
        );
      const [members] = await snapshot.readByTypeRelation([
        { tenant: name, objectType: "group", relation: "member" },
      ]);
      same(
        `${name} group#member`,
        members!,
        all.filter((t) => t.relation === "member"),
      );
      reads += objects.length + users.length + 1;
    }
    snapshot.release();
    // The latest revision's changes, in order, and nothing at or below the floor.
    const lastBatch = [];
    for (let g = (revision - 1) * LOAD_BATCH; g < TUPLES; g++)
      lastBatch.push(tupleAt(Math.floor(g / perTenant), g % perTenant));
    const changes = await store.changesAfter(revision - 1, LOAD_BATCH);
    const want = lastBatch.map((tuple) => ({ revision, op: "write", tuple }));
    if (!isDeepStrictEqual(changes, want))
      throw new Error("the changelog's last revision differs from the generator's");
    if (floor > 0) {
      const refused = await store.changesAfter(floor - 1, 1).then(
        () => false,
        (error: unknown) => error instanceof NexusError && error.code === "invalid_token",
      );
      if (!refused) throw new Error(`changes after ${floor - 1} should be beyond retention`);
    }
    return `${reads} reads in 3 tenants and the changelog's last revision (${changes.length} changes) equal the generator's`;
  } finally {
    await store.close();
  }
}

try {
  // ---- 1. writes -------------------------------------------------------------------------------------------
  if (parts.has("write")) {
    const postgres = await openPostgresTupleStore({ connectionString: URL, schema: schemaFor("write") });
    const stores: [string, TupleStore][] = [
      ["memory", new MemoryTupleStore()],
      ["postgres", postgres],
    ];
    let next = 0;
    const batchOf = (n: number) => ({
      writes: Array.from({ length: n }, () => tuple(`doc:${next++}`, "user:anne")),
      deletes: [],
    });
    const writeCases: BenchCase[] = [];
    for (const [name, store] of stores)
      writeCases.push({ name: `write 1: ${name}`, fn: () => store.write(batchOf(1)) });
    for (const [name, store] of stores) {
      writeCases.push({
        name: `write 1,000: ${name}`,
        fn: () => store.write(batchOf(1000)),
        opsPerCall: 1000,
      });
    }
    for (const [name, store] of stores) {
      writeCases.push({
        name: `write 1 ×16 in flight: ${name}`,
        fn: () => Promise.all(Array.from({ length: 16 }, () => store.write(batchOf(1)))),
        opsPerCall: 16,
      });
    }
    await runSuite("postgres-write", writeCases, {
      comparisons: [
        { subject: "write 1: postgres", peer: "write 1: memory" },
        { subject: "write 1,000: postgres", peer: "write 1,000: memory" },
        { subject: "write 1 ×16 in flight: postgres", peer: "write 1 ×16 in flight: memory" },
      ],
    });
    for (const [, store] of stores) await store.close();
  }

  // ---- 2. checks -------------------------------------------------------------------------------------------
  if (parts.has("check")) {
    const workload = buildFilesystemWorkload({ questions: 5000, seed: 7 });
    const checkStore = await openPostgresTupleStore({ connectionString: URL, schema: schemaFor("check") });
    const engines: [string, Engine][] = [];
    for (const [name, store] of [
      ["memory", undefined],
      ["postgres", checkStore],
    ] as const) {
      const engine = await createEngine({
        model: nexusFilesystemModel,
        format: "nexus",
        ...(store !== undefined ? { store } : {}),
      });
      for (let i = 0; i < workload.tuples.length; i += 5000) {
        await engine.write({ writes: workload.tuples.slice(i, i + 5000) });
      }
      engines.push([name, engine]);
    }
    const answers = await Promise.all(
      engines.map(([, engine]) =>
        Promise.all(
          workload.questions
            .slice(0, 500)
            .map((q) => engine.check({ ...q, consistency: "fully_consistent" })),
        ),
      ),
    );
    if (answers[0]!.join() !== answers[1]!.join()) throw new Error("the stores answer differently");
    const checkCases: BenchCase[] = [];
    for (const consistency of ["minimize_latency", "fully_consistent"] as const) {
      for (const [name, engine] of engines) {
        let i = 0;
        checkCases.push({
          name: `check ${consistency}: ${name}`,
          fn: () => engine.check({ ...workload.questions[i++ % workload.questions.length]!, consistency }),
        });
      }
    }
    await runSuite("postgres-check", checkCases, {
      comparisons: [
        { subject: "check minimize_latency: postgres", peer: "check minimize_latency: memory" },
        { subject: "check fully_consistent: postgres", peer: "check fully_consistent: memory" },
      ],
      facts: { tuples: workload.tuples.length, questions: workload.questions.length },
    });
    for (const [, engine] of engines) await engine.close();
    await checkStore.close();
  }

  // ---- 3. a large table ------------------------------------------------------------------------------------
  if (parts.has("big")) {
    const bigSchema = schemaFor("big");
    const big = await openPostgresTupleStore({ connectionString: URL, schema: bigSchema });
    const loadStarted = performance.now();
    let loadNote = `through store.write, batches of ${LOAD_BATCH.toLocaleString("en")}`;
    if (LOAD === "sql") {
      const { revision, floor, timings } = await loadInSql(bigSchema);
      loadNote = `in SQL: ${timings}; ${await checkLoaded(bigSchema, revision, floor)}`;
    } else {
      const batch: RelationTuple[] = [];
      for (let tenant = 0; tenant < TENANTS; tenant++) {
        for (const t of tenantTuples(tenant)) {
          batch.push(t);
          if (batch.length === LOAD_BATCH) {
            await big.write({ writes: batch, deletes: [], onDuplicate: "ignore" });
            batch.length = 0;
          }
        }
      }
      if (batch.length > 0) await big.write({ writes: batch, deletes: [], onDuplicate: "ignore" });
    }
    const loadMs = performance.now() - loadStarted;
    // The memory peer holds the tenants the start-up part loads (all of them up to 1M tuples).
    const startupTenants = Math.min(TENANTS, Math.max(1, Math.ceil(STARTUP_TUPLES / perTenant)));
    const memoryBig = new MemoryTupleStore();
    let startupTuples = 0;
    for (let tenant = 0; tenant < startupTenants; tenant++) {
      const writes = tenantTuples(tenant);
      startupTuples += writes.length;
      await memoryBig.write({ writes, deletes: [], onDuplicate: "ignore" });
    }
    if (LOAD === "write") await admin(`ANALYZE ${bigSchema}.tuples`);
    const [{ n: rows }] = await admin<{ n: string }>(`SELECT count(*) AS n FROM ${bigSchema}.tuples`);
    const [{ size }] = await admin<{ size: string }>(
      `SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS size FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${bigSchema}' AND c.relname LIKE 'tuples_p%'`,
    );
    console.log(
      `\nloaded ${rows} tuples in ${seconds(loadMs)} (${Math.round(Number(rows) / (loadMs / 1000))} tuples/s ${loadNote}); tuples partitions with indexes: ${size}`,
    );

    // The plans the reads get (generic plans, as the store's prepared statements use after a few runs).
    const explain = async (label: string, query: string, params: string) => {
      const client = new pg.Client({
        connectionString: URL,
        options: "-c jit=off -c plan_cache_mode=force_generic_plan",
      });
      await client.connect();
      try {
        await client.query(`PREPARE q AS ${query}`);
        const plan = await client.query<{ "QUERY PLAN": string }>(
          `EXPLAIN (ANALYZE, COSTS OFF, SUMMARY) EXECUTE q${params}`,
        );
        const lines = plan.rows.map((r) => r["QUERY PLAN"]);
        // The first partitions' lines, then the plan without the other partitions' repeats (by position:
        // the repeated lines are equal strings).
        const shown = lines.filter(
          (l, i) =>
            !/^\s+->\s+Index Scan using .* on tuples_p\d+ |Index Cond|Filter|Rows Removed/.test(l) || i < 12,
        );
        console.log(
          `\nEXPLAIN ${label}:\n${shown.slice(0, 16).join("\n")}${shown.length > 16 ? "\n  ..." : ""}`,
        );
      } finally {
        await client.end();
      }
    };
    const s = bigSchema;
    const visible = "t.created_rev <= $1 AND (t.deleted_rev IS NULL OR t.deleted_rev > $1)";
    const current = await big.currentRevision();
    await explain(
      "by object (tenant, object_type, relation, object_id)",
      `SELECT t.* FROM unnest($3::text[], $4::text[], $5::text[]) AS k(object_type, relation, object_id)
     CROSS JOIN LATERAL (SELECT * FROM ${s}.tuples l WHERE l.tenant = $2 AND l.object_type = k.object_type
       AND l.relation = k.relation AND l.object_id = k.object_id OFFSET 0) t WHERE ${visible}`,
      `(${current}, 'tenant7', '{doc}', '{viewer}', '{d123}')`,
    );
    await explain(
      "by subject (subject_tenant, user), every partition",
      `SELECT t.* FROM unnest($2::text[], $3::text[]) AS k(subject_tenant, usr)
     CROSS JOIN LATERAL (SELECT * FROM ${s}.tuples l WHERE l.subject_tenant = k.subject_tenant
       AND l."user" = k.usr OFFSET 0) t WHERE ${visible}`,
      `(${current}, '{tenant7}', '{user:u42}')`,
    );
    await explain(
      "by type and relation (tenant, object_type, relation)",
      `SELECT count(*) FROM ${s}.tuples t WHERE t.tenant = $2 AND t.object_type = 'group' AND t.relation = 'member' AND ${visible}`,
      `(${current}, 'tenant7')`,
    );

    const snapshot = await big.snapshot(current);
    const memorySnapshot = await memoryBig.snapshot(await memoryBig.currentRevision());
    let k = 0;
    await runSuite(
      "postgres-read",
      [
        {
          name: `read by object (${rows} tuples)`,
          fn: () => {
            const tenant = k++ % TENANTS;
            return snapshot.readByObject([
              {
                tenant: `tenant${tenant}`,
                object: `doc:d${(k * 37) % (perTenant >> 1)}`,
                relation: "viewer",
              },
            ]);
          },
        },
        {
          name: `read by subject (${rows} tuples)`,
          fn: () => {
            const tenant = k++ % TENANTS;
            return snapshot.readBySubject([
              { subjectTenant: `tenant${tenant}`, user: `user:u${(k * 13) % 5000}` },
            ]);
          },
        },
        {
          name: `read by type and relation, group#member (${Math.round(perTenant / 10)} tuples a tenant)`,
          fn: () =>
            snapshot.readByTypeRelation([
              { tenant: `tenant${k++ % TENANTS}`, objectType: "group", relation: "member" },
            ]),
        },
        {
          name: "read by object: memory",
          fn: () => {
            const tenant = k++ % startupTenants;
            return memorySnapshot.readByObject([
              {
                tenant: `tenant${tenant}`,
                object: `doc:d${(k * 37) % (perTenant >> 1)}`,
                relation: "viewer",
              },
            ]);
          },
        },
        {
          name: "read by type and relation, group#member: memory",
          fn: () =>
            memorySnapshot.readByTypeRelation([
              { tenant: `tenant${k++ % startupTenants}`, objectType: "group", relation: "member" },
            ]),
        },
      ],
      {
        comparisons: [
          {
            subject: `read by type and relation, group#member (${Math.round(perTenant / 10)} tuples a tenant)`,
            peer: "read by type and relation, group#member: memory",
          },
        ],
        facts: { tuples: Number(rows), tenants: TENANTS, load: seconds(loadMs), size },
      },
    );
    snapshot.release();
    memorySnapshot.release();

    // Start-up: a new process's view — open the store, create the engine, load the first startupTenants' graphs.
    const startup = async (store: () => Promise<TupleStore>): Promise<number> => {
      const started = performance.now();
      const opened = await store();
      const engine = await createEngine({ model: bigModel, store: opened });
      for (let tenant = 0; tenant < startupTenants; tenant++) {
        await engine.check({
          tenant: `tenant${tenant}`,
          user: "user:u1",
          relation: "viewer",
          object: "doc:d1",
        });
      }
      const ms = performance.now() - started;
      await engine.close();
      // The engine does not close a store it was given (left open, its LISTEN connection kept the process alive).
      if (opened !== memoryBig) await opened.close();
      return ms;
    };
    const pgStart = await startup(() => openPostgresTupleStore({ connectionString: URL, schema: bigSchema }));
    const memoryStart = await startup(async () => memoryBig);
    console.log(
      `\nengine start-up over ${startupTuples} tuples in ${startupTenants} tenants (of a ${rows}-tuple table): postgres ${seconds(pgStart)}, memory store (already filled) ${seconds(memoryStart)}`,
    );
    await big.close();

    // ---- 4. the pool at 2× max -------------------------------------------------------------------------------
    const pooled = await openPostgresTupleStore({ connectionString: URL, schema: bigSchema, max: 10 });
    const poolSnapshot = await pooled.snapshot(await pooled.currentRevision());
    let waitedMax = 0;
    const concurrent = (n: number) => async () => {
      const reads = Array.from({ length: n }, (_, i) =>
        poolSnapshot.readByObject([
          { tenant: `tenant${i % TENANTS}`, object: `doc:d${i * 11}`, relation: "viewer" },
        ]),
      );
      await Promise.resolve();
      waitedMax = Math.max(waitedMax, pooled.pool.waitingCount);
      await Promise.all(reads);
    };
    let failures = 0;
    await runSuite(
      "postgres-pool",
      [
        { name: "10 concurrent reads, pool max 10", fn: concurrent(10), opsPerCall: 10 },
        {
          name: "20 concurrent reads, pool max 10",
          fn: () => concurrent(20)().catch(() => void failures++),
          opsPerCall: 20,
        },
      ],
      {
        comparisons: [
          { subject: "20 concurrent reads, pool max 10", peer: "10 concurrent reads, pool max 10" },
        ],
      },
    );
    console.log(
      `  pool at 2× max: ${failures} failed requests, at most ${waitedMax} requests waiting for a connection; health ${JSON.stringify((await pooled.health()).pool)}`,
    );
    poolSnapshot.release();
    await pooled.close();
  }
} finally {
  for (const schema of schemas) await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
}
