/**
 * Whether a tuple is valid under a model (OpenFGA's ValidateTuple, plus tenants and expiry):
 * - the object's type and the relation exist; the subject's type (and a userset's relation) exist;
 * - in OpenFGA models, a tupleset relation (`parent` in `viewer from parent`) holds plain objects only;
 * - the relation allows the subject's form (`user`, `user:*`, `group#member`), with exactly the tuple's
 *   condition (none, or the named one), and the condition's stored context fits its parameters;
 * - `expiresAt` only where the relation allows expiry; a cross-tenant subject only on a shareable relation.
 *
 * Writes and contextual tuples that break a rule are refused ("invalid_tuple"); tuples already stored that a
 * newer model no longer allows are skipped by every read (as OpenFGA filters them), never an error.
 */
import { type CompiledCondition, compileConditions } from "../conditions/cel.js";
import type { RelationTuple, Subject } from "../tuples/tuple.js";
import { analyze } from "./analysis.js";
import type { Program, SubjectType } from "./program.js";

/**
 * Whether subjects of types the model does not declare are accepted as opaque leaves (plain objects and wildcards,
 * never usersets). Only Nexus namespace configs, which have no subject type declarations; OpenFGA and SpiceDB
 * reject them ("type_not_found"), as their servers do.
 */
export function opaqueSubjectTypes(program: Program): boolean {
  return program.format === "nexus";
}

/**
 * Object types no tuple valid under `program` names as its subject: no relation's type restrictions allow them,
 * plainly or as a userset (a wildcard subject names no object). Their objects are never the subject of a valid
 * tuple, only ever its object (src/changes/depth-graph.ts keeps no entry for them). Empty when a relation accepts
 * any subject (Nexus `{}` relations).
 */
export function sourceOnlyTypes(program: Program): Set<string> {
  const named = new Set<string>();
  for (const type of program.types.values()) {
    for (const relation of type.relations.values()) {
      if (relation.directSubjects === undefined) return new Set();
      for (const subject of relation.directSubjects) if (subject.wildcard !== true) named.add(subject.type);
    }
  }
  return new Set([...program.types.keys()].filter((type) => !named.has(type)));
}

/** Why `tuple` is not valid under `program`, or undefined when it is. */
export function tupleProblem(program: Program, tuple: RelationTuple): string | undefined {
  return validByForm(program, tuple) ? undefined : findProblem(program, tuple);
}

/**
 * tupleProblem's rules one by one, naming the first one `tuple` breaks (tupleProblem skips them for a tuple its
 * relation's allowed forms accept outright; exported so tests can hold the two to the same answers).
 * @internal
 */
export function findProblem(program: Program, tuple: RelationTuple): string | undefined {
  const type = program.types.get(tuple.objectType);
  if (type === undefined) return `type ${JSON.stringify(tuple.objectType)} is not defined`;
  const relation = type.relations.get(tuple.relation);
  if (relation === undefined) return `relation ${tuple.objectType}#${tuple.relation} is not defined`;
  const subject = tuple.subject;
  const subjectType = program.types.get(subject.type);
  if (subjectType === undefined) {
    // Nexus namespace configs declare no subject types: a plain subject (`agent:bot`) is an opaque leaf there.
    if (!(opaqueSubjectTypes(program) && subject.kind !== "userset")) {
      return `subject type ${JSON.stringify(subject.type)} is not defined`;
    }
  } else if (subject.kind === "userset" && !subjectType.relations.has(subject.relation)) {
    return `relation ${subject.type}#${subject.relation} is not defined`;
  }
  // OpenFGA's rule (other languages let a tupleset hold usersets; following it then uses plain objects only).
  if (
    program.format === "openfga" &&
    subject.kind !== "object" &&
    analyze(program).isTupleset(tuple.objectType, tuple.relation)
  ) {
    return `${tuple.objectType}#${tuple.relation} is followed by a tuple-to-userset, so its subjects must be plain objects, not ${tuple.user}`;
  }
  const where = `${tuple.objectType}#${tuple.relation}`;
  if (relation.directSubjects !== undefined) {
    const forms = relation.directSubjects.filter((s) => sameForm(s, subject));
    if (forms.length === 0) return `${where} does not allow subjects like ${describeForm(subject)}`;
    const conditionName = tuple.condition?.name;
    if (!forms.some((s) => s.condition === conditionName)) {
      return conditionName === undefined
        ? `${where} allows ${describeForm(subject)} only with condition ${forms.map((s) => s.condition).join(" or ")}`
        : `${where} does not allow ${describeForm(subject)} with condition ${conditionName}`;
    }
  }
  if (tuple.condition !== undefined) {
    const compiled: CompiledCondition | undefined = compileConditions(program).get(tuple.condition.name);
    if (compiled === undefined) return `condition ${JSON.stringify(tuple.condition.name)} is not defined`;
    if (tuple.condition.context !== undefined) {
      const problem = compiled.problemWithTupleContext(tuple.condition.context);
      if (problem !== undefined) return problem;
    }
  }
  if (tuple.expiresAt !== undefined && !relation.allowsExpiration)
    return `${where} does not allow expiring tuples`;
  if (tuple.subjectTenant !== tuple.tenant && !relation.shareable) {
    return `${where} is not shareable, so its subjects must be in the tuple's tenant ${JSON.stringify(tuple.tenant)}`;
  }
  return undefined;
}

const validity = new WeakMap<Program, WeakMap<RelationTuple, boolean>>();

/**
 * Whether a stored tuple counts under `program`. A tuple without a condition is judged by its relation's allowed
 * forms (a few map lookups, nothing kept per tuple); one with a condition is judged once per tuple instance (its
 * context is checked against the condition's parameters).
 */
