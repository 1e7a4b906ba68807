/**
 * One entry for every model language: `compileModel` routes a model to its compiler (detecting the language when
 * not told) and returns the shared Program.
 */
import { describe, NexusError } from "../errors.js";
import { detectFormat } from "./detect.js";
import { compileNexus } from "./nexus.js";
import { compileOpenFga } from "./openfga.js";
import type { ModelFormat, Program } from "./program.js";
import { compileSpiceDb } from "./spicedb.js";

export { detectFormat } from "./detect.js";
export {
  compileNexus,
  type NexusNamespaceConfig,
  type NexusNamespaces,
  type NexusPermissionConfig,
  type NexusRelationConfig,
} from "./nexus.js";
export { compileOpenFga } from "./openfga.js";
export { nexusFilesystemModel } from "./preset.js";
export { compileSpiceDb } from "./spicedb.js";

/**
 * Compiles a model in any supported language to a Program.
 * @param model OpenFGA DSL text or JSON, SpiceDB schema text, or Nexus namespace configs.
 * @param format The language; detected from the model's shape when omitted.
 * @throws NexusError "invalid_model" (and friends) naming the problem.
 */
export function compileModel(model: string | object, format?: ModelFormat): Program {
  const language = format ?? detectFormat(model);
  switch (language) {
    case "openfga":
      return compileOpenFga(model);
    case "spicedb":
      if (typeof model !== "string") {
        throw new NexusError("invalid_model", `a SpiceDB schema must be text, got ${describe(model)}`);
      }
      return compileSpiceDb(model);
    case "nexus":
      return compileNexus(typeof model === "string" ? parseJsonModel(model) : model);
    default:
      throw new NexusError("invalid_argument", `unknown model format ${describe(language)}`, {
        format: language,
      });
  }
}

function parseJsonModel(text: string): object {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null) return value;
  } catch (cause) {
    throw new NexusError(
      "invalid_model",
      `Nexus namespace configs must be JSON: ${(cause as Error).message}`,
      {
        model: describe(text),
      },
    );
  }
  throw new NexusError(
    "invalid_model",
    `Nexus namespace configs must be a JSON object, got ${describe(text)}`,
  );
}
