/**
 * What the PostgreSQL store does beyond the TupleStore contract, on the real server: migrations (versioned, safe
 * when several openers race, refusing a newer schema), partitions, pool defaults and the NexusErrors for a bad
 * URL, a refused connection, an exhausted pool and a timeout; the health check; watch wake-ups through NOTIFY and
 * after the listening connection is killed; garbage collection (one collector at a time, snapshots outliving
 * retention refused rather than answered wrongly).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgresTupleStore, SCHEMA_VERSION } from "../../src/postgres/index.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { dropSchema, freshSchema, PG_URL, sql } from "./helpers.js";

const shared = freshSchema("store");
const schemas = [shared];
const open = (options: Parameters<typeof openPostgresTupleStore>[0] = {}) =>
  openPostgresTupleStore({ connectionString: PG_URL, schema: shared, ...options });

beforeAll(async () => {
  await (await open()).close();
});
afterAll(async () => {
  for (const schema of schemas) await dropSchema(schema);
});

function fresh(label: string): string {
  const schema = freshSchema(label);
  schemas.push(schema);
  return schema;
}

let counter = 0;
function tenant(): string {
  return `t${process.pid}-${++counter}`;
}

function tuple(
  tenantName: string,
  object: string,
  user: string,
  extra: Partial<TupleKey> = {},
): RelationTuple {
  const n = normalizeTuple({ object, relation: "viewer", user, ...extra }, tenantName);
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isNexusError(error) ? error.code : `not a NexusError: ${String(error)}`;
  }
  return undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("migrations and partitions", () => {
  it("creates the schema once when several openers race, and records its version", async () => {
    const schema = fresh("race");
    const stores = await Promise.all(
      Array.from({ length: 4 }, () =>
        openPostgresTupleStore({ connectionString: PG_URL, schema, partitions: 8 }),
      ),
    );
    try {
      expect(new Set(stores.map((s) => s.id)).size).toBe(1);
      const versions = await sql<{ version: number }>(`SELECT version FROM ${schema}.schema_version`);
      expect(versions.map((v) => v.version)).toEqual([SCHEMA_VERSION]);
      const parts = await sql<{ parent: string; n: string }>(
        `SELECT c.relname AS parent, count(*) AS n FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhparent JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = $1 AND c.relkind = 'p' GROUP BY c.relname ORDER BY 1`,
        [schema],
      );
      expect(parts.map((p) => [p.parent, Number(p.n)])).toEqual([
        ["changelog", 8],
        ["tuples", 8],
      ]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("uses 64 partitions by default and refuses another count for an existing schema", async () => {
    const store = await open();
    expect(store.partitions).toBe(64);
    await store.close();
    const error = await open({ partitions: 16 }).catch((e: unknown) => e);
    expect(isNexusError(error, "invalid_argument") && error.message).toMatch(/64 partitions, not 16/);
  });

  it("refuses a schema newer than the library", async () => {
    const schema = fresh("newer");
    await (await openPostgresTupleStore({ connectionString: PG_URL, schema, partitions: 1 })).close();
    await sql(`INSERT INTO ${schema}.schema_version (version, description) VALUES (999, 'from the future')`);
    const error = await openPostgresTupleStore({ connectionString: PG_URL, schema }).catch((e: unknown) => e);
    expect(isNexusError(error, "invalid_argument") && error.message).toMatch(/version 999, newer/);
  });

  it("checks its options", async () => {
    for (const options of [
      { schema: "Bad-Name" },
      { partitions: 0 },
      { partitions: 2.5 },
      { max: 0 },
      { statementTimeoutMs: -1 },
    ]) {
      expect(await codeOf(open(options as never))).toBe("invalid_argument");
    }
  });
});

describe("writes", () => {
  it("refuses a condition context JSON cannot hold exactly, with nothing written", async () => {
    await using store = await open();
    const t = tenant();
    const before = await store.currentRevision();
    for (const context of [{ at: new Date(0) }, { n: 10n }, { x: Number.NaN }]) {
      const write = store.write({
        writes: [
          tuple(t, "doc:1", "user:a"),
          tuple(t, "doc:2", "user:a", { condition: { name: "c", context } }),
        ],
        deletes: [],
      });
      expect(await codeOf(write)).toBe("invalid_write");
    }
    expect(await store.currentRevision()).toBe(before);
  });
});

describe("connections", () => {
  it("names a bad URL, a refused connection, an exhausted pool and a timeout", async () => {
    for (const url of ["not a url", "http://127.0.0.1/test", "postgres://"]) {
      const error = await openPostgresTupleStore({ connectionString: url }).catch((e: unknown) => e);
      expect(isNexusError(error, "invalid_argument"), String(error)).toBe(true);
    }
    const refused = await openPostgresTupleStore({
      connectionString: "postgres://postgres@127.0.0.1:1/test",
    }).catch((e: unknown) => e);
    expect(isNexusError(refused, "unavailable") && refused.message).toMatch(/connection refused/);

    // Exhausted: one connection, held elsewhere; a query waits connectTimeoutMs for it, then fails.
    const small = await open({ max: 1, connectTimeoutMs: 300 });
    const held = await small.pool.connect();
    const exhausted = await small.currentRevision().catch((e: unknown) => e);
    expect(isNexusError(exhausted, "pool_exhausted") && exhausted.message).toMatch(/max 1/);
    const health = await small.health();
    expect(health.ok).toBe(false);
    expect(health.error?.code).toBe("pool_exhausted");
    held.release();
    expect((await small.health()).ok).toBe(true);
    await small.close();

    // Timeout: another session holds the revision counter; the write's statement is cancelled by the server.
    const t = tenant();
    const slow = await open({ statementTimeoutMs: 1_000 });
    const blocker = await slow.pool.connect();
    await blocker.query("BEGIN");
    await blocker.query(`SELECT revision FROM ${shared}.store_meta FOR UPDATE`);
    const timedOut = await slow
      .write({ writes: [tuple(t, "doc:1", "user:a")], deletes: [] })
      .catch((e: unknown) => e);
    await blocker.query("ROLLBACK");
    blocker.release();
    expect(isNexusError(timedOut, "timeout") && timedOut.message).toMatch(/statementTimeoutMs/);
    await slow.close();
    // Nothing of the cancelled write is left, and the tuple can be written.
    await using store = await open();
    const snapshot = await store.snapshot(await store.currentRevision());
    expect(await snapshot.read({ tenant: t })).toEqual([]);
    snapshot.release();
    await store.write({ writes: [tuple(t, "doc:1", "user:a")], deletes: [] });
  });

  it("reports health: latency, revision and the pool", async () => {
    await using store = await open();
    const health = await store.health();
    expect(health).toMatchObject({ ok: true, revision: await store.currentRevision() });
    expect(health.pool.max).toBe(10);
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });
});

describe("watch", () => {
  it("wakes a waiter on another process's commit through NOTIFY, and again after its listener is killed", async () => {
    // Polling set far out, so only a notification (or the reconnect's re-read) can wake the waiter in time.
    await using watcher = await open({ pollIntervalMs: 60_000 });
    await using writer = await open();
    const t = tenant();
    let revision = await watcher.currentRevision();
    const first = watcher.waitForRevision(revision);
    await sleep(100); // the listener connects
    const started = performance.now();
    revision = (await writer.write({ writes: [tuple(t, "doc:1", "user:a")], deletes: [] })).revision;
    await first;
    expect(performance.now() - started).toBeLessThan(5_000);

    // Kill the listening connection; a commit lands while nobody listens; the waiter is still woken.
    const pid = watcher.listenerPid;
    expect(pid).toBeTypeOf("number");
    const second = watcher.waitForRevision(revision);
    await sql("SELECT pg_terminate_backend($1)", [pid]);
    revision = (await writer.write({ writes: [tuple(t, "doc:2", "user:a")], deletes: [] })).revision;
    await second;
    // A new listener, and notifications work again through it.
    for (let i = 0; i < 100 && (watcher.listenerPid === undefined || watcher.listenerPid === pid); i++) {
      await sleep(20);
    }
    expect(watcher.listenerPid).not.toBe(pid);
    const third = watcher.waitForRevision(revision);
    await writer.write({ writes: [tuple(t, "doc:3", "user:a")], deletes: [] });
    await third;
  });
});

describe("garbage collection", () => {
  it("drops deleted versions past retention, keeps those an open snapshot needs, refuses older reads", async () => {
    await using store = await open({ snapshotRetentionMs: 200 });
    await using other = await open({ snapshotRetentionMs: 200 });
    await using collector = await open({ snapshotRetentionMs: 200 });
    const t = tenant();
    const w = await store.write({
      writes: [tuple(t, "doc:1", "user:a"), tuple(t, "doc:2", "user:a")],
      deletes: [],
    });
    const held = await store.snapshot(w.revision);
    const elsewhere = await other.snapshot(w.revision);
    await store.write({ writes: [], deletes: [tuple(t, "doc:1", "user:a")] });
    await sleep(300);
    await store.write({ writes: [tuple(t, "doc:3", "user:a")], deletes: [] });
    await sleep(300);

    // A collector in another process (holding no snapshot) may drop what both snapshots need: they are refused.
    const report = await collector.collectGarbage();
    expect(report.ran).toBe(true);
    expect(report.versionHorizon).toBeGreaterThan(w.revision);
    expect(report.versionsDeleted).toBeGreaterThanOrEqual(1);
    expect(await codeOf(held.read({ tenant: t }))).toBe("invalid_token");
    expect(await codeOf(elsewhere.readByObject([{ tenant: t, object: "doc:1", relation: "viewer" }]))).toBe(
      "invalid_token",
    );
    expect(await codeOf(store.snapshot(w.revision))).toBe("invalid_token");
    held.release();
    elsewhere.release();
    // The latest state is intact.
    const now = await store.snapshot(await store.currentRevision());
    expect((await now.read({ tenant: t })).map((x) => x.object).sort()).toEqual(["doc:2", "doc:3"]);
    now.release();
  });

  it("keeps versions this process's open snapshot needs", async () => {
    await using store = await open({ snapshotRetentionMs: 100 });
    const t = tenant();
    const w = await store.write({ writes: [tuple(t, "doc:1", "user:a")], deletes: [] });
    const held = await store.snapshot(w.revision);
    await store.write({ writes: [], deletes: [tuple(t, "doc:1", "user:a")] });
    await sleep(200);
    await store.write({ writes: [tuple(t, "doc:2", "user:a")], deletes: [] });
    await sleep(200);
    const report = await store.collectGarbage();
    expect(report.versionHorizon).toBeLessThanOrEqual(w.revision);
    expect((await held.read({ tenant: t })).map((x) => x.object)).toEqual(["doc:1"]);
    held.release();
  });

  it("runs one collector at a time across processes (advisory lock)", async () => {
    await using store = await open();
    const holder = await store.pool.connect();
    await holder.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`nexus-fast collect ${shared}`]);
    try {
      expect((await store.collectGarbage()).ran).toBe(false);
    } finally {
      await holder.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [
        `nexus-fast collect ${shared}`,
      ]);
      holder.release();
    }
    expect((await store.collectGarbage()).ran).toBe(true);
  });
});
