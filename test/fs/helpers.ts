import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { FileSystem, FileSystemOptions } from "../../src/fs/filesystem.js";
import { openFileSystem } from "../../src/fs/open.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";

export const ALICE = { user: "user:alice", tenant: "acme" };
export const BOB = { user: "user:bob", tenant: "acme" };
export const CAROL = { user: "user:carol", tenant: "globex" };
export const DAVE = { user: "user:dave", tenant: "globex" };

export function tempDir(prefix = "nexus-fs-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Two tenants: acme (alice owns the root; bob has nothing until shared) and globex (carol owns the root; dave
 * has nothing). The engine is given, so a test can reopen the filesystem on the same tuples.
 */
export async function twoTenants(
  dir: string,
  options: Partial<FileSystemOptions> & { engine?: Engine } = {},
): Promise<{ fs: FileSystem; engine: Engine }> {
  const engine = options.engine ?? (await createEngine({ model: nexusFilesystemModel }));
  const fs = await openFileSystem({ ...options, dir, engine });
  await fs.initTenant({ tenant: "acme", owners: [ALICE.user] });
  await fs.initTenant({ tenant: "globex", owners: [CAROL.user] });
  return { fs, engine };
}

export const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
