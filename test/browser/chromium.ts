/**
 * Real headless Chromium through playwright-core (no bundled browser download: the system's /usr/bin/chromium,
 * or CHROMIUM_PATH). Each launch gets a fresh profile directory, removed on close. The background-networking
 * flags matter on closed networks: without them Chromium's own update/sync traffic gets connections refused in
 * bursts, which slows or breaks page loads.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export class Chromium implements AsyncDisposable {
  #closed: Promise<void> | undefined;

  private constructor(
    readonly context: BrowserContext,
    readonly userDataDir: string,
  ) {}

  static async launch(): Promise<Chromium> {
    if (!existsSync(chromiumPath)) {
      throw new Error(
        `no Chromium at ${chromiumPath}: install it (Debian: apt-get install chromium; .ci/run does) ` +
          "or set CHROMIUM_PATH",
      );
    }
    const userDataDir = mkdtempSync(join(tmpdir(), "nexus-fast-chromium-"));
    try {
      const context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: chromiumPath,
        headless: true,
        args: chromiumArgs,
      });
      return new Chromium(context, userDataDir);
    } catch (error) {
      rmSync(userDataDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Closes every page and the browser process, then removes the profile. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.context.close().finally(() => {
      rmSync(this.userDataDir, { recursive: true, force: true });
    });
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
