/**
 * The PostgreSQL store (nexus-fast/postgres) against the in-memory store, in the same run, on the local server
 * (NEXUS_PG_URL, default postgres://postgres@127.0.0.1:5432/test). Every schema it creates is dropped at the end.
 *
 * 1. Writes: a batch of 1 tuple and of 1,000 tuples per call (tuples/s), and 16 one-tuple writes in flight.
 * 2. Checks: an engine (createEngine defaults) over each store holding the Nexus filesystem workload, answering
 *    its questions in turn with the default consistency (the engine's graph and caches answer, so the ratio should
 *    be about 1), and with fully_consistent (one round trip for the current revision per check).
 * 3. A large table: PG_BENCH_TUPLES tuples (default 100,000) over 64 tenants, loaded through store.write in
 *    batches of 5,000; the load rate; EXPLAIN (ANALYZE) of the by-object, by-subject and by-type-relation reads;
 *    read latency by object and by subject (one key per call); start-up of an engine over every tuple (open the
 *    store, create the engine, one check per tenant so every tenant's graph is loaded) against an engine over a
 *    memory store holding the same tuples.
 * 4. The pool at 2× its max: 20 concurrent snapshot reads on a pool of 10 against 10 concurrent reads.
 *
 * Run: BENCH_TIME=200 node --import tsx --expose-gc bench/postgres.bench.ts
 *      PG_BENCH_TUPLES=1000000 PG_BENCH_PARTS=big ...   (the large table at 1M tuples, without parts 1-2)
 */
import pg from "pg";
import { createEngine, type Engine } from "../src/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { openPostgresTupleStore } from "../src/postgres/index.js";
import { MemoryTupleStore } from "../src/store/memory.js";
import { normalizeTuple } from "../src/store/normalize.js";
import type { RelationTuple } from "../src/store/tuple.js";
import type { TupleStore } from "../src/store/types.js";
import { type BenchCase, runSuite } from "./harness.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

const URL = process.env.NEXUS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TUPLES = Number(process.env.PG_BENCH_TUPLES ?? 100_000);
const TENANTS = 64;
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
    const perTenant = Math.ceil(TUPLES / TENANTS);
    // Per tenant: docs viewed by users (1 in 4 through a group) and group memberships; users shared by all tenants.
    const tupleAt = (tenant: number, i: number): RelationTuple => {
      const name = `tenant${tenant}`;
      if (i % 10 === 9)
        return tuple(`group:g${((i / 10) % 100) | 0}`, `user:u${(i / 10) | 0}`, name, "member");
      const user = i % 4 === 0 ? `group:g${i % 100}#member` : `user:u${i % 5000}`;
      return tuple(`doc:d${i >> 1}`, user, name);
    };
    const memoryBig = new MemoryTupleStore();
    const loadStarted = performance.now();
    const batch: RelationTuple[] = [];
    let loaded = 0;
    for (let tenant = 0; tenant < TENANTS; tenant++) {
      for (let i = 0; i < perTenant && loaded < TUPLES; i++, loaded++) {
        batch.push(tupleAt(tenant, i));
        if (batch.length === 5000) {
          await big.write({ writes: batch, deletes: [], onDuplicate: "ignore" });
          batch.length = 0;
        }
      }
    }
    if (batch.length > 0) await big.write({ writes: batch, deletes: [], onDuplicate: "ignore" });
    const loadMs = performance.now() - loadStarted;
    for (let tenant = 0; tenant < TENANTS; tenant++) {
      const writes: RelationTuple[] = [];
      for (let i = 0; i < perTenant && tenant * perTenant + i < TUPLES; i++) writes.push(tupleAt(tenant, i));
      await memoryBig.write({ writes, deletes: [], onDuplicate: "ignore" });
    }
    await admin(`ANALYZE ${bigSchema}.tuples`);
    const [{ n: rows }] = await admin<{ n: string }>(`SELECT count(*) AS n FROM ${bigSchema}.tuples`);
    const [{ size }] = await admin<{ size: string }>(
      `SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS size FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${bigSchema}' AND c.relname LIKE 'tuples_p%'`,
    );
    console.log(
      `\nloaded ${rows} tuples in ${seconds(loadMs)} (${Math.round(Number(rows) / (loadMs / 1000))} tuples/s through store.write, batches of 5,000); tuples partitions with indexes: ${size}`,
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
        const shown = lines.filter(
          (l) =>
            !/^\s+->\s+Index Scan using .* on tuples_p\d+ |Index Cond|Filter|Rows Removed/.test(l) ||
            lines.indexOf(l) < 12,
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
          name: "read by object: memory",
          fn: () => {
            const tenant = k++ % TENANTS;
            return memorySnapshot.readByObject([
              {
                tenant: `tenant${tenant}`,
                object: `doc:d${(k * 37) % (perTenant >> 1)}`,
                relation: "viewer",
              },
            ]);
          },
        },
      ],
      { facts: { tuples: Number(rows), tenants: TENANTS, load: seconds(loadMs), size } },
    );
    snapshot.release();
    memorySnapshot.release();

    // Start-up: a new process's view — open the store, create the engine, load every tenant's graph.
    const startup = async (store: () => Promise<TupleStore>): Promise<number> => {
      const started = performance.now();
      const opened = await store();
      const engine = await createEngine({ model: bigModel, store: opened });
      for (let tenant = 0; tenant < TENANTS; tenant++) {
        await engine.check({
          tenant: `tenant${tenant}`,
          user: "user:u1",
          relation: "viewer",
          object: "doc:d1",
        });
      }
      const ms = performance.now() - started;
      await engine.close();
      return ms;
    };
    const pgStart = await startup(() => openPostgresTupleStore({ connectionString: URL, schema: bigSchema }));
    const memoryStart = await startup(async () => memoryBig);
    console.log(
      `\nengine start-up over ${rows} tuples in ${TENANTS} tenants: postgres ${seconds(pgStart)}, memory store (already filled) ${seconds(memoryStart)}`,
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
