/**
 * JSON to and from the shapes OpenFGA's HTTP API (grpc-gateway) uses: snake_case fields, enums as strings, RFC 3339
 * times, tuple keys `{user, relation, object, condition}`, list-users subjects as `{object}` / `{userset}` /
 * `{wildcard}`. Readers validate as they go and throw a 400 naming the field; they never trust a body's shape, and
 * refuse a field the message does not have (messageOf).
 */

import type { UsersetNode, UsersetTree } from "../engine/engine.js";
import type { Consistency } from "../request/consistency.js";
import type { TupleKey } from "../tuples/tuple.js";
import { describe } from "../util/errors.js";
import { invalid } from "./errors.js";

/** OpenFGA store and model ids are ULIDs (Crockford base32, 26 characters). */
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function isUlid(text: unknown): text is string {
  return typeof text === "string" && ULID.test(text);
}

/** `id` must be a ULID (`what` names it in the error). */
export function ulidParam(id: unknown, what: string): string {
  if (!isUlid(id))
    throw invalid(`${what} must be a ULID (26 characters of Crockford base32), got ${describe(id, 60)}`);
  return id;
}

export type Json = Record<string, unknown>;

/** The value as a JSON object; `undefined`/`null` count as `{}` only when `optional`. */
export function objectOf(value: unknown, what: string, optional = false): Json {
  if (optional && (value === undefined || value === null)) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${what} must be a JSON object, got ${describe(value, 60)}`);
  }
  return value as Json;
}

/** A message's field names, as OpenFGA's API spells them. */
export function fieldSet(...names: string[]): ReadonlySet<string> {
  return new Set(names);
}

const snakeCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * `value` as a JSON object holding no field outside `fields`. OpenFGA's gateway drops fields it does not know, and
 * its names are the snake_case json_names only (`authorizationModelId` is not one), so a misspelt field would be
 * answered as if absent (a check on the newest model, say): here it is a 400 naming the field instead.
 */
export function messageOf(value: unknown, what: string, fields: ReadonlySet<string>, optional = false): Json {
  const message = objectOf(value, what, optional);
  for (const key of Object.keys(message)) {
    if (fields.has(key)) continue;
    const meant = snakeCase(key);
    throw invalid(
      `${what} has an unknown field ${describe(key, 60)}: ` +
        (meant !== key && fields.has(meant)
          ? `OpenFGA's name for it is "${meant}"`
          : `its fields are ${[...fields].join(", ")}`),
    );
  }
  return message;
}

export function stringOf(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "")
    throw invalid(`${what} must be a non-empty string, got ${describe(value, 60)}`);
  return value;
}

/** An optional string field: absent, null and "" are all "not given". */
export function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw invalid(`${what} must be a string, got ${describe(value, 60)}`);
  return value;
}

export function arrayOf(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(`${what} must be an array, got ${describe(value, 60)}`);
  return value;
}

const TUPLE_KEY = fieldSet("user", "relation", "object", "condition");
const CONDITION = fieldSet("name", "context");
const CONTEXTUAL_TUPLES = fieldSet("tuple_keys");

/** A tuple key as OpenFGA sends it (`condition` optional). */
export function tupleKeyIn(value: unknown, what: string): TupleKey {
  const key = messageOf(value, what, TUPLE_KEY);
  const user = stringOf(key.user, `${what}.user`);
  const relation = stringOf(key.relation, `${what}.relation`);
  const object = stringOf(key.object, `${what}.object`);
  if (key.condition === undefined || key.condition === null) return { user, relation, object };
  const condition = messageOf(key.condition, `${what}.condition`, CONDITION);
  const name = stringOf(condition.name, `${what}.condition.name`);
  const context =
    condition.context === undefined || condition.context === null
      ? undefined
      : objectOf(condition.context, `${what}.condition.context`);
  return { user, relation, object, condition: context === undefined ? { name } : { name, context } };
}

/** A tuple key for a delete (a condition given is ignored, as OpenFGA does). */
export function deleteKeyIn(value: unknown, what: string): TupleKey {
  const key = messageOf(value, what, TUPLE_KEY);
  return {
    user: stringOf(key.user, `${what}.user`),
    relation: stringOf(key.relation, `${what}.relation`),
    object: stringOf(key.object, `${what}.object`),
  };
}

