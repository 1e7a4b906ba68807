/**
 * The write transaction. A writer locks the revision counter row (`SELECT ... FROM store_meta FOR UPDATE`) as
 * its first statement and holds the lock until COMMIT, so writers of every process take revisions one after
 * another: revision n+1 cannot commit before n has (a rolled-back transaction takes no revision), which makes
 * revisions gap-free and a revision visible only when every lower one is. Under the lock the live tuples cannot
 * change, so a batch is checked exactly with one read (planBatch: onDuplicate / onMissing, expired tuples
 * replaced), applied with at most two statements, and the commit records, the counter, NOTIFY and COMMIT go in
 * one round trip; a failure, or a killed process, leaves nothing.
 *
 * Group commit: the batches this process has queued while the previous transaction ran go into the next one,
 * each at its own revision, so they share one lock hold and one WAL flush.
 *
 * Everything serialises on that lock, so its hold time is the store's write throughput. Two things keep it short:
 * - statements are named and planned once per connection as generic plans (`plan_cache_mode`), and a connection
 *   plans them (a "warm-up" with empty arrays, rolled back) before its first write takes the lock: planning over
 *   64 partitions took 40-200 ms a statement on the loaded development machine;
 * - each key is a LATERAL probe fenced with OFFSET 0, so the plan is a nested loop of index probes whatever the
 *   estimates (without the fence, and without statistics on fresh partitions, the planner flattened the probe
 *   into a join over every live row: a 1,000-tuple batch took 30 s on 32,000 tuples); hash and merge joins are
 *   off inside the transaction for the same reason.
 */
import type pg from "pg";
import {
  describeTuple,
  identityKey,
  type RelationTuple,
  sameCondition,
  type TupleIdentity,
} from "../tuples/tuple.js";
import type { Revision, WriteBatch } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import type { ChangeCode, PendingChange } from "./changelog.js";
import type { Database } from "./database.js";
import { identityColumns, tupleArrays, tupleColumns, tupleFromRow, tupleSelect } from "./rows.js";

/** A batch waiting for its turn, checked for duplicates already. */
export interface PendingBatch {
  readonly batch: WriteBatch;
  readonly deletes: readonly TupleIdentity[];
  readonly writes: readonly RelationTuple[];
}

export interface WriteOutcome {
  readonly revision: Revision;
  readonly written: number;
  readonly deleted: number;
  /** Changes the changelog holds after this write; undefined when nothing was written. */
  readonly retained: number | undefined;
}

/** Settings of every write transaction (and of the warm-up, so the plans it caches are the ones used). */
const TRANSACTION_SETTINGS =
  "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

export class TupleWriter {
  readonly #db: Database;
  readonly #channel: string;
  readonly #sql: { live: string; remove: string; insert: string };
  /** Connections whose statements are planned already. */
  readonly #warm = new WeakSet<pg.PoolClient>();

