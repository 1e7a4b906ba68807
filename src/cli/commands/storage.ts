/**
 * `nexus-fast storage compact|scrub|tier`: the volume store's and the tiered store's long maintenance passes from the
 * command line, each with a progress bar on a terminal (src/cli/progress.ts) and a result line after it.
 *
 * `--store DIR` names a volume store (nexus-fast/storage `openStore`); `--data DIR` a NexusFS data directory with
 * its default layout (contents in DIR/blobs, DIR/warm/00..13, DIR/cold; see src/fs/open.ts). Both hold a
 * lock, so a directory another process has open is refused ("locked"). Exit 0 done, 1 a scrub found damage it could
 * not repair, 2 error.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { openStore } from "../../blobs/volume/store.js";
import { openFileSystem } from "../../fs/open.js";
import { parse, stringOption, UsageError } from "../args.js";
import type { Io } from "../io.js";
import { withProgress } from "../progress.js";

export const STORAGE_HELP = `Usage: nexus-fast storage <compact|scrub|tier> (--store DIR | --data DIR) [options]

Long maintenance passes, with a progress bar when stderr is a terminal:
  compact    rewrite volumes whose garbage ratio passed the threshold (copies live needles, swaps atomically)
  scrub      read every stored object back and verify it; with --data, lost or corrupt warm shards are
             re-encoded from the survivors (exit 1 when something could not be repaired)
  tier       run one tiering pass over a NexusFS's contents (demote idle objects, promote read ones)

Options:
  --store DIR       a volume store directory (nexus-fast/storage openStore): compact, scrub
  --data DIR        a NexusFS data directory (default layout): compact (its volumes), scrub (every tier), tier
  --threshold R     compact: the garbage ratio from which a volume is rewritten (default: the store's, 0.3)
  --verify-hash     scrub --store: also check each blob against its BLAKE3 key (slower)
`;

export async function runStorage(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    store: { type: "string" },
    data: { type: "string" },
    threshold: { type: "string" },
    "verify-hash": { type: "boolean" },
  });
  const [action, ...extra] = parsed.positionals;
  if (action === undefined) throw new UsageError("name a pass: compact, scrub or tier");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const storeDir = stringOption(parsed, "store");
  const dataDir = stringOption(parsed, "data");
  if ((storeDir === undefined) === (dataDir === undefined)) {
    throw new UsageError("give exactly one of --store DIR (a volume store) or --data DIR (a NexusFS)");
  }
  const thresholdText = stringOption(parsed, "threshold");
  const threshold = thresholdText === undefined ? undefined : Number(thresholdText);
  if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) {
    throw new UsageError(`--threshold must be a ratio from 0 to 1, got "${thresholdText}"`);
  }
  switch (action) {
    case "compact":
      return compact(storeDir ?? join(dataDir!, "blobs"), threshold, io);
    case "scrub":
      return storeDir !== undefined
        ? scrubVolumes(storeDir, parsed.values["verify-hash"] === true, io)
        : scrubFileSystem(dataDir!, io);
    case "tier":
      if (dataDir === undefined) throw new UsageError("tier needs --data DIR (a NexusFS data directory)");
      return tier(dataDir, io);
    default:
      throw new UsageError(`unknown pass "${action}": compact, scrub or tier`);
  }
}

async function compact(dir: string, threshold: number | undefined, io: Io): Promise<number> {
  await using store = await openVolumes(dir);
  const result = await withProgress("compact", 1, { unit: "bytes" }, (bar) =>
    store.compact({
      ...(threshold !== undefined ? { threshold } : {}),
      onProgress: (p) => bar.update(p.bytesDone, Math.max(p.bytesTotal, 1), `volume ${p.volume} ${p.phase}`),
    }),
  );
  io.out(
    `${dir}: compacted ${result.volumes.length} volume(s), ${result.bytesReclaimed} bytes reclaimed, ` +
      `${result.needlesCopied} needles copied` +
      (result.corrupt > 0 ? `; ${result.corrupt} corrupt needle(s) kept, their volume skipped` : ""),
  );
  return 0;
}

async function scrubVolumes(dir: string, verifyHash: boolean, io: Io): Promise<number> {
  await using store = await openVolumes(dir);
  const total = store.stats().needles;
  const result = await withProgress("scrub", total, {}, (bar) =>
    store.scrub({
      verifyHash,
      onProgress: (p) => bar.update(p.checked, p.total, p.corrupt > 0 ? `${p.corrupt} corrupt` : ""),
    }),
  );
  io.out(
    `${dir}: ${result.checked} needle(s) checked (${result.bytesChecked} bytes), ${result.corrupt.length} corrupt`,
  );
  for (const c of result.corrupt) io.out(`  corrupt: ${JSON.stringify(c)}`);
  return result.corrupt.length === 0 ? 0 : 1;
}

async function scrubFileSystem(dir: string, io: Io): Promise<number> {
  await using fs = await openFileSystem({ dir, tiers: { intervalMs: false } });
  const result = await withProgress("scrub", 1, {}, (bar) =>
    fs.contents.scrub({
      onProgress: (p) =>
        bar.update(p.checked, p.total, p.outcome === "ok" ? "" : `${p.outcome} ${p.key.slice(0, 12)}`),
    }),
  );
  io.out(
    `${dir}: ${result.checked} object(s) checked, ${result.repaired.length} repaired, ${result.lost.length} lost`,
  );
  for (const lost of result.lost) io.out(`  lost: ${lost.key} (${lost.tier ?? "?"}: ${lost.code})`);
  return result.lost.length === 0 ? 0 : 1;
}

async function tier(dir: string, io: Io): Promise<number> {
  await using fs = await openFileSystem({ dir, tiers: { intervalMs: false } });
  const result = await withProgress("tier", 1, {}, (bar) =>
    fs.contents.runTieringPass({
      onProgress: (p) => bar.update(p.phase === "plan" ? 0 : p.index, Math.max(p.total, 1), p.phase),
    }),
  );
  io.out(
    `${dir}: tiering pass: ${result.demoted} demoted, ${result.promoted} promoted, ${result.repaired} repaired, ` +
      `${result.failed} failed, ${result.bytesMoved} bytes moved in ${Math.round(result.durationMs)} ms`,
  );
  return result.failed === 0 ? 0 : 1;
}

/** The volume store in `dir`; refuses a missing one instead of creating an empty store. */
async function openVolumes(dir: string) {
  const found = await stat(dir).catch(() => undefined);
  if (found === undefined || !found.isDirectory()) throw new UsageError(`${dir} is not a directory`);
  return openStore({ dir });
}
