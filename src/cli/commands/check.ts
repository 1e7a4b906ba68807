/**
 * `nexus-fast check`: one question against a model and tuples. Exit 0 allowed, 1 denied, 2 error.
 */
import { createEngine } from "../../engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { ModelFormat } from "../../model/program.js";
import { intOption, jsonObjectOption, parse, stringOption, UsageError } from "../args.js";
import { type FileTuple, loadModel, loadTuples } from "../load.js";
import type { Io } from "../program.js";
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
    explain: { type: "boolean" },
    "max-depth": { type: "string" },
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
  const loaded = modelPath
    ? await loadModel(modelPath)
    : { model: nexusFilesystemModel, format: "nexus" as const };
  const tuples: FileTuple[] = [];
  for (const path of (parsed.values.tuples as string[] | undefined) ?? [])
    tuples.push(...(await loadTuples(path)));
  const context = jsonObjectOption(parsed, "context");
  const tenant = stringOption(parsed, "tenant");

  const started = performance.now();
  const engine = await createEngine({
    model: loaded.model,
    ...((format ?? loaded.format) ? { format: (format ?? loaded.format) as ModelFormat } : {}),
    quantizationWindowMs: 0,
    ...(parsed.values["max-depth"] !== undefined
      ? { maxResolutionDepth: intOption(parsed, "max-depth", 25) }
      : {}),
  });
  try {
    if (tuples.length > 0) {
      await engine.write({
        writes: tuples.map((t) => toTupleKey(t)),
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
      ...(context ? { context } : {}),
      consistency: "fully_consistent",
    });
    const answeredAt = performance.now();
    io.out(allowed ? "allowed" : "denied");
    if (parsed.values.explain) {
      io.out(
        `model: ${engine.program.format}${modelPath ? ` (${modelPath})` : " (built-in Nexus preset)"}; ` +
          `${tuples.length} tuple(s) loaded in ${formatMs(loadedAt - started)}; check took ${formatMs(answeredAt - loadedAt)}`,
      );
    }
    return allowed ? 0 : 1;
  } finally {
    await engine.close();
  }
}
