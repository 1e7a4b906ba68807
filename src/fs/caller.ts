/**
 * Checking who calls and where: a caller is `{ user: "type:id", tenant? }` (tenant default "default"), a tenant a
 * non-empty string without NUL; and the errors an operation gives a caller it refuses.
 */
import { describe, NexusError } from "../util/errors.js";
import { parentOf } from "./paths.js";
import type { Caller } from "./types.js";

export function callerOf(caller: Caller): Required<Caller> {
  if (
    caller === null ||
    typeof caller !== "object" ||
    typeof caller.user !== "string" ||
    !caller.user.includes(":")
  ) {
    throw new NexusError(
      "invalid_argument",
      `a caller is { user: "type:id", tenant? }, got ${describe(caller)}`,
    );
  }
  return { user: caller.user, tenant: tenantOf(caller.tenant ?? "default") };
}

export function tenantOf(tenant: unknown): string {
  if (typeof tenant !== "string" || tenant === "" || tenant.includes("\u0000")) {
    throw new NexusError("invalid_argument", `a tenant is a non-empty string, got ${describe(tenant)}`);
  }
  return tenant;
}

export function denied(c: Required<Caller>, what: string, tenant: string, path: string): NexusError {
  return new NexusError(
    "permission_denied",
    `${c.user} (tenant ${c.tenant}) may not ${what} ${path} in tenant ${tenant}`,
    { user: c.user, subjectTenant: c.tenant, tenant, path, permission: what },
  );
}

export function exists(tenant: string, path: string): NexusError {
  return new NexusError("already_exists", `${path} already exists in tenant ${tenant}`, { tenant, path });
}

/** "/a/b/c" → ["/a", "/a/b", "/a/b/c"]. */
export function ancestorsAndSelf(path: string): string[] {
  const out: string[] = [];
  for (let p: string | undefined = path; p !== undefined && p !== "/"; p = parentOf(p)) out.unshift(p);
  return out;
}
