/**
 * Nexus namespace configs -> Program.
 *
 * The shape mirrors the open-source Nexus agent filesystem (nexi-lab/nexus, `NamespaceConfig.config`): per object
 * type, `relations` maps a name to one rewrite and `permissions` maps a name to the relations that grant it.
 *
 * ```json
 * { "file": {
 *     "relations": {
 *       "parent": {},                                                       // direct: any subject may be written
 *       "parent_viewer": { "tupleToUserset": { "tupleset": "parent", "computedUserset": "viewer" } },
 *       "viewer": { "union": ["direct_viewer", "parent_viewer"] },
 *       "both": { "intersection": ["viewer", "approved"] },
 *       "not_banned": { "exclusion": "banned" }                             // only inside an intersection
 *     },
 *     "permissions": { "read": ["viewer", "editor"], "write": { "union": ["editor"] } } } }
 * ```
 *
 * Semantics, as Nexus evaluates them: a relation's `union` / `intersection` name relations (or permissions) of the
 * same type; `tupleToUserset` follows the tupleset relation's tuples and checks `computedUserset` on each related
 * object; `{}` is a directly written relation that accepts any subject (Nexus does not restrict subject types).
 * A name in `permissions` is not writable and means "any of" its list (or the operator its object names).
 * Tuple direction follows Zanzibar (`file:child#parent@file:folder`), as OpenFGA and SpiceDB write it.
 *
 * Nexus's `exclusion` is a bare negation ("does NOT have X"). A Program has no "everyone" set to subtract from,
 * so a negation is accepted where it has a base: as a member of an `intersection`, where
 * `intersection [a, not b]` compiles to `a but not b`. A negation anywhere else is rejected with "invalid_model".
 *
 * Relations named `shared-*` are marked `shareable` (Nexus's cross-tenant share relations).
 */
import { describe, NexusError } from "../util/errors.js";
import type { Program, RelationDef, Rewrite, TypeDef } from "./program.js";
import { validateProgram } from "./validate.js";

/** One relation's rewrite in a Nexus namespace config. `{}` is a direct relation. */
export interface NexusRelationConfig {
  readonly union?: readonly string[];
  readonly intersection?: readonly string[];
  /** Nexus's bare negation: the subject must NOT have this relation (only valid inside an intersection). */
  readonly exclusion?: string;
  readonly tupleToUserset?: { readonly tupleset: string; readonly computedUserset: string };
}

/** A permission: a list (any of), or one operator over relation names. */
export type NexusPermissionConfig =
  | readonly string[]
  | { readonly union: readonly string[] }
  | { readonly intersection: readonly string[] }
  | { readonly exclusion: string };

export interface NexusNamespaceConfig {
  readonly relations?: Readonly<Record<string, NexusRelationConfig>>;
  readonly permissions?: Readonly<Record<string, NexusPermissionConfig>>;
}

/** Object type name -> its namespace config (the `config` column of Nexus's `rebac_namespaces` table). */
export type NexusNamespaces = Readonly<Record<string, NexusNamespaceConfig>>;

/** Nexus's stored form: a list of `{ object_type, config }` rows. Accepted as input too. */
interface NexusNamespaceRow {
  readonly object_type: string;
  readonly config: NexusNamespaceConfig;
}

const RELATION_KEYS = new Set(["union", "intersection", "exclusion", "tupleToUserset"]);
const NAME = /^[A-Za-z_][A-Za-z0-9_\-.]*$/;
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_\-.]*(\/[A-Za-z_][A-Za-z0-9_\-.]*)*$/;

/** An expression before lowering: Nexus's `exclusion` is a bare negation, which only a base can make a Rewrite. */
type Expr =
  | { readonly kind: "rewrite"; readonly rewrite: Rewrite }
  | { readonly kind: "not"; readonly relation: string; readonly at: string };

