/**
 * Reading what the CLI is pointed at: model files in any of the three languages and tuple files (YAML, JSON, CSV
 * as the OpenFGA CLI writes them, or SpiceDB-style `object#relation@subject` lines). Every failure is a NexusError
 * naming the file.
 */
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, relative, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { fgaModParser, loadOpenFgaDsl } from "../model/dsl.js";
import type { ModelFormat } from "../model/program.js";
import { describe, NexusError } from "../util/errors.js";

/** A tuple as files spell it (OpenFGA's store-file shape). */
export interface FileTuple {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly condition?: { readonly name: string; readonly context?: Record<string, unknown> };
  /** RFC 3339 time or epoch milliseconds after which the tuple no longer grants anything. */
  readonly expiresAt?: string | number;
  /** The tenant the tuple is written in (default: the command's --tenant). */
  readonly tenant?: string;
  /** The subject's tenant, for a cross-tenant grant (default: the tuple's tenant). */
  readonly subjectTenant?: string;
}

export interface LoadedModel {
  readonly model: string | object;
  readonly format: ModelFormat | undefined;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (cause) {
    throw new NexusError("io_error", `cannot read ${what} ${describe(path)}: ${(cause as Error).message}`, {
      path,
    });
  }
}

/** Parses YAML (a superset of JSON), naming the file on error. */
export function parseDocument(text: string, path: string): unknown {
  try {
    return parseYaml(text);
  } catch (cause) {
    throw new NexusError("invalid_argument", `${path} is not valid YAML/JSON: ${(cause as Error).message}`, {
      path,
    });
  }
}

/**
 * `name` resolved against `folder`, refused when it leaves the folder (`../../etc/hosts`, an absolute path), as
 * the fga CLI refuses store-file paths outside the store's folder.
 * @throws NexusError "invalid_argument" naming the path and the folder.
 */
export function containedPath(folder: string, name: string, what: string): string {
  const root = resolve(folder);
  const path = resolve(root, name);
  const rel = relative(root, path);
  if (isAbsolute(name) || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new NexusError(
      "invalid_argument",
      `${what} ${describe(name)} is outside ${describe(folder)}: files named by a store file or an fga.mod must be in its folder`,
      { path: name, folder },
    );
  }
  return path;
}

/**
 * An OpenFGA modular model: the fga.mod at `path` and every module file it lists (each contained in the fga.mod's
 * folder), as the `{ modules }` input createEngine takes.
 */
async function loadModularModel(path: string, text: string): Promise<LoadedModel> {
  let contents: string[];
  await loadOpenFgaDsl(); // on demand, as the engine loads it: commands without DSL start without it
  try {
    contents = fgaModParser()
      .transformModFileToJSON(text)
      .contents.value.map((entry) => entry.value);
  } catch (cause) {
    throw new NexusError("invalid_model", `${path} is not a valid fga.mod: ${(cause as Error).message}`, {
      path,
    });
  }
  const modules: Record<string, string> = { "fga.mod": text };
  for (const name of contents) {
    modules[name] = await readText(containedPath(dirname(path), name, "module file"), "module file");
  }
  return { model: { modules }, format: "openfga" };
}

/**
 * Loads a model file: `fga.mod` (an OpenFGA modular model with its module files), `.fga` / `.mod` (OpenFGA DSL), `.zed` / `.zaml`-less `.schema` (SpiceDB), `.json` / `.yaml`
 * (OpenFGA JSON or Nexus namespace configs). Other extensions are read as text and detected.
 */
export async function loadModel(path: string): Promise<LoadedModel> {
  const text = await readText(path, "model file");
  const ext = extname(path).toLowerCase();
  if (basename(path) === "fga.mod") return loadModularModel(path, text);
  if (ext === ".fga" || ext === ".mod") return { model: text, format: "openfga" };
  if (ext === ".zed" || ext === ".schema" || ext === ".spicedb") return { model: text, format: "spicedb" };
  if (ext === ".json" || ext === ".yaml" || ext === ".yml") {
    const value = parseDocument(text, path);
    if (typeof value !== "object" || value === null) {
      throw new NexusError("invalid_model", `${path} does not hold a model object`, { path });
    }
    return { model: value, format: undefined };
  }
  return { model: text, format: undefined };
}

/** Loads tuples from a `.yaml` / `.yml` / `.json` list (or `{ tuples: [...] }`), a `.csv`, or relationship lines. */
export async function loadTuples(path: string): Promise<FileTuple[]> {
  const text = await readText(path, "tuple file");
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return parseCsvTuples(text, path);
  if (ext === ".yaml" || ext === ".yml" || ext === ".json") {
    const value = parseDocument(text, path);
    return tuplesFrom(value, path);
  }
  return parseRelationshipLines(text, path);
}

/** Accepts a list of tuples (objects or `object#relation@user` strings), or an object holding one in `tuples`. */
export function tuplesFrom(value: unknown, where: string): FileTuple[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value)
    ? value
    : typeof value === "object" && "tuples" in value
      ? (value as { tuples: unknown }).tuples
      : undefined;
  if (!Array.isArray(list)) {
    throw new NexusError("invalid_tuple", `${where}: expected a list of tuples, got ${describe(value)}`, {
      where,
    });
  }
  return list.map((item, i) => tupleFrom(item, `${where}[${i}]`));
}

