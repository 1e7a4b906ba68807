/**
 * The one internal form every model language compiles to (OpenFGA DSL/JSON, SpiceDB schema, Nexus namespace
 * configs). The reference evaluator, the WASM compiler and every cache read only this.
 *
 * Semantics follow OpenFGA's (which SpiceDB's match for the shared subset):
 * - `direct`: tuples written on (object, relation) whose subject matches one of the relation's `directSubjects`.
 * - `computed`: the same object's other relation (`define viewer: editor`).
 * - `ttu` (tuple-to-userset, `viewer from parent` / `parent->view`): for every tuple (object, tupleset, X) with X a
 *   plain object, X#computed; an X whose type lacks `computed` contributes nothing (not an error).
 * - `union` / `intersection` / `exclusion` (`base but not subtract`).
 */
export type Rewrite =
  | { readonly kind: "direct" }
  | { readonly kind: "computed"; readonly relation: string }
  | { readonly kind: "ttu"; readonly tupleset: string; readonly computed: string }
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

export type ConditionParamType =
  | "bool"
  | "string"
  | "int"
  | "uint"
  | "double"
  | "duration"
  | "timestamp"
  | "ipaddress"
  | "any"
  | { readonly list: ConditionParamType }
  | { readonly map: ConditionParamType };

export interface ConditionDef {
  readonly name: string;
  /** A CEL expression over the parameters. */
  readonly expression: string;
  readonly parameters: ReadonlyMap<string, ConditionParamType>;
}

export type ModelFormat = "openfga" | "spicedb" | "nexus";

export interface Program {
  readonly format: ModelFormat;
  readonly types: ReadonlyMap<string, TypeDef>;
  readonly conditions: ReadonlyMap<string, ConditionDef>;
}

/** Looks up a relation, or undefined when the type or relation is missing. */
export function relationOf(program: Program, type: string, relation: string): RelationDef | undefined {
  return program.types.get(type)?.relations.get(relation);
}
