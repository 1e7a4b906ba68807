/**
 * Runs OpenFGA CLI store test files (`fga model test --tests store.fga.yaml`) against nexus-fast:
 *
 * ```yaml
 * name: Store name
 * model_file: ./model.fga          # or `model: |` inline (any language nexus-fast reads)
 * tuple_file: ./tuples.yaml        # or `tuples:` inline, or `tuple_files: [...]` (.yaml, .yml, .json, .csv)
 * tests:
 *   - name: test-1
 *     tuples: [...]                # added to the global tuples for this test (also tuple_file / tuple_files)
 *     check:
 *       - user: user:anne          # or `users: [...]`; `object` / `objects` likewise
 *         object: folder:1
 *         context: { ... }
 *         assertions: { can_view: true, can_write: false }
 *     list_objects:
 *       - user: user:anne
 *         type: folder
 *         assertions: { can_view: [folder:1] }
 *     list_users:
 *       - object: folder:1
 *         user_filter: [{ type: user }]
 *         assertions: { can_view: { users: [user:anne] } }
 * ```
 *
 * Each test gets a fresh in-memory store holding the global tuples plus its own. Files a store file names are
 * read through `options.readFile` (the CLI passes one that resolves paths next to the store file), so this
 * module stays free of Node APIs.
 */
import type { ConditionContext } from "../conditions/cel.js";
import { createEngine } from "../engine/engine.js";
import type { ModelFormat } from "../model/program.js";
import type { TupleKey } from "../tuples/tuple.js";
import { NexusError } from "../util/errors.js";
import { type EngineFactory, errorText, sameElements, type TestableEngine, tupleKeyOf } from "./shared.js";

export interface StoreTestOptions {
  /** Reads a file the store file names (`model_file`, `tuple_file`, ...), relative to the store file. */
  readonly readFile?: (path: string) => Promise<string>;
  /** The model's language (default: detected). */
  readonly format?: ModelFormat;
  /** Only tests whose name passes this filter. */
  readonly filter?: (testName: string) => boolean;
  /** The engine under test (default: createEngine, the reference). */
  readonly createEngine?: EngineFactory;
}

export type StoreAssertionKind = "check" | "list_objects" | "list_users";

export interface StoreAssertionResult {
  readonly kind: StoreAssertionKind;
  /** The request as sent (user, relation, object / type, context). */
  readonly request: Readonly<Record<string, unknown>>;
  readonly expected: unknown;
  /** The answer, when the call succeeded. */
  readonly actual?: unknown;
  /** The error, when the call failed. */
  readonly error?: string;
  readonly passed: boolean;
}

export interface StoreTestCaseResult {
  readonly name: string;
  readonly description?: string;
  readonly results: readonly StoreAssertionResult[];
  /** Set when the test could not run at all (a tuple that does not fit the model, an unreadable file). */
  readonly error?: string;
  readonly passed: boolean;
}

export interface StoreTestReport {
  readonly name?: string;
  readonly tests: readonly StoreTestCaseResult[];
  readonly assertions: number;
  readonly failed: number;
  readonly passed: boolean;
}

interface RawTuple {
  user: string;
  relation: string;
  object: string;
  condition?: { name: string; context?: Record<string, unknown> };
}

interface RawCheck {
  user?: string;
  users?: string[];
  object?: string;
  objects?: string[];
  context?: ConditionContext;
  assertions?: Record<string, boolean>;
}

interface RawListObjects {
  user: string;
  type: string;
  context?: ConditionContext;
  assertions?: Record<string, string[] | null>;
}

interface RawListUsers {
  object: string;
  user_filter?: { type: string; relation?: string }[];
  context?: ConditionContext;
  assertions?: Record<string, { users?: string[] | null } | null>;
}

interface RawTest {
  name?: string;
  description?: string;
  tuples?: RawTuple[];
  tuple_file?: string;
  tuple_files?: string[];
  check?: RawCheck[];
  list_objects?: RawListObjects[];
  list_users?: RawListUsers[];
}

interface RawStore {
  name?: string;
  model?: string | object;
  model_file?: string;
  tuples?: RawTuple[];
  tuple_file?: string;
  tuple_files?: string[];
  tests?: RawTest[];
}

/**
 * Runs a store test file (YAML/JSON text or the parsed object) and reports every assertion.
 * @throws NexusError "invalid_argument" when the store file itself is malformed or names a file it cannot read,
 *   "invalid_model" when the model does not compile.
 */
