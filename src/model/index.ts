/**
 * One entry for every model language: `compileModel` routes a model to its compiler (detecting the language when
 * not told) and returns the shared Program.
 */
import { loadConditions } from "../conditions/cel-js.js";
import { describe, NexusError } from "../util/errors.js";
import { detectFormat } from "./detect.js";
import { loadOpenFgaDsl, loadOpenFgaDslParser } from "./dsl.js";
import {
  checkModelObject,
  checkModelText,
  checkProgram,
  type ModelLimits,
  resolveModelLimits,
  type TextModelShape,
} from "./limits.js";
import { compileNexus } from "./nexus.js";
import { compileOpenFga, isModularModel } from "./openfga.js";
import type { ModelFormat, Program } from "./program.js";
import { compileSpiceDb } from "./spicedb.js";

export { isConditionsLoaded, loadConditions } from "../conditions/cel-js.js";
export { detectFormat } from "./detect.js";
export { isOpenFgaDslLoaded, loadOpenFgaDsl } from "./dsl.js";
export { DEFAULT_MODEL_LIMITS, type ModelLimits, resolveModelLimits } from "./limits.js";
export {
  compileNexus,
  type NexusNamespaceConfig,
  type NexusNamespaces,
  type NexusPermissionConfig,
  type NexusRelationConfig,
} from "./nexus.js";
export { compileOpenFga, type OpenFgaModules } from "./openfga.js";
export { nexusFilesystemModel } from "./preset.js";
export { compileSpiceDb } from "./spicedb.js";

/**
 * Compiles a model in any supported language to a Program, loading OpenFGA's DSL parser first when the model
 * needs it (DSL text, a modular model) and the CEL runtime when it may hold a condition or a caveat. Takes and
 * throws what compileModel does.
 */
export async function compileModelAsync(
  model: string | object,
  format?: ModelFormat,
  limits?: Partial<ModelLimits>,
): Promise<Program> {
  const dsl = openFgaDslNeeded(model, format);
  if (dsl === "modules") await loadOpenFgaDsl();
  else if (dsl === "text") await loadOpenFgaDslParser();
  if (mayNameConditions(model)) await loadConditions();
  return compileModel(model, format, limits);
}

/**
 * Whether a model's text names a condition or a caveat anywhere (a word any of the languages declares one with);
 * a false positive only loads the runtime early. A value JSON cannot write (a cycle) is left to compileModel.
 */
function mayNameConditions(model: unknown): boolean {
  let text: string;
  try {
    // JSON text is read as JSON first: a key may be spelled with escapes (`"\u0063onditions"`).
    const value = typeof model === "string" && model.trimStart().startsWith("{") ? JSON.parse(model) : model;
    text = typeof value === "string" ? value : (JSON.stringify(value) ?? "");
  } catch {
    text = typeof model === "string" ? model : "";
  }
  return /condition|caveat/.test(text);
}

/**
 * The DSL tooling a model headed for the OpenFGA compiler needs: the parser for DSL text, the fga.mod parser too
 * for a modular model, none for anything else (JSON text is parsed without the DSL tooling).
 */
function openFgaDslNeeded(model: unknown, format: ModelFormat | undefined): "text" | "modules" | undefined {
  if (isModularModel(model)) return format === undefined || format === "openfga" ? "modules" : undefined;
  if (typeof model !== "string" || model.trimStart().startsWith("{")) return undefined;
  if (format !== undefined) return format === "openfga" ? "text" : undefined;
  try {
    return detectFormat(model) === "openfga" ? "text" : undefined;
  } catch {
    return undefined; // compileModel reports the model's problem
  }
}

/**
 * Compiles a model in any supported language to a Program. The model is checked against `limits` (limits.ts)
 * before any parser sees it, and the Program after compiling. OpenFGA DSL text and modular models need the DSL
 * parser loaded (`await loadOpenFgaDsl()`, or use compileModelAsync); everything else compiles as it is.
 * @param model OpenFGA DSL text or JSON, an OpenFGA modular model (`{ modules: { "fga.mod": …, "core.fga": … } }`),
 *   SpiceDB schema text, or Nexus namespace configs.
 * @param format The language; detected from the model's shape when omitted.
 * @param limits Overrides of the default limits (DEFAULT_MODEL_LIMITS).
 * @throws NexusError "invalid_model" (and friends) naming the problem or the limit exceeded; "not_ready" for DSL
 *   before its parser is loaded.
 */
export function compileModel(
  model: string | object,
  format?: ModelFormat,
  limits?: Partial<ModelLimits>,
): Program {
  const bounds = resolveModelLimits(limits);
  let shape: TextModelShape | undefined;
  if (typeof model === "string") shape = checkModelText(model, bounds);
  else if (typeof model === "object" && model !== null) checkModelObject(model, bounds);
  const language = format ?? (isModularModel(model) ? "openfga" : detectFormat(model));
  const program = compileChecked(model, language, bounds, shape);
  checkProgram(program, bounds);
  return program;
}

function compileChecked(
  model: string | object,
  language: ModelFormat,
  limits: ModelLimits,
  shape: TextModelShape | undefined,
): Program {
  switch (language) {
    case "openfga":
      return compileOpenFga(model, { limits, ...(shape !== undefined ? { shape } : {}) });
    case "spicedb":
      if (typeof model !== "string") {
        throw new NexusError("invalid_model", `a SpiceDB schema must be text, got ${describe(model)}`);
      }
      return compileSpiceDb(model, limits);
    case "nexus":
      return compileNexus(typeof model === "string" ? parseJsonModel(model, limits) : model);
    default:
      throw new NexusError("invalid_argument", `unknown model format ${describe(language)}`, {
        format: language,
      });
  }
}

function parseJsonModel(text: string, limits: ModelLimits): object {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new NexusError(
      "invalid_model",
      `Nexus namespace configs must be JSON: ${(cause as Error).message}`,
      {
        model: describe(text),
      },
    );
  }
  if (typeof value !== "object" || value === null) {
    throw new NexusError(
      "invalid_model",
      `Nexus namespace configs must be a JSON object, got ${describe(text)}`,
    );
  }
  checkModelObject(value, limits);
  return value;
}
