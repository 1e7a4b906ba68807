/**
 * Argument parsing for the commands, on Node's own `util.parseArgs` (strict: an unknown flag is an error, not a
 * silent no-op).
 */
import { parseArgs } from "node:util";
import { closest } from "../util/closest.js";

/** A command-line mistake: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

export interface Parsed {
  readonly values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  readonly positionals: string[];
}

export function parse(args: readonly string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed["values"], positionals };
  } catch (error) {
    throw new UsageError(describeParseError(error as Error & { code?: string }, options));
  }
}

/** Node's parseArgs messages, said plainly: an unknown flag names the nearest known one. */
function describeParseError(error: Error & { code?: string }, options: OptionSpec): string {
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'(-[^']*)'/.exec(error.message)?.[1] ?? "";
    const name = flag.replace(/^-+/, "").split("=")[0]!;
    const meant = closest(name, Object.keys(options));
    const known = Object.keys(options).map((o) => `--${o}`);
    return `unknown option ${flag}${meant !== undefined ? ` (did you mean --${meant}?)` : ""}; known: ${known.join(", ")}`;
  }
  return error.message;
}

/** A string option, or undefined. */
export function stringOption(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === "string" ? value : undefined;
}

/** A positive integer option, with a default. */
export function intOption(parsed: Parsed, name: string, fallback: number, min = 1): number {
  const text = stringOption(parsed, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${text}"`);
  }
  return value;
}

/** A JSON object option (`--context '{"ip":"10.0.0.1"}'`). */
export function jsonObjectOption(parsed: Parsed, name: string): Record<string, unknown> | undefined {
  const text = stringOption(parsed, name);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--${name} must be a JSON object: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`--${name} must be a JSON object, got ${text}`);
  }
  return value as Record<string, unknown>;
}
