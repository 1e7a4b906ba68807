/**
 * `nexus-fast write --data DIR`: stores a model version and writes (or deletes) tuples in the file tuple store in
 * DIR, where `check --data DIR` (and the server) find them. Tuples are validated against the model as the engine
 * validates every write; writing a tuple that is there already, or deleting one that is not, is skipped, so the
 * same command can run twice. Exit 0 written, 2 error.
 */

import { createEngine, type Engine } from "../../engine/engine.js";
import { nexusFilesystemModel } from "../../model/preset.js";
import type { ModelFormat } from "../../model/program.js";
import { validTuple } from "../../request/requests.js";
import { normalizeIdentity } from "../../tuples/normalize.js";
import type { TupleKey } from "../../tuples/tuple.js";
import { NexusError } from "../../util/errors.js";
import { parse, stringOption, UsageError } from "../args.js";
import { modelOf, openData, rememberModel } from "../data.js";
import type { Io } from "../io.js";
import { type FileTuple, type LoadedModel, loadModel, loadTuples } from "../load.js";
import { withProgress } from "../progress.js";
import { toTupleKey } from "../tuples.js";

/**
 * Tuples per engine write. Up to this many, a command is one atomic write; a bigger file is written in batches
 * (one write is limited in size, and a bar can then show progress), every tuple validated before the first batch.
 */
const WRITE_BATCH = 20_000;

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
    for (const t of await loadTuples(path)) writes.push(t);
  const deletes: FileTuple[] = [];
  for (const path of (parsed.values.deletes as string[] | undefined) ?? [])
    for (const t of await loadTuples(path)) deletes.push(t);
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
      // Only writes: the check caches would follow every batch for nothing (a 200,000-tuple file took 3× longer).
      cache: false,
      model: loaded.model,
      ...((format ?? loaded.format) ? { format: (format ?? loaded.format) as ModelFormat } : {}),
      store,
    });
    try {
      const version = modelPath ? await rememberModel(store, tenant, loaded, engine) : stored;
      let revision = await store.currentRevision();
      if (writes.length > 0 || deletes.length > 0) {
        revision = await writeAll(
          engine,
          writes.map((t) => toTupleKey(t)),
          deletes.map((t) => toTupleKey(t)),
          tenant,
        );
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

/**
 * Writes and deletes the tuples, in batches past WRITE_BATCH, with a progress bar on a terminal; returns the last
 * revision. A bad tuple anywhere fails before anything is written. A batch that fails for another reason (a full
 * disk) leaves the batches before it written: every batch skips tuples already there or already gone, so running
 * the same command again finishes the job.
 */
async function writeAll(
  engine: Engine,
  writes: readonly TupleKey[],
  deletes: readonly TupleKey[],
  tenant: string,
): Promise<number> {
  if (writes.length + deletes.length <= WRITE_BATCH) {
    return (await engine.write({ writes, deletes, tenant, onDuplicate: "ignore", onMissing: "ignore" }))
      .revision;
  }
  for (const [i, key] of writes.entries()) validTuple(engine.program, key, tenant, `write ${i}`);
  for (const [i, key] of deletes.entries()) {
    const identity = normalizeIdentity(key, tenant);
    if (!identity.ok) throw new NexusError("invalid_tuple", `delete ${i} is invalid: ${identity.problem}`);
  }
  const total = writes.length + deletes.length;
  return withProgress("write", total, {}, async (bar) => {
    let done = 0;
    let revision = 0;
    for (const [what, list] of [
      ["deletes", deletes],
      ["writes", writes],
    ] as const) {
      for (let i = 0; i < list.length; i += WRITE_BATCH) {
        const batch = list.slice(i, i + WRITE_BATCH);
        ({ revision } = await engine.write({
          [what]: batch,
          tenant,
          onDuplicate: "ignore",
          onMissing: "ignore",
        }));
        done += batch.length;
        bar.update(done, total, what);
      }
    }
    return revision;
  });
}
