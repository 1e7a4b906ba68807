/** Help texts: one overview and one page per command. */
import { MOUNT_HELP } from "./mount.js";
import { PLAYGROUND_HELP } from "./playground.js";
import { PRESET_HELP } from "./preset.js";
import { SERVE_HELP } from "./serve.js";
import { STORAGE_HELP } from "./storage.js";

export const HELP = `nexus-fast: Zanzibar-style permissions for agent filesystems (OpenFGA, SpiceDB and Nexus models)

Usage: nexus-fast <command> [options]

Commands:
  demo                         Build a multi-tenant Nexus filesystem, ask it questions, revoke, print timings
  check <user> <relation> <object>
                               Answer one permission question against a model and tuples
                               (exit 0 allowed, 1 denied, 2 error)
  test <store.fga.yaml>...     Run OpenFGA store-file tests (fga model test format); exit 1 on any failure
  write --data DIR             Keep a model version and tuples in DIR (a durable tuple store) for check --data
  serve [--port N] [--data DIR]
                               Serve OpenFGA's HTTP API (the OpenFGA SDKs work against it unchanged)
  mount --data DIR --user S <mountpoint>
                               Mount a NexusFS with FUSE as one user (permissions enforced per call)
  preset [--json]              Print the built-in Nexus filesystem model that check uses without --model
  storage <compact|scrub|tier> (--store DIR | --data DIR)
                               Compact volumes, scrub every stored object, or run a tiering pass (progress bars)
  playground [--port N]        Serve the in-browser playground (the engine runs in the page) on 127.0.0.1
  help [command]               Show help for a command

Options:
  -h, --help                   Show help
  -v, --version                Show the version
`;

const COMMAND_HELP: Record<string, string> = {
  serve: SERVE_HELP,
  mount: MOUNT_HELP,
  playground: PLAYGROUND_HELP,
  preset: PRESET_HELP,
  storage: STORAGE_HELP,
  demo: `Usage: nexus-fast demo [--files N] [--bulk N] [--seed N] [--expire-ms N] [--fs-files N] [--data DIR]
                      [--bench-size SIZE]

Builds a realistic Nexus filesystem with the built-in Nexus preset model: two tenants, teams nested five deep,
a folder tree with thousands of files, shares, one cross-tenant grant and one expiring grant. Then it checks,
lists a directory, runs a bulk check, revokes a grant and lets the expiring one lapse, printing every answer and
its time. Then it runs the agent filesystem (NexusFS) on the embedded default: agents write files, read them,
list directories filtered per user, share within and across tenants, revoke, read through a caching client, and
restart the filesystem from its data directory. Exits 1 if any answer differs from what the model must answer.

Options:
  --files N       files in the main tenant's tree (default 5000)
  --bulk N        checks in the bulk round (default 1000)
  --seed N        seed for the generated parts (default 7)
  --expire-ms N   how long the expiring grant lives, in ms (default 3000)
  --fs-files N    files the agents write into the filesystem (default: --files, at most 1000)
  --data DIR      the filesystem's data directory, kept afterwards (default: a temporary one, removed)
  --bench-size S  the "same workload as the bench" section's size: 10k, 100k (default), 1m, files per leaf
                  folder, or 0 to leave it out
`,
  check: `Usage: nexus-fast check [--model FILE] [--tuples FILE]... [options] <user> <relation> <object>

Answers one question: may <user> <relation> <object>? Prints "allowed" or "denied".
Exit code: 0 allowed, 1 denied, 2 error (bad model, bad tuple, bad arguments).

Options:
  --model FILE         the model: .fga/.mod (OpenFGA DSL), fga.mod (an OpenFGA modular model: the module files it
                       lists are read from its folder), .zed/.schema (SpiceDB), .json/.yaml (OpenFGA JSON or
                       Nexus namespace configs); default: the built-in Nexus filesystem preset
  --format F           openfga | spicedb | nexus (default: from the file's extension and content)
  --tuples FILE        tuples: .yaml/.json list of {user, relation, object, condition?, expiresAt?, tenant?,
                       subjectTenant?}, OpenFGA CLI .csv, or lines of object#relation@user (repeatable)
  --context JSON       request context for conditions, e.g. '{"ip":"10.0.0.1"}'
  --tenant T           the tenant to ask in, and of tuples that name none (default "default")
  --subject-tenant T   the user's tenant, for a grant across tenants (default: --tenant)
  --explain            also print the path that granted (or the branches that denied), the time taken and
                       the model's format
  --data DIR           read tuples (and, without --model, the newest model version) from the durable store
                       in DIR that \`nexus-fast write --data DIR\` fills; --tuples cannot be used with it

Example:
  nexus-fast check --model model.fga --tuples tuples.yaml user:anne viewer document:roadmap
`,
  write: `Usage: nexus-fast write --data DIR [--model FILE] [--tuples FILE]... [--deletes FILE]... [options]

Keeps tuples and model versions in DIR, a durable tuple store (an append-only log with checkpoints; every
acknowledged write survives a crash), where \`nexus-fast check --data DIR\` and the server find them.
Tuples are checked against the model (--model, else the newest version in DIR, else the built-in Nexus preset);
tuples already there, or already gone, are skipped, so running the same command twice changes nothing.
One process writes to DIR at a time (another gets "locked").

Options:
  --data DIR       the store directory (created when missing)
  --model FILE     store this model as the tenant's newest version (unless it is already) and check against it
  --format F       openfga | spicedb | nexus (default: from the file's extension and content)
  --tuples FILE    tuples to write (formats as for check; repeatable)
  --deletes FILE   tuples to delete (same formats; repeatable)
  --tenant T       the tenant (default "default")

Example:
  nexus-fast write --data ./perms --model model.fga --tuples tuples.yaml
  nexus-fast check --data ./perms user:anne viewer document:roadmap
`,
  test: `Usage: nexus-fast test [--verbose] <store.fga.yaml>...

Runs the tests of OpenFGA store files (the format of \`fga model test\`): model or model_file, tuples /
tuple_file / tuple_files, and tests[] with check, list_objects and list_users assertions (with context and
conditions). Prints one line per failure and a summary; exits 1 when any assertion fails, 2 on a bad file.

Options:
  --verbose   print every assertion, not only failures
`,
};

export function helpFor(command: string): string {
  return COMMAND_HELP[command] ?? HELP;
}
