/**
 * Where OpenFGA's matrix files are: NEXUS_FAST_CONFORMANCE_DIR, else `../shared/conformance/openfga/` beside the
 * checkout. The README says the matrix passes, so a missing folder fails the tests that need it (naming where it
 * looked) rather than skipping them silently.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const candidates = [
  process.env.NEXUS_FAST_CONFORMANCE_DIR,
  fileURLToPath(new URL("../../../shared/conformance/openfga/", import.meta.url)),
].filter((dir): dir is string => dir !== undefined && dir !== "");

/** The text of one matrix file. @throws Error naming every folder tried when none holds it. */
export function readConformanceFile(name: string): string {
  for (const dir of candidates) {
    const path = join(dir, name);
    if (existsSync(path)) return readFileSync(path, "utf8");
  }
  throw new Error(
    `OpenFGA conformance file ${name} not found in ${candidates.join(" or ")}: put OpenFGA's matrix files there ` +
      "or set NEXUS_FAST_CONFORMANCE_DIR",
  );
}
