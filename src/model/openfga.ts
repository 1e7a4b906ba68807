/**
 * OpenFGA models (DSL text, schema 1.1, or the AuthorizationModel JSON the OpenFGA API takes) -> Program.
 *
 * The DSL goes through OpenFGA's own parser and validator (@openfga/syntax-transformer), so a model is accepted
 * here exactly when `fga model validate` accepts it; its errors become "invalid_model" with the validator's
 * message. The JSON (`type_definitions`, rewrites `this` / `computedUserset` / `tupleToUserset` / `union` /
 * `intersection` / `difference`, `metadata.relations[].directly_related_user_types`, `conditions`) is compiled
 * into the shared Program, then checked by the rules every model language shares (validate.ts).
 *
 * The DSL tooling loads on demand (dsl.ts): DSL text and modular models compile here once it is loaded, JSON
 * always.
 *
 * OpenFGA relations accept expiring tuples (`expiresAt`); relations named `shared-*` are marked shareable
 * (cross-tenant grants), the same convention Nexus namespace configs use.
 */
import { describe, NexusError } from "../util/errors.js";
import { fgaModParser, openFgaDsl } from "./dsl.js";
import {
  checkModelObject,
  checkModelText,
  DEFAULT_MODEL_LIMITS,
  type ModelLimits,
  type TextModelShape,
} from "./limits.js";
import type {
  ConditionDef,
  ConditionParamType,
  Program,
  RelationDef,
  Rewrite,
  SubjectType,
  TypeDef,
} from "./program.js";
import { validateProgram } from "./validate.js";

/** A relation reference in `directly_related_user_types`. */
export interface OpenFgaRelationReference {
  readonly type: string;
  readonly relation?: string;
  readonly wildcard?: object;
  readonly condition?: string;
}

/** A userset rewrite, as the OpenFGA API's JSON spells it (camelCase or snake_case). */
export type OpenFgaUserset = Readonly<Record<string, unknown>>;

export interface OpenFgaTypeDefinition {
  readonly type: string;
  readonly relations?: Readonly<Record<string, OpenFgaUserset>> | null;
  readonly metadata?: {
    readonly relations?: Readonly<
      Record<string, { readonly directly_related_user_types?: readonly OpenFgaRelationReference[] }>
    > | null;
  } | null;
}

export interface OpenFgaConditionParam {
  readonly type_name: string;
  readonly generic_types?: readonly OpenFgaConditionParam[];
}

export interface OpenFgaCondition {
  readonly name?: string;
  readonly expression: string;
  readonly parameters?: Readonly<Record<string, OpenFgaConditionParam>> | null;
}

/** OpenFGA's AuthorizationModel JSON (the `id` is ignored). */
export interface OpenFgaModelJson {
  readonly schema_version?: string;
  readonly type_definitions: readonly OpenFgaTypeDefinition[];
  readonly conditions?: Readonly<Record<string, OpenFgaCondition>> | null;
}

/**
 * A modular model (schema 1.2) as files: an `fga.mod` (its key is `fga.mod` or ends in `/fga.mod`) listing module
 * files (`contents: [core.fga, issues/projects.fga]`), each under its path relative to the fga.mod's folder.
 * `{ modules: { "fga.mod": "schema: '1.2'\ncontents:\n  - core.fga\n", "core.fga": "module core\ntype user" } }`
 */
export interface OpenFgaModules {
  readonly modules: Readonly<Record<string, string>>;
}

/** Whether `model` is the modular-model input ({ modules: { "fga.mod": …, … } }). */
export function isModularModel(model: unknown): model is OpenFgaModules {
  if (typeof model !== "object" || model === null || Array.isArray(model)) return false;
  const modules = (model as { modules?: unknown }).modules;
  return typeof modules === "object" && modules !== null && !Array.isArray(modules);
}

export interface CompileOpenFgaOptions {
  /** Limits the caller already applied to the source (checked again here for module files). */
  readonly limits?: ModelLimits;
  /** The pre-scan of a text model (limits.ts checkModelText), when the caller made one. */
  readonly shape?: TextModelShape;
}

/**
 * Relations per type above which OpenFGA's DSL validator is not run: its cost grows with the square of a type's
 * chain of computed relations (400 relations: 4.5 s). Larger models are checked by the transformer and the rules
 * every language shares (validate.ts), which is what the validator adds for smaller ones apart from its wording.
 */
const VALIDATOR_MAX_RELATIONS_PER_TYPE = 150;

