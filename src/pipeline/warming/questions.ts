/**
 * What warming talks about: an access (a check just answered), a listing (a filter over one directory's objects),
 * a question to warm, and the keys that identify who asks, which directory, and which question (for dedup and
 * recency). Also the default notion of a directory: the parent of a path-like object id.
 */

import { DEFAULT_TENANT } from "../../tuples/tuple.js";
import { describe, NexusError } from "../../util/errors.js";

/** One access (a check request; extra fields such as context or consistency are ignored). */
export interface Access {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
}

/** A listing: the objects of one directory filtered for a user (a filter request). */
export interface Listing {
  readonly user: string;
  readonly relation: string;
  readonly objects: readonly string[];
  readonly tenant?: string;
  readonly subjectTenant?: string;
}

/** A question to warm: a plain check request (no context, no contextual tuples, minimize_latency). */
export interface WarmQuestion {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
}

/**
 * The directory of a path object: `file:/a/b/c.txt` → `file:/a/b`, `file:/a` → `file:/`, `file:a/b` → `file:a`;
 * undefined for an id without `/` (not a path) and for a root.
 */
export function pathDirectory(object: string): string | undefined {
  const colon = object.indexOf(":");
  if (colon < 0) return undefined;
  let end = object.length;
  if (end - colon > 2 && object.charCodeAt(end - 1) === 47 /* "/" */) end--; // "a/b/" names the directory a/b
  const slash = object.lastIndexOf("/", end - 1);
  if (slash <= colon) return undefined;
  if (slash === colon + 1) return end === colon + 2 ? undefined : object.slice(0, colon + 2); // under the root
  return object.slice(0, slash);
}

/** Separates the parts of a key (no tenant, user or object id holds a NUL). */
export const SEP = "\u0000";

/** An access as the tracker resolved it: the question plus its directory (what predictions start from). */
export interface TrackedVisit {
  readonly question: WarmQuestion;
  readonly tenant: string;
  readonly userKey: string;
  readonly directory: string;
  /** A listing: its objects were all just asked, so siblings are not predicted. */
  readonly listing: boolean;
}

export function isAccessLike(value: unknown): value is Access {
  if (typeof value !== "object" || value === null) return false;
  const a = value as Record<string, unknown>;
  return (
    typeof a.user === "string" &&
    typeof a.relation === "string" &&
    typeof a.object === "string" &&
    (a.tenant === undefined || typeof a.tenant === "string") &&
    (a.subjectTenant === undefined || typeof a.subjectTenant === "string")
  );
}

export function questionOf(source: Access | Listing, object: string): WarmQuestion {
  const q: { user: string; relation: string; object: string; tenant?: string; subjectTenant?: string } = {
    user: source.user,
    relation: source.relation,
    object,
  };
  if (source.tenant !== undefined) q.tenant = source.tenant;
  if (source.subjectTenant !== undefined) q.subjectTenant = source.subjectTenant;
  return q;
}

/**
 * Who asks, as a key: the user alone in the default tenant (the common case, no string building), else tenant,
 * subject tenant and user NUL-separated (a user id holds no NUL, so the two forms never collide).
 */
export function userKeyOf(a: Access | Listing): string {
  const tenant = a.tenant ?? DEFAULT_TENANT;
  const subjectTenant = a.subjectTenant ?? tenant;
  return tenant === DEFAULT_TENANT && subjectTenant === DEFAULT_TENANT
    ? a.user
    : tenant + SEP + subjectTenant + SEP + a.user;
}

/** A directory as a key: the directory alone in the default tenant, else tenant NUL directory. */
export function directoryKey(tenant: string, directory: string): string {
  return tenant === DEFAULT_TENANT ? directory : tenant + SEP + directory;
}

/** The identity of a question for dedup and recency (tenants, user, relation, object). */
export function warmKey(q: WarmQuestion): string {
  return userKeyOf(q) + SEP + q.relation + SEP + q.object;
}

export function accessOf(value: Access): Access {
  if (!isAccessLike(value)) {
    throw new NexusError(
      "invalid_argument",
      `an access must be { user, relation, object } strings, got ${describe(value)}`,
    );
  }
  return value;
}

export function listingOf(value: Listing): Listing {
  if (typeof value !== "object" || value === null || !Array.isArray(value.objects)) {
    throw new NexusError(
      "invalid_argument",
      `a listing must be { user, relation, objects: string[] }, got ${describe(value)}`,
    );
  }
  if (!isAccessLike({ ...value, object: "" })) {
    throw new NexusError(
      "invalid_argument",
      `a listing must be { user, relation, objects: string[] }, got ${describe(value)}`,
    );
  }
  return value;
}
