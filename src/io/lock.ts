/**
 * The single-writer lock of a store directory: a LOCK file created exclusively, holding the owner's pid and
 * process start time. A lock whose owner is gone (killed, crashed) is taken over; a live owner, in this process
 * or another, makes the second writer fail with NexusError("locked").
 */
import { readFileSync } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { NexusError } from "../util/errors.js";

const heldHere = new Set<string>();

export interface DirectoryLock {
  readonly path: string;
  release(): Promise<void>;
}

export async function acquireLock(dir: string): Promise<DirectoryLock> {
  const key = resolve(dir);
  const path = join(key, "LOCK");
  if (heldHere.has(key)) {
    throw new NexusError("locked", `store directory ${dir} is already open for writing in this process`, {
      dir,
      pid: process.pid,
    });
  }
  const me = `${process.pid} ${processStart(process.pid)} ${hostname()}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fh = await open(path, "wx");
      try {
        // Not synced: after a machine crash the owner is gone anyway and the lock is taken over as stale.
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      heldHere.add(key);
      return {
        path,
        async release() {
          if (!heldHere.delete(key)) return;
          try {
            if ((await readFile(path, "utf8")) === me) await unlink(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let owner = "";
    try {
      owner = await readFile(path, "utf8");
      if (owner === "" && attempt < 2) {
        // Its creator may not have written its pid yet.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
    } catch {
      continue; // released meanwhile: try again
    }
    if (ownerAlive(owner)) {
      const pid = Number(owner.split(" ")[0]);
      throw new NexusError("locked", `store directory ${dir} is locked by a running writer (pid ${pid})`, {
        dir,
        pid,
        lockFile: path,
      });
    }
    // A stale lock: move it aside (only one contender wins the rename), then retry the exclusive create.
    const aside = `${path}.stale-${process.pid}-${Date.now()}`;
    try {
      await rename(path, aside);
      await unlink(aside);
    } catch {
      // another process took it over first
    }
  }
  throw new NexusError("locked", `could not take the lock of store directory ${dir}`, {
    dir,
    lockFile: path,
  });
}

function ownerAlive(content: string): boolean {
  const [pidText, start, host] = content.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false; // a torn lock file: its writer died while creating it
  if (host !== undefined && host !== hostname()) return true; // cannot check another machine's process
  if (pid === process.pid) return false; // not held by this process (checked above): a leftover
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  // The pid is in use: it is the owner unless the pid was reused by a process started later.
  const now = processStart(pid);
  return start === undefined || start === "-" || now === "-" || now === start;
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