/** Contextual tuples: `{tuple_keys: [...]}` (check, list-objects, expand) or a bare array (list-users). */
export function contextualTuplesIn(value: unknown, what = "contextual_tuples"): TupleKey[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value)
    ? value
    : arrayOf(messageOf(value, what, CONTEXTUAL_TUPLES).tuple_keys, `${what}.tuple_keys`);
  return list.map((t, i) => tupleKeyIn(t, `${what}[${i}]`));
}

/** The request `context` (condition parameters): an object, or undefined. */
export function contextIn(value: unknown, what = "context"): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  return objectOf(value, what);
}

/**
 * OpenFGA's `consistency` -> the engine's: MINIMIZE_LATENCY reads a snapshot at most one quantization window old,
 * HIGHER_CONSISTENCY reads the latest revision, UNSPECIFIED (or absent) reads at least as fresh as `floor`, the
 * store's last acknowledged write (read-your-writes, OpenFGA's default behaviour, while still sharing cached
 * answers when nothing was written lately).
 */
export function consistencyIn(value: unknown, floor: string | undefined): Consistency | undefined {
  if (value === undefined || value === null || value === "" || value === "UNSPECIFIED") {
    return floor === undefined ? undefined : { atLeastAsFresh: floor };
  }
  if (value === "MINIMIZE_LATENCY") return "minimize_latency";
  if (value === "HIGHER_CONSISTENCY") return "fully_consistent";
  throw invalid(
    `consistency must be "UNSPECIFIED", "MINIMIZE_LATENCY" or "HIGHER_CONSISTENCY", got ${describe(value, 60)}`,
  );
}

/** A stored tuple as OpenFGA's TupleKey. */
export function tupleKeyOut(t: TupleKey): Json {
  return {
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.condition !== undefined
      ? { condition: { name: t.condition.name, context: t.condition.context ?? {} } }
      : {}),
  };
}

export function timestampOut(ms: number): string {
  return new Date(ms).toISOString();
}

/** A subject string from list users as OpenFGA's User: `{object}`, `{userset}` or `{wildcard}`. */
export function userOut(subject: string): Json {
  const hash = subject.lastIndexOf("#");
  const colon = subject.indexOf(":");
  const type = subject.slice(0, colon);
  if (hash > colon) {
    return { userset: { type, id: subject.slice(colon + 1, hash), relation: subject.slice(hash + 1) } };
  }
  const id = subject.slice(colon + 1);
  return id === "*" ? { wildcard: { type } } : { object: { type, id } };
}

/** The expand tree in OpenFGA's shape (`{root: {name, leaf | union | intersection | difference}}`). */
export function treeOut(tree: UsersetTree): Json {
  return { root: nodeOut(tree.root) };
}

function nodeOut(node: UsersetNode): Json {
  if ("leaf" in node) {
    const leaf = node.leaf;
    if ("users" in leaf) return { name: node.name, leaf: { users: { users: [...leaf.users] } } };
    if ("computed" in leaf)
      return { name: node.name, leaf: { computed: { userset: leaf.computed.userset } } };
    return {
      name: node.name,
      leaf: {
        tupleToUserset: {
          tupleset: leaf.tupleToUserset.tupleset,
          computed: leaf.tupleToUserset.computed.map((c) => ({ userset: c.userset })),
        },
      },
    };
  }
  if ("union" in node) return { name: node.name, union: { nodes: node.union.nodes.map(nodeOut) } };
  if ("intersection" in node) {
    return { name: node.name, intersection: { nodes: node.intersection.nodes.map(nodeOut) } };
  }
  return {
    name: node.name,
    difference: { base: nodeOut(node.difference.base), subtract: nodeOut(node.difference.subtract) },
  };
}

/** `page_size` (query string or body): an integer in [1, max], default `fallback`. */
export function pageSizeIn(value: unknown, fallback: number, max: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > max) {
    throw invalid(`page_size must be an integer from 1 to ${max}, got ${describe(value, 30)}`);
  }
  return n;
}
