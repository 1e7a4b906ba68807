/**
 * Stated limits on what a model may be, checked before a model reaches a parser, so that no model, however large
 * or deep, crashes the engine (a raw stack overflow) or blocks it for long (a parser taking minutes): past a limit
 * the answer is the NexusError "invalid_model" naming the limit, its value and what the model had.
 *
 * - `maxModelBytes`: the model's source (text length in UTF-16 units; for an object, the length of its strings
 *   and keys). OpenFGA's server default is 256 KiB; the default here leaves room for generated models.
 * - `maxNestingDepth`: parentheses in text models (OpenFGA DSL, SpiceDB schema, caveat/condition expressions),
 *   rewrite nesting in the compiled model (`a but not (b and (c or d))` is 3), and, for object models (OpenFGA
 *   JSON, Nexus configs), object/array nesting up to 4 levels per rewrite level. OpenFGA's DSL parser spends
 *   about 20 ms per parenthesis level, so text is pre-scanned before it is handed over.
 * - `maxTypes`, `maxRelationsPerType`: counted in the source before parsing where the language allows a cheap
 *   count (DSL `type`/`definition` lines, object keys), and in the compiled Program.
 *
 * Limits can be raised or lowered per engine: `createEngine({ model, limits: { maxNestingDepth: 64 } })`.
 */
import { describe, NexusError } from "../util/errors.js";
import type { Program, Rewrite } from "./program.js";

export interface ModelLimits {
  /** Source size of a model (default 4 MiB). */
  readonly maxModelBytes: number;
  /** Nesting of parentheses and rewrites (default 32). */
  readonly maxNestingDepth: number;
  /** Object types in a model (default 20,000). */
  readonly maxTypes: number;
  /** Relations and permissions on one type (default 5,000). */
  readonly maxRelationsPerType: number;
}

export const DEFAULT_MODEL_LIMITS: ModelLimits = Object.freeze({
  maxModelBytes: 4 * 1024 * 1024,
  maxNestingDepth: 32,
  maxTypes: 20_000,
  maxRelationsPerType: 5_000,
});

/** Each rewrite level of OpenFGA's JSON is at most this many object/array levels (`{union:{child:[{…}]}}`). */
const JSON_LEVELS_PER_REWRITE = 4;
/** Object levels around the rewrites (`{type_definitions:[{relations:{name:…}}]}`, metadata). */
const JSON_LEVELS_AROUND = 8;

/**
 * The limits to apply: the defaults, overridden by `given` (each a positive integer).
 * @throws NexusError "invalid_argument" naming a malformed limit.
 */
export function resolveModelLimits(given?: Partial<ModelLimits>): ModelLimits {
  if (given === undefined) return DEFAULT_MODEL_LIMITS;
  if (given === null || typeof given !== "object") {
    throw new NexusError("invalid_argument", `limits must be an object, got ${describe(given)}`);
  }
  const out: Record<string, number> = { ...DEFAULT_MODEL_LIMITS };
  for (const [key, value] of Object.entries(given)) {
    if (!(key in DEFAULT_MODEL_LIMITS)) {
      throw new NexusError(
        "invalid_argument",
        `unknown limit ${describe(key)} (known: ${Object.keys(DEFAULT_MODEL_LIMITS).join(", ")})`,
        { limit: key },
      );
    }
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
      throw new NexusError(
        "invalid_argument",
        `limits.${key} must be a positive integer, got ${describe(value)}`,
        {
          limit: key,
        },
      );
    }
    out[key] = value;
  }
  return Object.freeze(out) as unknown as ModelLimits;
}

function exceeded(limit: keyof ModelLimits, limits: ModelLimits, found: number, what: string): NexusError {
  return new NexusError(
    "invalid_model",
    `${what}: ${found} is more than limits.${limit} (${limits[limit]})`,
    { limit, max: limits[limit], found },
  );
}

/** What the pre-scan of a text model counted. */
export interface TextModelShape {
  /** Deepest parenthesis nesting. */
  readonly nesting: number;
  /** Lines starting a type (`type`, `extend type`, `definition`). */
  readonly types: number;
  /** The most relation lines (`define`, `relation`, `permission`) after one type line. */
  readonly maxRelationsInType: number;
}

/**
 * Checks a text model (OpenFGA DSL, SpiceDB schema, JSON text) before parsing, in one linear pass: its size, the
 * deepest parenthesis nesting, the number of type definitions and of relations per type. Counts are
 * conservative (parentheses in comments and strings count too).
 */
