/**
 * Checks a compiled Program for the rules every model language shares (referenced types and relations exist,
 * tuple-to-userset tuplesets are direct relations, no rewrite cycles without a direct path, conditions exist).
 * Each compiler (openfga.ts, spicedb.ts, nexus.ts) calls this last, so the rules live in one place.
 *
 * The rules:
 * - names: type and relation names are non-empty and hold none of `:` `#` `@`, whitespace or NUL (they are the
 *   separators of tuple strings);
 * - references: a computed userset names a relation of the same type; a tuple-to-userset's tupleset is a relation
 *   of the same type whose rewrite is exactly `direct`, and its computed relation exists on at least one type the
 *   tupleset may hold (when the tupleset restricts its subjects);
 * - subject types: every allowed subject type exists, `type#relation` names an existing relation, a subject type is
 *   not both a wildcard and a userset, and a condition it carries is defined;
 * - conditions: parameters and expressions compile (a CEL expression that is a bool);
 * - entry points (OpenFGA and Nexus): a relation that lies on a reference cycle (computed, tuple-to-userset or
 *   userset edges) must be satisfiable by some tuple without going round the cycle (`define a: b` + `define b: a`
 *   is rejected, while `define a: [user] or a` is fine). A relation outside any cycle may be empty.
 *
 * SpiceDB programs follow SpiceDB's own schema checks instead of the last rule and of the "computed relation on
 * some parent type" rule (SpiceDB accepts `permission inherited = parent->inherited` and an arrow to a relation
 * no parent type has):
 * - a relation used on the left of an arrow may not admit a wildcard, directly or through the usersets it admits;
 * - a relation may not admit a userset `other#rel` of another type whose relation admits a wildcard, directly or
 *   through its own usersets (a permission stops the search, as in SpiceDB);
 * - permissions that are plain aliases (`permission a = b`) may not alias each other in a cycle.
 */
import { compileConditions } from "../conditions/cel.js";
import { describe, NexusError } from "../util/errors.js";
import { followsSpiceDb, type Program, type RelationDef, type Rewrite } from "./program.js";

