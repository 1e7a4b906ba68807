/**
 * fast-check generators for random models and tuples, shared by the property tests: a few object types with a
 * few relations each, rewrites mixing direct subjects (users, wildcards, usersets, conditional users),
 * computed usersets, tuple-to-usersets, unions, intersections and exclusions; then tuples drawn from the slots
 * the model allows. Models that would break a validation rule (a relation with no entry point) are repaired by
 * adding a direct path, so almost every draw is used.
 */
import fc from "fast-check";
import { loadConditions } from "../../src/conditions/cel-js.js";
import type {
  ConditionDef,
  Program,
  RelationDef,
  Rewrite,
  SubjectType,
  TypeDef,
} from "../../src/model/program.js";
import { validateProgram } from "../../src/model/validate.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { NexusError } from "../../src/util/errors.js";

// The programs built here hold conditions, compiled synchronously: the CEL runtime first.
await loadConditions();

export const USERS = ["user:u0", "user:u1", "user:u2"];
export const IDS = ["a", "b"];

export interface ModelShape {
  readonly typeCount: number;
  readonly relations: readonly RelationShape[][];
}

interface RelationShape {
  readonly direct: readonly number[];
  readonly op: number;
  readonly left: number;
  readonly right: number;
  readonly pick: readonly number[];
}

export interface GeneratedModel {
  readonly program: Program;
  readonly types: readonly string[];
  /** Every tuple the model allows over the fixed ids and users. */
  readonly slots: readonly TupleKey[];
}

export interface ModelOptions {
  readonly exclusion?: boolean;
  readonly conditions?: boolean;
}

const shapeArb = fc.record({
  typeCount: fc.integer({ min: 2, max: 3 }),
  relations: fc.array(
    fc.array(
      fc.record({
        direct: fc.uniqueArray(fc.nat(7), { maxLength: 3 }),
        op: fc.nat(9),
        left: fc.nat(20),
        right: fc.nat(20),
        pick: fc.array(fc.nat(50), { minLength: 4, maxLength: 4 }),
      }),
      { minLength: 2, maxLength: 4 },
    ),
    { minLength: 3, maxLength: 3 },
  ),
});

const condition: ConditionDef = { name: "small", expression: "x < 5", parameters: new Map([["x", "int"]]) };

export function modelArb(options: ModelOptions = {}): fc.Arbitrary<GeneratedModel> {
  return shapeArb.map((shape) => buildModel(shape, options));
}

function buildModel(shape: ModelShape, options: ModelOptions): GeneratedModel {
  const types = Array.from({ length: shape.typeCount }, (_, i) => `t${i}`);
  const relationCounts = types.map((_, i) => shape.relations[i]!.length);
  const defs = new Map<string, Map<string, RelationDef>>();
  types.forEach((type, ti) => {
    const relations = new Map<string, RelationDef>();
    shape.relations[ti]!.forEach((r, ri) => {
      const name = `r${ri}`;
      if (ri === 0) {
        // r0 is every type's tupleset: plain users and objects of the other types.
        relations.set(
          name,
          def(name, { kind: "direct" }, [
            { type: "user" },
            ...types.filter((t) => t !== type).map((t) => ({ type: t })),
          ]),
        );
        return;
      }
      const subjects = subjectChoices(types, relationCounts, r.pick, options).filter((_, i) =>
        r.direct.includes(i),
      );
      const leaf = (n: number): Rewrite => {
        switch (n % 4) {
          case 0:
            return { kind: "direct" };
          case 1:
            return { kind: "computed", relation: `r${n % ri}` };
          default:
            return { kind: "ttu", tupleset: "r0", computed: n % 3 === 0 ? "r0" : "r1" };
        }
      };
      const a = leaf(r.left);
      const b = leaf(r.right);
      const ops: Rewrite[] = [
        a,
        { kind: "union", children: [a, b] },
        { kind: "intersection", children: [a, b] },
      ];
      if (options.exclusion !== false) ops.push({ kind: "exclusion", base: a, subtract: b });
      const rewrite = ops[r.op % ops.length]!;
      if (usesDirect(rewrite) && subjects.length === 0) subjects.push({ type: "user" });
      relations.set(name, def(name, rewrite, usesDirect(rewrite) ? subjects : []));
    });
    defs.set(type, relations);
  });
  const program = repair(types, defs, options);
  return { program, types, slots: slotsOf(program, types) };
}

function subjectChoices(
  types: string[],
  relationCounts: number[],
  pick: readonly number[],
  options: ModelOptions,
): SubjectType[] {
  const other = (n: number) => types[n % types.length]!;
  const rel = (t: string, n: number) => `r${n % relationCounts[types.indexOf(t)]!}`;
  const u1 = other(pick[0]!);
  const u2 = other(pick[1]!);
  const choices: SubjectType[] = [
    { type: "user" },
    { type: "user", wildcard: true },
    { type: u1, relation: rel(u1, pick[2]!) },
    { type: u2, relation: rel(u2, pick[3]!) },
    { type: other(pick[2]!) },
    { type: u1 },
    { type: "user", wildcard: true, condition: "small" },
    { type: "user", condition: "small" },
  ];
  return options.conditions === false
    ? choices.map((c) => (c.condition === undefined ? c : { type: "user" }))
    : choices;
}

