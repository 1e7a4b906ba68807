/**
 * What the playground's text boxes hold, parsed: tuples (a YAML/JSON list of {user, relation, object, condition?},
 * or one per line as `user relation object` or `object#relation@user`) and queries (one per line). Errors name
 * the line, so a typo points at itself.
 */
import { parse as parseYaml } from "yaml";
import type { TupleKey } from "../index.js";

export type Query =
  | { readonly kind: "check"; readonly user: string; readonly relation: string; readonly object: string }
  | { readonly kind: "list-objects"; readonly user: string; readonly relation: string; readonly type: string }
  | {
      readonly kind: "list-users";
      readonly object: string;
      readonly relation: string;
      readonly filter: { readonly type: string; readonly relation?: string };
    }
  | { readonly kind: "expand"; readonly object: string; readonly relation: string };

export class InputError extends Error {}

/** Tuples from either text form; blank lines and lines starting with # are skipped in the line form. */
export function parseTuples(text: string): TupleKey[] {
  const first = text.split("\n").find((line) => line.trim() !== "" && !line.trim().startsWith("#"));
  if (first === undefined) return [];
  const head = first.trim();
  if (head.startsWith("-") || head.startsWith("[") || head.startsWith("{") || head.startsWith("tuples:")) {
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (error) {
      throw new InputError(`tuples: ${error instanceof Error ? error.message : String(error)}`);
    }
    const list = isRecord(parsed) && Array.isArray(parsed.tuples) ? parsed.tuples : parsed;
    if (!Array.isArray(list)) throw new InputError("tuples: expected a list of {user, relation, object}");
    return list.map((item, index) => {
      if (
        !isRecord(item) ||
        typeof item.user !== "string" ||
        typeof item.relation !== "string" ||
        typeof item.object !== "string"
      ) {
        throw new InputError(`tuples: item ${index + 1} needs string user, relation and object`);
      }
      return item as unknown as TupleKey;
    });
  }
  const tuples: TupleKey[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const words = line.split(/\s+/);
    const zanzibar = /^([^#\s]+)#([^@\s]+)@(\S+)$/.exec(line);
    if (zanzibar !== null) {
      tuples.push({ object: zanzibar[1]!, relation: zanzibar[2]!, user: zanzibar[3]! });
    } else if (words.length === 3) {
      tuples.push({ user: words[0]!, relation: words[1]!, object: words[2]! });
    } else {
      throw new InputError(`tuples line ${index + 1}: expected "user relation object", got "${line}"`);
    }
  }
  return tuples;
}

/** Queries, one per line: `check U R O`, `list-objects U R TYPE`, `list-users O R TYPE[#REL]`, `expand O R`. */
export function parseQueries(text: string): { line: string; query?: Query; error?: string }[] {
  const out: { line: string; query?: Query; error?: string }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [verb, ...args] = line.split(/\s+/);
    const want = (n: number, usage: string): string[] | undefined => {
      if (args.length === n) return args;
      out.push({ line, error: `usage: ${usage}` });
      return undefined;
    };
    if (verb === "check") {
      const a = want(3, "check <user> <relation> <object>");
      if (a) out.push({ line, query: { kind: "check", user: a[0]!, relation: a[1]!, object: a[2]! } });
    } else if (verb === "list-objects") {
      const a = want(3, "list-objects <user> <relation> <type>");
      if (a) out.push({ line, query: { kind: "list-objects", user: a[0]!, relation: a[1]!, type: a[2]! } });
    } else if (verb === "list-users") {
      const a = want(3, "list-users <object> <relation> <type>[#<relation>]");
      if (a) {
        const [type, relation] = a[2]!.split("#");
        out.push({
          line,
          query: {
            kind: "list-users",
            object: a[0]!,
            relation: a[1]!,
            filter: relation === undefined ? { type: type! } : { type: type!, relation },
          },
        });
      }
    } else if (verb === "expand") {
      const a = want(2, "expand <object> <relation>");
      if (a) out.push({ line, query: { kind: "expand", object: a[0]!, relation: a[1]! } });
    } else {
      out.push({ line, error: `unknown query "${verb}": use check, list-objects, list-users or expand` });
    }
  }
  return out;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