export async function runStoreTest(
  source: string | object,
  options: StoreTestOptions = {},
): Promise<StoreTestReport> {
  // yaml loads on demand: the browser bundle of the root entry does not carry it for apps that never run this.
  yaml ??= await import("yaml");
  const store = (typeof source === "string" ? parseText(source, "store file") : source) as RawStore;
  if (store === null || typeof store !== "object") {
    throw new NexusError("invalid_argument", "a store test file must be a YAML or JSON object");
  }
  const model = await loadModel(store, options);
  const globalTuples = await loadTuples(store, options, "the store");
  const tests: StoreTestCaseResult[] = [];
  for (const [index, test] of (store.tests ?? []).entries()) {
    const name = test.name ?? `test ${index + 1}`;
    if (options.filter !== undefined && !options.filter(name)) continue;
    tests.push(await runCase(name, test, model, globalTuples, options));
  }
  const assertions = tests.reduce((n, t) => n + t.results.length, 0);
  const failed = tests.reduce((n, t) => n + t.results.filter((r) => !r.passed).length + (t.error ? 1 : 0), 0);
  return {
    ...(store.name !== undefined ? { name: store.name } : {}),
    tests,
    assertions,
    failed,
    passed: failed === 0,
  };
}

async function runCase(
  name: string,
  test: RawTest,
  model: string | object,
  globalTuples: TupleKey[],
  options: StoreTestOptions,
): Promise<StoreTestCaseResult> {
  const results: StoreAssertionResult[] = [];
  const base = { name, ...(test.description !== undefined ? { description: test.description } : {}) };
  let engine: TestableEngine | undefined;
  try {
    const tuples = [...globalTuples, ...(await loadTuples(test, options, `test ${name}`))];
    engine = await (options.createEngine ?? createEngine)({
      model,
      ...(options.format !== undefined ? { format: options.format } : {}),
    });
    for (let i = 0; i < tuples.length; i += 1000) await engine.write({ writes: tuples.slice(i, i + 1000) });
  } catch (error) {
    await engine?.close();
    return { ...base, results, error: errorText(error), passed: false };
  }
  try {
    for (const entry of test.check ?? []) {
      const users = entry.users ?? (entry.user !== undefined ? [entry.user] : []);
      const objects = entry.objects ?? (entry.object !== undefined ? [entry.object] : []);
      for (const user of users) {
        for (const object of objects) {
          for (const [relation, expected] of Object.entries(entry.assertions ?? {})) {
            const request = { user, relation, object, ...(entry.context ? { context: entry.context } : {}) };
            results.push(
              await judge(
                "check",
                request,
                expected,
                () => engine!.check(request),
                (a) => a === expected,
              ),
            );
          }
        }
      }
    }
    for (const entry of test.list_objects ?? []) {
      for (const [relation, expected] of Object.entries(entry.assertions ?? {})) {
        const request = {
          user: entry.user,
          type: entry.type,
          relation,
          ...(entry.context ? { context: entry.context } : {}),
        };
        const want = expected ?? [];
        results.push(
          await judge(
            "list_objects",
            request,
            want,
            () => engine!.listObjects(request),
            (a) => sameElements(a, want),
          ),
        );
      }
    }
    for (const entry of test.list_users ?? []) {
      for (const [relation, expected] of Object.entries(entry.assertions ?? {})) {
        const request = {
          object: entry.object,
          relation,
          userFilters: entry.user_filter ?? [],
          ...(entry.context ? { context: entry.context } : {}),
        };
        const want = expected?.users ?? [];
        results.push(
          await judge(
            "list_users",
            request,
            want,
            () => engine!.listUsers(request),
            (a) => sameElements(a, want),
          ),
        );
      }
    }
  } finally {
    await engine.close();
  }
  return { ...base, results, passed: results.every((r) => r.passed) };
}

async function judge<T>(
  kind: StoreAssertionKind,
  request: Record<string, unknown>,
  expected: unknown,
  call: () => Promise<T>,
  ok: (actual: T) => boolean,
): Promise<StoreAssertionResult> {
  try {
    const actual = await call();
    return { kind, request, expected, actual, passed: ok(actual) };
  } catch (error) {
    return { kind, request, expected, error: errorText(error), passed: false };
  }
}

async function loadModel(store: RawStore, options: StoreTestOptions): Promise<string | object> {
  if (store.model !== undefined && store.model !== null && store.model !== "") return store.model;
  if (store.model_file === undefined) {
    throw new NexusError("invalid_argument", "the store file names no model (`model` or `model_file`)");
  }
  const text = await read(store.model_file, options);
  if (store.model_file === "fga.mod" || store.model_file.endsWith("/fga.mod")) {
    // A modular model: the fga.mod and the module files it lists, named relative to the fga.mod's folder.
    const folder = store.model_file.slice(0, store.model_file.length - "fga.mod".length);
    const modules: Record<string, string> = { "fga.mod": text };
    for (const name of modFileContents(text)) modules[name] = await read(folder + name, options);
    return { modules };
  }
  return store.model_file.endsWith(".json") ? (parseText(text, store.model_file) as object) : text;
}

