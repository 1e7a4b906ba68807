/**
 * Tells the three model languages apart without being told: OpenFGA DSL / JSON, SpiceDB schema, Nexus namespace
 * configs. Detection only looks at the shape (first keyword of a text, the keys of an object); the compiler then
 * reports any real error in the language it was routed to.
 */
import { describe, NexusError } from "../util/errors.js";
import type { ModelFormat } from "./program.js";

const OPENFGA_KEYWORDS = new Set(["model", "type", "schema", "module", "condition", "extend"]);
const SPICEDB_KEYWORDS = new Set(["definition", "caveat", "use", "partial", "import"]);

/** The first keyword of a text model, skipping blank lines and `#`, `//` and `/* … *\/` comments. */
function firstKeyword(text: string): string | undefined {
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\uFEFF") {
      i++;
    } else if (c === "#") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 64));
      return match?.[0] ?? text[i];
    }
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** True when every value looks like a Nexus namespace config (`{ relations?, permissions? }`). */
function looksLikeNexus(value: Record<string, unknown>): boolean {
  const entries = Object.values(value);
  if (entries.length === 0) return false;
  return entries.every(
    (config) =>
      isPlainObject(config) &&
      ("relations" in config || "permissions" in config) &&
      Object.keys(config).every((k) => k === "relations" || k === "permissions" || k === "description"),
  );
}

/**
 * The language a model is written in. Strings: a leading `model`/`type`/`condition` (after comments) is OpenFGA
 * DSL, a leading `definition`/`caveat`/`use` is SpiceDB schema, and a string holding JSON is parsed and judged as
 * an object. Objects: `type_definitions` means OpenFGA JSON; a map of type name to `{ relations, permissions }`
 * (optionally wrapped as `{ namespaces: … }`) means Nexus namespace configs.
 * @throws NexusError "invalid_model" when the shape matches none of them.
 */
export function detectFormat(model: string | object): ModelFormat {
  if (typeof model === "string") {
    const keyword = firstKeyword(model);
    if (keyword === undefined) throw new NexusError("invalid_model", "model is empty", { model: "" });
    if (OPENFGA_KEYWORDS.has(keyword)) return "openfga";
    if (SPICEDB_KEYWORDS.has(keyword)) return "spicedb";
    if (keyword === "{") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(model);
      } catch (cause) {
        throw new NexusError(
          "invalid_model",
          `model text starts with "{" but is not valid JSON: ${(cause as Error).message}`,
          { model: describe(model) },
          { cause },
        );
      }
      if (isPlainObject(parsed)) return detectFormat(parsed);
    }
    throw new NexusError(
      "invalid_model",
      `cannot tell the model language: text starts with ${describe(keyword)}; expected OpenFGA DSL ("model", "type") or SpiceDB schema ("definition", "caveat", "use")`,
      { model: describe(model), keyword },
    );
  }
  if (Array.isArray(model)) {
    // Nexus's stored form: rows of { object_type, config }.
    if (
      model.length > 0 &&
      model.every((row) => isPlainObject(row) && "object_type" in row && "config" in row)
    ) {
      return "nexus";
    }
    throw new NexusError(
      "invalid_model",
      `cannot tell the model language of a list: expected Nexus namespace rows [{ object_type, config }], got ${describe(model)}`,
      { model: describe(model) },
    );
  }
  if (isPlainObject(model)) {
    if ("type_definitions" in model) return "openfga";
    if ("namespaces" in model && isPlainObject(model.namespaces) && looksLikeNexus(model.namespaces)) {
      return "nexus";
    }
    if (looksLikeNexus(model)) return "nexus";
    throw new NexusError(
      "invalid_model",
      `cannot tell the model language of object with keys ${describe(Object.keys(model))}: expected OpenFGA JSON (type_definitions) or Nexus namespace configs ({ <type>: { relations, permissions } })`,
      { model: describe(model) },
    );
  }
  throw new NexusError("invalid_model", `model must be a string or an object, got ${describe(model)}`, {
    model: describe(model),
  });
}
