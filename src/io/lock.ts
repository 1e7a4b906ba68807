/**
 * The single-writer lock of a store directory: a LOCK file created exclusively, holding the owner's pid, process
 * start time and hostname. A lock whose owner is gone (killed, crashed) is taken over; a live owner, in this
 * process or another, makes the second writer fail with NexusError("locked").
 *
 * Taking over a stale LOCK: contenders that read the same stale file race for a marker named after that file
 * (LOCK.takeover-<inode>-<mtime>, created exclusively); only its winner may unlink LOCK, and only while LOCK is
 * still that file. Nobody else can replace a LOCK that exists, so the check and the unlink cannot be separated
 * by another writer taking the lock. Every contender then competes in the same exclusive create.
 */
import { readFileSync, realpathSync } from "node:fs";
import { type FileHandle, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { NexusError } from "../util/errors.js";

const heldHere = new Set<string>();

/**
 * How long a LOCK without a whole owner line (its creator has not written it yet) or a takeover marker counts
 * as in progress. After that it is left over from a process killed mid-step, or from a machine crash (neither is
 * synced).
 */
const IN_PROGRESS_MS = 10_000;
const ATTEMPTS = 50;
const RETRY_MS = 20;

export interface DirectoryLock {
  readonly path: string;
  release(): Promise<void>;
}

export async function acquireLock(dir: string): Promise<DirectoryLock> {
  // One key per directory however it is spelled (relative, through a symlink), recorded before any await so two
  // concurrent opens in this process cannot both get past the check.
  const key = canonical(dir);
  if (heldHere.has(key)) {
    throw new NexusError("locked", `store directory ${dir} is already open for writing in this process`, {
      dir,
      pid: process.pid,
    });
  }
  heldHere.add(key);
  try {
    return await take(dir, key);
  } catch (error) {
    heldHere.delete(key);
    throw error;
  }
}

async function take(dir: string, key: string): Promise<DirectoryLock> {
  const path = join(key, "LOCK");
  const me = `${process.pid} ${processStart(process.pid)} ${hostname()}\n`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await create(path, me)) {
      await unlinkMarkers(key);
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          try {
            if ((await readText(path)) === me) await unlink(path);
          } catch {
            // already gone
          } finally {
            heldHere.delete(key);
          }
        },
      };
    }
    const found = await readLock(path);
    if (found === undefined) continue; // released meanwhile: try again
    const { owner, ino, mtimeMs } = found;
    const whole = owner.endsWith("\n");
    if (!whole && Date.now() - mtimeMs < IN_PROGRESS_MS) {
      // Its creator may not have written its line yet.
      await sleep(RETRY_MS);
      continue;
    }
    if (whole && ownerAlive(owner)) {
      const [pidText, , host] = owner.trim().split(" ");
      const pid = Number(pidText);
      const elsewhere = host !== undefined && host !== hostname();
      throw new NexusError(
        "locked",
        elsewhere
          ? `store directory ${dir} is locked by a writer on host ${host} (pid ${pid}); a lock taken on another ` +
              `machine is never taken over: remove ${path} if that writer is gone`
          : `store directory ${dir} is locked by a running writer (pid ${pid})`,
        { dir, pid, lockFile: path, ...(elsewhere ? { host } : {}) },
      );
    }
    await takeOver(path, { owner, ino, mtimeMs });
  }
  throw new NexusError("locked", `could not take the lock of store directory ${dir}`, {
    dir,
    lockFile: path,
  });
}

/** Creates LOCK holding `me`; false when a LOCK exists. Checks afterwards that LOCK is the file it created. */
async function create(path: string, me: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await open(path, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  let mine: number;
  try {
    // Not synced: after a machine crash the owner is gone anyway and the lock is taken over as stale.
    await fh.writeFile(me);
    mine = (await fh.stat()).ino;
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(path).catch(() => {}); // ours: nobody takes over a LOCK this young
    throw e;
  }
  await fh.close();
  const there = await stat(path).catch(() => undefined);
  if (there?.ino !== mine) {
    throw new NexusError("locked", `the lock file ${path} was replaced while it was being taken`, {
      lockFile: path,
    });
  }
  return true;
}

async function readLock(path: string): Promise<LockFile | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    return { owner: await fh.readFile("utf8"), ino: st.ino, mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}

interface LockFile {
  owner: string;
  ino: number;
  mtimeMs: number;
}

/** Unlinks the stale LOCK `stale` if this contender wins its takeover marker. */
async function takeOver(path: string, stale: LockFile): Promise<void> {
  const marker = `${path}.takeover-${stale.ino}-${Math.round(stale.mtimeMs * 1000)}`;
  let fh: FileHandle;
  try {
    fh = await open(marker, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    // Another contender is taking it over. A marker left by one killed mid-takeover is moved aside when old
    // (rename, so two contenders cannot both remove it and one remove the other's fresh marker unnoticed).
    const st = await stat(marker).catch(() => undefined);
    if (st !== undefined && Date.now() - st.mtimeMs >= IN_PROGRESS_MS) {
      const aside = `${marker}.old-${process.pid}`;
      await rename(marker, aside).then(
        () => unlink(aside),
        () => {},
      );
    } else {
      await sleep(RETRY_MS);
    }
    return;
  }
  try {
    await fh.close();
    // Only this contender may remove that file, and no LOCK can be created while it exists. Compared whole: an
    // inode number is reused at once, and this contender may have read the stale file long ago.
    const now = await readLock(path);
    if (
      now !== undefined &&
      now.ino === stale.ino &&
      now.mtimeMs === stale.mtimeMs &&
      now.owner === stale.owner
    ) {
      await unlink(path).catch(() => {});
    }
  } finally {
    await unlink(marker).catch(() => {});
  }
}

/** Removes takeover markers left by contenders killed mid-takeover (the lock is ours: none is in progress). */
async function unlinkMarkers(key: string): Promise<void> {
  const names = await readdir(key).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith("LOCK.takeover-")) await unlink(join(key, name)).catch(() => {});
  }
}

function ownerAlive(content: string): boolean {
  const [pidText, start, host] = content.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false; // a torn lock file: its writer died while creating it
  if (host !== undefined && host !== hostname()) return true; // cannot check another machine's process
  // Our own pid is ours (another open in this process, or a worker thread) unless the start time says it was an
  // earlier process given the same pid (pid 1 in a restarted container).
  if (pid !== process.pid) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    }
  }
  // The pid is in use: it is the owner unless the pid was reused by a process started later.
  const now = processStart(pid);
  return start === undefined || start === "-" || now === "-" || now === start;
}

function canonical(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir); // missing: the create below reports it
  }
}

async function readText(path: string): Promise<string> {
  const fh = await open(path, "r");
  try {
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A process's start time (Linux: /proc/<pid>/stat field 22), "-" where it cannot be read. */
function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? "-";
  } catch {
    return "-";
  }
}
