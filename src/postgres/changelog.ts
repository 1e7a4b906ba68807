/**
 * The changelog: one row per change, `(revision, seq)` ordering the changes of a revision as the write applied
 * them (caller deletes, then each write — preceded by the removal of the expired tuple it replaces — then tuples
 * found expired), op 'w' write, 'd' delete, 'x' delete of an expired tuple.
 *
 * changesAfter reads the counter and the changelog floor in the statement that reads the page, so the checks
 * ("not a revision of this store", "no longer retained") and the page agree. A page never splits a revision: when
 * the `limit`-th change is not its revision's last, a second statement reads the rest of that revision (and
 * refuses if the collector removed it in between).
 */

import type { RelationTuple } from "../tuples/tuple.js";
import type { Revision, StoredChange } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import type { Database } from "./database.js";
import { tupleFromRow, tupleSelect } from "./rows.js";

export type ChangeCode = "w" | "d" | "x";

/** A change about to be written: its op code and tuple (its seq is its position in the revision). */
export interface PendingChange {
  readonly op: ChangeCode;
  readonly tuple: RelationTuple;
}

export function storedChange(revision: Revision, op: ChangeCode, tuple: RelationTuple): StoredChange {
  if (op === "w") return { revision, op: "write", tuple };
  return op === "x" ? { revision, op: "delete", tuple, expired: true } : { revision, op: "delete", tuple };
}

export async function changesAfter(db: Database, after: Revision, limit: number): Promise<StoredChange[]> {
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new NexusError("invalid_token", `revision ${describe(after)} is not a revision of this store`, {
      revision: after,
    });
  }
  const pageSize = Math.max(1, Number.isFinite(limit) ? Math.floor(limit) : 1);
  const s = db.schema;
  const columns = `c.revision, c.seq, c.op, ${tupleSelect("c")}`;
  const rows = await db.rows(
    `SELECT m.revision, r.changelog_floor, p.*
     FROM ${s}.store_meta m CROSS JOIN ${s}.retention r
     LEFT JOIN (SELECT ${columns} FROM ${s}.changelog c WHERE c.revision > $1 ORDER BY c.revision, c.seq LIMIT $2) p
       ON true
     ORDER BY p.revision, p.seq`,
    [after, pageSize],
    "reading the changelog",
  );
  const current = Number(rows[0]?.[0] ?? 0);
  const floor = Number(rows[0]?.[1] ?? 0);
  if (after > current) {
    throw new NexusError("invalid_token", `revision ${after} is not a revision of this store`, {
      revision: after,
      current,
    });
  }
  if (after < floor) {
    throw new NexusError(
      "invalid_token",
      `changes after revision ${after} are no longer retained (the changelog starts after revision ${floor})`,
      { revision: after, floor, reason: "beyond_retention" },
    );
  }
  if (rows.length === 1 && rows[0]![2] === null) return [];
  const changes = rows.map((row) => storedChange(Number(row[2]), row[4] as ChangeCode, tupleFromRow(row, 5)));
  if (rows.length < pageSize) return changes;
  // A full page may end inside a revision: read the rest of that revision.
  const last = rows[rows.length - 1]!;
  const lastRevision = Number(last[2]);
  const rest = await db.rows(
    `SELECT r.changelog_floor, p.* FROM ${s}.retention r
     LEFT JOIN (SELECT ${columns} FROM ${s}.changelog c WHERE c.revision = $1 AND c.seq > $2) p ON true
     ORDER BY p.seq`,
    [lastRevision, last[3]],
    "reading the changelog",
  );
  if (Number(rest[0]?.[0] ?? 0) >= lastRevision) {
    throw new NexusError(
      "invalid_token",
      `changes after revision ${after} are no longer retained (collected while being read)`,
      { revision: after, floor: Number(rest[0]?.[0]), reason: "beyond_retention" },
    );
  }
  for (const row of rest) {
    if (row[1] !== null) changes.push(storedChange(lastRevision, row[3] as ChangeCode, tupleFromRow(row, 4)));
  }
  return changes;
}