/**
 * Compiles an OpenFGA model: DSL text (`model\n  schema 1.1\ntype user ...`), JSON text, the JSON object, or a
 * modular model (`{ modules: { "fga.mod": …, "core.fga": … } }`).
 * DSL text and modular models need the DSL parser loaded (`await loadOpenFgaDsl()`; compileModelAsync and
 * createEngine load it themselves).
 * @throws NexusError "invalid_model" naming the problem (the DSL validator's message, with 1-based lines, for DSL
 *   input; the file, line and column for module files); "not_ready" for DSL before the parser is loaded.
 */
export function compileOpenFga(model: string | object, options: CompileOpenFgaOptions = {}): Program {
  const limits = options.limits ?? DEFAULT_MODEL_LIMITS;
  if (typeof model === "string") {
    const shape = options.shape ?? checkModelText(model, limits);
    const text = model.trim();
    if (text.startsWith("{")) {
      const json = parseJson(text);
      if (json !== null && typeof json === "object") checkModelObject(json, limits);
      return compileOpenFgaJson(json);
    }
    if (looksLikeModFile(text)) {
      throw new NexusError(
        "invalid_model",
        'this is an fga.mod file (a modular model): pass it with its module files, as { modules: { "fga.mod": …, "core.fga": … } }',
      );
    }
    return compileOpenFgaJson(dslToJson(model, shape.maxRelationsInType <= VALIDATOR_MAX_RELATIONS_PER_TYPE));
  }
  if (model === null || typeof model !== "object") {
    throw new NexusError(
      "invalid_model",
      `an OpenFGA model must be DSL text or JSON, got ${describe(model)}`,
    );
  }
  if (isModularModel(model)) return compileOpenFgaJson(modulesToJson(model, limits));
  return compileOpenFgaJson(model as OpenFgaModelJson);
}

/** Parses and validates OpenFGA DSL with OpenFGA's own tooling (loaded: see loadOpenFgaDsl), returning the API JSON. */
export function openFgaDslToJson(dsl: string): OpenFgaModelJson {
  return dslToJson(dsl, true);
}

function dslToJson(dsl: string, validate: boolean): OpenFgaModelJson {
  checkToolingNames(dsl);
  const { errors, parseDSL, validateJSON } = openFgaDsl();
  // One parse serves both steps: the tooling's validateDSL parses the text and checks the model it gets, and its
  // transformDSLToJSONObject parsed it again for the same model (the ANTLR parse is most of a DSL compile).
  let model: OpenFgaModelJson;
  try {
    const { listener, errorListener } = parseDSL(dsl);
    if (errorListener.errors.length > 0) throw new errors.DSLSyntaxError(errorListener.errors);
    model = listener.authorizationModel as unknown as OpenFgaModelJson;
  } catch (cause) {
    throw dslError(cause);
  }
  if (!validate) return model;
  try {
    // A copy: the model returned is the parser's own, whatever the validator does with what it is handed.
    validateJSON(structuredClone(model) as unknown as Parameters<typeof validateJSON>[0], {}, dsl);
  } catch (cause) {
    // The validator's own failures are the model's problems. Anything else is the validator crashing: version
    // 0.2.2 throws a TypeError on conditions in a tupleset's types (`define parent: [folder with cond]`), which
    // OpenFGA accepts; such models still go through the shared rules in validate.ts.
    if (cause instanceof errors.DSLSyntaxError || cause instanceof errors.ModelValidationError) {
      throw dslError(cause);
    }
  }
  return model;
}

/**
 * The names of Object.prototype's own properties (`__proto__`, `constructor`, `toString`, ...). OpenFGA's DSL tooling
 * keeps types, relations, conditions and parameters as keys of plain objects: under such a name its validator
 * wrote to JavaScript's built-in objects (`type __proto__` with a relation `viewer` set Object.prototype.viewer
 * for the whole process, and every later model defining `viewer` was refused), and its parser dropped a relation
 * named `__proto__`. OpenFGA itself allows them; here a DSL model naming one is refused before the tooling sees it.
 * (JSON models do not go through the tooling.)
 */
