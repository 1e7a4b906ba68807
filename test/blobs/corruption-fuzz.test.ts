// Corruption fuzz (issue 18): random single-byte and multi-byte flips, truncations and misdirected copies
// ("duplications": a range of a file written over another place of it, or one shard file over another) in
// volumes, .idx logs and warm shards, thousands of trials from a seeded PRNG (FUZZ_SEED replays a run). After
// each trial every blob is returned byte-exact or reported corrupt / too_many_losses, never other bytes, and a
// re-put repairs it. The only not_found allowed is a blob whose needle a truncation cut off the end of its volume:
// that is exactly what a torn write looks like, and recovery must cut torn writes (layout.ts).
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type NeedleStore, openStore } from "../../src/blobs/index.js";
import {
  decodeHeader,
  keyHex,
  NeedleKind,
  needleLength,
  SUPERBLOCK_SIZE,
} from "../../src/blobs/volume/layout.js";
import { createChecksums } from "../../src/io/checksum.js";
import { isNexusError } from "../../src/util/errors.js";
import { seededRandom } from "../../src/util/random.js";
import { makeLayout, objectBytes, openLayout, removeLayout, sameBytes } from "./tiered-fixtures.js";

const SEED = Number(process.env.FUZZ_SEED ?? 18);
const VOLUME_TRIALS = Number(process.env.FUZZ_VOLUME_TRIALS ?? 800);
const IDX_TRIALS = Number(process.env.FUZZ_IDX_TRIALS ?? 400);
const SHARD_TRIALS = Number(process.env.FUZZ_SHARD_TRIALS ?? 800);
/** RAM-backed when the machine has it: the trials are about recovery, not the disk. */
const ROOT = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const crc32c = (await createChecksums()).crc32c;

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
function freshRoot(prefix: string): string {
  const dir = mkdtempSync(join(ROOT, prefix));
  roots.push(dir);
  return dir;
}

type Damage = { file: string; what: string; cutAt?: number };

/** One random damage to the file at `path`; returns what it did (for the failure message). */
function damage(path: string, rnd: () => number): Damage {
  const bytes = readFileSync(path);
  const int = (n: number) => Math.floor(rnd() * n);
  const file = path.split("/").slice(-1)[0]!;
  if (bytes.length === 0) return { file, what: "nothing (empty file)" };
  const op = int(5);
  if (op === 0) {
    const at = int(bytes.length);
    bytes[at]! ^= 1 + int(255);
    writeFileSync(path, bytes);
    return { file, what: `flip byte ${at}` };
  }
  if (op === 1) {
    const n = 2 + int(15);
    const at: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = int(bytes.length);
      bytes[p]! ^= 1 + int(255);
      at.push(p);
    }
    writeFileSync(path, bytes);
    return { file, what: `flip bytes ${at.join(",")}` };
  }
  if (op === 2) {
    const at = int(bytes.length);
    const n = Math.min(bytes.length - at, 2 + int(63));
    for (let i = 0; i < n; i++) bytes[at + i] = int(256);
    writeFileSync(path, bytes);
    return { file, what: `garble ${n} bytes at ${at}` };
  }
  if (op === 3) {
    const cutAt = int(bytes.length);
    writeFileSync(path, bytes.subarray(0, cutAt));
    return { file, what: `truncate at ${cutAt}`, cutAt };
  }
  const n = Math.min(bytes.length, 8 + int(505));
  const from = int(bytes.length - n + 1);
  const to = int(bytes.length - n + 1);
  Buffer.from(bytes.subarray(from, from + n)).copy(bytes, to);
  writeFileSync(path, bytes);
  return { file, what: `copy ${n} bytes from ${from} over ${to}` };
}

interface Blob {
  bytes: Uint8Array;
  key: string;
  deleted: boolean;
  /** Where its data needle is in the pristine store. */
  volume: string;
  end: number;
  /** The end of its (last) tombstone in the pristine store. */
  deletedAt: number;
}

async function outcome(store: NeedleStore, blob: Blob): Promise<string> {
  try {
    const got = await store.get(blob.key);
    return sameBytes(got, blob.bytes) ? "ok" : "WRONG BYTES";
  } catch (e) {
    if (isNexusError(e, "corrupt") || isNexusError(e, "not_found")) return e.code;
    throw e;
  }
}

