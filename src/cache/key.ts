/**
 * The identity of a check for caches and singleflight: tenants, object, relation, subject and the condition
 * context, NUL-separated (no part may hold NUL: validation rejects it). Revision and time are not part of it;
 * each layer decides how they matter.
 */
import type { ConditionContext } from "../conditions/cel.js";

const SEP = "\u0000";

export function questionKey(
  tenant: string,
  subjectTenant: string,
  object: string,
  relation: string,
  user: string,
  contextText: string,
): string {
  return tenant + SEP + subjectTenant + SEP + object + SEP + relation + SEP + user + SEP + contextText;
}

/**
 * A stable text for a condition context (object keys sorted), "" without one; undefined when the context holds
 * something without a stable text (a function, a symbol, a cycle), so the question is not cached.
 */
export function contextText(context: ConditionContext | undefined): string | undefined {
  if (context === undefined) return "";
  try {
    return stable(context, new Set());
  } catch {
    return undefined;
  }
}

function stable(value: unknown, path: Set<object>): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? String(value) : `#${String(value)}`;
    case "boolean":
      return String(value);
    case "bigint":
      return `${value}n`;
    case "undefined":
      return "u";
    case "object": {
      if (value === null) return "null";
      if (value instanceof Date) return `D${value.toISOString()}`;
      if (path.has(value)) throw new Error("cycle");
      path.add(value);
      let text: string;
      if (Array.isArray(value)) {
        text = `[${value.map((v) => stable(v, path)).join(",")}]`;
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) throw new Error("not a plain object");
        const entries = Object.keys(value)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k], path)}`);
        text = `{${entries.join(",")}}`;
      }
      path.delete(value);
      return text;
    }
    default:
      throw new Error("no stable text");
  }
}