function tupleFrom(item: unknown, where: string): FileTuple {
  if (typeof item === "string") return parseRelationship(item, where);
  if (typeof item !== "object" || item === null) {
    throw new NexusError("invalid_tuple", `${where}: expected a tuple, got ${describe(item)}`, { where });
  }
  const raw = item as Record<string, unknown>;
  for (const key of ["user", "relation", "object"] as const) {
    if (typeof raw[key] !== "string" || raw[key] === "") {
      throw new NexusError(
        "invalid_tuple",
        `${where}: "${key}" must be a non-empty string, got ${describe(raw[key])}`,
        {
          where,
        },
      );
    }
  }
  const condition = raw.condition as { name?: unknown; context?: unknown } | undefined;
  if (condition !== undefined && (typeof condition !== "object" || typeof condition?.name !== "string")) {
    throw new NexusError("invalid_tuple", `${where}: "condition" must be { name, context? }`, { where });
  }
  const tenants: Record<string, string> = {};
  for (const [key, names] of [
    ["tenant", ["tenant"]],
    ["subjectTenant", ["subjectTenant", "subject_tenant"]],
  ] as const) {
    const value = names.map((name) => raw[name]).find((v) => v !== undefined);
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "") {
      throw new NexusError(
        "invalid_tuple",
        `${where}: "${key}" must be a non-empty string, got ${describe(value)}`,
        {
          where,
        },
      );
    }
    tenants[key] = value;
  }
  const expiresAt = raw.expiresAt ?? raw.expires_at ?? raw.expiration;
  if (expiresAt !== undefined && typeof expiresAt !== "string" && typeof expiresAt !== "number") {
    throw new NexusError(
      "invalid_tuple",
      `${where}: "expiresAt" must be an RFC 3339 time or epoch milliseconds`,
      {
        where,
      },
    );
  }
  return {
    user: raw.user as string,
    relation: raw.relation as string,
    object: raw.object as string,
    ...(condition
      ? {
          condition: {
            name: condition.name as string,
            ...(condition.context ? { context: condition.context as Record<string, unknown> } : {}),
          },
        }
      : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...tenants,
  };
}

/**
 * `document:1#viewer@user:anne` or `document:1#viewer@group:eng#member` (SpiceDB's and Zanzibar's notation);
 * a trailing `[expiration:2030-01-01T00:00:00Z]` or `[caveat_name]` is accepted as zed prints it.
 */
export function parseRelationship(text: string, where: string): FileTuple {
  const match = /^\s*([^#@\s]+)#([^@\s]+)@(\S+?)(?:\[([^\]]+)\])?\s*$/.exec(text);
  if (!match) {
    throw new NexusError(
      "invalid_tuple",
      `${where}: expected "type:id#relation@type:id[#relation]", got ${describe(text)}`,
      {
        where,
      },
    );
  }
  const [, object, relation, user, trailer] = match as unknown as [
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  let condition: FileTuple["condition"];
  let expiresAt: string | undefined;
  for (const part of trailer?.split(/\s*[;,]\s*/) ?? []) {
    if (part.startsWith("expiration:")) expiresAt = part.slice("expiration:".length);
    else if (part) condition = { name: part };
  }
  return {
    user,
    relation,
    object,
    ...(condition ? { condition } : {}),
    ...(expiresAt ? { expiresAt } : {}),
  };
}

function parseRelationshipLines(text: string, path: string): FileTuple[] {
  const out: FileTuple[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith("//")) return;
    out.push(parseRelationship(trimmed, `${path}:${i + 1}`));
  });
  return out;
}

/**
 * The OpenFGA CLI's CSV: a header naming user_type, user_id, user_relation?, relation, object_type, object_id,
 * condition_name?, condition_context? (JSON).
 */
function parseCsvTuples(text: string, path: string): FileTuple[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length === 0) return [];
  const header = splitCsvLine(lines[0]!).map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  for (const required of ["user_type", "user_id", "relation", "object_type", "object_id"]) {
    if (col(required) < 0) {
      throw new NexusError("invalid_tuple", `${path}: CSV header lacks "${required}"`, { path });
    }
  }
  return lines.slice(1).map((line, i) => {
    const cells = splitCsvLine(line);
    const cell = (name: string) => (col(name) >= 0 ? (cells[col(name)] ?? "").trim() : "");
    const userRelation = cell("user_relation");
    const conditionName = cell("condition_name");
    const conditionContext = cell("condition_context");
    let context: Record<string, unknown> | undefined;
    if (conditionContext) {
      try {
        context = JSON.parse(conditionContext) as Record<string, unknown>;
      } catch {
        throw new NexusError("invalid_tuple", `${path}:${i + 2}: condition_context is not JSON`, { path });
      }
    }
    return {
      user: `${cell("user_type")}:${cell("user_id")}${userRelation ? `#${userRelation}` : ""}`,
      relation: cell("relation"),
      object: `${cell("object_type")}:${cell("object_id")}`,
      ...(conditionName ? { condition: { name: conditionName, ...(context ? { context } : {}) } } : {}),
    };
  });
}

/** Splits one CSV line, honouring double-quoted cells with "" escapes. */
function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      cells.push(cell);
      cell = "";
    } else cell += c;
  }
  cells.push(cell);
  return cells;
}