/** A pristine store of several volumes: `count` blobs, some with two references, some deleted. */
async function pristineStore(
  count: number,
  volumeSize: number,
): Promise<{ dir: string; blobs: Blob[]; volumeSize: number }> {
  const dir = join(freshRoot("nexus-fuzz-"), "pristine");
  const rnd = seededRandom(SEED);
  const store = await openStore({ dir, volumeSize });
  const blobs: Blob[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = objectBytes(1 + Math.floor(rnd() * 64), SEED * 1000 + i + 1);
    const { key } = await store.put(bytes);
    blobs.push({ bytes, key, deleted: false, volume: "", end: 0, deletedAt: 0 });
    if (i % 7 === 0) await store.put(bytes); // a second reference
  }
  for (let i = 3; i < blobs.length; i += 11) {
    await store.delete(blobs[i]!.key);
    if (i % 7 !== 0) blobs[i]!.deleted = true; // one reference left for those put twice
  }
  await store.close();
  // Where each data needle is (the test reads the pristine volumes itself).
  const byKey = new Map(blobs.map((b) => [b.key, b]));
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".vol"))) {
    const vol = readFileSync(join(dir, name));
    for (let pos = SUPERBLOCK_SIZE; pos < vol.length; ) {
      const h = decodeHeader(vol, pos, crc32c);
      if (typeof h === "string") throw new Error(`pristine ${name} unreadable at ${pos}`);
      const length = needleLength(h.size);
      const blob = byKey.get(keyHex(h.key));
      if (h.kind === NeedleKind.Data && blob) Object.assign(blob, { volume: name, end: pos + length });
      if (h.kind === NeedleKind.Tombstone && blob) blob.deletedAt = pos + length;
      pos += length;
    }
  }
  return { dir, blobs, volumeSize };
}

