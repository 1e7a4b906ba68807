/**
 * The built playground page as a server hands it out (Node only; the page's own code never imports this): the
 * two files `npm run build` writes to dist/playground/, read into memory. `nexus-fast playground` serves them at
 * "/", `nexus-fast serve` at "/playground/". The page loads "./bundle.js" relative to itself, so any prefix that
 * ends with "/" works.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NexusError } from "../util/errors.js";

/**
 * dist/playground/ of this package. The same relative path from src/playground/ (tests run the sources) and from
 * dist/playground/ (the built package) reaches it.
 */
export const PLAYGROUND_DIR = fileURLToPath(new URL("../../dist/playground/", import.meta.url));

/** The only files served: path relative to the page's folder → file and its type. */
const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/bundle.js": { file: "bundle.js", type: "text/javascript; charset=utf-8" },
};

export interface PlaygroundFile {
  readonly body: Buffer;
  readonly type: string;
}

/**
 * The page's files by path relative to where the page is served ("/", "/index.html", "/bundle.js").
 * @throws NexusError "not_found" when the page is not built (run `npm run build`).
 */
export async function loadPlaygroundFiles(
  dir: string = PLAYGROUND_DIR,
): Promise<Map<string, PlaygroundFile>> {
  const files = new Map<string, PlaygroundFile>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    try {
      files.set(path, { body: await readFile(join(dir, file)), type });
    } catch {
      throw new NexusError(
        "not_found",
        `the playground is not built (${join(dir, file)} is missing): run npm run build`,
      );
    }
  }
  return files;
}
