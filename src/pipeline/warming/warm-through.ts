/**
 * The warm function for a check chain: predicted questions go through the chain's public entry points (filter
 * or checkMany), so warmed answers land in its result cache and Tiger bitmaps and are exactly what the chain
 * would answer.
 */

import { DEFAULT_TENANT } from "../../tuples/tuple.js";
import { describe, NexusError } from "../../util/errors.js";
import { SEP, type WarmQuestion } from "./questions.js";
import type { WarmFn } from "./warmer.js";

/** What warming needs of a check chain (CheckChain has both). */
export interface WarmTarget {
  checkMany(requests: readonly WarmQuestion[], options?: { signal?: AbortSignal }): Promise<unknown>;
  filter(
    request: {
      user: string;
      relation: string;
      objects: readonly string[];
      tenant?: string;
      subjectTenant?: string;
    },
    options?: { signal?: AbortSignal },
  ): Promise<unknown>;
}

export interface WarmThroughOptions {
  /**
   * "filter" (default): one filter per (tenants, user, relation, object type), which materialises the Tiger
   * bitmap when that layer is on and otherwise checks the objects as one batch (filling the result cache).
   * "checkMany": one batch of checks (result cache only).
   */
  readonly via?: "filter" | "checkMany";
}

/**
 * The warm function for a chain: questions go through its public entry points, so warmed answers land in its
 * result cache and Tiger bitmaps, and are exactly what the chain would answer. A failing group does not stop
 * the others; the first failure is rethrown once all have settled (the warmer counts it).
 */
export function warmThrough(target: WarmTarget, options: WarmThroughOptions = {}): WarmFn {
  const via = options.via ?? "filter";
  if (via !== "filter" && via !== "checkMany") {
    throw new NexusError("invalid_argument", `via must be "filter" or "checkMany", got ${describe(via)}`);
  }
  if (via === "checkMany") return (questions, signal) => target.checkMany(questions, { signal });
  return async (questions, signal) => {
    const groups = new Map<string, { first: WarmQuestion; objects: Set<string> }>();
    for (const q of questions) {
      const tenant = q.tenant ?? DEFAULT_TENANT;
      const type = q.object.slice(0, q.object.indexOf(":"));
      const key = tenant + SEP + (q.subjectTenant ?? tenant) + SEP + q.user + SEP + q.relation + SEP + type;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, { first: q, objects: new Set([q.object]) });
      else group.objects.add(q.object);
    }
    const settled = await Promise.allSettled(
      [...groups.values()].map(({ first, objects }) =>
        target.filter(
          {
            user: first.user,
            relation: first.relation,
            objects: [...objects],
            ...(first.tenant !== undefined ? { tenant: first.tenant } : {}),
            ...(first.subjectTenant !== undefined ? { subjectTenant: first.subjectTenant } : {}),
          },
          { signal },
        ),
      ),
    );
    for (const s of settled) if (s.status === "rejected") throw s.reason;
  };
}
