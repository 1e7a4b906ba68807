/**
 * SpiceDB schema language -> Program: a tokenizer (spicedb-lexer.ts) and a recursive-descent parser
 * (spicedb-parser.ts) read the schema into a syntax tree; this file resolves its names and lowers it to a Program.
 *
 * Supported: `definition` (type names with `prefix/` namespaces), `relation name: user | user:* | group#member |
 * user with caveat | user with expiration | user with caveat and expiration`, `permission name = expr`
 * with `+` (union), `&` (intersection), `-` (exclusion), parentheses, `nil`, arrows `rel->perm` and the arrow
 * functions `rel.any(perm)` and `rel.all(perm)`; `caveat name(param type, …) { CEL }` (the CEL body is kept verbatim as the condition
 * expression, after a syntax check); `use expiration`; `//`, `/* *\/` and `/** doc *\/` comments; `;` or a line
 * break between statements.
 *
 * Precedence follows SpiceDB's parser: `+` binds tightest, then `&`, then `-`; all are left-associative, so
 * `a + b - c` is `(a + b) - c` and `a - b + c` is `a - (b + c)`.
 *
 * Intersection arrows `rel.all(perm)` compile to a tuple-to-userset with `all`.
 *
 * Acceptance follows SpiceDB's schema checks (compared with a real SpiceDB in
 * test/model/spicedb-differential.test.ts): besides names and references, a relation may not list the same
 * allowed subject type twice (`user` and `user with cav` differ), every caveat parameter must be used, and the
 * rules validate.ts applies to SpiceDB programs (wildcards on the left of arrows or behind another type's
 * userset, permissions that alias each other in a cycle).
 *
 * Not supported, rejected with "invalid_model": chained arrows `a->b->c` (SpiceDB rejects them too),
 * composable-schema `import` / `partial`, the `bytes` caveat parameter type.
 */
import { NexusError } from "../util/errors.js";
import { DEFAULT_MODEL_LIMITS, type ModelLimits } from "./limits.js";
import type { ConditionDef, Program, RelationDef, Rewrite, SubjectType, TypeDef } from "./program.js";
import { Lexer, type Position, syntaxError } from "./spicedb-lexer.js";
import {
  type AllowedType,
  type Definition,
  type Expr,
  type Member,
  Parser,
  type Schema,
} from "./spicedb-parser.js";
import { validateProgram } from "./validate.js";

// ---------------------------------------------------------------------------------------------------------------
// Resolution: names -> Program

function resolve(schema: Schema): Program {
  const conditions = new Map<string, ConditionDef>();
  for (const caveat of schema.caveats) {
    if (conditions.has(caveat.name)) throw syntaxError(caveat.at, `caveat "${caveat.name}" is defined twice`);
    conditions.set(caveat.name, {
      name: caveat.name,
      expression: caveat.expression,
      parameters: caveat.parameters,
    });
  }

  const definitions = new Map<string, Definition>();
  const members = new Map<string, Map<string, Member>>();
  for (const def of schema.definitions) {
    if (definitions.has(def.name)) throw syntaxError(def.at, `definition "${def.name}" is defined twice`);
    definitions.set(def.name, def);
    const byName = new Map<string, Member>();
    for (const member of def.members) {
      if (byName.has(member.name)) {
        throw syntaxError(member.at, `"${member.name}" is defined twice in definition "${def.name}"`);
      }
      byName.set(member.name, member);
    }
    members.set(def.name, byName);
  }

  const types = new Map<string, TypeDef>();
  for (const def of schema.definitions) {
    const own = members.get(def.name)!;
    const relations = new Map<string, RelationDef>();
    for (const member of def.members) {
      if (member.kind === "relation") {
        const seen = new Set<string>();
        for (const t of member.types) {
          const source = allowedTypeSource(t);
          if (seen.has(source)) {
            throw syntaxError(
              t.at,
              `relation "${member.name}" of "${def.name}" allows subject type "${source}" twice`,
              { type: def.name, relation: member.name },
            );
          }
          seen.add(source);
        }
        relations.set(member.name, {
          name: member.name,
          rewrite: { kind: "direct" },
          directSubjects: member.types.map((t) => subjectType(t, schema, members, conditions)),
          allowsExpiration: member.types.some((t) => t.expiration),
          shareable: false,
          isPermission: false,
        });
      } else {
        relations.set(member.name, {
          name: member.name,
          rewrite: rewriteOf(member.expr, def.name, own),
          directSubjects: [],
          allowsExpiration: false,
          shareable: false,
          isPermission: true,
        });
      }
    }
    types.set(def.name, { name: def.name, relations });
  }
  return { format: "spicedb", types, conditions };
}

