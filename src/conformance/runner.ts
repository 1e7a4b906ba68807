/**
 * Runs OpenFGA's matrix test files (`consolidated_1_1_tests.yaml`, `abac_tests.yaml`: tests of stages, each with
 * a model, tuples and check / list-objects / list-users assertions) against nexus-fast, the way OpenFGA's own
 * runner does:
 * - all stages of a test share one store; each stage writes its model, then its tuples (shuffled, in chunks of
 *   40 writes), then runs its assertions;
 * - a single-stage test with at most 100 tuples runs a second time with every tuple passed as a contextual tuple
 *   instead of written;
 * - every object list objects returns and every user list users returns must also pass check;
 * - an `errorCode` expectation is met by the NexusError codes `openFgaErrorCodes` maps it to.
 */

import type { ConditionContext } from "../conditions/cel.js";
import { createEngine } from "../engine/engine.js";
import type { UserFilter } from "../reference/list-users.js";
import { MemoryTupleStore } from "../tuples/memory.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import {
  type EngineFactory,
  errorText,
  matchesErrorCode,
  sameElements,
  seededRandom,
  shuffled,
  type TestableEngine,
  tupleKeyOf,
} from "./shared.js";

export interface MatrixTupleKey {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly condition?: { readonly name: string; readonly context?: Record<string, unknown> };
}

export interface MatrixCheckAssertion {
  readonly tuple: MatrixTupleKey;
  readonly contextualTuples?: readonly MatrixTupleKey[] | null;
  readonly context?: ConditionContext | null;
  readonly expectation?: boolean | null;
  readonly errorCode?: number;
}

export interface MatrixListObjectsAssertion {
  readonly request: { readonly user: string; readonly type: string; readonly relation: string };
  readonly contextualTuples?: readonly MatrixTupleKey[] | null;
  readonly context?: ConditionContext | null;
  readonly expectation?: readonly string[] | null;
  readonly errorCode?: number;
}

export interface MatrixListUsersAssertion {
  readonly request: {
    readonly filters: readonly string[];
    readonly object: string;
    readonly relation: string;
  };
  readonly contextualTuples?: readonly MatrixTupleKey[] | null;
  readonly context?: ConditionContext | null;
  readonly expectation?: readonly string[] | null;
  readonly errorCode?: number;
}

export interface MatrixStage {
  readonly model: string;
  readonly tuples?: readonly MatrixTupleKey[] | null;
  readonly checkAssertions?: readonly MatrixCheckAssertion[] | null;
  readonly listObjectsAssertions?: readonly MatrixListObjectsAssertion[] | null;
  readonly listUsersAssertions?: readonly MatrixListUsersAssertion[] | null;
}

export interface MatrixTest {
  readonly name: string;
  readonly stages: readonly MatrixStage[];
}

export interface MatrixFile {
  readonly tests: readonly MatrixTest[];
}

export type ConformanceVariant = "stored" | "contextual";

export interface ConformanceFailure {
  readonly test: string;
  readonly variant: ConformanceVariant;
  readonly stage: number;
  readonly kind: "model" | "write" | "check" | "listObjects" | "listUsers";
  /** The assertion's index within its list (-1 for model and write failures). */
  readonly index: number;
  readonly message: string;
  readonly request?: unknown;
}

export interface ConformanceReport {
  /** Test runs (a test may run twice: stored and contextual). */
  readonly runs: number;
  readonly assertions: number;
  readonly passed: number;
  readonly failures: readonly ConformanceFailure[];
  /** The shuffle seed, to replay the run. */
  readonly seed: number;
}

export interface ConformanceOptions {
  /** Shuffle seed (default: random; the report says which). */
  readonly seed?: number;
  /** Only tests whose name passes this filter. */
  readonly filter?: (testName: string) => boolean;
  /** Skip the contextual-tuple variant (default false). */
  readonly storedOnly?: boolean;
  /** The engine under test (default: createEngine, the reference). It gets `store`, `model` and options. */
  readonly createEngine?: EngineFactory;
  /** A new, empty store for each test run (default: a MemoryTupleStore); closed after the run. */
  readonly openStore?: () => Promise<TupleStore>;
}

