/**
 * A replayable agent trace over a NexusFS: two agents (users) of one tenant working in a project tree, the way
 * coding agents do: mostly re-reading a hot set of files, stat-ing them, listing the directories they work in,
 * and now and then writing. Files and directories are drawn Zipf(1.1); deterministic for a seed.
 */
import type { FileSystem } from "../../src/fs/filesystem.js";
import { prng } from "./filesystem.js";
import { zipfDraws } from "./zipf.js";

export const TRACE_TENANT = "acme";
export const OWNER = { user: "user:owner", tenant: TRACE_TENANT };
export const AGENTS = [
  { user: "agent:a1", tenant: TRACE_TENANT },
  { user: "agent:a2", tenant: TRACE_TENANT },
];

export interface TraceOp {
  readonly op: "read" | "stat" | "list" | "write";
  /** Index into AGENTS. */
  readonly agent: number;
  readonly path: string;
}

export interface AgentTrace {
  readonly dirs: string[];
  readonly files: string[];
  readonly ops: TraceOp[];
}

export function agentTrace(
  options: { dirs?: number; filesPerDir?: number; ops?: number; seed?: number } = {},
): AgentTrace {
  const { dirs: nDirs = 20, filesPerDir = 25, ops: nOps = 5000, seed = 7 } = options;
  const dirs = Array.from({ length: nDirs }, (_, d) => `/project/m${d}`);
  const files = dirs.flatMap((d) => Array.from({ length: filesPerDir }, (_, f) => `${d}/f${f}.ts`));
  const fileDraws = zipfDraws(nOps, files.length, 1.1, seed);
  const dirDraws = zipfDraws(nOps, dirs.length, 1.1, seed + 1);
  const random = prng(seed + 2);
  const ops: TraceOp[] = [];
  for (let i = 0; i < nOps; i++) {
    const x = random();
    const agent = random() < 0.5 ? 0 : 1;
    if (x < 0.6) ops.push({ op: "read", agent, path: files[fileDraws[i]!]! });
    else if (x < 0.8) ops.push({ op: "stat", agent, path: files[fileDraws[i]!]! });
    else if (x < 0.95) ops.push({ op: "list", agent, path: dirs[dirDraws[i]!]! });
    else ops.push({ op: "write", agent, path: files[fileDraws[i]!]! });
  }
  return { dirs, files, ops };
}

/**
 * Creates the trace's tree: the owner owns the tenant; agent 0 edits everything, agent 1 edits the even
 * directories and may only read the odd ones (its writes there are refused, and its reads of the odd half go
 * through a viewer grant).
 */
export async function setUpTrace(fs: FileSystem, trace: AgentTrace, fileBytes = 4096): Promise<void> {
  await fs.initTenant({ tenant: TRACE_TENANT, owners: [OWNER.user] });
  const owner = fs.as(OWNER);
  await owner.mkdir("/project");
  await owner.share("/project", { user: AGENTS[0]!.user, relation: "editor" });
  for (const [d, dir] of trace.dirs.entries()) {
    await owner.mkdir(dir);
    await owner.share(dir, { user: AGENTS[1]!.user, relation: d % 2 === 0 ? "editor" : "viewer" });
  }
  for (const [i, file] of trace.files.entries()) await owner.write(file, contentOf(i, 0, fileBytes));
}

/** Deterministic content for a file's n-th write. */
export function contentOf(file: number, n: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (file * 2654435761 + n * 40503 + 1) >>> 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
