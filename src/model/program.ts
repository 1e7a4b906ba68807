/**
 * The one internal form every model language compiles to (OpenFGA DSL/JSON, SpiceDB schema, Nexus namespace
 * configs). The reference evaluator, the WASM compiler and every cache read only this.
 *
 * Semantics follow the language the Program came from (`format`; see `followsSpiceDb`). They agree on:
 * - `direct`: tuples written on (object, relation) whose subject matches one of the relation's `directSubjects`.
 * - `computed`: the same object's other relation (`define viewer: editor`).
 * - `union` / `intersection` / `exclusion` (`base but not subtract`).
 * They differ where the languages do (src/reference/check.ts evaluates both):
 * - `ttu` (tuple-to-userset, `viewer from parent` / `parent->view` / `parent.any(view)`): OpenFGA/Nexus follow
 *   every tuple (object, tupleset, X) with X a plain object to X#computed; SpiceDB follows every tupleset tuple,
 *   a userset subject `X#rel` included, to X#computed (the subject's relation is ignored). A parent whose type
 *   lacks `computed` contributes nothing (not an error). `all` (SpiceDB's `parent.all(view)`, intersection
 *   arrows) instead needs at least one tupleset tuple and every one of them to lead to a parent with `computed`
 *   (a parent whose type lacks it counts as not having it).
 * - conditions: OpenFGA evaluates a tuple's condition when the tuple is read, and a missing parameter is the error
 *   "condition_missing_parameter"; SpiceDB treats a tuple's caveat as a conjunct of the path through it, so a path
 *   that does not reach the subject never evaluates it, and a caveat that needs a missing parameter makes the
 *   answer conditional (src/reference/detailed.ts) instead of an error.
 * One difference is kept on purpose: relationships that form a cycle (`group:a#member@group:b#member` and back)
 * are a path that grants nothing here, in both languages, where SpiceDB keeps dispatching until its depth limit
 * and answers "max depth exceeded" unless another path grants first.
 */
import type { ConditionDef } from "../conditions/types.js";

export type { ConditionDef, ConditionParamType } from "../conditions/types.js";

export type Rewrite =
  | { readonly kind: "direct" }
  | { readonly kind: "computed"; readonly relation: string }
  | {
      readonly kind: "ttu";
      readonly tupleset: string;
      readonly computed: string;
      /** SpiceDB's intersection arrow `tupleset.all(computed)`: every parent must have `computed`. */
      readonly all?: true;
    }
  | { readonly kind: "union"; readonly children: readonly Rewrite[] }
  | { readonly kind: "intersection"; readonly children: readonly Rewrite[] }
  | { readonly kind: "exclusion"; readonly base: Rewrite; readonly subtract: Rewrite }
  /** Matches nothing (SpiceDB's `nil`, an empty Nexus union). */
  | { readonly kind: "none" };

/** One allowed subject form on a directly assignable relation: `user`, `user:*`, `group#member`, `... with cond`. */
export interface SubjectType {
  readonly type: string;
  /** `group#member`: the subject is the userset `group:<id>#member`. */
  readonly relation?: string;
  /** `user:*`: the subject is the type's wildcard. */
  readonly wildcard?: boolean;
  /** Tuples of this form must (and may only) carry this condition. */
  readonly condition?: string;
}

export interface RelationDef {
  readonly name: string;
  readonly rewrite: Rewrite;
  /**
   * Subject forms a `direct` rewrite accepts. `undefined` means unrestricted (Nexus `{}` relations accept any
   * subject); an empty array means the relation cannot be written directly.
   */
  readonly directSubjects: readonly SubjectType[] | undefined;
  /** Tuples on this relation may expire (`expiresAt`); SpiceDB's `with expiration`, always allowed elsewhere. */
  readonly allowsExpiration: boolean;
  /** Cross-tenant grants may target this relation (Nexus's `shared-*` relations). */
  readonly shareable: boolean;
  /** SpiceDB `permission` (not writable) rather than `relation`; OpenFGA/Nexus relations are all `false`. */
  readonly isPermission: boolean;
}

export interface TypeDef {
  readonly name: string;
  readonly relations: ReadonlyMap<string, RelationDef>;
}

export type ModelFormat = "openfga" | "spicedb" | "nexus";

export interface Program {
  readonly format: ModelFormat;
  readonly types: ReadonlyMap<string, TypeDef>;
  readonly conditions: ReadonlyMap<string, ConditionDef>;
}

/** Whether the Program is evaluated with SpiceDB's rules (a SpiceDB schema) rather than OpenFGA's (OpenFGA, Nexus). */
export function followsSpiceDb(program: Program): boolean {
  return program.format === "spicedb";
}

/** Looks up a relation, or undefined when the type or relation is missing. */
export function relationOf(program: Program, type: string, relation: string): RelationDef | undefined {
  return program.types.get(type)?.relations.get(relation);
}
