/**
 * What the cross-tenant index is asked: its options and the two grant queries, with the checks that turn a bad
 * one into an invalid_argument error before the index is read.
 */

import { requestObject } from "../../request/requests.js";
import { isTenantName } from "../../tuples/tuple.js";
import { describe, NexusError } from "../../util/errors.js";

export interface CrossTenantOptions {
  /**
   * Tenants to read from a snapshot when the changelog no longer reaches back to revision 0. Without them (and
   * without the changelog) the index covers no tenant and the layer passes every cross-tenant question through.
   */
  readonly tenants?: readonly string[];
  /** Epoch ms for `grantsTo` / `grantsOn` without `now` (default Date.now; the chain passes its clock). */
  readonly clock?: () => number;
}

/** Live grants naming a subject (what Nexus lists as "shared with me"). */
export interface GrantsToQuery {
  /** The subject's tenant. */
  readonly subjectTenant: string;
  /** The subject: `user:bob`, `user:*`, `group:eng#member`. */
  readonly user: string;
  /** Only grants written in this tenant (default: every tenant). */
  readonly tenant?: string;
  /** Include grants to the subject's type wildcard (`user:*`) for a plain subject (default true). */
  readonly includeWildcard?: boolean;
  /** The instant (epoch ms) at which grants must be live (default: the clock). */
  readonly now?: number;
}

/** Live grants on one object (what it is shared with). */
export interface GrantsOnQuery {
  readonly tenant: string;
  /** `type:id`. */
  readonly object: string;
  /** Only grants to subjects of this tenant (default: every other tenant). */
  readonly subjectTenant?: string;
  /** Only grants on this relation. */
  readonly relation?: string;
  readonly now?: number;
}

/** @throws NexusError "invalid_argument" when `options` is not a CrossTenantOptions. */
export function validateOptions(options: CrossTenantOptions): void {
  requestObject(options, "cross-tenant options");
  if (options.tenants !== undefined) {
    if (!Array.isArray(options.tenants)) {
      throw new NexusError(
        "invalid_argument",
        `crossTenant.tenants must be an array, got ${describe(options.tenants)}`,
      );
    }
    options.tenants.forEach((tenant, i) => {
      if (!isTenantName(tenant)) {
        throw new NexusError(
          "invalid_argument",
          `crossTenant.tenants[${i}] must be a non-empty string without NUL, got ${describe(tenant)}`,
        );
      }
    });
  }
  if (options.clock !== undefined && typeof options.clock !== "function") {
    throw new NexusError(
      "invalid_argument",
      `crossTenant.clock must be a function, got ${describe(options.clock)}`,
    );
  }
}

/** The instant a query asks about: `now` when given (a number), else the clock's. */
export function instantOf(now: unknown, clock: () => number): number {
  if (now === undefined) return clock();
  if (typeof now !== "number" || Number.isNaN(now)) {
    throw new NexusError("invalid_argument", `now must be a number (epoch ms), got ${describe(now)}`);
  }
  return now;
}

/** A tenant name field of a query. @throws NexusError "invalid_argument" naming the field. */
export function tenantField(value: unknown, field: string): string {
  if (!isTenantName(value)) {
    throw new NexusError(
      "invalid_argument",
      `${field} must be a non-empty string without NUL, got ${describe(value)}`,
      {
        [field]: value,
      },
    );
  }
  return value;
}
