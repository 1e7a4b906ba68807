/**
 * Permission tuples as the filesystem handles them: the identity of a tuple (to compare, or to delete it), the
 * public form of a tuple change in an event, the revision a write's token names, and the tuple a grant stands for.
 */
import { decodeToken } from "../tuples/token.js";
import type { TupleKey } from "../tuples/tuple.js";
import { describe, NexusError } from "../util/errors.js";
import { tenantOf } from "./caller.js";
import type { FsEvent } from "./events.js";
import { objectOf } from "./paths.js";
import type { Grant } from "./types.js";

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

/** The tuple a grant of share() or unshare() stands for: `direct_*` in its own tenant, `shared-*` across tenants. */
export function grantTuple(tenant: string, path: string, grant: Grant): TupleKey {
  if (grant === null || typeof grant !== "object") {
    throw new NexusError(
      "invalid_argument",
      `a grant is { user, relation, tenant? }, got ${describe(grant)}`,
    );
  }
  if (!["viewer", "editor", "owner"].includes(grant.relation)) {
    throw new NexusError(
      "invalid_argument",
      `a grant's relation is viewer, editor or owner, got ${describe(grant.relation)}`,
    );
  }
  const subjectTenant = tenantOf(grant.tenant ?? tenant);
  const object = objectOf(path);
  if (subjectTenant === tenant)
    return { user: grant.user, relation: `direct_${grant.relation}`, object, tenant };
  return { user: grant.user, relation: `shared-${grant.relation}`, object, tenant, subjectTenant };
}