/** Parses a matrix file (YAML text or the parsed object) and runs every test in it. */
export async function runConformanceFile(
  source: string | MatrixFile,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  // yaml loads on demand: the browser bundle of the root entry does not carry it for apps that never run this.
  const file = (typeof source === "string" ? (await import("yaml")).parse(source) : source) as MatrixFile;
  if (file === null || typeof file !== "object" || !Array.isArray(file.tests)) {
    throw new TypeError("a conformance file needs a `tests` list");
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const failures: ConformanceFailure[] = [];
  let runs = 0;
  let assertions = 0;
  let passed = 0;
  for (const test of file.tests) {
    if (options.filter !== undefined && !options.filter(test.name)) continue;
    const variants: ConformanceVariant[] = ["stored"];
    if (!options.storedOnly && test.stages.length === 1 && (test.stages[0]!.tuples ?? []).length <= 100) {
      variants.push("contextual");
    }
    for (const variant of variants) {
      runs++;
      const result = await runTest(
        test,
        variant,
        random,
        options.createEngine ?? createEngine,
        options.openStore,
      );
      assertions += result.assertions;
      passed += result.passed;
      failures.push(...result.failures);
    }
  }
  return { runs, assertions, passed, failures, seed };
}

interface TestResult {
  assertions: number;
  passed: number;
  failures: ConformanceFailure[];
}

async function runTest(
  test: MatrixTest,
  variant: ConformanceVariant,
  random: () => number,
  factory: EngineFactory,
  openStore?: () => Promise<TupleStore>,
): Promise<TestResult> {
  const result: TestResult = { assertions: 0, passed: 0, failures: [] };
  const store = openStore === undefined ? new MemoryTupleStore() : await openStore();
  try {
    for (const [stageIndex, stage] of test.stages.entries()) {
      const fail = (
        kind: ConformanceFailure["kind"],
        index: number,
        message: string,
        request?: unknown,
      ): void => {
        result.failures.push({ test: test.name, variant, stage: stageIndex, kind, index, message, request });
      };
      let engine: TestableEngine;
      try {
        engine = await factory({
          model: stage.model,
          format: "openfga",
          store,
        });
      } catch (error) {
        fail("model", -1, `the model does not compile: ${errorText(error)}`);
        return result;
      }
      const tuples = shuffled(stage.tuples ?? [], random).map(tupleKeyOf);
      if (variant === "stored") {
        for (let i = 0; i < tuples.length; i += 40) {
          try {
            await engine.write({ writes: tuples.slice(i, i + 40) });
          } catch (error) {
            fail("write", -1, `writing the stage's tuples failed: ${errorText(error)}`);
            return result;
          }
        }
      }
      const contextualFor = (extra: readonly MatrixTupleKey[] | null | undefined): TupleKey[] => {
        const own = shuffled(extra ?? [], random).map(tupleKeyOf);
        return variant === "contextual" ? [...own, ...tuples] : own;
      };
      // No consistency: the matrix runs with the engine's defaults (read-your-writes).
      const common = (a: { context?: ConditionContext | null }) => ({
        ...(a.context != null ? { context: a.context } : {}),
      });

      for (const [index, assertion] of (stage.checkAssertions ?? []).entries()) {
        result.assertions++;
        const request = {
          user: assertion.tuple.user,
          relation: assertion.tuple.relation,
          object: assertion.tuple.object,
          contextualTuples: contextualFor(assertion.contextualTuples),
          ...common(assertion),
        };
        const problem = await expectOutcome(
          () => engine.check(request),
          assertion.errorCode,
          (allowed) =>
            allowed === (assertion.expectation ?? false)
              ? undefined
              : `expected ${assertion.expectation ?? false}, got ${allowed}`,
        );
        if (problem === undefined) result.passed++;
        else fail("check", index, problem, request);
      }

      for (const [index, assertion] of (stage.listObjectsAssertions ?? []).entries()) {
        result.assertions++;
        const request = {
          user: assertion.request.user,
          type: assertion.request.type,
          relation: assertion.request.relation,
          contextualTuples: contextualFor(assertion.contextualTuples),
          ...common(assertion),
        };
        const problem = await expectListed(
          engine,
          () => engine.listObjects(request),
          assertion,
          (object) => ({
            user: request.user,
            relation: request.relation,
            object,
            contextualTuples: request.contextualTuples,
            ...common(assertion),
          }),
        );
        if (problem === undefined) result.passed++;
        else fail("listObjects", index, problem, request);
      }

      for (const [index, assertion] of (stage.listUsersAssertions ?? []).entries()) {
        result.assertions++;
        const request = {
          object: assertion.request.object,
          relation: assertion.request.relation,
          userFilters: assertion.request.filters.map(toFilter),
          contextualTuples: contextualFor(assertion.contextualTuples),
          ...common(assertion),
        };
        const problem = await expectListed(
          engine,
          () => engine.listUsers(request),
          assertion,
          (user) => ({
            user,
            relation: request.relation,
            object: request.object,
            contextualTuples: request.contextualTuples,
            ...common(assertion),
          }),
        );
        if (problem === undefined) result.passed++;
        else fail("listUsers", index, problem, request);
      }
    }
  } finally {
    await store.close();
  }
  return result;
}

/** Runs `call`; returns undefined when the outcome meets the expectation, else what went wrong. */
async function expectOutcome<T>(
  call: () => Promise<T>,
  errorCode: number | undefined,
  judge: (value: T) => string | undefined,
): Promise<string | undefined> {
  let value: T;
  try {
    value = await call();
  } catch (error) {
    if (errorCode !== undefined) {
      return matchesErrorCode(error, errorCode)
        ? undefined
        : `expected error ${errorCode}, got ${errorText(error)}`;
    }
    return `unexpected error ${errorText(error)}`;
  }
  if (errorCode !== undefined) return `expected error ${errorCode}, got ${json(value)}`;
  return judge(value);
}

/**
 * A list assertion (listObjects or listUsers): the listed set must equal the expectation (or the expected error
 * occur), and, as OpenFGA's runner requires, every listed item must then pass check.
 */
async function expectListed(
  engine: TestableEngine,
  list: () => Promise<string[]>,
  assertion: { readonly errorCode?: number; readonly expectation?: readonly string[] | null },
  checkFor: (item: string) => Parameters<TestableEngine["check"]>[0],
): Promise<string | undefined> {
  let listed: string[] = [];
  const problem = await expectOutcome(list, assertion.errorCode, (found) => {
    listed = found;
    const expected = assertion.expectation ?? [];
    return sameElements(found, expected) ? undefined : `expected ${json(expected)}, got ${json(found)}`;
  });
  if (problem !== undefined || assertion.errorCode !== undefined) return problem;
  return everyPassesCheck(engine, listed, checkFor);
}

async function everyPassesCheck(
  engine: TestableEngine,
  items: readonly string[],
  requestFor: (item: string) => Parameters<TestableEngine["check"]>[0],
): Promise<string | undefined> {
  for (const item of items) {
    try {
      if (!(await engine.check(requestFor(item)))) return `${item} was listed but check denies it`;
    } catch (error) {
      return `${item} was listed but check fails: ${errorText(error)}`;
    }
  }
  return undefined;
}

/** `"user"` -> { type: "user" }; `"group#member"` -> { type: "group", relation: "member" }. */
export function toFilter(text: string): UserFilter {
  const hash = text.indexOf("#");
  return hash < 0 ? { type: text } : { type: text.slice(0, hash), relation: text.slice(hash + 1) };
}

function json(value: unknown): string {
  return JSON.stringify(value);
}
