/**
 * `nexus-fast mount`: mounts a NexusFS data directory with FUSE as one user, until interrupted (Ctrl-C or
 * SIGTERM), then unmounts. Every system call on the mount is that user's checked operation.
 */

import { fuseUnavailableReason, mount } from "../../fs/mount.js";
import { openFileSystem } from "../../fs/open.js";
import { parse, stringOption, UsageError } from "../args.js";
import type { Io } from "../io.js";

export const MOUNT_HELP = `Usage: nexus-fast mount --data DIR --user SUBJECT [--tenant T] [--view-tenant T] <mountpoint>

Mounts the NexusFS in DIR (created when missing) at <mountpoint> with FUSE, as SUBJECT (user:alice,
agent:a1) of tenant T (default "default"). The mount shows --view-tenant's tree (default: T's own; another
tenant shows what it shared across tenants). ls shows what SUBJECT may see; reads, writes, mkdir, mv and rm are
checked as the filesystem checks them (EACCES when refused). Runs until Ctrl-C or SIGTERM, then unmounts.
Needs /dev/fuse and the optional dependency fuse-native (libfuse 2).

Options:
  --data DIR          the filesystem's data directory
  --user SUBJECT      whose mount it is
  --tenant T          the subject's tenant (default "default")
  --view-tenant T     whose tree to show (default: --tenant)
  --owner             make SUBJECT an owner of its tenant's root first (set-up of a new data directory)
`;

export async function runMount(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    data: { type: "string" },
    user: { type: "string" },
    tenant: { type: "string" },
    "view-tenant": { type: "string" },
    owner: { type: "boolean" },
  });
  const dir = stringOption(parsed, "data");
  const user = stringOption(parsed, "user");
  const mountpoint = parsed.positionals[0];
  if (dir === undefined || user === undefined || mountpoint === undefined || parsed.positionals.length > 1) {
    throw new UsageError("mount needs --data DIR, --user SUBJECT and one mountpoint");
  }
  const tenant = stringOption(parsed, "tenant") ?? "default";
  const unavailable = fuseUnavailableReason();
  if (unavailable !== undefined) {
    io.err(`nexus-fast mount: ${unavailable}`);
    return 2;
  }
  const fs = await openFileSystem({ dir });
  try {
    if (parsed.values.owner === true) await fs.initTenant({ tenant, owners: [user] });
    const m = await mount({
      fs,
      caller: { user, tenant },
      tenant: stringOption(parsed, "view-tenant") ?? tenant,
      mountpoint,
    });
    io.out(`mounted ${dir} at ${mountpoint} as ${user} (tenant ${tenant}); Ctrl-C unmounts`);
    // Handlers stay installed until the unmount is done: Ctrl-C signals the whole process group (a wrapper such
    // as npx/tsx relays it again), and a second signal with no handler would kill us with the mount left behind.
    const stop = (): void => release();
    let release: () => void = () => {};
    const stopped = new Promise<void>((resolve) => {
      release = resolve;
    });
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    try {
      await stopped;
      await m.unmount();
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
    io.out("unmounted");
    return 0;
  } finally {
    await fs.close();
  }
}
