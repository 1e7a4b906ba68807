/**
 * The list-objects warm-up (src/wasm-eval/list-objects.ts warmKernelListing) runs the kernel's walk on a graph it
 * lays out by hand: the walk must list every file of it, or the warm-up would warm a path real listings do not
 * take (a typo in the hand-written reverse program would go unnoticed otherwise: a warm-up never fails a request).
 */
import { describe, expect, it } from "vitest";
import { ready } from "../../src/wasm/loader.js";
import { warmKernelListing } from "../../src/wasm-eval/list-objects.js";

describe("warmKernelListing", () => {
  it("walks its whole graph: every file under the folder the user's group views", async () => {
    await ready();
    // 50 folders of 30 files (WARM_FOLDERS, WARM_FILES).
    expect(warmKernelListing()).toBe(1500);
  });
});