const NAME_CHARS = /^[^\s:#@]+$/;
const isName = (name: string): boolean => NAME_CHARS.test(name) && !name.includes("\u0000");

export function validateProgram(program: Program): Program {
  for (const [typeName, type] of program.types) {
    if (typeName !== type.name)
      invalid(`type ${describe(typeName)} is registered under ${describe(type.name)}`);
    if (!isName(typeName)) invalid(`type name ${describe(typeName)} is not valid`);
    for (const [relationName, relation] of type.relations) {
      if (relationName !== relation.name) {
        invalid(`relation ${typeName}#${relationName} is registered under ${describe(relation.name)}`);
      }
      if (!isName(relationName))
        invalid(`relation name ${describe(`${typeName}#${relationName}`)} is not valid`);
      checkRewrite(program, typeName, relation, relation.rewrite);
      checkSubjects(program, typeName, relation);
    }
  }
  for (const [name, condition] of program.conditions) {
    if (name !== condition.name)
      invalid(`condition ${describe(name)} is registered under ${describe(condition.name)}`);
  }
  compileConditions(program);
  if (followsSpiceDb(program)) checkSpiceDbRules(program);
  else checkEntryPoints(program);
  return program;
}

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new NexusError("invalid_model", message, details);
}

function checkRewrite(program: Program, typeName: string, relation: RelationDef, rewrite: Rewrite): void {
  const where = `${typeName}#${relation.name}`;
  const relations = program.types.get(typeName)!.relations;
  switch (rewrite.kind) {
    case "direct":
    case "none":
      return;
    case "computed":
      if (!relations.has(rewrite.relation)) {
        invalid(`relation ${where} references ${typeName}#${rewrite.relation}, which is not defined`, {
          type: typeName,
          relation: relation.name,
        });
      }
      return;
    case "ttu": {
      const tupleset = relations.get(rewrite.tupleset);
      if (tupleset === undefined) {
        invalid(`relation ${where} follows ${typeName}#${rewrite.tupleset}, which is not defined`, {
          type: typeName,
          relation: relation.name,
        });
      }
      if (tupleset.rewrite.kind !== "direct") {
        invalid(
          `relation ${where} follows ${typeName}#${rewrite.tupleset}, which must be a directly assigned relation`,
          { type: typeName, relation: relation.name },
        );
      }
      const parents = tupleset.directSubjects;
      if (parents !== undefined && !followsSpiceDb(program)) {
        const found = parents.some(
          (p) => program.types.get(p.type)?.relations.has(rewrite.computed) === true,
        );
        if (!found) {
          invalid(
            `relation ${where}: ${rewrite.computed} is not a relation of any type ${typeName}#${rewrite.tupleset} may hold (${
              parents.map((p) => p.type).join(", ") || "none"
            })`,
            { type: typeName, relation: relation.name },
          );
        }
      }
      return;
    }
    case "union":
    case "intersection":
      if (rewrite.children.length === 0) invalid(`relation ${where}: ${rewrite.kind} without operands`);
      for (const child of rewrite.children) checkRewrite(program, typeName, relation, child);
      return;
    case "exclusion":
      checkRewrite(program, typeName, relation, rewrite.base);
      checkRewrite(program, typeName, relation, rewrite.subtract);
      return;
    default:
      invalid(`relation ${where} has an unknown rewrite ${describe(rewrite)}`);
  }
}

function checkSubjects(program: Program, typeName: string, relation: RelationDef): void {
  const where = `${typeName}#${relation.name}`;
  for (const subject of relation.directSubjects ?? []) {
    const subjectType = program.types.get(subject.type);
    if (subjectType === undefined) {
      invalid(`relation ${where} allows subjects of type ${describe(subject.type)}, which is not defined`, {
        type: typeName,
        relation: relation.name,
      });
    }
    if (subject.relation !== undefined && !subjectType.relations.has(subject.relation)) {
      invalid(`relation ${where} allows ${subject.type}#${subject.relation}, which is not defined`, {
        type: typeName,
        relation: relation.name,
      });
    }
    if (subject.relation !== undefined && subject.wildcard === true) {
      invalid(`relation ${where}: a subject type cannot be both a wildcard and a userset (${subject.type})`);
    }
    if (subject.condition !== undefined && !program.conditions.has(subject.condition)) {
      invalid(`relation ${where} uses condition ${describe(subject.condition)}, which is not defined`, {
        type: typeName,
        relation: relation.name,
        condition: subject.condition,
      });
    }
  }
}

/** Relation nodes "type#relation". */
type Node = string;

function checkEntryPoints(program: Program): void {
  // Least fixpoint: a relation has an entry point when some tuple can satisfy it.
  const entry = new Set<Node>();
  let changed = true;
  while (changed) {
    changed = false;
    for (const [typeName, type] of program.types) {
      for (const relation of type.relations.values()) {
        const node = `${typeName}#${relation.name}`;
        if (!entry.has(node) && hasEntry(program, typeName, relation, relation.rewrite, entry)) {
          entry.add(node);
          changed = true;
        }
      }
    }
  }
  const cyclic = nodesOnCycles(program);
  for (const node of cyclic) {
    if (!entry.has(node)) {
      const [type, relation] = node.split("#") as [string, string];
      invalid(
        `relation ${node} can never be satisfied: it only refers back to itself (a cycle with no entry point)`,
        {
          type,
          relation,
        },
      );
    }
  }
}

function hasEntry(
  program: Program,
  typeName: string,
  relation: RelationDef,
  rewrite: Rewrite,
  entry: Set<Node>,
): boolean {
  switch (rewrite.kind) {
    case "direct": {
      const subjects = relation.directSubjects;
      if (subjects === undefined) return true;
      return subjects.some((s) => s.relation === undefined || entry.has(`${s.type}#${s.relation}`));
    }
    case "computed":
      return entry.has(`${typeName}#${rewrite.relation}`);
    case "ttu": {
      const tupleset = program.types.get(typeName)!.relations.get(rewrite.tupleset)!;
      if (tupleset.directSubjects === undefined) return true;
      return tupleset.directSubjects.some((p) => entry.has(`${p.type}#${rewrite.computed}`));
    }
    case "union":
      return rewrite.children.some((c) => hasEntry(program, typeName, relation, c, entry));
    case "intersection":
      return rewrite.children.every((c) => hasEntry(program, typeName, relation, c, entry));
    case "exclusion":
      return hasEntry(program, typeName, relation, rewrite.base, entry);
    case "none":
      return false;
  }
}

function edgesOf(
  program: Program,
  typeName: string,
  relation: RelationDef,
  rewrite: Rewrite,
  out: Node[],
): void {
  switch (rewrite.kind) {
    case "direct":
      for (const s of relation.directSubjects ?? [])
        if (s.relation !== undefined) out.push(`${s.type}#${s.relation}`);
      return;
    case "computed":
      out.push(`${typeName}#${rewrite.relation}`);
      return;
    case "ttu": {
      const tupleset = program.types.get(typeName)!.relations.get(rewrite.tupleset)!;
      const parents = tupleset.directSubjects ?? [...program.types.values()].map((t) => ({ type: t.name }));
      for (const p of parents) {
        if (program.types.get(p.type)?.relations.has(rewrite.computed))
          out.push(`${p.type}#${rewrite.computed}`);
      }
      return;
    }
    case "union":
    case "intersection":
      for (const c of rewrite.children) edgesOf(program, typeName, relation, c, out);
      return;
    case "exclusion":
      edgesOf(program, typeName, relation, rewrite.base, out);
      edgesOf(program, typeName, relation, rewrite.subtract, out);
      return;
    case "none":
      return;
  }
}

/** Nodes that lie on a cycle of the reference graph (Tarjan's strongly connected components). */
function nodesOnCycles(program: Program): Set<Node> {
  const graph = new Map<Node, Node[]>();
  for (const [typeName, type] of program.types) {
    for (const relation of type.relations.values()) {
      const out: Node[] = [];
      edgesOf(program, typeName, relation, relation.rewrite, out);
      graph.set(`${typeName}#${relation.name}`, out);
    }
  }
  const index = new Map<Node, number>();
  const low = new Map<Node, number>();
  const onStack = new Set<Node>();
  const stack: Node[] = [];
  const cyclic = new Set<Node>();
  let counter = 0;
  // Iterative Tarjan, so deep models cannot overflow the call stack.
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: Node; next: number }[] = [{ node: start, next: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node)!;
      if (frame.next < edges.length) {
        const to = edges[frame.next++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: Node[] = [];
        let member: Node;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = graph.get(frame.node)!.includes(frame.node);
        if (component.length > 1 || selfLoop) for (const n of component) cyclic.add(n);
      }
    }
  }
  return cyclic;
}