interface RawRelation {
  readonly name: string;
  readonly at: string;
  readonly isPermission: boolean;
  readonly expr: Expr;
  readonly direct: boolean;
}

function invalid(at: string, message: string, details: Record<string, unknown> = {}): NexusError {
  return new NexusError("invalid_model", `Nexus namespace config ${at}: ${message}`, {
    path: at,
    ...details,
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Normalises the accepted input shapes (map, `{ namespaces: map }`, list of rows) to a map. */
function namespacesOf(input: object): Record<string, unknown> {
  if (Array.isArray(input)) {
    const out: Record<string, unknown> = {};
    input.forEach((row: unknown, i) => {
      if (!isPlainObject(row) || typeof row.object_type !== "string" || !isPlainObject(row.config)) {
        throw invalid(`[${i}]`, `a namespace row must be { object_type, config }, got ${describe(row)}`);
      }
      const typed = row as unknown as NexusNamespaceRow;
      if (typed.object_type in out) throw invalid(`[${i}]`, `duplicate object_type "${typed.object_type}"`);
      out[typed.object_type] = typed.config;
    });
    return out;
  }
  const record = input as Record<string, unknown>;
  if (isPlainObject(record.namespaces) && Object.keys(record).length === 1) return record.namespaces;
  return record;
}

function nameList(value: unknown, at: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid(at, `expected a non-empty list of relation names, got ${describe(value)}`);
  }
  return value.map((name, i) => {
    if (typeof name !== "string" || name === "") {
      throw invalid(`${at}[${i}]`, `expected a relation name, got ${describe(name)}`);
    }
    return name;
  });
}

/** Parses one relation's (or a permission's object form's) operator. */
function parseOperator(config: Record<string, unknown>, at: string): Expr | "direct" {
  const keys = Object.keys(config);
  for (const key of keys) {
    if (!RELATION_KEYS.has(key)) {
      throw invalid(
        at,
        `unknown key "${key}" (expected {} or one of union, intersection, exclusion, tupleToUserset)`,
      );
    }
  }
  if (keys.length === 0) return "direct";
  if (keys.length > 1) throw invalid(at, `has more than one operator (${keys.join(", ")}); use exactly one`);
  const key = keys[0]!;
  const value = config[key];
  switch (key) {
    case "union":
      return groupExpr("union", nameList(value, `${at}.union`));
    case "intersection":
      return groupExpr("intersection", nameList(value, `${at}.intersection`));
    case "exclusion":
      if (typeof value !== "string" || value === "") {
        throw invalid(
          `${at}.exclusion`,
          `expected the name of the relation to exclude, got ${describe(value)}`,
        );
      }
      return { kind: "not", relation: value, at: `${at}.exclusion` };
    default: {
      if (!isPlainObject(value)) {
        throw invalid(
          `${at}.tupleToUserset`,
          `expected { tupleset, computedUserset }, got ${describe(value)}`,
        );
      }
      const { tupleset, computedUserset } = value;
      for (const k of Object.keys(value)) {
        if (k !== "tupleset" && k !== "computedUserset") {
          throw invalid(`${at}.tupleToUserset`, `unknown key "${k}" (expected tupleset, computedUserset)`);
        }
      }
      if (typeof tupleset !== "string" || tupleset === "") {
        throw invalid(`${at}.tupleToUserset.tupleset`, `expected a relation name, got ${describe(tupleset)}`);
      }
      if (typeof computedUserset !== "string" || computedUserset === "") {
        throw invalid(
          `${at}.tupleToUserset.computedUserset`,
          `expected a relation name, got ${describe(computedUserset)}`,
        );
      }
      return { kind: "rewrite", rewrite: { kind: "ttu", tupleset, computed: computedUserset } };
    }
  }
}

/** `union` / `intersection` over relation names; negation members are folded in by `lower`. */
function groupExpr(kind: "union" | "intersection", names: string[]): Expr {
  return {
    kind: "rewrite",
    rewrite: { kind, children: names.map((relation) => ({ kind: "computed", relation })) },
  };
}

function parsePermission(value: unknown, at: string): Expr {
  if (Array.isArray(value)) {
    return groupExpr("union", nameList(value, at));
  }
  if (isPlainObject(value)) {
    if ("tupleToUserset" in value) {
      throw invalid(at, "a permission maps to relation names (list, union, intersection or exclusion)");
    }
    const op = parseOperator(value, at);
    if (op === "direct") throw invalid(at, "a permission must name the relations that grant it");
    return op;
  }
  throw invalid(
    at,
    `expected a list of relation names or { union | intersection | exclusion }, got ${describe(value)}`,
  );
}

/**
 * Compiles Nexus namespace configs to a Program.
 * @param input `{ <type>: { relations, permissions } }`, the same wrapped as `{ namespaces: … }`, or Nexus's stored
 *   rows `[{ object_type, config }]`.
 * @throws NexusError "invalid_model" naming the offending path, e.g. `file.relations.viewer.union[1]`.
 */
export function compileNexus(input: object): Program {
  if (!isPlainObject(input) && !Array.isArray(input)) {
    throw new NexusError(
      "invalid_model",
      `Nexus namespace configs must be an object, got ${describe(input)}`,
    );
  }
  const namespaces = namespacesOf(input);
  if (Object.keys(namespaces).length === 0) {
    throw new NexusError("invalid_model", "Nexus namespace configs define no object types");
  }

  const rawTypes = new Map<string, Map<string, RawRelation>>();
  for (const [typeName, config] of Object.entries(namespaces)) {
    if (!TYPE_NAME.test(typeName)) throw invalid(typeName, `invalid object type name ${describe(typeName)}`);
    if (!isPlainObject(config)) {
      throw invalid(typeName, `expected { relations, permissions }, got ${describe(config)}`);
    }
    for (const key of Object.keys(config)) {
      if (key !== "relations" && key !== "permissions" && key !== "description") {
        throw invalid(`${typeName}.${key}`, `unknown key (expected relations, permissions)`);
      }
    }
    const relations = new Map<string, RawRelation>();
    const relationConfigs = config.relations ?? {};
    if (!isPlainObject(relationConfigs)) {
      throw invalid(`${typeName}.relations`, `expected an object, got ${describe(relationConfigs)}`);
    }
    for (const [name, relConfig] of Object.entries(relationConfigs)) {
      const at = `${typeName}.relations.${name}`;
      if (!NAME.test(name)) throw invalid(at, `invalid relation name ${describe(name)}`);
      if (!isPlainObject(relConfig)) throw invalid(at, `expected an object, got ${describe(relConfig)}`);
      const op = parseOperator(relConfig, at);
      relations.set(name, {
        name,
        at,
        isPermission: false,
        direct: op === "direct",
        expr: op === "direct" ? { kind: "rewrite", rewrite: { kind: "direct" } } : op,
      });
    }
    const permissionConfigs = config.permissions ?? {};
    if (!isPlainObject(permissionConfigs)) {
      throw invalid(`${typeName}.permissions`, `expected an object, got ${describe(permissionConfigs)}`);
    }
    for (const [name, permConfig] of Object.entries(permissionConfigs)) {
      const at = `${typeName}.permissions.${name}`;
      if (!NAME.test(name)) throw invalid(at, `invalid permission name ${describe(name)}`);
      if (relations.has(name)) {
        throw invalid(at, `"${name}" is defined both as a relation and as a permission of "${typeName}"`);
      }
      relations.set(name, {
        name,
        at,
        isPermission: true,
        direct: false,
        expr: parsePermission(permConfig, at),
      });
    }
    rawTypes.set(typeName, relations);
  }

  const types = new Map<string, TypeDef>();
  for (const [typeName, raws] of rawTypes) {
    const relations = new Map<string, RelationDef>();
    for (const raw of raws.values()) {
      if (raw.expr.kind === "not" && raw.isPermission) {
        throw invalid(
          raw.expr.at,
          `a permission that is a bare exclusion ("everyone without ${raw.expr.relation}") has no base to subtract from; use { intersection: [<base>, <exclusion relation>] }`,
        );
      }
      if (raw.expr.kind === "not") {
        // A bare negation is kept only where an intersection gives it a base (see the module comment); the
        // relation itself cannot be checked on its own, so it is left out of the Program.
        continue;
      }
      const rewrite = lower(raw.expr, raws, typeName, raw.at);
      relations.set(raw.name, {
        name: raw.name,
        rewrite,
        directSubjects: raw.direct ? undefined : [],
        allowsExpiration: true,
        shareable: raw.name.startsWith("shared-"),
        isPermission: raw.isPermission,
      });
    }
    types.set(typeName, { name: typeName, relations });
  }

  // References to negation-only relations must all have been inlined into intersections.
  for (const [typeName, raws] of rawTypes) {
    for (const raw of raws.values()) {
      if (raw.expr.kind === "not") continue;
      checkNoNegationRefs(types.get(typeName)!, raw, raws);
    }
  }
  return validateProgram({ format: "nexus", types, conditions: new Map() });
}

/** Turns an Expr into a Rewrite, folding `intersection [a, not b]` into `a but not b`. */
function lower(expr: Expr, raws: Map<string, RawRelation>, typeName: string, at: string): Rewrite {
  if (expr.kind === "not") {
    throw invalid(
      expr.at,
      `a bare exclusion ("everyone without ${expr.relation}") has no base to subtract from; use it as a member of an intersection`,
    );
  }
  const rewrite = expr.rewrite;
  if (rewrite.kind !== "union" && rewrite.kind !== "intersection") return rewrite;
  const positives: Rewrite[] = [];
  const negatives: Rewrite[] = [];
  rewrite.children.forEach((child, i) => {
    const negated = child.kind === "computed" ? negationOf(raws.get(child.relation)) : undefined;
    if (negated === undefined) {
      positives.push(child);
    } else if (rewrite.kind === "intersection") {
      negatives.push({ kind: "computed", relation: negated });
    } else {
      throw invalid(
        `${at}.union[${i}]`,
        `"${(child as { relation: string }).relation}" of "${typeName}" is a bare exclusion; a union cannot give it a base (use it in an intersection)`,
      );
    }
  });
  if (negatives.length === 0) return rewrite;
  if (positives.length === 0) {
    throw invalid(`${at}.intersection`, "an intersection of exclusions only has no base to subtract from");
  }
  const base: Rewrite =
    positives.length === 1 ? positives[0]! : { kind: "intersection", children: positives };
  const subtract: Rewrite = negatives.length === 1 ? negatives[0]! : { kind: "union", children: negatives };
  return { kind: "exclusion", base, subtract };
}

function negationOf(raw: RawRelation | undefined): string | undefined {
  return raw?.expr.kind === "not" ? raw.expr.relation : undefined;
}

/** A computed reference or tuple-to-userset that still names a negation-only relation is an error. */
function checkNoNegationRefs(type: TypeDef, raw: RawRelation, raws: Map<string, RawRelation>): void {
  const visit = (rewrite: Rewrite): void => {
    switch (rewrite.kind) {
      case "computed":
        if (negationOf(raws.get(rewrite.relation)) !== undefined) {
          throw invalid(
            raw.at,
            `refers to "${rewrite.relation}" of "${type.name}", a bare exclusion; only an intersection can use it`,
          );
        }
        return;
      case "union":
      case "intersection":
        rewrite.children.forEach(visit);
        return;
      case "exclusion":
        visit(rewrite.base);
        visit(rewrite.subtract);
        return;
      default:
        return;
    }
  };
  const def = type.relations.get(raw.name);
  if (def) visit(def.rewrite);
}
