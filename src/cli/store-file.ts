/**
 * OpenFGA store files (`.fga.yaml`, the format `fga model test` runs): a model (`model` inline or `model_file`),
 * global tuples (`tuples`, `tuple_file`, `tuple_files`) and `tests`, each with its own tuples (appended to the
 * global ones) and `check` / `list_objects` / `list_users` assertions, optionally with `context` and
 * `contextual_tuples`. `check` accepts `user` or `users` and `object` or `objects` (every combination is checked).
 *
 * Every test runs on a fresh engine holding the global and the test's tuples, so tests cannot see each other.
 * The model may be in any language nexus-fast reads (OpenFGA DSL as `fga` expects, SpiceDB schema, Nexus configs).
 */
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { sameElements } from "../conformance/shared.js";
import { createEngine, type Engine } from "../engine/engine.js";
import type { TupleKey } from "../tuples/tuple.js";
import { describe, NexusError } from "../util/errors.js";
import {
  containedPath,
  type FileTuple,
  type LoadedModel,
  loadModel,
  loadTuples,
  parseDocument,
  tuplesFrom,
} from "./load.js";
import { toTupleKey } from "./tuples.js";

export interface AssertionResult {
  readonly test: string;
  /** e.g. `check user:anne viewer document:1`. */
  readonly what: string;
  readonly expected: string;
  readonly actual: string;
  readonly passed: boolean;
}

export interface StoreFileResult {
  readonly path: string;
  readonly name: string;
  readonly tests: number;
  readonly results: readonly AssertionResult[];
}

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(path: string, message: string): NexusError {
  return new NexusError("invalid_argument", `${path}: ${message}`, { path });
}

function list(value: unknown, where: string, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad(path, `${where} must be a list, got ${describe(value)}`);
  return value;
}

function stringList(raw: Raw, one: string, many: string, where: string, path: string): string[] {
  const single = raw[one];
  const multiple = raw[many];
  if (single !== undefined && multiple !== undefined)
    throw bad(path, `${where} has both "${one}" and "${many}"`);
  const values = single !== undefined ? [single] : list(multiple, `${where}.${many}`, path);
  if (values.length === 0) throw bad(path, `${where} needs "${one}" or "${many}"`);
  for (const v of values) {
    if (typeof v !== "string") throw bad(path, `${where}.${one} must be a string, got ${describe(v)}`);
  }
  return values as string[];
}

function contextOf(raw: Raw, where: string, path: string): Record<string, unknown> | undefined {
  const context = raw.context;
  if (context === undefined || context === null) return undefined;
  if (!isRecord(context)) throw bad(path, `${where}.context must be a map, got ${describe(context)}`);
  return context;
}

function contextualOf(raw: Raw, where: string): TupleKey[] | undefined {
  const value = raw.contextual_tuples ?? raw.contextualTuples;
  if (value === undefined || value === null) return undefined;
  return tuplesFrom(value, `${where}.contextual_tuples`).map((t) => toTupleKey(t));
}

/** Tuples named by `tuples`, `tuple_file` and `tuple_files` of one level of the file. */
async function tuplesOf(raw: Raw, base: string, where: string): Promise<FileTuple[]> {
  const out: FileTuple[] = [];
  if (raw.tuples !== undefined && raw.tuples !== null)
    for (const t of tuplesFrom(raw.tuples, `${where}.tuples`)) out.push(t);
  const files = [
    ...(typeof raw.tuple_file === "string" ? [raw.tuple_file] : []),
    ...list(raw.tuple_files, `${where}.tuple_files`, where),
  ];
  for (const file of files) {
    if (typeof file !== "string") throw bad(where, `tuple file names must be strings, got ${describe(file)}`);
    for (const t of await loadTuples(containedPath(base, file, "tuple file"))) out.push(t);
  }
  return out;
}

async function modelOf(raw: Raw, base: string, path: string): Promise<LoadedModel> {
  if (typeof raw.model === "string") return { model: raw.model, format: undefined };
  if (isRecord(raw.model)) return { model: raw.model, format: undefined };
  if (typeof raw.model_file === "string") return loadModel(containedPath(base, raw.model_file, "model_file"));
  throw bad(path, 'needs "model" (inline) or "model_file"');
}

/** Loads a store file and runs all its tests. @throws NexusError for a file that cannot be read or understood. */
export async function runStoreFile(path: string): Promise<StoreFileResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new NexusError(
      "io_error",
      `cannot read store file ${describe(path)}: ${(cause as Error).message}`,
      { path },
    );
  }
  const doc = parseDocument(text, path);
  if (!isRecord(doc)) throw bad(path, "a store file must be a YAML map");
  const base = dirname(path);
  const model = await modelOf(doc, base, path);
  const globalTuples = await tuplesOf(doc, base, path);
  const tests = list(doc.tests, "tests", path);
  const results: AssertionResult[] = [];
  for (const [index, rawTest] of tests.entries()) {
    if (!isRecord(rawTest)) throw bad(path, `tests[${index}] must be a map`);
    const name = typeof rawTest.name === "string" ? rawTest.name : `tests[${index}]`;
    const tuples = [...globalTuples, ...(await tuplesOf(rawTest, base, `${path} ${name}`))];
    results.push(...(await runTest(model, tuples, rawTest, name, path)));
  }
  return { path, name: typeof doc.name === "string" ? doc.name : path, tests: tests.length, results };
}