/** SpiceDB's schema checks that differ from the shared entry-point rule (see the header). */
function checkSpiceDbRules(program: Program): void {
  const wildcards = new Map<Node, string | undefined>();
  /** The wildcard type `type#relation` admits, directly or through the usersets it admits (SpiceDB's walk). */
  const wildcardOf = (type: string, relation: string, encountered: Set<Node>): string | undefined => {
    const node = `${type}#${relation}`;
    if (wildcards.has(node)) return wildcards.get(node);
    if (encountered.has(node)) return undefined;
    encountered.add(node);
    let found: string | undefined;
    for (const s of program.types.get(type)?.relations.get(relation)?.directSubjects ?? []) {
      if (s.wildcard === true) found = `${s.type}:*`;
      else if (s.relation !== undefined) found = wildcardOf(s.type, s.relation, encountered);
      if (found !== undefined) break;
    }
    wildcards.set(node, found);
    return found;
  };
  for (const [typeName, type] of program.types) {
    const aliases = new Map<string, string>();
    for (const relation of type.relations.values()) {
      const where = `${typeName}#${relation.name}`;
      for (const s of relation.directSubjects ?? []) {
        if (s.relation === undefined || s.type === typeName) continue;
        const wildcard = wildcardOf(s.type, s.relation, new Set());
        if (wildcard !== undefined) {
          invalid(
            `relation ${where} admits ${s.type}#${s.relation}, which admits the wildcard ${wildcard}: wildcards cannot be included through another type's userset`,
            { type: typeName, relation: relation.name },
          );
        }
      }
      for (const tupleset of tuplesetsOf(relation.rewrite)) {
        const wildcard = wildcardOf(typeName, tupleset, new Set());
        if (wildcard !== undefined) {
          invalid(
            `relation ${where} follows ${typeName}#${tupleset}, which admits the wildcard ${wildcard}: wildcards cannot be on the left of an arrow`,
            { type: typeName, relation: relation.name },
          );
        }
      }
      if (relation.isPermission && relation.rewrite.kind === "computed") {
        aliases.set(relation.name, relation.rewrite.relation);
      }
    }
    for (const start of aliases.keys()) {
      const chain = new Set<string>();
      for (let at: string | undefined = start; at !== undefined; at = aliases.get(at)) {
        if (chain.has(at)) {
          invalid(
            `type ${typeName}: the permissions ${[...chain].sort().join(", ")} alias each other in a cycle`,
            {
              type: typeName,
            },
          );
        }
        chain.add(at);
      }
    }
  }
}

function tuplesetsOf(rewrite: Rewrite): string[] {
  switch (rewrite.kind) {
    case "ttu":
      return [rewrite.tupleset];
    case "union":
    case "intersection":
      return rewrite.children.flatMap(tuplesetsOf);
    case "exclusion":
      return [...tuplesetsOf(rewrite.base), ...tuplesetsOf(rewrite.subtract)];
    default:
      return [];
  }
}