  constructor(db: Database, channel: string) {
    this.#db = db;
    this.#channel = channel;
    const s = db.schema;
    const identity = `$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]`;
    const probe = (alias: string) => `SELECT * FROM ${s}.tuples ${alias} WHERE ${alias}.tenant = k.tenant
      AND ${alias}.object_type = k.object_type AND ${alias}.relation = k.relation AND ${alias}.object_id = k.object_id
      AND ${alias}.subject_tenant = k.subject_tenant AND ${alias}."user" = k.usr AND ${alias}.deleted_rev IS NULL
      OFFSET 0`;
    this.#sql = {
      // The live versions of the tuples a batch names ($1-$6), and every live tuple expired by $7.
      live: `SELECT k.i, ${tupleSelect("t")}
        FROM unnest(${identity}) WITH ORDINALITY AS k(tenant, object_type, object_id, relation, subject_tenant, usr, i)
        CROSS JOIN LATERAL (${probe("l")}) t
        UNION ALL
        SELECT 0, ${tupleSelect("t")} FROM ${s}.tuples t WHERE t.deleted_rev IS NULL AND t.expires_at_ms <= $7`,
      // Marks live versions deleted at revision $7: found by the same probes, updated by (partition, row id).
      remove: `UPDATE ${s}.tuples t SET deleted_rev = $7
        FROM (SELECT x.tableoid AS toid, x.ctid AS tid
              FROM unnest(${identity}) AS k(tenant, object_type, object_id, relation, subject_tenant, usr)
              CROSS JOIN LATERAL (${probe("l").replace("SELECT *", "SELECT l.tableoid, l.ctid")}) x) d
        WHERE t.tableoid = d.toid AND t.ctid = d.tid`,
      // New versions ($2-$11) and the revision's changes ($12-$21), at revision $1.
      insert: `WITH ins AS (
          INSERT INTO ${s}.tuples (tenant, object_type, object_id, relation, subject_tenant, "user",
            condition_name, condition_context, expires_at_ms, deleted_rev, created_rev)
          SELECT u.*, $1 FROM unnest(${tupleArrays(2)}, $11::bigint[]) AS u
        )
        INSERT INTO ${s}.changelog (revision, seq, op, tenant, object_type, object_id, relation, subject_tenant,
          "user", condition_name, condition_context, expires_at_ms)
        SELECT $1, c.seq, c.op::"char", c.tenant, c.object_type, c.object_id, c.relation, c.subject_tenant,
          c.usr, c.condition_name, c.condition_context, c.expires_at_ms
        FROM unnest($12::text[], ${tupleArrays(13)}) WITH ORDINALITY
          AS c(op, tenant, object_type, object_id, relation, subject_tenant, usr, condition_name,
               condition_context, expires_at_ms, seq)`,
    };
  }

  /**
   * Applies the batches in one transaction, each at its own next revision, in order: one lock, one commit (one
   * WAL flush) for all of them. A batch refused by its checks (invalid_write) gets its error and takes no
   * revision; the others go on. `now` is the writer's clock (expiry, commit time).
   * @returns per batch, its outcome or its error. @throws only what fails the whole transaction.
   */
  writeGroup(batches: readonly PendingBatch[], now: number): Promise<(WriteOutcome | NexusError)[]> {
    const s = this.#db.schema;
    return this.#db.transaction("writing tuples", async (client) => {
      await this.#warmUp(client);
      // BEGIN, settings and the counter lock in one round trip.
      const results = (await client.query(
        `BEGIN; ${TRANSACTION_SETTINGS};
         SELECT revision, committed_at_ms, changes_total FROM ${s}.store_meta FOR UPDATE`,
      )) as unknown as { rows: { revision: string; committed_at_ms: string; changes_total: string }[] }[];
      const counter = results[results.length - 1]!.rows[0]!;
      const committedAt = Math.max(Number(counter.committed_at_ms), now);
      let revision = Number(counter.revision);
      let changesTotal = Number(counter.changes_total);
      const commits: string[] = [];
      const outcomes: (WriteOutcome | NexusError)[] = [];

      for (const { batch, deletes, writes } of batches) {
        const live = await client.query<unknown[]>(
          this.#db.statement(this.#sql.live, [...identityColumns([...deletes, ...writes]), now]),
        );
        const found = new Map<number, RelationTuple>();
        const expired: RelationTuple[] = [];
        for (const row of live.rows) {
          const i = Number(row[0]);
          if (i === 0) expired.push(tupleFromRow(row, 1));
          else found.set(i - 1, tupleFromRow(row, 1));
        }
        let plan: BatchPlan;
        try {
          plan = planBatch(batch, deletes, writes, found, expired, now);
        } catch (error) {
          if (!(error instanceof NexusError)) throw error;
          outcomes.push(error);
          continue;
        }
        if (plan.changes.length === 0) {
          outcomes.push({ revision, written: 0, deleted: 0, retained: undefined });
          continue;
        }
        revision++;
        if (plan.remove.length > 0) {
          const removed = await client.query(
            this.#db.statement(this.#sql.remove, [...identityColumns(plan.remove), revision]),
          );
          if (removed.rowCount !== plan.remove.length) {
            throw new NexusError(
              "internal",
              `removed ${removed.rowCount} tuples, expected ${plan.remove.length}`,
            );
          }
        }
        await client.query(
          this.#db.statement(this.#sql.insert, [
            revision,
            ...tupleColumns(plan.insert.map((i) => i.tuple)),
            plan.insert.map((i) => (i.bornExpired ? revision : null)),
            plan.changes.map((c) => c.op),
            ...tupleColumns(plan.changes.map((c) => c.tuple)),
          ]),
        );
        changesTotal += plan.changes.length;
        commits.push(`(${revision}, ${committedAt}, ${changesTotal})`);
        outcomes.push({ revision, written: plan.written, deleted: plan.deleted, retained: changesTotal });
      }

      if (commits.length === 0) {
        await client.query("ROLLBACK");
        return outcomes;
      }
      // Commit records, the counter, the wake-up and COMMIT in one round trip (numbers we made; the channel is a
      // plain identifier). NOTIFY is delivered at commit.
      const committed = (await client.query(
        `INSERT INTO ${s}.commits (revision, committed_at_ms, changes_total) VALUES ${commits.join(", ")};
         UPDATE ${s}.store_meta SET revision = ${revision}, committed_at_ms = ${committedAt},
           changes_total = ${changesTotal};
         NOTIFY ${this.#channel}, '${revision}';
         SELECT changelog_floor_total FROM ${s}.retention;
         COMMIT`,
      )) as unknown as { rows: { changelog_floor_total: string }[] }[];
      const floorTotal = Number(committed[3]!.rows[0]!.changelog_floor_total);
      return outcomes.map((o) =>
        o instanceof NexusError || o.retained === undefined ? o : { ...o, retained: o.retained - floorTotal },
      );
    });
  }

  /** Plans this connection's write statements (with nothing to write, rolled back) before it takes the lock. */
  async #warmUp(client: pg.PoolClient): Promise<void> {
    if (this.#warm.has(client)) return;
    const none = (n: number) => Array.from({ length: n }, () => []);
    await client.query(`BEGIN; ${TRANSACTION_SETTINGS}`);
    try {
      await client.query(this.#db.statement(this.#sql.live, [...none(6), 0]));
      await client.query(this.#db.statement(this.#sql.remove, [...none(6), 0]));
      await client.query(this.#db.statement(this.#sql.insert, [0, ...none(10), ...none(10)]));
    } finally {
      await client.query("ROLLBACK");
    }
    this.#warm.add(client);
  }
}

export interface BatchPlan {
  /** Changes in revision order. */
  readonly changes: PendingChange[];
  /** Live versions to mark deleted. */
  readonly remove: RelationTuple[];
  /** New versions; `bornExpired` ones are written already deleted (their expiry has passed). */
  readonly insert: { tuple: RelationTuple; bornExpired: boolean }[];
  written: number;
  deleted: number;
}

/**
 * What a batch does, decided as the memory store decides it: caller deletes (missing ones per onMissing), then
 * writes (an existing live tuple per onDuplicate, an expired one replaced), then removal of every tuple expired
 * by `now` that the batch did not touch (a write of an already expired tuple included).
 * @throws NexusError "invalid_write" naming the first offending tuple.
 */
function planBatch(
  batch: WriteBatch,
  deletes: readonly TupleIdentity[],
  writes: readonly RelationTuple[],
  found: ReadonlyMap<number, RelationTuple>,
  expired: readonly RelationTuple[],
  now: number,
): BatchPlan {
  const plan: BatchPlan = { changes: [], remove: [], insert: [], written: 0, deleted: 0 };
  const touched = new Set<string>();
  const change = (op: ChangeCode, tuple: RelationTuple): void => {
    plan.changes.push({ op, tuple });
  };
  for (const [i, d] of deletes.entries()) {
    const live = found.get(i);
    if (live === undefined) {
      if (batch.onMissing === "ignore") continue;
      throw new NexusError("invalid_write", `cannot delete ${describeTuple(d)}: it does not exist`, {
        tuple: {
          tenant: d.tenant,
          object: d.object,
          relation: d.relation,
          user: d.user,
          subjectTenant: d.subjectTenant,
        },
      });
    }
    touched.add(identityKey(live));
    change("d", live);
    plan.remove.push(live);
    plan.deleted++;
  }
  for (const [j, w] of writes.entries()) {
    const live = found.get(deletes.length + j);
    if (live !== undefined) {
      const isExpired = live.expiresAt !== undefined && live.expiresAt <= now;
      if (!isExpired) {
        if (
          batch.onDuplicate === "ignore" &&
          sameCondition(live.condition, w.condition) &&
          live.expiresAt === w.expiresAt
        ) {
          continue;
        }
        throw new NexusError(
          "invalid_write",
          `cannot write ${describeTuple(w)}: it already exists${batch.onDuplicate === "ignore" ? " with another condition or expiry" : ""}`,
          { tuple: { tenant: w.tenant, object: w.object, relation: w.relation, user: w.user } },
        );
      }
      touched.add(identityKey(live));
      change("x", live);
      plan.remove.push(live);
    }
    change("w", w);
    plan.written++;
    const bornExpired = w.expiresAt !== undefined && w.expiresAt <= now;
    plan.insert.push({ tuple: w, bornExpired });
    if (bornExpired) change("x", w);
  }
  if (plan.changes.length === 0) return plan;
  for (const e of expired) {
    if (touched.has(identityKey(e))) continue;
    change("x", e);
    plan.remove.push(e);
  }
  return plan;
}
