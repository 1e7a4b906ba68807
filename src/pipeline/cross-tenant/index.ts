/**
 * Cross-tenant grants: the grant table (grant-table.ts), the index that builds and follows it and answers the
 * grant queries (grant-index.ts, usable on its own; its inputs in queries.ts), and the check layer that denies
 * what no grant can reach (resolver.ts).
 */

export { CrossTenantIndex, type CrossTenantIndexContext, type CrossTenantIndexStats } from "./grant-index.js";
export type { Reach, ReachQuestion } from "./grant-table.js";
export type { CrossTenantOptions, GrantsOnQuery, GrantsToQuery } from "./queries.js";
export { type CrossTenantContext, CrossTenantResolver } from "./resolver.js";