async function runTest(
  model: LoadedModel,
  tuples: readonly FileTuple[],
  test: Raw,
  name: string,
  path: string,
): Promise<AssertionResult[]> {
  const engine = await createEngine({
    model: model.model,
    ...(model.format ? { format: model.format } : {}),
  });
  try {
    if (tuples.length > 0) {
      // One atomic write; duplicates between the global and the test's tuples are written once.
      await engine.write({ writes: tuples.map((t) => toTupleKey(t)), onDuplicate: "ignore" });
    }
    const results: AssertionResult[] = [];
    for (const [i, raw] of list(test.check, `${name}.check`, path).entries()) {
      results.push(...(await checkAssertions(engine, raw, `${name}.check[${i}]`, name, path)));
    }
    for (const [i, raw] of list(test.list_objects, `${name}.list_objects`, path).entries()) {
      results.push(...(await listObjectsAssertions(engine, raw, `${name}.list_objects[${i}]`, name, path)));
    }
    for (const [i, raw] of list(test.list_users, `${name}.list_users`, path).entries()) {
      results.push(...(await listUsersAssertions(engine, raw, `${name}.list_users[${i}]`, name, path)));
    }
    return results;
  } finally {
    await engine.close();
  }
}

function assertionsOf(raw: Raw, where: string, path: string): [string, unknown][] {
  if (!isRecord(raw.assertions))
    throw bad(path, `${where}.assertions must be a map of relation to expectation`);
  return Object.entries(raw.assertions);
}

/** Runs `fn`, turning a thrown error into its printable text. */
async function outcome<T>(fn: () => Promise<T>): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error: error instanceof NexusError ? `${error.code}: ${error.message}` : String(error) };
  }
}

async function checkAssertions(engine: Engine, raw: unknown, where: string, test: string, path: string) {
  if (!isRecord(raw)) throw bad(path, `${where} must be a map`);
  const users = stringList(raw, "user", "users", where, path);
  const objects = stringList(raw, "object", "objects", where, path);
  const context = contextOf(raw, where, path);
  const contextualTuples = contextualOf(raw, where);
  const results: AssertionResult[] = [];
  for (const [relation, expected] of assertionsOf(raw, where, path)) {
    if (typeof expected !== "boolean")
      throw bad(path, `${where}.assertions.${relation} must be true or false`);
    for (const user of users) {
      for (const object of objects) {
        const got = await outcome(() =>
          engine.check({
            user,
            relation,
            object,
            ...(context ? { context } : {}),
            ...(contextualTuples ? { contextualTuples } : {}),
          }),
        );
        const actual = "value" in got ? String(got.value) : `error (${got.error})`;
        results.push({
          test,
          what: `check ${user} ${relation} ${object}`,
          expected: String(expected),
          actual,
          passed: "value" in got && got.value === expected,
        });
      }
    }
  }
  return results;
}

async function listObjectsAssertions(
  engine: Engine,
  raw: unknown,
  where: string,
  test: string,
  path: string,
) {
  if (!isRecord(raw)) throw bad(path, `${where} must be a map`);
  const users = stringList(raw, "user", "users", where, path);
  if (typeof raw.type !== "string") throw bad(path, `${where}.type must be a type name`);
  const type = raw.type;
  const context = contextOf(raw, where, path);
  const contextualTuples = contextualOf(raw, where);
  const results: AssertionResult[] = [];
  for (const [relation, expected] of assertionsOf(raw, where, path)) {
    const want = list(expected, `${where}.assertions.${relation}`, path) as string[];
    for (const user of users) {
      const got = await outcome(() =>
        engine.listObjects({
          user,
          relation,
          type,
          ...(context ? { context } : {}),
          ...(contextualTuples ? { contextualTuples } : {}),
        }),
      );
      results.push({
        test,
        what: `list_objects ${user} ${relation} ${type}`,
        expected: show(want),
        actual: "value" in got ? show(got.value) : `error (${got.error})`,
        passed: "value" in got && sameElements(got.value, want),
      });
    }
  }
  return results;
}

async function listUsersAssertions(engine: Engine, raw: unknown, where: string, test: string, path: string) {
  if (!isRecord(raw)) throw bad(path, `${where} must be a map`);
  const objects = stringList(raw, "object", "objects", where, path);
  const filters = list(raw.user_filter ?? raw.user_filters, `${where}.user_filter`, path).map((f, i) => {
    if (!isRecord(f) || typeof f.type !== "string")
      throw bad(path, `${where}.user_filter[${i}] must be { type, relation? }`);
    return { type: f.type, ...(typeof f.relation === "string" ? { relation: f.relation } : {}) };
  });
  if (filters.length === 0) throw bad(path, `${where}.user_filter needs at least one { type }`);
  const context = contextOf(raw, where, path);
  const contextualTuples = contextualOf(raw, where);
  const results: AssertionResult[] = [];
  for (const [relation, expected] of assertionsOf(raw, where, path)) {
    const users = isRecord(expected) ? expected.users : expected;
    const want = list(users, `${where}.assertions.${relation}.users`, path) as string[];
    for (const object of objects) {
      const got = await outcome(() =>
        engine.listUsers({
          object,
          relation,
          userFilters: filters,
          ...(context ? { context } : {}),
          ...(contextualTuples ? { contextualTuples } : {}),
        }),
      );
      results.push({
        test,
        what: `list_users ${object} ${relation} [${filters.map((f) => (f.relation ? `${f.type}#${f.relation}` : f.type)).join(", ")}]`,
        expected: show(want),
        actual: "value" in got ? show(got.value) : `error (${got.error})`,
        passed: "value" in got && sameElements(got.value, want),
      });
    }
  }
  return results;
}

function show(values: readonly string[]): string {
  return `[${[...values].sort().join(", ")}]`;
}
