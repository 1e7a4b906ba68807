/**
 * File tuples -> the engine's TupleKey (expiry as a Date, condition as given). A tuple's own `tenant` /
 * `subjectTenant` win over `extra`'s (the command's defaults).
 */
import type { TupleKey } from "../tuples/tuple.js";
import type { FileTuple } from "./load.js";

export function toTupleKey(
  tuple: FileTuple,
  extra: Partial<Pick<TupleKey, "tenant" | "subjectTenant">> = {},
): TupleKey {
  return {
    user: tuple.user,
    relation: tuple.relation,
    object: tuple.object,
    ...(tuple.condition ? { condition: tuple.condition } : {}),
    ...(tuple.expiresAt !== undefined
      ? { expiresAt: typeof tuple.expiresAt === "number" ? new Date(tuple.expiresAt) : tuple.expiresAt }
      : {}),
    ...extra,
    ...(tuple.tenant !== undefined ? { tenant: tuple.tenant } : {}),
    ...(tuple.subjectTenant !== undefined ? { subjectTenant: tuple.subjectTenant } : {}),
  };
}
