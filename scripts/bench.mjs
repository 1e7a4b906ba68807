// Runs every bench/*.bench.ts (or those whose name contains an argument) in its own process, one after another,
// so one suite's heap and JIT state cannot colour the next. Usage: npm run bench [-- bloom intern]
// `npm run bench -- peers [--size 10k|100k|1m] [--peers walker,nexus-fast]` runs the peer table (bench/peers/).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const filters = process.argv.slice(2);
if (filters[0] === "peers") {
  const run = spawnSync(
    process.execPath,
    ["--import", "tsx", "--expose-gc", join("bench", "peers", "main.ts"), ...filters.slice(1)],
    { cwd: root, stdio: "inherit" },
  );
  process.exit(run.status ?? 1);
}
const suites = readdirSync(join(root, "bench"))
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
let failed = 0;
for (const suite of suites) {
  const run = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", join("bench", suite)], {
    cwd: root,
    stdio: "inherit",
  });
  if (run.status !== 0) {
    failed++;
    console.error(`bench ${suite} failed (exit ${run.status})`);
  }
}
process.exit(failed ? 1 : 0);
