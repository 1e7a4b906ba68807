/** File tuples -> the engine's TupleKey (expiry as a Date, condition as given). */
import type { TupleKey } from "../store/tuple.js";
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
  };
}