export function isValidTuple(program: Program, tuple: RelationTuple): boolean {
  if (validByForm(program, tuple)) return true;
  let cache = validity.get(program);
  if (cache === undefined) {
    cache = new WeakMap();
    validity.set(program, cache);
  }
  let valid = cache.get(tuple);
  if (valid === undefined) {
    valid = tupleProblem(program, tuple) === undefined;
    cache.set(tuple, valid);
  }
  return valid;
}

/**
 * What a tuple without a condition needs to be valid on one (type, relation), every rule of tupleProblem folded in:
 * the subject forms allowed without a condition (with the subject types and userset relations they name defined,
 * and only plain objects on an OpenFGA tupleset), and whether expiry and cross-tenant subjects are allowed.
 */
interface PlainRule {
  readonly objects: ReadonlySet<string>;
  readonly wildcards: ReadonlySet<string>;
  /** Subject type → the relations of its usersets. */
  readonly usersets: ReadonlyMap<string, ReadonlySet<string>>;
  readonly expiry: boolean;
  readonly shareable: boolean;
}

/** Per program: objectType → relation → its PlainRule (null: not judged this way; tupleProblem decides). */
const plainRules = new WeakMap<Program, Map<string, Map<string, PlainRule | null>>>();

/**
 * Whether `tuple` is valid, judged from its relation's PlainRule alone: true only when tupleProblem would find no
 * problem; false means "not known", and the caller asks the full rules (conditions, unrestricted relations, errors).
 */
function validByForm(program: Program, tuple: RelationTuple): boolean {
  if (tuple.condition !== undefined) return false;
  // The tuples of a write come in runs on one type and relation: the last rule is looked up once per run.
  const rule: PlainRule | null | undefined =
    program === last.program && tuple.relation === last.relation && tuple.objectType === last.objectType
      ? last.rule
      : ruleOf(program, tuple);
  if (rule === undefined) return false;
  if (rule === null) return false;
  if (tuple.expiresAt !== undefined && !rule.expiry) return false;
  if (tuple.subjectTenant !== tuple.tenant && !rule.shareable) return false;
  const subject = tuple.subject;
  switch (subject.kind) {
    case "object":
      return rule.objects.has(subject.type);
    case "wildcard":
      return rule.wildcards.has(subject.type);
    case "userset":
      return rule.usersets.get(subject.type)?.has(subject.relation) === true;
  }
}

/** validByForm's last (program, objectType, relation) and its rule. Holding the program keeps only the latest. */
const last: {
  program: Program | undefined;
  objectType: string;
  relation: string;
  rule: PlainRule | null | undefined;
} = { program: undefined, objectType: "", relation: "", rule: undefined };

/** The PlainRule of `tuple`'s type and relation (undefined: either is not defined). */
function ruleOf(program: Program, tuple: RelationTuple): PlainRule | null | undefined {
  let byType = plainRules.get(program);
  if (byType === undefined) {
    byType = new Map();
    plainRules.set(program, byType);
  }
  let byRelation = byType.get(tuple.objectType);
  if (byRelation === undefined) {
    // Only defined types get an entry, so tuples naming made-up types cannot grow the table.
    if (!program.types.has(tuple.objectType)) return undefined;
    byRelation = new Map();
    byType.set(tuple.objectType, byRelation);
  }
  let rule = byRelation.get(tuple.relation);
  if (rule === undefined) {
    if (!program.types.get(tuple.objectType)!.relations.has(tuple.relation)) return undefined;
    rule = plainRuleOf(program, tuple.objectType, tuple.relation);
    byRelation.set(tuple.relation, rule);
  }
  last.program = program;
  last.objectType = tuple.objectType;
  last.relation = tuple.relation;
  last.rule = rule;
  return rule;
}

function plainRuleOf(program: Program, objectType: string, relationName: string): PlainRule | null {
  const relation = program.types.get(objectType)!.relations.get(relationName)!;
  if (relation.directSubjects === undefined) return null;
  const tupleset = program.format === "openfga" && analyze(program).isTupleset(objectType, relationName);
  // A subject form passes the subject checks of findProblem when its type is defined (or is an opaque leaf, never
  // a userset) and a userset's relation is defined on it.
  const leafOk = (type: string): boolean => program.types.has(type) || opaqueSubjectTypes(program);
  const objects = new Set<string>();
  const wildcards = new Set<string>();
  const usersets = new Map<string, Set<string>>();
  for (const s of relation.directSubjects) {
    if (s.condition !== undefined) continue;
    if (s.relation !== undefined) {
      if (!tupleset && program.types.get(s.type)?.relations.has(s.relation) === true) {
        let relations = usersets.get(s.type);
        if (relations === undefined) {
          relations = new Set();
          usersets.set(s.type, relations);
        }
        relations.add(s.relation);
      }
    } else if (s.wildcard === true) {
      if (!tupleset && leafOk(s.type)) wildcards.add(s.type);
    } else if (leafOk(s.type)) {
      objects.add(s.type);
    }
  }
  return { objects, wildcards, usersets, expiry: relation.allowsExpiration, shareable: relation.shareable };
}

function sameForm(allowed: SubjectType, subject: Subject): boolean {
  if (allowed.type !== subject.type) return false;
  switch (subject.kind) {
    case "object":
      return allowed.relation === undefined && allowed.wildcard !== true;
    case "wildcard":
      return allowed.wildcard === true;
    case "userset":
      return allowed.relation === subject.relation;
  }
}

function describeForm(subject: Subject): string {
  switch (subject.kind) {
    case "object":
      return subject.type;
    case "wildcard":
      return `${subject.type}:*`;
    case "userset":
      return `${subject.type}#${subject.relation}`;
  }
}
