/**
 * Permission tuples as the filesystem handles them: the identity of a tuple (to compare, or to delete it), the
 * public form of a tuple change in an event, and the revision a write's token names.
 */
import { decodeToken } from "../tuples/token.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { FsEvent } from "./events.js";

/** The public form of a tuple change in an event. */
export function changeOf(op: "write" | "delete", t: TupleKey): NonNullable<FsEvent["change"]> {
  return {
    op,
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.subjectTenant !== undefined && t.subjectTenant !== t.tenant
      ? { subjectTenant: t.subjectTenant }
      : {}),
  };
}

/** The tuple store revision a write's token names. */
export function revisionOf(token: string): number {
  return decodeToken(token).revision;
}

export function identityOf(t: TupleKey) {
  return {
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.tenant !== undefined ? { tenant: t.tenant } : {}),
    ...(t.subjectTenant !== undefined ? { subjectTenant: t.subjectTenant } : {}),
  };
}

export function tupleId(t: TupleKey): string {
  return `${t.tenant}\u0000${t.object}\u0000${t.relation}\u0000${t.subjectTenant ?? t.tenant}\u0000${t.user}`;
}

export function sameTuple(a: TupleKey, b: TupleKey): boolean {
  return tupleId(a) === tupleId(b);
}
