/**
 * "Nothing left running", checked two ways after a runtime test closes what it started: the Node process holds no
 * more handles than before (process.getActiveResourcesInfo()), and no child process of this one is alive (a
 * browser or workerd that outlived close() would show up here even if its pipes were already unref'd).
 */
import { readdirSync, readFileSync } from "node:fs";

/** Count of active resources by type ("TCPServerWrap", "ProcessWrap", ...). */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Resource types held now in greater number than in `before`, e.g. ["TCPServerWrap +1"]. */
export function leakedResources(before: Map<string, number>): string[] {
  const leaks: string[] = [];
  for (const [type, count] of activeResources()) {
    const extra = count - (before.get(type) ?? 0);
    if (extra > 0) leaks.push(`${type} +${extra}`);
  }
  return leaks;
}

/** Live child processes of this process (Linux /proc), as "pid command line". */
export function childProcesses(): string[] {
  const children: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so split after it.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) !== process.pid || fields[0] === "Z") continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      children.push(`${entry} ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/** Polls until nothing leaked (or the deadline passes) and returns what is still there. */
export async function settle(
  before: Map<string, number>,
  timeoutMs = 3_000,
): Promise<{ leaks: string[]; children: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leaks = leakedResources(before);
    const children = childProcesses();
    if ((leaks.length === 0 && children.length === 0) || Date.now() > deadline) return { leaks, children };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Live processes (anyone's children) whose command line contains `text`, e.g. a browser's profile directory. */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      if (cmdline.includes(text)) found.push(`${entry} ${cmdline.slice(0, 200)}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}