/** An allowed subject type as SpiceDB names it when comparing them (`user:*`, `team#member with cav and expiration`). */
function allowedTypeSource(t: AllowedType): string {
  const subject = t.wildcard ? `${t.type}:*` : t.relation !== undefined ? `${t.type}#${t.relation}` : t.type;
  const traits = [...(t.caveat !== undefined ? [t.caveat] : []), ...(t.expiration ? ["expiration"] : [])];
  return traits.length > 0 ? `${subject} with ${traits.join(" and ")}` : subject;
}

function subjectType(
  allowed: AllowedType,
  schema: Schema,
  members: Map<string, Map<string, Member>>,
  conditions: Map<string, ConditionDef>,
): SubjectType {
  const target = members.get(allowed.type);
  if (!target) {
    throw syntaxError(allowed.at, `subject type "${allowed.type}" is not defined`, { type: allowed.type });
  }
  if (allowed.relation !== undefined && !target.has(allowed.relation)) {
    throw syntaxError(
      allowed.at,
      `"${allowed.type}#${allowed.relation}" names a relation "${allowed.type}" does not have`,
      { type: allowed.type, relation: allowed.relation },
    );
  }
  if (allowed.caveat !== undefined && !conditions.has(allowed.caveat)) {
    throw syntaxError(allowed.at, `caveat "${allowed.caveat}" is not defined`, { caveat: allowed.caveat });
  }
  if (allowed.expiration && !schema.useFlags.has("expiration")) {
    throw syntaxError(allowed.at, '"with expiration" needs "use expiration" at the top of the schema');
  }
  return {
    type: allowed.type,
    ...(allowed.relation !== undefined ? { relation: allowed.relation } : {}),
    ...(allowed.wildcard ? { wildcard: true } : {}),
    ...(allowed.caveat !== undefined ? { condition: allowed.caveat } : {}),
  };
}

function rewriteOf(expr: Expr, typeName: string, own: Map<string, Member>): Rewrite {
  const recurse = (e: Expr): Rewrite => rewriteOf(e, typeName, own);
  switch (expr.kind) {
    case "nil":
      return { kind: "none" };
    case "ref":
      if (!own.has(expr.name)) throw notFound(expr.at, typeName, expr.name);
      return { kind: "computed", relation: expr.name };
    case "arrow": {
      const tupleset = own.get(expr.tupleset);
      if (!tupleset) throw notFound(expr.at, typeName, expr.tupleset);
      if (tupleset.kind !== "relation") {
        throw syntaxError(
          expr.at,
          `"${expr.tupleset}" in "${expr.tupleset}->${expr.computed}" is a permission; arrows must start from a relation`,
        );
      }
      // Whether some subject type of the tupleset has the computed relation is a shared rule (validate.ts).
      return {
        kind: "ttu",
        tupleset: expr.tupleset,
        computed: expr.computed,
        ...(expr.all ? { all: true as const } : {}),
      };
    }
    case "exclusion":
      return { kind: "exclusion", base: recurse(expr.left), subtract: recurse(expr.right) };
    default: {
      // Flatten same-operator chains (a + b + c) into one n-ary node.
      const children: Rewrite[] = [];
      // Iteratively: a chain of thousands of `+` is a left-deep tree thousands deep.
      const pending: Expr[] = [expr];
      while (pending.length > 0) {
        const e = pending.pop()!;
        if (e.kind === expr.kind) pending.push(e.right, e.left);
        else children.push(recurse(e));
      }
      return { kind: expr.kind, children };
    }
  }
}

function notFound(at: Position, typeName: string, name: string): NexusError {
  return syntaxError(at, `"${name}" is not a relation or permission of "${typeName}"`, {
    type: typeName,
    relation: name,
  });
}

/**
 * Compiles a SpiceDB schema to a Program.
 * @throws NexusError "invalid_model" for syntax errors and references to missing definitions, relations or caveats;
 *   the message starts with `SpiceDB schema <line>:<column>:` and `details` holds line, column and the name.
 */
export function compileSpiceDb(schema: string, limits: ModelLimits = DEFAULT_MODEL_LIMITS): Program {
  if (typeof schema !== "string") {
    throw new NexusError("invalid_model", "a SpiceDB schema must be a string");
  }
  const parsed = new Parser(new Lexer(schema), limits.maxNestingDepth).parseSchema();
  if (parsed.definitions.length === 0) {
    throw new NexusError("invalid_model", "SpiceDB schema defines no definitions");
  }
  return validateProgram(resolve(parsed));
}
