/**
 * `nexus-fast write --data DIR`: stores a model version and writes (or deletes) tuples in the file tuple store in
 * DIR, where `check --data DIR` (and the server) find them. Tuples are validated against the model as the engine
 * validates every write; writing a tuple that is there already, or deleting one that is not, is skipped, so the
 * same command can run twice. Exit 0 written, 2 error.
 */
import { createEngine } from "../../engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { ModelFormat } from "../../model/program.js";
import { parse, stringOption, UsageError } from "../args.js";
import { modelOf, openData, rememberModel } from "../data.js";
import { type FileTuple, type LoadedModel, loadModel, loadTuples } from "../load.js";
import type { Io } from "../program.js";
import { toTupleKey } from "../tuples.js";

const FORMATS = new Set<ModelFormat>(["openfga", "spicedb", "nexus"]);

export async function runWrite(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    data: { type: "string" },
    model: { type: "string", short: "m" },
    format: { type: "string" },
    tuples: { type: "string", short: "t", multiple: true },
    deletes: { type: "string", multiple: true },
    tenant: { type: "string" },
  });
  const dir = stringOption(parsed, "data");
  if (dir === undefined) throw new UsageError("--data DIR is required: the directory that keeps the tuples");
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
  const format = stringOption(parsed, "format");
  if (format !== undefined && !FORMATS.has(format as ModelFormat)) {
    throw new UsageError(`--format must be openfga, spicedb or nexus, got "${format}"`);
  }
  const modelPath = stringOption(parsed, "model");
  const tenant = stringOption(parsed, "tenant") ?? "default";
  const writes: FileTuple[] = [];
  for (const path of (parsed.values.tuples as string[] | undefined) ?? [])
    writes.push(...(await loadTuples(path)));
  const deletes: FileTuple[] = [];
  for (const path of (parsed.values.deletes as string[] | undefined) ?? [])
    deletes.push(...(await loadTuples(path)));
  if (modelPath === undefined && writes.length === 0 && deletes.length === 0) {
    throw new UsageError("nothing to write: give --model, --tuples or --deletes");
  }

  const store = await openData(dir);
  try {
    const stored = await store.models.latest(tenant);
    const loaded: LoadedModel = modelPath
      ? await loadModel(modelPath)
      : stored
        ? modelOf(stored)
        : { model: nexusFilesystemModel, format: "nexus" };
    const engine = await createEngine({
      model: loaded.model,
      ...((format ?? loaded.format) ? { format: (format ?? loaded.format) as ModelFormat } : {}),
      store,
    });
    try {
      const version = modelPath ? await rememberModel(store, tenant, loaded, engine) : stored;
      let revision = await store.currentRevision();
      if (writes.length > 0 || deletes.length > 0) {
        ({ revision } = await engine.write({
          writes: writes.map((t) => toTupleKey(t)),
          deletes: deletes.map((t) => toTupleKey(t)),
          tenant,
          onDuplicate: "ignore",
          onMissing: "ignore",
        }));
      }
      io.out(
        `${dir}: revision ${revision} after ${writes.length} write(s) and ${deletes.length} delete(s) ` +
          `(tuples already there or already gone skipped); model ${version ? version.id : "the built-in Nexus preset"}`,
      );
      return 0;
    } finally {
      await engine.close();
    }
  } finally {
    await store.close();
  }
}
