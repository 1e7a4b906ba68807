/**
 * The shapes of the queries every entry point takes (Engine, CheckChain, the server's handlers): what a caller
 * writes, before validation (src/request/validate.ts) turns it into checked fields.
 */

import type { ConditionContext } from "../conditions/cel.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { Consistency } from "./consistency.js";

/** Fields every query may carry besides its question. */
export interface QueryOptions {
  readonly tenant?: string;
  /** The subject's tenant (default: `tenant`); a different one only sees cross-tenant grants. */
  readonly subjectTenant?: string;
  readonly contextualTuples?: readonly TupleKey[];
  /** Values for condition parameters. */
  readonly context?: ConditionContext;
  readonly consistency?: Consistency;
}

export interface CheckRequest extends QueryOptions {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
}

export interface ListObjectsRequest extends QueryOptions {
  readonly user: string;
  readonly relation: string;
  readonly type: string;
}

/** Which subjects listUsers lists: `{ type: "user" }` (users and `user:*`) or `{ type: "group", relation: "member" }`. */
export interface UserFilter {
  readonly type: string;
  readonly relation?: string;
}

export interface ListUsersRequest extends QueryOptions {
  readonly object: string;
  readonly relation: string;
  /** Which subjects to list: `{ type: "user" }` (users and `user:*`) or `{ type: "group", relation: "member" }`. */
  readonly userFilters: readonly UserFilter[];
}

export interface ExpandRequest {
  readonly object: string;
  readonly relation: string;
  readonly tenant?: string;
  readonly contextualTuples?: readonly TupleKey[];
  readonly consistency?: Consistency;
}

/** A filter request: which of `objects` (all of one type) may `user` access with `relation`. */
export interface FilterRequest {
  readonly user: string;
  readonly relation: string;
  /** `type:id` strings of one type. */
  readonly objects: readonly string[];
  readonly tenant?: string;
  readonly subjectTenant?: string;
  readonly consistency?: Consistency;
}

/** Per-call options of a query. */
export interface CheckOptions {
  /** Abandons this request (NexusError "aborted"); work shared with others goes on for them. */
  readonly signal?: AbortSignal;
}
