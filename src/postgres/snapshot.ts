/**
 * Snapshot reads at a revision r: the versions with `created_rev <= r` and (`deleted_rev` null or `> r`).
 *
 * Every read is one statement that also reads the collector's horizon (`retention.version_horizon`), and a
 * statement sees one consistent state: if the horizon has passed r — another process collected versions r needs,
 * because the snapshot outlived `snapshotRetentionMs` — the read is refused ("invalid_token", reason
 * "beyond_retention") instead of answering from a state with versions missing.
 *
 * Keys are batched: one statement per tenant for object and type-relation keys (the tenant picks the partition),
 * one statement for all subject keys (a subject's tuples may sit in any tenant, so every partition's subject index
 * is probed). Each key is a LATERAL index probe fenced with OFFSET 0, so the plan is a nested loop over the keys
 * whatever the planner's estimates (unfenced, it flattened the probe into a join over every row of the table).
 */

import { parseObject, type RelationTuple } from "../tuples/tuple.js";
import type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  SubjectKey,
  TupleSnapshot,
  TypeRelationKey,
} from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import type { Database } from "./database.js";
import { tupleFromRow, tupleSelect } from "./rows.js";

const VISIBLE = "t.created_rev <= $1 AND (t.deleted_rev IS NULL OR t.deleted_rev > $1)";

export class PostgresSnapshot implements TupleSnapshot {
  readonly revision: Revision;
  readonly #db: Database;
  readonly #release: () => void;
  #released = false;

  constructor(db: Database, revision: Revision, release: () => void) {
    this.#db = db;
    this.revision = revision;
    this.#release = release;
  }

  async readByObject(keys: readonly ObjectRelationKey[]): Promise<RelationTuple[][]> {
    const out = keys.map((): RelationTuple[] => []);
    const byTenant = new Map<string, { index: number[]; type: string[]; relation: string[]; id: string[] }>();
    for (const [i, key] of keys.entries()) {
      const object = parseObject(key.object);
      if (object === undefined) continue;
      let group = byTenant.get(key.tenant);
      if (group === undefined) {
        group = { index: [], type: [], relation: [], id: [] };
        byTenant.set(key.tenant, group);
      }
      group.index.push(i);
      group.type.push(object.type);
      group.relation.push(key.relation);
      group.id.push(object.id);
    }
    await Promise.all(
      [...byTenant].map(async ([tenant, g]) => {
        const rows = await this.#select(
          `SELECT k.i, ${tupleSelect("t")}
           FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS k(object_type, relation, object_id, i)
           CROSS JOIN LATERAL (
             SELECT * FROM ${this.#db.schema}.tuples l WHERE l.tenant = $2 AND l.object_type = k.object_type
               AND l.relation = k.relation AND l.object_id = k.object_id OFFSET 0
           ) t
           WHERE ${VISIBLE}`,
          [tenant, g.type, g.relation, g.id],
          "reading tuples by object",
        );
        for (const row of rows) out[g.index[Number(row[1]) - 1]!]!.push(tupleFromRow(row, 2));
      }),
    );
    return out;
  }

  async readBySubject(keys: readonly SubjectKey[]): Promise<RelationTuple[][]> {
    const out = keys.map((): RelationTuple[] => []);
    if (keys.length === 0) return out;
    const rows = await this.#select(
      `SELECT k.i, ${tupleSelect("t")}
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
         WITH ORDINALITY AS k(subject_tenant, usr, object_type, relation, i)
       CROSS JOIN LATERAL (
         SELECT * FROM ${this.#db.schema}.tuples l WHERE l.subject_tenant = k.subject_tenant AND l."user" = k.usr
         OFFSET 0
       ) t
       WHERE (k.object_type IS NULL OR t.object_type = k.object_type)
         AND (k.relation IS NULL OR t.relation = k.relation) AND ${VISIBLE}`,
      [
        keys.map((k) => k.subjectTenant),
        keys.map((k) => k.user),
        keys.map((k) => k.objectType ?? null),
        keys.map((k) => k.relation ?? null),
      ],
      "reading tuples by subject",
    );
    for (const row of rows) out[Number(row[1]) - 1]!.push(tupleFromRow(row, 2));
    return out;
  }

  async readByTypeRelation(keys: readonly TypeRelationKey[]): Promise<RelationTuple[][]> {
    const out = keys.map((): RelationTuple[] => []);
    const byTenant = new Map<string, { index: number[]; type: string[]; relation: string[] }>();
    for (const [i, key] of keys.entries()) {
      let group = byTenant.get(key.tenant);
      if (group === undefined) {
        group = { index: [], type: [], relation: [] };
        byTenant.set(key.tenant, group);
      }
      group.index.push(i);
      group.type.push(key.objectType);
      group.relation.push(key.relation);
    }
    await Promise.all(
      [...byTenant].map(async ([tenant, g]) => {
        const rows = await this.#select(
          `SELECT k.i, ${tupleSelect("t")}
           FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS k(object_type, relation, i)
           CROSS JOIN LATERAL (
             SELECT * FROM ${this.#db.schema}.tuples l WHERE l.tenant = $2 AND l.object_type = k.object_type
               AND l.relation = k.relation OFFSET 0
           ) t
           WHERE ${VISIBLE}`,
          [tenant, g.type, g.relation],
          "reading tuples by type and relation",
        );
        for (const row of rows) out[g.index[Number(row[1]) - 1]!]!.push(tupleFromRow(row, 2));
      }),
    );
    return out;
  }

  async read(filter: ReadFilter): Promise<RelationTuple[]> {
    const values: unknown[] = [filter.tenant];
    const where = ["t.tenant = $2"];
    const equal = (column: string, value: string): void => {
      values.push(value);
      where.push(`t.${column} = $${values.length + 1}`);
    };
    if (filter.object !== undefined) {
      const object = parseObject(filter.object);
      if (object === undefined) return [];
      equal("object_type", object.type);
      equal("object_id", object.id);
    }
    if (filter.objectType !== undefined) equal("object_type", filter.objectType);
    if (filter.relation !== undefined) equal("relation", filter.relation);
    if (filter.user !== undefined) equal('"user"', filter.user);
    const rows = await this.#select(
      `SELECT 0, ${tupleSelect("t")} FROM ${this.#db.schema}.tuples t WHERE ${where.join(" AND ")} AND ${VISIBLE}`,
      values,
      "reading tuples",
    );
    return rows.map((row) => tupleFromRow(row, 2));
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#release();
  }

  /**
   * Runs `query` (whose $1 is the revision, the rest `values`) together with a read of the horizon, in one
   * statement; returns the rows that matched, each as [horizon, ...the query's columns]. @throws NexusError "invalid_token" when the horizon passed the revision.
   */
  async #select(query: string, values: unknown[], doing: string): Promise<unknown[][]> {
    const rows = await this.#db.rows(
      `SELECT h.version_horizon, x.* FROM ${this.#db.schema}.retention h LEFT JOIN LATERAL (${query}) x ON true`,
      [this.revision, ...values],
      doing,
    );
    const horizon = Number(rows[0]?.[0] ?? 0);
    if (horizon > this.revision) {
      throw new NexusError(
        "invalid_token",
        `revision ${this.revision} is older than this store retains (oldest readable: ${horizon}); the snapshot outlived snapshotRetentionMs`,
        { revision: this.revision, horizon, reason: "beyond_retention" },
      );
    }
    return rows.length === 1 && rows[0]![1] === null ? [] : rows;
  }
}
