/**
 * `--data DIR`: the CLI keeps tuples and model versions in a file tuple store (nexus-fast/file-store) in DIR, so
 * one command reads what an earlier one wrote. Models are stored as the text they were given (an object model as
 * its JSON) with the language the engine compiled them as.
 */
import type { Engine } from "../engine/engine.js";
import { type FileTupleStore, openFileTupleStore } from "../tuples/file/index.js";
import type { StoredModel } from "../tuples/models.js";
import type { LoadedModel } from "./load.js";

/** Opens the store in `dir` (created when missing; "locked" while another process writes to it). */
export function openData(dir: string): Promise<FileTupleStore> {
  return openFileTupleStore({ dir });
}

/** A stored model version back in the form the engine takes. */
export function modelOf(stored: StoredModel): LoadedModel {
  const format = stored.format as LoadedModel["format"];
  const text = stored.source.trimStart();
  if (text.startsWith("{")) {
    try {
      return { model: JSON.parse(stored.source) as object, format };
    } catch {
      // Not JSON after all (a DSL comment may open with a brace): the text as it is.
    }
  }
  return { model: stored.source, format };
}

/** Stores `loaded` as the tenant's newest model version unless it already is; returns the version. */
export async function rememberModel(
  store: FileTupleStore,
  tenant: string,
  loaded: LoadedModel,
  engine: Engine,
): Promise<StoredModel> {
  const source = typeof loaded.model === "string" ? loaded.model : JSON.stringify(loaded.model);
  const format = engine.program.format;
  const latest = await store.models.latest(tenant);
  if (latest !== undefined && latest.source === source && latest.format === format) return latest;
  return store.models.add({ tenant, source, format });
}