/** The module files an fga.mod lists (`contents:`); the model compiler reports a malformed fga.mod. */
function modFileContents(text: string): string[] {
  const parsed = parseText(text, "fga.mod") as { contents?: unknown } | null;
  const contents = parsed?.contents;
  return Array.isArray(contents) ? contents.filter((c): c is string => typeof c === "string") : [];
}

async function loadTuples(
  holder: { tuples?: RawTuple[]; tuple_file?: string; tuple_files?: string[] },
  options: StoreTestOptions,
  where: string,
): Promise<TupleKey[]> {
  const out: TupleKey[] = [];
  for (const t of holder.tuples ?? []) out.push(toTupleKey(t, where));
  const files = [
    ...(holder.tuple_file !== undefined ? [holder.tuple_file] : []),
    ...(holder.tuple_files ?? []),
  ];
  for (const file of files) {
    const text = await read(file, options);
    const rows = file.toLowerCase().endsWith(".csv") ? parseCsvTuples(text, file) : parseText(text, file);
    if (!Array.isArray(rows))
      throw new NexusError("invalid_argument", `tuple file ${file} must hold a list of tuples`);
    for (const t of rows) out.push(toTupleKey(t as RawTuple, file));
  }
  return out;
}

/**
 * Reads a file the store file names. Paths must stay inside the store file's folder (no absolute path, no `..`
 * climbing out), as the fga CLI requires: `model_file: ../../etc/hosts` is "invalid_argument".
 */
async function read(path: string, options: StoreTestOptions): Promise<string> {
  if (!staysInFolder(path)) {
    throw new NexusError(
      "invalid_argument",
      `the store file names ${JSON.stringify(path)}, which is outside the store file's folder`,
      { path },
    );
  }
  if (options.readFile === undefined) {
    throw new NexusError(
      "invalid_argument",
      `the store file names ${JSON.stringify(path)}, but no readFile was given`,
    );
  }
  try {
    return await options.readFile(path);
  } catch (cause) {
    throw new NexusError(
      "invalid_argument",
      `cannot read ${JSON.stringify(path)}: ${errorText(cause)}`,
      { path },
      {
        cause,
      },
    );
  }
}

function staysInFolder(path: string): boolean {
  if (path === "" || path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:/.test(path)) return false;
  let depth = 0;
  for (const part of path.split(/[\\/]/)) {
    if (part === "..") depth--;
    else if (part !== "" && part !== ".") depth++;
    if (depth < 0) return false;
  }
  return true;
}

function toTupleKey(t: RawTuple, where: string): TupleKey {
  if (t === null || typeof t !== "object") {
    throw new NexusError("invalid_argument", `a tuple in ${where} is not an object: ${JSON.stringify(t)}`);
  }
  return tupleKeyOf(t);
}

let yaml: typeof import("yaml") | undefined;

/** YAML (or JSON) text; yaml is loaded by runStoreTest before anything here runs. */
function parseText(text: string, what: string): unknown {
  try {
    if (yaml === undefined) throw new Error("the yaml parser is not loaded");
    return yaml.parse(text);
  } catch (cause) {
    throw new NexusError("invalid_argument", `${what} does not parse: ${errorText(cause)}`, undefined, {
      cause,
    });
  }
}

/**
 * The OpenFGA CLI's CSV tuple files: a header row naming columns among user_type, user_id, user_relation,
 * relation, object_type, object_id, condition_name, condition_context (JSON).
 */
export function parseCsvTuples(text: string, what = "CSV"): RawTuple[] {
  const rows = parseCsv(text).filter((r) => r.some((cell) => cell.trim() !== ""));
  if (rows.length === 0) return [];
  const header = rows[0]!.map((h) => h.trim());
  const column = (name: string): number => header.indexOf(name);
  for (const required of ["user_type", "user_id", "relation", "object_type", "object_id"]) {
    if (column(required) < 0) throw new NexusError("invalid_argument", `${what} has no ${required} column`);
  }
  const cell = (row: string[], name: string): string => {
    const i = column(name);
    return i < 0 ? "" : (row[i] ?? "").trim();
  };
  return rows.slice(1).map((row, i) => {
    const userRelation = cell(row, "user_relation");
    const conditionName = cell(row, "condition_name");
    const conditionContext = cell(row, "condition_context");
    let context: Record<string, unknown> | undefined;
    if (conditionContext !== "") {
      try {
        context = JSON.parse(conditionContext) as Record<string, unknown>;
      } catch {
        throw new NexusError("invalid_argument", `${what} row ${i + 2}: condition_context is not JSON`);
      }
    }
    return {
      user: `${cell(row, "user_type")}:${cell(row, "user_id")}${userRelation ? `#${userRelation}` : ""}`,
      relation: cell(row, "relation"),
      object: `${cell(row, "object_type")}:${cell(row, "object_id")}`,
      ...(conditionName ? { condition: { name: conditionName, ...(context ? { context } : {}) } } : {}),
    };
  });
}

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
