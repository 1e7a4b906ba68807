/**
 * Vitest global setup of the runtimes project: makes sure a Chromium is there for the browser tests.
 * - Found (/usr/bin/chromium or CHROMIUM_PATH): nothing to do.
 * - Missing, running as root on Debian/Ubuntu (apt-get present): installs Debian's `chromium` package, the way
 *   `.ci/run` does, printing apt's progress.
 * - Still missing: under CI (CI=true) the run fails, since CI must run the browser tests; elsewhere one loud
 *   line says the browser tests are skipped and why, and `chromium.test.ts` skips itself.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chromiumPath } from "./chromium.js";

function hasApt(): boolean {
  try {
    execFileSync("apt-get", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export default function setup(): void {
  if (existsSync(chromiumPath)) return;
  if (process.getuid?.() === 0 && hasApt()) {
    console.log(`no Chromium at ${chromiumPath}: installing Debian's chromium with apt-get (as root)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    try {
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
      execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], { stdio: "inherit", env });
    } catch (error) {
      console.log(`apt-get could not install chromium: ${(error as Error).message}`);
    }
  }
  if (existsSync(chromiumPath)) return;
  const why = `no Chromium at ${chromiumPath} (install Debian's chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI) throw new Error(`${why}: CI must run the browser tests`);
  console.log(`\n*** SKIPPING the headless Chromium tests: ${why} ***\n`);
}