const TOOLING_UNSAFE_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));
/** A name in DSL text: a run of characters other than whitespace and the DSL's punctuation. */
const DSL_NAME = /[^\s[\],:#(){}|]+/g;

/**
 * Refuses DSL text (or a module file's) that uses one of TOOLING_UNSAFE_NAMES as a whole name, outside comments.
 * @throws NexusError "invalid_model" naming it and its line.
 */
function checkToolingNames(text: string, file?: string): void {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // Comments as the tooling strips them: a line starting with `#`, or ` #` and what follows.
    if (line.trimStart().startsWith("#")) continue;
    const code = line.split(" #")[0]!;
    for (const [name] of code.matchAll(DSL_NAME)) {
      if (!TOOLING_UNSAFE_NAMES.has(name)) continue;
      throw new NexusError(
        "invalid_model",
        `${file === undefined ? "" : `${file} `}line ${i + 1}: '${name}' cannot be a name in OpenFGA DSL here: OpenFGA's DSL tooling keeps names as keys of plain JavaScript objects, where '${name}' is a built-in property; rename it (or give the model as JSON)`,
        { name, line: i + 1, ...(file === undefined ? {} : { file }) },
      );
    }
  }
}

/** An fga.mod is YAML with `schema:` and `contents:` keys, where DSL starts with `model` / `module` / `type`. */
function looksLikeModFile(text: string): boolean {
  return /^(schema|contents)\s*:/m.test(text) && !/^\s*(model|module|type)\b/m.test(text);
}

function modulesToJson(input: OpenFgaModules, limits: ModelLimits): OpenFgaModelJson {
  const entries = Object.entries(input.modules);
  const modKeys = entries.filter(([name]) => name === "fga.mod" || name.endsWith("/fga.mod"));
  if (modKeys.length !== 1) {
    throw new NexusError(
      "invalid_model",
      `a modular model needs exactly one fga.mod among its modules, got ${modKeys.length} (${describe(Object.keys(input.modules))})`,
    );
  }
  const [modName, modText] = modKeys[0]!;
  if (typeof modText !== "string") throw new NexusError("invalid_model", `${modName} must be text`);
  checkModelText(modText, limits);
  const { transformModFileToJSON } = fgaModParser();
  const { transformModuleFilesToModel } = openFgaDsl();
  let mod: ReturnType<typeof transformModFileToJSON>;
  try {
    mod = transformModFileToJSON(modText);
  } catch (cause) {
    throw dslError(cause, modName);
  }
  const folder = modName.slice(0, modName.length - "fga.mod".length);
  const files: { name: string; contents: string }[] = [];
  let size = modText.length;
  for (const entry of mod.contents.value) {
    const name = normalizeModulePath(folder + entry.value);
    const contents = name === undefined ? undefined : input.modules[name];
    if (name === undefined || typeof contents !== "string") {
      throw new NexusError(
        "invalid_model",
        `${modName} line ${entry.line.start + 1}: lists ${describe(entry.value)}, which the modules do not hold${name === undefined ? " (it leaves the fga.mod's folder)" : ""}`,
        { file: modName, module: entry.value },
      );
    }
    size += contents.length;
    if (size > limits.maxModelBytes) {
      throw new NexusError(
        "invalid_model",
        `the modular model is too large: more than limits.maxModelBytes (${limits.maxModelBytes})`,
        { limit: "maxModelBytes", max: limits.maxModelBytes },
      );
    }
    checkModelText(contents, limits);
    checkToolingNames(contents, name);
    files.push({ name: entry.value, contents });
  }
  try {
    return transformModuleFilesToModel(files, mod.schema.value) as unknown as OpenFgaModelJson;
  } catch (cause) {
    throw dslError(cause);
  }
}

/** `a/./b/../c.fga` -> `a/c.fga`; undefined when the path climbs out of its root or is absolute. */
function normalizeModulePath(path: string): string | undefined {
  if (path.startsWith("/")) return undefined;
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.pop() === undefined) return undefined;
    } else out.push(part);
  }
  return out.join("/");
}

/** One NexusError for the syntax-transformer's errors, lines and columns 1-based (the tooling counts from 0). */
function dslError(cause: unknown, file?: string): NexusError {
  const list = (cause as { errors?: unknown }).errors;
  if (!Array.isArray(list) || list.length === 0) {
    return new NexusError("invalid_model", `invalid OpenFGA model: ${messageOf(cause)}`, undefined, {
      cause,
    });
  }
  const parts = list.map(
    (e: {
      msg?: string;
      message?: string;
      line?: { start: number };
      column?: { start: number };
      file?: string;
      type?: string;
    }) => {
      const where = [
        (e.file ?? file) !== undefined ? `${e.file ?? file}` : undefined,
        e.line !== undefined ? `line ${e.line.start + 1}` : undefined,
        e.column !== undefined ? `column ${e.column.start + 1}` : undefined,
      ].filter((x) => x !== undefined);
      // The kind of error ("syntax", "invalid-type", ...) as the tooling's own messages name it.
      const kind = typeof e.type === "string" && e.type !== "" ? `${e.type} error: ` : "";
      const text = kind + (e.msg ?? e.message ?? String(e)).trim();
      return where.length > 0 ? `${where.join(", ")}: ${text}` : text;
    },
  );
  const first = list[0] as { line?: { start: number }; column?: { start: number }; file?: string };
  return new NexusError(
    "invalid_model",
    `invalid OpenFGA model: ${parts.join("; ")}`,
    {
      ...(first.line !== undefined ? { line: first.line.start + 1 } : {}),
      ...(first.column !== undefined ? { column: first.column.start + 1 } : {}),
      ...((first.file ?? file) !== undefined ? { file: first.file ?? file } : {}),
    },
    { cause },
  );
}

