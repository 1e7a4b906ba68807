/**
 * Pieces both test runners share: OpenFGA error codes mapped to NexusError codes, a seeded shuffle, set
 * comparison, and the result records.
 */
import type { Engine, EngineOptions } from "../engine/engine.js";
import type { TupleKey } from "../tuples/tuple.js";
import { isNexusError, type NexusErrorCode } from "../util/errors.js";
import { seededRandom } from "../util/random.js";

export { seededRandom };

/** What the runners need of an engine, so another implementation (the WASM engine) can be tested the same way. */
export type TestableEngine = Pick<Engine, "write" | "check" | "listObjects" | "listUsers" | "close">;

/** Creates the engine under test (default: createEngine). */
export type EngineFactory = (options: EngineOptions) => Promise<TestableEngine>;

/**
 * OpenFGA's error codes in test files -> the NexusError codes that satisfy them. OpenFGA's generic validation
 * error (2000) covers every input problem its more specific codes name elsewhere (a check on an unknown relation
 * is 2000, a list-objects request on one 2022), so 2000 accepts all of them except invalid tuples.
 */
export const openFgaErrorCodes: Readonly<Record<number, readonly NexusErrorCode[]>> = {
  2000: [
    "invalid_argument",
    "type_not_found",
    "relation_not_found",
    "condition_missing_parameter",
    "invalid_condition",
  ],
  2002: ["resolution_too_complex"],
  2021: ["type_not_found"],
  2022: ["relation_not_found"],
  2027: ["invalid_tuple"],
};

/** Whether `error` is what an OpenFGA error code expects. */
export function matchesErrorCode(error: unknown, code: number): boolean {
  const accepted = openFgaErrorCodes[code];
  return accepted !== undefined && isNexusError(error) && accepted.includes(error.code);
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Whether two lists hold the same strings (duplicates matter, order does not). */
export function sameElements(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

export function errorText(error: unknown): string {
  if (isNexusError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** A tuple as OpenFGA's test files write it (matrix tests and `fga model test` store files alike). */
export interface FgaTupleRecord {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly condition?: { readonly name: string; readonly context?: Record<string, unknown> } | null;
}

/** The engine's TupleKey for a test file's tuple record (absent/null condition parts left out). */
export function tupleKeyOf(t: FgaTupleRecord): TupleKey {
  return {
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.condition != null
      ? {
          condition: {
            name: t.condition.name,
            ...(t.condition.context != null ? { context: t.condition.context } : {}),
          },
        }
      : {}),
  };
}
