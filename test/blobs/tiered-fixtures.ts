// Shared setup for the tiered-store tests and their crash children: a temporary layout (state dir, hot volume
// store, 14 warm directories, cold blob directory) and deterministic object bytes.
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FsBlobStore } from "../../src/blobs/tiered/blob-store.js";
import type { HotStore, TieredStoreOptions } from "../../src/blobs/tiered/options.js";
import { openTieredStore, type TieredStore } from "../../src/blobs/tiered/store.js";
import { type FsyncPolicy, openStore } from "../../src/blobs/volume/store.js";

export interface Layout {
  root: string;
  dir: string;
  hotDir: string;
  warmDirs: string[];
  coldDir: string;
}

export function makeLayout(root = mkdtempSync(join(tmpdir(), "nexus-tiered-")), warmCount = 14): Layout {
  return {
    root,
    dir: join(root, "state"),
    hotDir: join(root, "hot"),
    warmDirs: Array.from({ length: warmCount }, (_, i) => join(root, `disk${String(i).padStart(2, "0")}`)),
    coldDir: join(root, "cold"),
  };
}

export async function removeLayout(layout: Layout): Promise<void> {
  await rm(layout.root, { recursive: true, force: true });
}

/** The hot tier: the volume store. */
export function openHot(dir: string, fsync: FsyncPolicy = "batch"): Promise<HotStore> {
  return openStore({ dir, fsync });
}

export async function openLayout(
  layout: Layout,
  extra: Partial<Omit<TieredStoreOptions, "hot" | "cold" | "dir">> = {},
): Promise<TieredStore> {
  return openTieredStore({
    dir: layout.dir,
    hot: await openHot(layout.hotDir, extra.fsync === false ? "never" : "batch"),
    cold: new FsBlobStore({ dir: layout.coldDir }),
    ...extra,
    warm: { dirs: layout.warmDirs, ...extra.warm },
    policy: { minWarmSize: 0, ...extra.policy },
  });
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function objectBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