function def(name: string, rewrite: Rewrite, directSubjects: SubjectType[]): RelationDef {
  // Duplicate subject forms would be the same restriction twice.
  const seen = new Set<string>();
  const unique = directSubjects.filter((s) => {
    const key = JSON.stringify(s);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    name,
    rewrite,
    directSubjects: unique,
    allowsExpiration: true,
    shareable: false,
    isPermission: false,
  };
}

function usesDirect(rw: Rewrite): boolean {
  if (rw.kind === "direct") return true;
  if (rw.kind === "union" || rw.kind === "intersection") return rw.children.some(usesDirect);
  if (rw.kind === "exclusion") return usesDirect(rw.base) || usesDirect(rw.subtract);
  return false;
}

function repair(
  types: string[],
  defs: Map<string, Map<string, RelationDef>>,
  options: ModelOptions,
): Program {
  for (let attempt = 0; attempt < 50; attempt++) {
    const program: Program = {
      format: "openfga",
      types: new Map<string, TypeDef>([
        ["user", { name: "user", relations: new Map() }],
        ...types.map((t) => [t, { name: t, relations: defs.get(t)! }] as const),
      ]),
      conditions: options.conditions === false ? new Map() : new Map([["small", condition]]),
    };
    try {
      return validateProgram(program);
    } catch (error) {
      const details = error instanceof NexusError ? error.details : undefined;
      const type = details?.type as string | undefined;
      const relation = details?.relation as string | undefined;
      const broken = type !== undefined && relation !== undefined ? defs.get(type)?.get(relation) : undefined;
      if (broken === undefined) throw error;
      // Give the relation a way in: `[user] or <what it was>`.
      defs
        .get(type!)!
        .set(
          relation!,
          def(relation!, { kind: "union", children: [{ kind: "direct" }, broken.rewrite] }, [
            ...(broken.directSubjects ?? []),
            { type: "user" },
          ]),
        );
    }
  }
  throw new Error("could not repair the generated model");
}

function slotsOf(program: Program, types: readonly string[]): TupleKey[] {
  const slots: TupleKey[] = [];
  for (const type of types) {
    for (const rel of program.types.get(type)!.relations.values()) {
      for (const id of IDS) {
        const object = `${type}:${id}`;
        for (const s of rel.directSubjects ?? []) {
          const users =
            s.wildcard === true
              ? [`${s.type}:*`]
              : s.relation !== undefined
                ? IDS.map((i) => `${s.type}:${i}#${s.relation}`)
                : s.type === "user"
                  ? USERS
                  : IDS.map((i) => `${s.type}:${i}`);
          for (const user of users) {
            if (s.condition !== undefined) {
              slots.push({ object, relation: rel.name, user, condition: { name: s.condition } });
              slots.push({
                object,
                relation: rel.name,
                user,
                condition: { name: s.condition, context: { x: 9 } },
              });
            } else {
              slots.push({ object, relation: rel.name, user });
            }
          }
        }
      }
    }
  }
  // One tuple per identity: a conditional variant and a plain one of the same subject cannot both exist.
  const byIdentity = new Map<string, TupleKey>();
  for (const slot of slots) {
    const key = `${slot.object}#${slot.relation}@${slot.user}`;
    if (!byIdentity.has(key) || slot.condition?.context !== undefined) byIdentity.set(key, slot);
  }
  return [...byIdentity.values()];
}

/** A model and a subset of its slots as tuples (plus a disjoint second subset). */
export function scenarioArb(options: ModelOptions = {}) {
  return modelArb(options).chain((model) =>
    fc
      .tuple(
        fc.uniqueArray(fc.nat(Math.max(0, model.slots.length - 1)), { minLength: 4, maxLength: 30 }),
        fc.uniqueArray(fc.nat(Math.max(0, model.slots.length - 1)), { minLength: 1, maxLength: 8 }),
      )
      .map(([base, extra]) => {
        const baseSet = new Set(base);
        return {
          model,
          tuples: model.slots.length === 0 ? [] : base.map((i) => model.slots[i]!),
          extra:
            model.slots.length === 0 ? [] : extra.filter((i) => !baseSet.has(i)).map((i) => model.slots[i]!),
        };
      }),
  );
}

/** Every subject a query may ask about: users, the wildcard, and usersets of every relation. */
export function subjectsOf(model: GeneratedModel): string[] {
  const subjects = [...USERS, "user:*"];
  for (const type of model.types) {
    for (const rel of model.program.types.get(type)!.relations.keys()) subjects.push(`${type}:a#${rel}`);
  }
  return subjects;
}
