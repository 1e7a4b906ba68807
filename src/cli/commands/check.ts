/**
 * `nexus-fast check`: one question against a model and tuples. Exit 0 allowed, 1 denied, 2 error.
 */
import { createEngine, type Engine } from "../../engine/engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { ModelFormat } from "../../model/program.js";
import { intOption, jsonObjectOption, parse, stringOption, UsageError } from "../args.js";
import { modelOf, openData } from "../data.js";
import { explainCheck } from "../explain.js";
import type { Io } from "../io.js";
import { type FileTuple, loadModel, loadTuples } from "../load.js";
import { formatMs } from "../table.js";
import { toTupleKey } from "../tuples.js";

const FORMATS = new Set<ModelFormat>(["openfga", "spicedb", "nexus"]);

export async function runCheck(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    model: { type: "string", short: "m" },
    format: { type: "string" },
    tuples: { type: "string", short: "t", multiple: true },
    context: { type: "string" },
    tenant: { type: "string" },
    "subject-tenant": { type: "string" },
    explain: { type: "boolean" },
    "max-depth": { type: "string" },
    data: { type: "string" },
  });
  if (parsed.positionals.length !== 3) {
    throw new UsageError(`expected <user> <relation> <object>, got ${parsed.positionals.length} argument(s)`);
  }
  const [user, relation, object] = parsed.positionals as [string, string, string];
  const format = stringOption(parsed, "format");
  if (format !== undefined && !FORMATS.has(format as ModelFormat)) {
    throw new UsageError(`--format must be openfga, spicedb or nexus, got "${format}"`);
  }
  const modelPath = stringOption(parsed, "model");
  const tuples: FileTuple[] = [];
  for (const path of (parsed.values.tuples as string[] | undefined) ?? [])
    for (const t of await loadTuples(path)) tuples.push(t);
  const context = jsonObjectOption(parsed, "context");
  const tenant = stringOption(parsed, "tenant");
  const subjectTenant = stringOption(parsed, "subject-tenant");
  // --data DIR: tuples (and, without --model, the model) from the file tuple store `nexus-fast write` fills.
  const dataDir = stringOption(parsed, "data");
  if (dataDir !== undefined && tuples.length > 0) {
    throw new UsageError(
      "--tuples and --data do not mix: add tuples with `nexus-fast write --data DIR --tuples FILE`",
    );
  }
  const store = dataDir !== undefined ? await openData(dataDir) : undefined;
  let engine: Engine;
  let modelName: string;
  const started = performance.now();
  try {
    const stored = await store?.models.latest(tenant ?? "default");
    const loaded = modelPath
      ? await loadModel(modelPath)
      : stored
        ? modelOf(stored)
        : { model: nexusFilesystemModel, format: "nexus" as const };
    modelName = modelPath
      ? modelPath
      : stored
        ? `version ${stored.id} in ${dataDir}`
        : "built-in Nexus preset";
    engine = await createEngine({
      model: loaded.model,
      ...(store ? { store } : {}),
      ...((format ?? loaded.format) ? { format: (format ?? loaded.format) as ModelFormat } : {}),
      ...(parsed.values["max-depth"] !== undefined
        ? { maxResolutionDepth: intOption(parsed, "max-depth", 25) }
        : {}),
    });
  } catch (error) {
    await store?.close();
    throw error;
  }
  try {
    if (tuples.length > 0) {
      await engine.write({
        // A tuple file's own tenant / subjectTenant win over --tenant.
        writes: tuples.map((t) => toTupleKey(t, tenant ? { tenant } : {})),
        ...(tenant ? { tenant } : {}),
        onDuplicate: "ignore",
      });
    }
    const loadedAt = performance.now();
    const allowed = await engine.check({
      user,
      relation,
      object,
      ...(tenant ? { tenant } : {}),
      ...(subjectTenant ? { subjectTenant } : {}),
      ...(context ? { context } : {}),
      consistency: "fully_consistent",
    });
    const answeredAt = performance.now();
    io.out(allowed ? "allowed" : "denied");
    if (parsed.values.explain) {
      io.out(
        `model: ${engine.program.format} (${modelName}); ` +
          `${tuples.length} tuple(s) loaded in ${formatMs(loadedAt - started)}; check took ${formatMs(answeredAt - loadedAt)}`,
      );
      const why = await explainCheck(engine, {
        user,
        relation,
        object,
        ...(tenant ? { tenant } : {}),
        ...(subjectTenant ? { subjectTenant } : {}),
        ...(context ? { context } : {}),
      });
      io.out(
        `${allowed ? "granted by" : "denied; the branches"}:\n${why.map((line) => `  ${line}`).join("\n")}`,
      );
    }
    return allowed ? 0 : 1;
  } finally {
    await engine.close();
    await store?.close();
  }
}
