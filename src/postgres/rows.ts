/**
 * RelationTuple <-> table columns. A tuple is stored as (tenant, object_type, object_id, relation,
 * subject_tenant, user, condition_name, condition_context, expires_at_ms); the object and subject strings and
 * the parsed subject are rebuilt on read. Queries select `tupleSelect(alias)` in array row mode (no per-row objects from
 * pg) and decode with `tupleFromRow(row, at)`. Writes send one array per column (`unnest`), so a batch of any
 * size is one statement with nine parameters.
 *
 * bigint columns arrive as strings (pg does not guess at precision); revisions and expiry instants are below 2^53.
 */

import {
  parseSubject,
  type RelationTuple,
  StoredTuple,
  type Subject,
  type TupleCondition,
  type TupleIdentity,
} from "../tuples/tuple.js";
import { NexusError } from "../util/errors.js";

/** The tuple columns, in the order tupleFromRow reads them, of the table aliased `alias`. */
export function tupleSelect(alias: string): string {
  const a = alias;
  return `${a}.tenant, ${a}.object_type, ${a}.object_id, ${a}.relation, ${a}.subject_tenant, ${a}."user",
  ${a}.condition_name, ${a}.condition_context, ${a}.expires_at_ms`;
}
export const TUPLE_WIDTH = 9;

/** The nine column arrays ($first .. $first+8) with their types, for `unnest(...)` in a FROM clause. */
export function tupleArrays(first: number): string {
  const types = ["text", "text", "text", "text", "text", "text", "text", "json", "bigint"];
  return types.map((type, i) => `$${first + i}::${type}[]`).join(", ");
}

/** Per-column arrays of `tuples`, for unnestTuples. */
export function tupleColumns(tuples: readonly RelationTuple[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: TUPLE_WIDTH }, () => new Array(tuples.length));
  for (const [i, t] of tuples.entries()) {
    cols[0]![i] = t.tenant;
    cols[1]![i] = t.objectType;
    // From object and objectType, not t.objectId: a stored tuple's objectId is a getter (7d34096), which a
    // caller's spread or structuredClone of it drops, and the column is NOT NULL.
    cols[2]![i] = t.object.slice(t.objectType.length + 1);
    cols[3]![i] = t.relation;
    cols[4]![i] = t.subjectTenant;
    cols[5]![i] = t.user;
    cols[6]![i] = t.condition?.name ?? null;
    cols[7]![i] = t.condition?.context === undefined ? null : JSON.stringify(t.condition.context);
    cols[8]![i] = t.expiresAt ?? null;
  }
  return cols;
}

/** Identity columns (tenant, object_type, object_id, relation, subject_tenant, user) of `ids`. */
export function identityColumns(ids: readonly TupleIdentity[]): string[][] {
  const cols: string[][] = Array.from({ length: 6 }, () => new Array<string>(ids.length));
  for (const [i, t] of ids.entries()) {
    const colon = t.object.indexOf(":");
    cols[0]![i] = t.tenant;
    cols[1]![i] = t.object.slice(0, colon);
    cols[2]![i] = t.object.slice(colon + 1);
    cols[3]![i] = t.relation;
    cols[4]![i] = t.subjectTenant;
    cols[5]![i] = t.user;
  }
  return cols;
}

/** The tuple in `row` starting at column `at` (tupleSelect's order). */
export function tupleFromRow(row: readonly unknown[], at = 0): RelationTuple {
  const objectType = row[at + 1] as string;
  const objectId = row[at + 2] as string;
  const user = row[at + 5] as string;
  const conditionName = row[at + 6] as string | null;
  const context = row[at + 7] as Record<string, unknown> | null;
  const expires = row[at + 8] as string | null;
  const condition: TupleCondition | undefined =
    conditionName === null
      ? undefined
      : context === null
        ? { name: conditionName }
        : { name: conditionName, context };
  return new StoredTuple(
    row[at] as string,
    `${objectType}:${objectId}`,
    objectType,
    row[at + 3] as string,
    user,
    subjectOf(user),
    row[at + 4] as string,
    condition,
    expires !== null ? Number(expires) : undefined,
  );
}

function subjectOf(user: string): Subject {
  const subject = parseSubject(user);
  if (subject === undefined) {
    throw new NexusError("corrupt", `the tuples table holds a malformed subject ${JSON.stringify(user)}`, {
      user,
    });
  }
  return subject;
}
