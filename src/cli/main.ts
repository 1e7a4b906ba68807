#!/usr/bin/env node
/** The `nexus-fast` executable: runs the CLI on this process's arguments and exits with its code. */
import { EXIT, main } from "./program.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`nexus-fast: ${String(error)}\n`);
    process.exitCode = EXIT.error;
  },
);
