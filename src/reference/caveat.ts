/**
 * SpiceDB's evaluation of one relationship's caveat: the request context and the relationship's own context merged
 * (the relationship's values winning, as in OpenFGA), and a parameter missing from both is not an error but an
 * unknown. The caveat is then true, false, or unknown with the names of the missing parameters its value still
 * depends on, as cel-go's partial evaluation (which SpiceDB uses) reports them:
 * - `a || b` is true when either side is true, `a && b` false when either side is false, whatever the other;
 * - `c ? x : y` with an unknown condition is unknown in the condition's parameters only;
 * - any other operation is its first operand (left to right) that is unknown or an error: `lo < hi` with both
 *   missing is unknown in `lo` only (as SpiceDB reports it); a macro (`l.exists(v, v > x)`) is unknown in every
 *   missing parameter it reads.
 * With every parameter present this is the condition's ordinary evaluation (src/conditions/cel.ts).
 *
 * Subexpressions are evaluated by cel-js on their own (serialized back from the syntax tree), in an environment
 * that declares every parameter; a missing one is simply absent, so cel-js fails only where it reads one.
 */
import type { Environment } from "@marcbachmann/cel-js";
import {
  type CompiledCondition,
  type ConditionContext,
  conditionEnvironment,
  firstLine,
  pick,
} from "../conditions/cel.js";
import { celJs } from "../conditions/cel-js.js";
import { celTypeOf, convertParam } from "../conditions/params.js";
import type { ConditionDef } from "../model/program.js";
import { NexusError } from "../util/errors.js";

/** A caveat that needs parameters the contexts do not give. */
export class Unknown {
  constructor(readonly missing: ReadonlySet<string>) {}
}

export type CaveatOutcome = boolean | Unknown | NexusError;

interface Node {
  readonly op: string;
  readonly args: unknown;
}

type PartialValue = { readonly value: unknown } | Unknown | { readonly error: unknown };

const MACROS = new Set(["has", "all", "exists", "exists_one", "map", "filter"]);

interface PartialProgram {
  readonly env: Environment;
  readonly root: Node;
  readonly compiled: Map<Node, (variables: Record<string, unknown>) => unknown>;
}

const programs = new WeakMap<ConditionDef, PartialProgram | NexusError>();

/** Evaluates `compiled` for one relationship with SpiceDB's rules (see the header). */
export function evaluateCaveat(
  compiled: CompiledCondition,
  requestContext: ConditionContext | undefined,
  tupleContext: ConditionContext | undefined,
  where: string,
): CaveatOutcome {
  const def = compiled.def;
  const missing = new Set<string>();
  for (const name of def.parameters.keys()) {
    if (pick(tupleContext, name) === undefined && pick(requestContext, name) === undefined) missing.add(name);
  }
  if (missing.size === 0) {
    try {
      return compiled.evaluate(requestContext, tupleContext, where);
    } catch (error) {
      if (error instanceof NexusError) return error;
      throw error;
    }
  }
  const variables: Record<string, unknown> = {};
  for (const [name, type] of def.parameters) {
    const value = pick(tupleContext, name) ?? pick(requestContext, name);
    if (value === undefined) continue;
    try {
      variables[name] = convertParam(type, value.value);
    } catch (cause) {
      return new NexusError(
        "invalid_argument",
        `caveat ${def.name} on ${where}: parameter ${name}: ${firstLine(cause)}`,
        { condition: def.name, parameter: name, tuple: where },
        { cause },
      );
    }
  }
  const program = partialProgram(def);
  if (program instanceof NexusError) return new Unknown(missing);
  const outcome = partial(program, program.root, variables, missing);
  if (outcome instanceof Unknown) return outcome.missing.size > 0 ? outcome : new Unknown(missing);
  if ("error" in outcome) {
    return new NexusError(
      "invalid_condition",
      `caveat ${def.name} on ${where} failed: ${firstLine(outcome.error)}`,
      { condition: def.name, tuple: where },
    );
  }
  if (typeof outcome.value !== "boolean") {
    return new NexusError("invalid_condition", `caveat ${def.name} on ${where} did not return a bool`, {
      condition: def.name,
      tuple: where,
    });
  }
  return outcome.value;
}

