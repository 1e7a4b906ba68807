/**
 * Conditions: a model's CEL expressions compiled once per Program, and their evaluation against a tuple, as
 * OpenFGA evaluates them:
 * - the request context and the tuple's own context are merged, the tuple's values winning on a shared key;
 * - a declared parameter missing from both is the error "condition_missing_parameter" (even when the expression
 *   might not need it, as OpenFGA reports any missing parameter);
 * - a value that cannot be the declared type is "invalid_argument"; a CEL runtime failure is "invalid_condition".
 * Expressions run on @marcbachmann/cel-js with OpenFGA's `ipaddress` type (`ip.in_cidr("10.0.0.0/8")`), loaded on
 * first need (src/conditions/cel-js.ts).
 */
import type { Environment } from "@marcbachmann/cel-js";
import { describe, NexusError } from "../util/errors.js";
import { celJs } from "./cel-js.js";
import { IPAddress } from "./ipaddress.js";
import { celTypeOf, convertParam, describeParamType, ParamConversionError } from "./params.js";
import type { ConditionDef } from "./types.js";

/** A JSON-like context object (request `context`, or a tuple condition's `context`). */
export type ConditionContext = Readonly<Record<string, unknown>>;

export interface CompiledCondition {
  readonly def: ConditionDef;
  /**
   * Evaluates the condition for one tuple.
   * @param where names the tuple in error messages.
   * @throws NexusError "condition_missing_parameter" | "invalid_argument" | "invalid_condition"
   */
  evaluate(
    requestContext: ConditionContext | undefined,
    tupleContext: ConditionContext | undefined,
    where: string,
  ): boolean;
  /** Why a tuple's stored context is unacceptable (an unknown key, a value of the wrong type), or undefined. */
  problemWithTupleContext(tupleContext: ConditionContext): string | undefined;
}

let baseEnvironment: Environment | undefined;

// The CEL types of OpenFGA's parameter types (params.ts celTypeOf) that cel-js cannot compare with null itself;
// `list` and `map` match every element type.
const NULL_COMPARABLE = [
  "bool",
  "string",
  "int",
  "uint",
  "double",
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "ipaddress",
  "list",
  "map",
];

// The environment every condition extends: OpenFGA's ipaddress type. Built once, on first use.
function base(): Environment {
  if (baseEnvironment === undefined) {
    baseEnvironment = new (celJs().Environment)()
      .registerType("ipaddress", IPAddress)
      .registerFunction("ipaddress(string): ipaddress", (text: string) => {
        const ip = IPAddress.parse(text);
        if (ip === undefined) throw new Error(`${JSON.stringify(text)} is not an IP address`);
        return ip;
      })
      .registerFunction({
        name: "in_cidr",
        receiverType: "ipaddress",
        returnType: "bool",
        params: [{ name: "cidr", type: "string" }],
        handler: (ip: IPAddress, cidr: string) => ip.inCidr(cidr),
      })
      // OpenFGA's ipaddress is comparable (Go's netip.Addr ==: same family and bytes); `!=` and the mirrored
      // order come with `==`.
      .registerOperator("ipaddress == ipaddress", (a: IPAddress, b: IPAddress) => a.equals(b));
    // cel-go lets every OpenFGA parameter be compared with null (`ts != null`, `ip == null`); cel-js knows
    // `dyn == null` only. A parameter that reaches the expression is never null (a missing one is an error before
    // evaluation, and only `any` admits a null value, which dyn's own overload compares).
    for (const type of NULL_COMPARABLE) {
      baseEnvironment.registerOperator(`${type} == null`, (value: unknown) => value === null);
    }
  }
  return baseEnvironment;
}

/**
 * A fresh environment with OpenFGA's condition types and operators (ipaddress, in_cidr, ipaddress ==, null
 * comparisons), for a caller that registers its own variables (compileCondition here, SpiceDB's partial caveat
 * evaluation in check/caveat.ts).
 */
export function conditionEnvironment(): Environment {
  return base().clone();
}

/** A model's conditions: a Program (model/program.ts) is one. */
export interface ConditionsOf {
  readonly conditions: ReadonlyMap<string, ConditionDef>;
}

const compiledByProgram = new WeakMap<ConditionsOf, ReadonlyMap<string, CompiledCondition>>();

