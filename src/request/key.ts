/**
 * The identity of a check for caches and singleflight: tenants, object, relation, subject and the condition
 * context, NUL-separated (no part may hold NUL: validation rejects it). Revision and time are not part of it;
 * each layer decides how they matter.
 */
import type { ConditionContext } from "../conditions/cel.js";
import { DEFAULT_TENANT } from "../tuples/tuple.js";

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
 * The part of a question's identity besides its object and subject: `relation` alone for the common question (the
 * default tenant, asked from it, no context), so it costs no string building; else tenants, relation and context
 * text NUL-separated. The two forms never meet: a relation name holds no NUL. Undefined `contextText` (no stable
 * text) gives undefined (not to be cached).
 */
export function questionScope(
  tenant: string,
  subjectTenant: string,
  relation: string,
  contextText: string | undefined,
): string | undefined {
  if (contextText === undefined) return undefined;
  if (contextText === "" && tenant === DEFAULT_TENANT && subjectTenant === DEFAULT_TENANT) return relation;
  return tenant + SEP + subjectTenant + SEP + relation + SEP + contextText;
}

/** Deepest nesting a condition context may have (objects and arrays). */
export const MAX_CONTEXT_DEPTH = 64;

/**
 * The canonical copy of a condition context, made once per request: plain objects keep their own enumerable
 * string keys (sorted), arrays their elements, Dates their instant; everything else is a primitive copied as is.
 * The evaluator gets this copy, and the cache key is the text of it (contextText), so the two see exactly the
 * same thing: a non-enumerable, inherited or symbol-keyed property, or a getter's second answer, is invisible to
 * both. Undefined when the context has no canonical form (a function, a symbol, a cycle, a class instance other
 * than Date): the caller then evaluates the context as given and does not cache the answer. "too_deep" when it
 * nests deeper than MAX_CONTEXT_DEPTH (checked before any recursion could overflow the stack).
 */
export function canonicalContext(context: object): ConditionContext | undefined | "too_deep" {
  try {
    return copy(context, new Set(), 0) as ConditionContext;
  } catch (error) {
    if (error === TOO_DEEP) return "too_deep";
    return undefined;
  }
}

const TOO_DEEP = new Error("too deep");

function copy(value: unknown, path: Set<object>, depth: number): unknown {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "bigint":
    case "undefined":
      return value;
    case "object": {
      if (value === null) return null;
      if (value instanceof Date) return new Date(value.getTime());
      if (depth >= MAX_CONTEXT_DEPTH) throw TOO_DEEP;
      if (path.has(value)) throw new Error("cycle");
      path.add(value);
      let out: unknown;
      if (Array.isArray(value)) {
        const list: unknown[] = [];
        for (let i = 0; i < value.length; i++) list.push(copy(value[i], path, depth + 1));
        out = list;
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) throw new Error("not a plain object");
        const record: Record<string, unknown> = {};
        for (const key of Object.keys(value).sort()) {
          // defineProperty: a key named __proto__ stays a plain own property.
          Object.defineProperty(record, key, {
            value: copy((value as Record<string, unknown>)[key], path, depth + 1),
            enumerable: true,
            writable: false,
          });
        }
        out = Object.freeze(record);
      }
      path.delete(value);
      return out;
    }
    default:
      throw new Error("no canonical form");
  }
}

/**
 * A stable text for a condition context (object keys sorted, -0 apart from 0), "" without one; undefined when the
 * context holds something without a stable text (a function, a symbol, a cycle), so the question is not cached.
 * Given the canonical copy (canonicalContext), it encodes exactly what the evaluator reads.
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
      // -0 is not 0 to CEL (1.0 / x), so they never share an answer.
      if (Object.is(value, -0)) return "-0";
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