function partialProgram(def: ConditionDef): PartialProgram | NexusError {
  let program = programs.get(def);
  if (program === undefined) {
    try {
      const env = conditionEnvironment();
      for (const [name, type] of def.parameters) env.registerVariable(name, celTypeOf(type));
      program = { env, root: env.parse(def.expression).ast as Node, compiled: new Map() };
    } catch (cause) {
      program = new NexusError("invalid_condition", `caveat ${def.name}: ${firstLine(cause)}`, undefined, {
        cause,
      });
    }
    programs.set(def, program);
  }
  return program;
}

function partial(
  program: PartialProgram,
  node: Node,
  variables: Record<string, unknown>,
  missing: ReadonlySet<string>,
): PartialValue {
  const reads = identifiers(node, missing);
  if (reads.size === 0) return run(program, node, variables);
  const args = node.args;
  switch (node.op) {
    case "id":
      return new Unknown(reads);
    case "||":
    case "&&": {
      const decisive = node.op === "||";
      const [a, b] = args as [Node, Node];
      const left = partial(program, a, variables, missing);
      const right = partial(program, b, variables, missing);
      for (const side of [left, right]) if ("value" in side && side.value === decisive) return side;
      const unknowns = [left, right].filter((s): s is Unknown => s instanceof Unknown);
      if (unknowns.length > 0) return union(unknowns);
      const failed = [left, right].find((s) => "error" in s);
      return failed ?? { value: !decisive };
    }
    case "!_": {
      const inner = partial(program, args as Node, variables, missing);
      return "value" in inner ? { value: !inner.value } : inner;
    }
    case "?:": {
      const [condition, then, otherwise] = args as [Node, Node, Node];
      const c = partial(program, condition, variables, missing);
      if (!("value" in c)) return c;
      return partial(program, c.value === true ? then : otherwise, variables, missing);
    }
    default: {
      const whole = run(program, node, variables);
      if ("value" in whole) return whole;
      const isMacro =
        (node.op === "call" || node.op === "rcall") &&
        Array.isArray(args) &&
        typeof args[0] === "string" &&
        MACROS.has(args[0]);
      if (isMacro) return new Unknown(reads);
      // cel-go evaluates the operands left to right and returns the first that is unknown or an error.
      for (const child of children(args)) {
        const outcome = partial(program, child, variables, missing);
        if (!("value" in outcome)) return outcome;
      }
      return whole;
    }
  }
}

/** Evaluates a subexpression on its own. */
function run(program: PartialProgram, node: Node, variables: Record<string, unknown>): PartialValue {
  try {
    let fn = program.compiled.get(node);
    if (fn === undefined) {
      fn = program.env.parse(celJs().serialize(node as never));
      program.compiled.set(node, fn);
    }
    return { value: fn(variables) };
  } catch (error) {
    return { error };
  }
}

/** The syntax-tree nodes directly under `args` (an operand, or arrays of them). */
function children(args: unknown): Node[] {
  if (Array.isArray(args)) return args.flatMap(children);
  if (typeof args === "object" && args !== null && "op" in args) return [args as Node];
  return [];
}

/** The names in `among` that the subtree reads. */
function identifiers(node: unknown, among: ReadonlySet<string>, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const child of node) identifiers(child, among, out);
  } else if (typeof node === "object" && node !== null) {
    const { op, args } = node as { op?: unknown; args?: unknown };
    if (op === "id" && typeof args === "string") {
      if (among.has(args)) out.add(args);
    } else {
      identifiers(args, among, out);
    }
  }
  return out;
}

function union(unknowns: readonly Unknown[]): Unknown {
  if (unknowns.length === 1) return unknowns[0]!;
  const missing = new Set<string>();
  for (const u of unknowns) for (const name of u.missing) missing.add(name);
  return new Unknown(missing);
}