export function checkModelText(text: string, limits: ModelLimits): TextModelShape {
  if (text.length > limits.maxModelBytes) {
    throw exceeded("maxModelBytes", limits, text.length, "the model is too large");
  }
  let depth = 0;
  let nesting = 0;
  let types = 0;
  let relations = 0;
  let maxRelationsInType = 0;
  let lineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 40 /* ( */) {
      if (++depth > nesting) nesting = depth;
    } else if (c === 41 /* ) */) {
      if (depth > 0) depth--;
    } else if (c === 10 /* \n */) {
      lineStart = true;
      continue;
    }
    if (lineStart && c !== 32 && c !== 9 && c !== 13) {
      lineStart = false;
      if (startsWord(text, i, "type") || startsWord(text, i, "extend") || startsWord(text, i, "definition")) {
        types++;
        relations = 0;
      } else if (
        startsWord(text, i, "define") ||
        startsWord(text, i, "relation") ||
        startsWord(text, i, "permission")
      ) {
        if (++relations > maxRelationsInType) maxRelationsInType = relations;
      }
    }
  }
  if (nesting > limits.maxNestingDepth) {
    throw exceeded("maxNestingDepth", limits, nesting, "parentheses in the model nest too deep");
  }
  if (types > limits.maxTypes) throw exceeded("maxTypes", limits, types, "the model defines too many types");
  if (maxRelationsInType > limits.maxRelationsPerType) {
    throw exceeded(
      "maxRelationsPerType",
      limits,
      maxRelationsInType,
      "a type of the model has too many relations",
    );
  }
  return { nesting, types, maxRelationsInType };
}

function startsWord(text: string, at: number, word: string): boolean {
  if (!text.startsWith(word, at)) return false;
  const next = text.charCodeAt(at + word.length);
  return next === 32 || next === 9;
}

/**
 * Checks an object model (OpenFGA JSON, Nexus namespace configs) before compiling, without recursion: its size
 * (strings and keys), its nesting, and that it is a tree (a cycle is "invalid_model", not a hang).
 */
export function checkModelObject(model: object, limits: ModelLimits): void {
  const maxDepth = limits.maxNestingDepth * JSON_LEVELS_PER_REWRITE + JSON_LEVELS_AROUND;
  let size = 0;
  const onPath = new Set<object>();
  // Iterative depth-first walk: [value, depth, entered] (entered marks the exit of an object's subtree).
  const stack: [unknown, number, boolean][] = [[model, 1, false]];
  while (stack.length > 0) {
    const [value, depth, entered] = stack.pop()!;
    if (typeof value === "string") {
      size += value.length;
    } else if (typeof value === "object" && value !== null) {
      if (entered) {
        onPath.delete(value);
        continue;
      }
      if (onPath.has(value))
        throw new NexusError("invalid_model", "the model object refers to itself (a cycle)");
      if (depth > maxDepth) {
        throw new NexusError(
          "invalid_model",
          `the model object nests deeper than ${maxDepth} levels (limits.maxNestingDepth ${limits.maxNestingDepth} allows ${JSON_LEVELS_PER_REWRITE} per rewrite level and ${JSON_LEVELS_AROUND} around them)`,
          { limit: "maxNestingDepth", max: limits.maxNestingDepth, levels: maxDepth },
        );
      }
      onPath.add(value);
      stack.push([value, depth, true]);
      if (Array.isArray(value)) {
        for (const item of value) stack.push([item, depth + 1, false]);
      } else {
        for (const [key, item] of Object.entries(value)) {
          size += key.length;
          stack.push([item, depth + 1, false]);
        }
      }
    } else {
      size += 8;
    }
    if (size > limits.maxModelBytes) {
      throw exceeded("maxModelBytes", limits, size, "the model is too large");
    }
  }
}

/**
 * Checks a compiled Program: types, relations per type and rewrite nesting (without recursion), so that no
 * evaluator recurses deeper through one relation's rewrite than the limit.
 */
export function checkProgram(program: Program, limits: ModelLimits): void {
  if (program.types.size > limits.maxTypes) {
    throw exceeded("maxTypes", limits, program.types.size, "the model defines too many types");
  }
  for (const [typeName, type] of program.types) {
    if (type.relations.size > limits.maxRelationsPerType) {
      throw exceeded(
        "maxRelationsPerType",
        limits,
        type.relations.size,
        `type ${describe(typeName)} has too many relations`,
      );
    }
    for (const relation of type.relations.values()) {
      const depth = rewriteDepth(relation.rewrite, limits.maxNestingDepth);
      if (depth > limits.maxNestingDepth) {
        throw exceeded(
          "maxNestingDepth",
          limits,
          depth,
          `relation ${typeName}#${relation.name} nests its rewrite too deep`,
        );
      }
    }
  }
}

/** Nesting of operators in a rewrite (a leaf is 0), counted iteratively; stops counting past `stopAbove`. */
export function rewriteDepth(rewrite: Rewrite, stopAbove: number): number {
  let deepest = 0;
  const stack: [Rewrite, number][] = [[rewrite, 0]];
  while (stack.length > 0) {
    const [rw, depth] = stack.pop()!;
    if (depth > deepest) deepest = depth;
    if (deepest > stopAbove) return deepest;
    if (rw.kind === "union" || rw.kind === "intersection") {
      for (const child of rw.children) stack.push([child, depth + 1]);
    } else if (rw.kind === "exclusion") {
      stack.push([rw.base, depth + 1], [rw.subtract, depth + 1]);
    }
  }
  return deepest;
}
