/** What a model declares about a condition: its CEL expression and typed parameters (OpenFGA `condition`, SpiceDB `caveat`). */

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