describe("corruption fuzz", () => {
  for (const target of ["vol", "idx"] as const) {
    const trials = target === "vol" ? VOLUME_TRIALS : IDX_TRIALS;
    it(`${trials} trials of damage to .${target} files: byte-exact or corrupt, and a re-put repairs`, async () => {
      // Three volumes; for the .idx trials each holds more than a sealed group (256 slots) of the log.
      const {
        dir: pristine,
        blobs,
        volumeSize,
      } = target === "idx" ? await pristineStore(600, 28 * 1024) : await pristineStore(240, 10 * 1024);
      const files = readdirSync(pristine).filter((n) => n.endsWith(`.${target}`));
      expect(files.length).toBeGreaterThanOrEqual(3);
      const tally = new Map<string, number>();
      const runTrial = async (trial: number, dir: string) => {
        const rnd = seededRandom(SEED * 7919 + trial * 2 + (target === "vol" ? 1 : 2));
        rmSync(dir, { recursive: true, force: true });
        cpSync(pristine, dir, { recursive: true });
        const hit = damage(join(dir, files[Math.floor(rnd() * files.length)]!), rnd);
        const label = `seed ${SEED} trial ${trial}: ${hit.file} ${hit.what}`;
        // Every blob of the damaged volume, and a sample of the others (their files are untouched).
        const stem = hit.file.slice(0, 6);
        const checked = blobs.filter((b) => b.volume.startsWith(stem) || rnd() < 0.02);
        const store = await openStore({ dir, volumeSize });
        const broken: Blob[] = [];
        const outcomes = await Promise.all(checked.map((blob) => outcome(store, blob)));
        for (const [i, blob] of checked.entries()) {
          const got = outcomes[i]!;
          tally.set(got, (tally.get(got) ?? 0) + 1);
          if (blob.deleted) {
            // A truncation that cuts the tombstone off is a torn delete: the blob is back, whole.
            const tornDelete =
              hit.cutAt !== undefined && hit.file === blob.volume && hit.cutAt < blob.deletedAt;
            expect(
              tornDelete ? ["not_found", "ok"] : ["not_found"],
              `${label}: deleted ${blob.key}`,
            ).toContain(got);
            continue;
          }
          if (got === "ok") continue;
          if (target === "idx") expect.fail(`${label}: blob ${blob.key} is ${got}; the .idx is rebuildable`);
          const tornOff = hit.cutAt !== undefined && hit.file === blob.volume && hit.cutAt < blob.end;
          expect([tornOff ? "not_found" : "corrupt", "corrupt"], `${label}: blob ${blob.key}`).toContain(got);
          broken.push(blob);
        }
        for (const blob of broken) await store.put(blob.bytes);
        for (const blob of broken)
          expect(await outcome(store, blob), `${label}: re-put ${blob.key}`).toBe("ok");
        await store.close();
        if (broken.length > 0 && trial % 8 === 0) {
          // The repair is durable: a reopen serves everything.
          const again = await openStore({ dir, volumeSize });
          const after = await Promise.all(checked.map((blob) => outcome(again, blob)));
          for (const [i, blob] of checked.entries()) {
            if (!blob.deleted) expect(after[i], `${label}: after reopen ${blob.key}`).toBe("ok");
          }
          await again.close();
        }
      };
      // Trials are independent (each its own directory and PRNG): a few at a time keep the I/O busy.
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async (_, lane) => {
          const dir = join(pristine, "..", `trial-${lane}`);
          while (next < trials) await runTrial(next++, dir);
        }),
      );
      console.log(`corruption fuzz .${target}: ${trials} trials, outcomes`, Object.fromEntries(tally));
    }, 300_000);
  }

  it(`${SHARD_TRIALS} trials of damage to warm shards: byte-exact or too_many_losses, scrub and re-put repair`, async () => {
    const l = makeLayout(freshRoot("nexus-fuzz-tiered-"));
    try {
      await using store = await openLayout(l);
      const rnd = seededRandom(SEED * 104729);
      const objects: { key: string; bytes: Uint8Array }[] = [];
      for (let i = 0; i < 5; i++) {
        const bytes = objectBytes(2_000 + Math.floor(rnd() * 20_000), 5000 + i);
        const { key } = await store.put(bytes);
        await store.moveTo(key, "warm");
        objects.push({ key, bytes });
      }
      const shardPaths = (key: string) =>
        Array.from({ length: 14 }, (_, i) => i).flatMap((i) =>
          l.warmDirs.map((d) => join(d, key.slice(0, 2), `${key}.${i}`)).filter((p) => existsSync(p)),
        );
      let pristine = new Map<string, Buffer>();
      const snapshot = () => {
        pristine = new Map();
        for (const o of objects) for (const p of shardPaths(o.key)) pristine.set(p, readFileSync(p));
      };
      snapshot();
      let repairedByScrub = 0;
      let lost = 0;
      for (let trial = 0; trial < SHARD_TRIALS; trial++) {
        const victim = objects[Math.floor(rnd() * objects.length)]!;
        const paths = shardPaths(victim.key);
        const count = 1 + Math.floor(rnd() * 6);
        const damaged = new Set<string>();
        const notes: string[] = [];
        while (damaged.size < count) {
          const path = paths[Math.floor(rnd() * paths.length)]!;
          if (damaged.has(path)) continue;
          damaged.add(path);
          if (rnd() < 0.15) {
            // A whole shard file written over another (a misdirected copy) or lost.
            const other = [...pristine.keys()][Math.floor(rnd() * pristine.size)]!;
            if (other !== path && rnd() < 0.5) writeFileSync(path, pristine.get(other)!);
            else rmSync(path);
            notes.push(`${path.slice(-3)} replaced or removed`);
          } else notes.push(`${path.slice(-3)} ${damage(path, rnd).what}`);
        }
        const label = `seed ${SEED} shard trial ${trial}: ${notes.join("; ")}`;
        const other = objects[Math.floor(rnd() * objects.length)]!;
        for (const o of other === victim ? [victim] : [victim, other]) {
          let got: string;
          try {
            got = sameBytes(await store.get(o.key), o.bytes) ? "ok" : "WRONG BYTES";
          } catch (e) {
            if (!isNexusError(e, "too_many_losses")) throw new Error(`${label}: ${String(e)}`);
            expect(e.details, label).toMatchObject({ shardsNeeded: 10 });
            expect((e.details as { shardsLeft: number }).shardsLeft, label).toBeLessThan(10);
            got = "too_many_losses";
          }
          if (o !== victim || damaged.size <= 4) expect(got, label).toBe("ok");
          else expect(["ok", "too_many_losses"], label).toContain(got);
          if (got === "too_many_losses") {
            lost++;
            await store.put(o.bytes); // the re-put repairs it (the new hot copy wins)
            expect(sameBytes(await store.get(o.key), o.bytes), `${label}: re-put`).toBe(true);
            await store.moveTo(o.key, "warm");
            for (const p of pristine.keys()) if (p.includes(o.key)) pristine.delete(p);
            for (const p of shardPaths(o.key)) pristine.set(p, readFileSync(p));
            damaged.clear();
          }
        }
        if (damaged.size > 0 && trial % 10 === 0) {
          const result = await store.scrub();
          expect(result.lost, label).toEqual([]);
          repairedByScrub += result.repaired.length;
          expect(await store.warm.read(victim.key), label).toMatchObject({ missing: [], corrupt: [] });
        }
        for (const [p, bytes] of pristine) if (p.includes(victim.key)) writeFileSync(p, bytes);
        // Files a misdirected copy or a repair left where no pristine shard is: back to the pristine set.
        for (const p of shardPaths(victim.key)) if (!pristine.has(p)) rmSync(p);
      }
      console.log(
        `corruption fuzz shards: ${SHARD_TRIALS} trials, ${lost} past repair and re-put, ${repairedByScrub} repaired by scrub`,
      );
      if (SHARD_TRIALS >= 100) expect(repairedByScrub).toBeGreaterThan(0);
    } finally {
      await removeLayout(l);
    }
  }, 300_000);
});