function parseJson(text: string): OpenFgaModelJson {
  try {
    return JSON.parse(text) as OpenFgaModelJson;
  } catch (cause) {
    throw new NexusError(
      "invalid_model",
      `OpenFGA model JSON does not parse: ${messageOf(cause)}`,
      undefined,
      {
        cause,
      },
    );
  }
}

/** Compiles OpenFGA's AuthorizationModel JSON to a Program (after structural checks). */
export function compileOpenFgaJson(json: OpenFgaModelJson): Program {
  if (json === null || typeof json !== "object" || !Array.isArray(json.type_definitions)) {
    throw new NexusError(
      "invalid_model",
      `an OpenFGA model needs a "type_definitions" array, got ${describe(json)}`,
    );
  }
  if (json.schema_version !== undefined && json.schema_version !== "1.1" && json.schema_version !== "1.2") {
    throw new NexusError(
      "invalid_model",
      `unsupported OpenFGA schema version ${describe(json.schema_version)} (1.1 and 1.2 are supported)`,
    );
  }
  const types = new Map<string, TypeDef>();
  for (const typeDef of json.type_definitions) {
    if (typeDef === null || typeof typeDef !== "object" || typeof typeDef.type !== "string") {
      throw new NexusError(
        "invalid_model",
        `a type definition needs a "type" name, got ${describe(typeDef)}`,
      );
    }
    if (types.has(typeDef.type)) {
      throw new NexusError("invalid_model", `type ${describe(typeDef.type)} is defined twice`);
    }
    const relations = new Map<string, RelationDef>();
    for (const [name, userset] of Object.entries(typeDef.relations ?? {}) as [string, OpenFgaUserset][]) {
      const where = `${typeDef.type}#${name}`;
      const rewrite = compileUserset(userset, where);
      const restrictions = typeDef.metadata?.relations?.[name]?.directly_related_user_types;
      const direct = usesDirect(rewrite);
      if (direct && restrictions === undefined) {
        throw new NexusError(
          "invalid_model",
          `relation ${where} is directly assignable but declares no allowed subject types`,
        );
      }
      relations.set(name, {
        name,
        rewrite,
        directSubjects: direct
          ? (restrictions ?? []).map((ref: OpenFgaRelationReference) => compileReference(ref, where))
          : [],
        allowsExpiration: true,
        shareable: name.startsWith("shared-"),
        isPermission: false,
      });
    }
    types.set(typeDef.type, { name: typeDef.type, relations });
  }
  const conditions = new Map<string, ConditionDef>();
  for (const [key, condition] of Object.entries(json.conditions ?? {})) {
    if (condition === null || typeof condition !== "object" || typeof condition.expression !== "string") {
      throw new NexusError("invalid_model", `condition ${describe(key)} needs an expression`);
    }
    const name = condition.name ?? key;
    if (name !== key) {
      throw new NexusError("invalid_model", `condition ${describe(key)} is named ${describe(name)}`);
    }
    const parameters = new Map<string, ConditionParamType>();
    for (const [param, type] of Object.entries(condition.parameters ?? {})) {
      parameters.set(param, compileParamType(type, `${name}(${param})`));
    }
    conditions.set(name, { name, expression: condition.expression, parameters });
  }
  return validateProgram({ format: "openfga", types, conditions });
}