/**
 * The compiled conditions of a Program (cached per Program).
 * @throws NexusError "invalid_model" when an expression does not parse or is not a bool expression.
 */
export function compileConditions(program: ConditionsOf): ReadonlyMap<string, CompiledCondition> {
  let compiled = compiledByProgram.get(program);
  if (compiled === undefined) {
    const map = new Map<string, CompiledCondition>();
    for (const def of program.conditions.values()) map.set(def.name, compileCondition(def));
    compiled = map;
    compiledByProgram.set(program, compiled);
  }
  return compiled;
}

/** Compiles one condition. @throws NexusError "invalid_model" naming the condition. */
export function compileCondition(def: ConditionDef): CompiledCondition {
  const env = conditionEnvironment();
  for (const [name, type] of def.parameters) {
    try {
      env.registerVariable(name, celTypeOf(type));
    } catch (cause) {
      throw new NexusError(
        "invalid_model",
        `condition ${def.name}: parameter ${name} has an unsupported type ${describeParamType(type)}`,
        { condition: def.name, parameter: name },
        { cause },
      );
    }
  }
  const check = (() => {
    try {
      return env.check(def.expression);
    } catch (cause) {
      return { valid: false as const, error: cause as Error, type: undefined };
    }
  })();
  if (!check.valid) {
    throw new NexusError(
      "invalid_model",
      `condition ${def.name}: invalid expression ${describe(def.expression)}: ${firstLine(check.error)}`,
      { condition: def.name, expression: def.expression },
    );
  }
  if (check.type !== "bool" && check.type !== "dyn") {
    throw new NexusError(
      "invalid_model",
      `condition ${def.name}: the expression must be a bool, but it is ${check.type}`,
      { condition: def.name, expression: def.expression },
    );
  }
  const program = env.parse(def.expression);
  const names = [...def.parameters.keys()];

  return {
    def,
    evaluate(requestContext, tupleContext, where) {
      const variables: Record<string, unknown> = {};
      const missing: string[] = [];
      for (const name of names) {
        const value = pick(tupleContext, name) ?? pick(requestContext, name);
        if (value === undefined) {
          missing.push(name);
          continue;
        }
        try {
          variables[name] = convertParam(def.parameters.get(name)!, value.value);
        } catch (cause) {
          throw new NexusError(
            "invalid_argument",
            `condition ${def.name} on ${where}: parameter ${name}: ${firstLine(cause)}`,
            { condition: def.name, parameter: name, tuple: where },
            { cause },
          );
        }
      }
      if (missing.length > 0) {
        throw new NexusError(
          "condition_missing_parameter",
          `condition ${def.name} on ${where} is missing context parameter${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
          { condition: def.name, missing, tuple: where },
        );
      }
      let result: unknown;
      try {
        result = program(variables);
      } catch (cause) {
        throw new NexusError(
          "invalid_condition",
          `condition ${def.name} on ${where} failed: ${firstLine(cause)}`,
          { condition: def.name, tuple: where },
          { cause },
        );
      }
      if (typeof result !== "boolean") {
        throw new NexusError(
          "invalid_condition",
          `condition ${def.name} on ${where} returned ${describe(String(result))}, not a bool`,
          { condition: def.name, tuple: where },
        );
      }
      return result;
    },
    problemWithTupleContext(tupleContext) {
      for (const [key, value] of Object.entries(tupleContext)) {
        const type = def.parameters.get(key);
        if (type === undefined) return `condition ${def.name} has no parameter ${describe(key)}`;
        try {
          convertParam(type, value);
        } catch (cause) {
          if (cause instanceof ParamConversionError)
            return `condition ${def.name}: parameter ${key}: ${cause.message}`;
          throw cause;
        }
      }
      return undefined;
    },
  };
}

/** The context's own value for `name` (a key set to undefined counts as missing). */
export function pick(context: ConditionContext | undefined, name: string): { value: unknown } | undefined {
  if (context === undefined || !Object.hasOwn(context, name)) return undefined;
  const value = context[name];
  return value === undefined ? undefined : { value };
}

/** The first line of an error's message (cel-js adds the expression and a caret below it). */
export function firstLine(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  return text.split("\n")[0]!.trim();
}
