/**
 * Condition parameters: the CEL type each declared parameter type maps to, and the conversion of a JSON-like
 * context value (what requests and tuples carry) into the value CEL evaluates, with OpenFGA's rules: ints from
 * whole numbers or decimal strings, doubles finite, timestamps from RFC 3339 strings, durations from CEL
 * duration strings ("1h30m"), ip addresses from their text.
 */
import { celJs } from "./cel-js.js";
import { IPAddress } from "./ipaddress.js";
import type { ConditionParamType } from "./types.js";

/** The CEL type name of a parameter type, as the cel-js environment declares variables. */
export function celTypeOf(type: ConditionParamType): string {
  if (typeof type === "object") {
    return "list" in type ? `list<${celTypeOf(type.list)}>` : `map<string, ${celTypeOf(type.map)}>`;
  }
  switch (type) {
    case "duration":
      return "google.protobuf.Duration";
    case "timestamp":
      return "google.protobuf.Timestamp";
    case "any":
      return "dyn";
    default:
      return type;
  }
}

/** Renders a parameter type for messages ("list<int>"). */
export function describeParamType(type: ConditionParamType): string {
  if (typeof type === "object") {
    return "list" in type ? `list<${describeParamType(type.list)}>` : `map<${describeParamType(type.map)}>`;
  }
  return type;
}

// cel-js builds durations and unsigned ints through its own constructors; these helpers reach them (built on
// first use, so importing this module costs nothing).
let builders: { duration: (s: string) => unknown; uint: (i: bigint) => unknown } | undefined;

function celBuilders(): NonNullable<typeof builders> {
  if (builders === undefined) {
    const env = new (celJs().Environment)().registerVariable("s", "string").registerVariable("i", "int");
    const duration = env.parse("duration(s)");
    const uint = env.parse("uint(i)");
    builders = { duration: (s) => duration({ s }), uint: (i) => uint({ i }) };
  }
  return builders;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Thrown by convertParam: the value cannot be the declared type. */
export class ParamConversionError extends Error {}

/** Converts a context value to the CEL value of `type`; throws ParamConversionError saying why not. */
export function convertParam(type: ConditionParamType, value: unknown): unknown {
  if (typeof type === "object") {
    if ("list" in type) {
      if (!Array.isArray(value)) throw new ParamConversionError(`expected a list, got ${kindOf(value)}`);
      return value.map((item) => convertParam(type.list, item));
    }
    const entries = mapEntries(value);
    if (entries === undefined) throw new ParamConversionError(`expected a map, got ${kindOf(value)}`);
    return new Map(entries.map(([k, v]) => [k, convertParam(type.map, v)]));
  }
  switch (type) {
    case "bool":
      if (typeof value === "boolean") return value;
      break;
    case "string":
      if (typeof value === "string") return value;
      break;
    case "int": {
      const n = toBigInt(value);
      if (n !== undefined && n >= INT64_MIN && n <= INT64_MAX) return n;
      break;
    }
    case "uint": {
      const n = toBigInt(value);
      if (n !== undefined && n >= 0n && n <= UINT64_MAX) return celBuilders().uint(n);
      break;
    }
    case "double": {
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n === "number" && Number.isFinite(n)) return n;
      if (typeof n === "bigint") return Number(n);
      break;
    }
    case "duration":
      if (typeof value === "string") {
        try {
          return celBuilders().duration(value);
        } catch {
          throw new ParamConversionError(`${JSON.stringify(value)} is not a duration`);
        }
      }
      break;
    case "timestamp": {
      const time =
        value instanceof Date ? value : typeof value === "string" ? parseTimestamp(value) : undefined;
      if (time !== undefined && !Number.isNaN(time.getTime())) return time;
      break;
    }
    case "ipaddress": {
      if (value instanceof IPAddress) return value;
      const ip = typeof value === "string" ? IPAddress.parse(value) : undefined;
      if (ip !== undefined) return ip;
      break;
    }
    case "any":
      return convertAny(value);
  }
  throw new ParamConversionError(`expected ${describeParamType(type)}, got ${describeValue(value)}`);
}

function toBigInt(value: unknown): bigint | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value === "string" && /^[+-]?\d+$/.test(value.trim())) return BigInt(value.trim());
  return undefined;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseTimestamp(text: string): Date | undefined {
  return RFC3339.test(text) ? new Date(text) : undefined;
}

// `any` is CEL's dyn over JSON: numbers are doubles, objects are maps.
function convertAny(value: unknown): unknown {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new ParamConversionError(`${value} is not a finite number`);
    return value;
  }
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(convertAny);
  const entries = mapEntries(value);
  if (entries !== undefined) return new Map(entries.map(([k, v]) => [k, convertAny(v)]));
  throw new ParamConversionError(`${describeValue(value)} is not a JSON value`);
}

function mapEntries(value: unknown): [string, unknown][] | undefined {
  if (value instanceof Map) {
    const entries = [...value.entries()];
    return entries.every(([k]) => typeof k === "string") ? (entries as [string, unknown][]) : undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return Object.entries(value);
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value;
}

function describeValue(value: unknown): string {
  if (typeof value === "bigint") return `${value}`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 59)}…` : value);
  return kindOf(value);
}
