/**
 * The `nexus-fast` command as a function: routes to one module per command (commands/*.ts) and turns errors into
 * exit codes: 0 success (or "allowed"), 1 a negative answer or failed assertions, 2 a usage or input error.
 * main.ts is the executable wrapper; tests call `main` here with their own output sinks.
 */

import { closest } from "../util/closest.js";
import { isNexusError } from "../util/errors.js";
import { UsageError } from "./args.js";
import { runCheck } from "./commands/check.js";
import { runDemo } from "./commands/demo.js";
import { HELP, helpFor } from "./commands/help.js";
import { runMount } from "./commands/mount.js";
import { runPreset } from "./commands/preset.js";
import { runServe } from "./commands/serve.js";
import { runStorage } from "./commands/storage.js";
import { runTest } from "./commands/test.js";
import { runWrite } from "./commands/write.js";
import type { Io } from "./io.js";

export const EXIT = { ok: 0, negative: 1, error: 2 } as const;

export type { Io } from "./io.js";

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  demo: runDemo,
  check: runCheck,
  test: runTest,
  serve: runServe,
  write: runWrite,
  mount: runMount,
  preset: runPreset,
  storage: runStorage,
  playground: (args, io) => import("./commands/playground.js").then((m) => m.runPlayground(args, io)),
};

/** Runs the CLI with `argv` (without node and script), returning the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.out(rest[0] && command === "help" ? helpFor(rest[0]) : HELP);
    return EXIT.ok;
  }
  if (command === "--version" || command === "-v") {
    io.out(await version());
    return EXIT.ok;
  }
  const run = COMMANDS[command];
  if (!run) {
    const meant = closest(command, Object.keys(COMMANDS));
    io.err(`nexus-fast: unknown command "${command}"${meant ? ` (did you mean ${meant}?)` : ""}\n\n${HELP}`);
    return EXIT.error;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(helpFor(command));
    return EXIT.ok;
  }
  try {
    return await run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`nexus-fast ${command}: ${error.message}\n\n${helpFor(command)}`);
    } else if (isNexusError(error)) {
      io.err(`nexus-fast ${command}: ${error.code}: ${error.message}`);
    } else {
      io.err(
        `nexus-fast ${command}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    return EXIT.error;
  }
}

function defaultIo(): Io {
  return {
    out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  };
}

async function version(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return `nexus-fast ${pkg.version}`;
}