function compileUserset(userset: OpenFgaUserset, where: string): Rewrite {
  if (userset === null || typeof userset !== "object") {
    throw new NexusError("invalid_model", `relation ${where} has a malformed rewrite ${describe(userset)}`);
  }
  const keys = Object.keys(userset).filter((k) => userset[k] !== undefined && userset[k] !== null);
  if (keys.length !== 1) {
    throw new NexusError(
      "invalid_model",
      `relation ${where}: a rewrite has exactly one operator, got ${describe(userset)}`,
    );
  }
  const key = keys[0]!;
  const body = userset[key] as Readonly<Record<string, unknown>>;
  switch (key) {
    case "this":
      return { kind: "direct" };
    case "computedUserset":
    case "computed_userset":
      return { kind: "computed", relation: relationName(body, where) };
    case "tupleToUserset":
    case "tuple_to_userset": {
      const tupleset = relationName(body?.tupleset as Record<string, unknown>, where);
      const computed = relationName(
        (body?.computedUserset ?? body?.computed_userset) as Record<string, unknown>,
        where,
      );
      return { kind: "ttu", tupleset, computed };
    }
    case "union":
    case "intersection": {
      const children = body?.child;
      if (!Array.isArray(children) || children.length === 0) {
        throw new NexusError("invalid_model", `relation ${where}: ${key} needs at least one child`);
      }
      return { kind: key, children: children.map((c) => compileUserset(c as OpenFgaUserset, where)) };
    }
    case "difference":
      return {
        kind: "exclusion",
        base: compileUserset(body?.base as OpenFgaUserset, where),
        subtract: compileUserset(body?.subtract as OpenFgaUserset, where),
      };
    default:
      throw new NexusError(
        "invalid_model",
        `relation ${where} uses an unknown rewrite operator ${describe(key)}`,
      );
  }
}

function relationName(body: Readonly<Record<string, unknown>> | undefined, where: string): string {
  const relation = body?.relation;
  if (typeof relation !== "string" || relation === "") {
    throw new NexusError("invalid_model", `relation ${where} references a relation without a name`);
  }
  return relation;
}

function usesDirect(rewrite: Rewrite): boolean {
  switch (rewrite.kind) {
    case "direct":
      return true;
    case "union":
    case "intersection":
      return rewrite.children.some(usesDirect);
    case "exclusion":
      return usesDirect(rewrite.base) || usesDirect(rewrite.subtract);
    default:
      return false;
  }
}

function compileReference(ref: OpenFgaRelationReference, where: string): SubjectType {
  if (ref === null || typeof ref !== "object" || typeof ref.type !== "string" || ref.type === "") {
    throw new NexusError(
      "invalid_model",
      `relation ${where} allows a malformed subject type ${describe(ref)}`,
    );
  }
  const wildcard = ref.wildcard !== undefined && ref.wildcard !== null;
  const relation = typeof ref.relation === "string" && ref.relation !== "" ? ref.relation : undefined;
  const condition = typeof ref.condition === "string" && ref.condition !== "" ? ref.condition : undefined;
  return {
    type: ref.type,
    ...(relation !== undefined ? { relation } : {}),
    ...(wildcard ? { wildcard: true } : {}),
    ...(condition !== undefined ? { condition } : {}),
  };
}

const paramTypeNames: Record<string, ConditionParamType> = {
  TYPE_NAME_BOOL: "bool",
  TYPE_NAME_STRING: "string",
  TYPE_NAME_INT: "int",
  TYPE_NAME_UINT: "uint",
  TYPE_NAME_DOUBLE: "double",
  TYPE_NAME_DURATION: "duration",
  TYPE_NAME_TIMESTAMP: "timestamp",
  TYPE_NAME_IPADDRESS: "ipaddress",
  TYPE_NAME_ANY: "any",
};

function compileParamType(type: OpenFgaConditionParam, where: string): ConditionParamType {
  const name = type?.type_name;
  if (name === "TYPE_NAME_LIST" || name === "TYPE_NAME_MAP") {
    const inner = type.generic_types?.[0];
    if (inner === undefined || type.generic_types?.length !== 1) {
      throw new NexusError("invalid_model", `condition parameter ${where}: ${name} needs one generic type`);
    }
    const element = compileParamType(inner, where);
    return name === "TYPE_NAME_LIST" ? { list: element } : { map: element };
  }
  const simple = typeof name === "string" ? paramTypeNames[name] : undefined;
  if (simple === undefined) {
    throw new NexusError(
      "invalid_model",
      `condition parameter ${where} has an unknown type ${describe(name)}`,
    );
  }
  return simple;
}

function messageOf(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  // The validator lists errors as "N errors occurred:\n\t* ..."; keep them on one line.
  return text
    .split("\n")
    .map((line) => line.replace(/^\t\* /, "").trim())
    .filter((line) => line !== "")
    .join("; ");
}
